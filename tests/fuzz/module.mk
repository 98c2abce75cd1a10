# libFuzzer targets (clang), with ASan and UBSan. make test runs each for a
# bounded time (tests/fuzz/run); FUZZ_SECONDS sets how long.
FUZZ_CXX      ?= clang++
FUZZ_FLAGS    := -std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -I.
FUZZ_TARGETS  := pvh_loader pci_config virtqueue virtio_devices virtio_balloon netstack e1000
# The part of the VMM library the targets exercise (devices, virtio, PCI,
# interrupts, guest memory, the loader): compiled once more under clang,
# so not the whole VMM (machine, cluster, snapshots, control socket).
FUZZ_LIB_SRCS := $(filter virtio/host/%.cc vmm/pci/%.cc vmm/irq/%.cc vmm/devices/e1000/%.cc vmm/net/%.cc \
                   vmm/guest_memory.cc vmm/pvh_loader.cc vmm/kvm.cc vmm/io_bus.cc vmm/snapshot/dirty_bitmap.cc \
                   vmm/memory/page_merger.cc,$(VMM_LIB_SRCS))
# A target may link its own sources instead (fuzz_<target>_SRCS).
fuzz_netstack_SRCS := $(NET_SRCS)

$(BUILD)/obj/fuzz/%.o: %.cc | deps
	@mkdir -p $(@D)
	$(FUZZ_CXX) $(FUZZ_FLAGS:-fsanitize=fuzzer,%=-fsanitize=fuzzer-no-link,%) -MMD -MP -c $< -o $@

define fuzz_target
$(BUILD)/fuzz/$(1): $(BUILD)/obj/fuzz/tests/fuzz/fuzz_$(1).o $(patsubst %.cc,$(BUILD)/obj/fuzz/%.o,$(or $(fuzz_$(1)_SRCS),$(FUZZ_LIB_SRCS)))
	@mkdir -p $$(@D)
	$$(FUZZ_CXX) $$(FUZZ_FLAGS) -o $$@ $$^ -pthread -luring
endef
$(foreach t,$(FUZZ_TARGETS),$(eval $(call fuzz_target,$(t))))

EXTRA_TEST_ARTIFACTS += $(addprefix $(BUILD)/fuzz/,$(FUZZ_TARGETS))
