# The network stack. guest-kernel/module.mk builds every .cc here into the
# kernel; NET_SRCS is the freestanding protocol subset that the host also
# builds (unit tests in tests/unit/net, the fuzz target netstack). The
# guest-only glue (net_boot.cc, net_demos.cc) stays out of it.
NET_SRCS := $(addprefix guest-kernel/net/,net_device.cc wire.cc stats.cc parse.cc arp.cc icmp.cc udp.cc reassembly.cc stack.cc pair_device.cc bench_proto.cc)

# The Makefile includes module.mk files two levels deep, so the tests in
# tests/unit/net are registered here (as virtio/module.mk does for its own).
UNIT_TESTS += net
net_TEST_SRCS := $(NET_SRCS) $(wildcard tests/unit/net/*.cc)

# virtio-net against e1000, guest to guest (build/bench/net.{md,png}).
BENCH_TARGETS += bench-net
.PHONY: bench-net
bench-net: all
	scripts/bench-net
