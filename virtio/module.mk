# virtio/: the shared ring definitions are headers only; the host device
# models (virtio/host/) are part of the VMM library.
VIRTIO_HOST_SRCS := $(wildcard virtio/host/*.cc)
VMM_LIB_SRCS += $(VIRTIO_HOST_SRCS)

# vmm/module.mk and tests/fuzz/module.mk are read before this file and
# expanded VMM_LIB_SRCS into their link lines already (:=), so the targets
# they defined get the virtio objects as extra prerequisites here (their
# recipes link $^, where a duplicate would appear only once).
$(BUILD)/vmm: $(patsubst %.cc,$(BUILD)/obj/rel/%.o,$(VIRTIO_HOST_SRCS))
$(BUILD)/san/vmm $(BUILD)/san/test-vmm: $(patsubst %.cc,$(BUILD)/obj/san/%.o,$(VIRTIO_HOST_SRCS))
$(addprefix $(BUILD)/fuzz/,$(FUZZ_TARGETS)): $(patsubst %.cc,$(BUILD)/obj/fuzz/%.o,$(VIRTIO_HOST_SRCS))

UNIT_TESTS += virtio
virtio_TEST_SRCS := $(wildcard tests/unit/virtio/*.cc) $(VMM_LIB_SRCS)
virtio_TEST_LIBS := -pthread

# The shared headers must build with the guest kernel's flags.
freestanding-check: $(BUILD)/obj/guest/virtio/freestanding_check.o
