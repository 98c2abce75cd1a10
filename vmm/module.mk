# The VMM: everything but main.cc is a library the unit tests and fuzz
# targets link too, with the host side of virtio (its device models).
VMM_LIB_SRCS := $(filter-out vmm/main.cc vmm/vmctl/%,$(wildcard vmm/*.cc vmm/*/*.cc vmm/devices/e1000/*.cc)) $(wildcard virtio/host/*.cc)
HOST_PROGRAMS += vmm
vmm_SRCS := vmm/main.cc $(VMM_LIB_SRCS)
vmm_LIBS := -pthread -luring

# vmctl: the control socket's command-line client.
HOST_PROGRAMS += vmctl
vmctl_SRCS := vmm/vmctl/vmctl.cc vmm/control/control_protocol.cc vmm/control/control_client.cc vmm/control/socket_util.cc
vmctl_LIBS := -pthread

UNIT_TESTS += vmm
vmm_TEST_SRCS := $(wildcard tests/unit/vmm/*.cc) $(VMM_LIB_SRCS)
vmm_TEST_LIBS := -pthread -luring

# Ballooning, and same-page merging against Linux KSM (build/bench/memory.md).
BENCH_TARGETS += bench-memory
.PHONY: bench-memory
bench-memory: all
	scripts/bench-memory
