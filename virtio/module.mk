# virtio/: the shared ring definitions are headers only; the host device
# models (virtio/host/) are part of the VMM library (vmm/module.mk).

UNIT_TESTS += virtio
virtio_TEST_SRCS := $(wildcard tests/unit/virtio/*.cc) $(VMM_LIB_SRCS)
virtio_TEST_LIBS := -pthread -luring

# The shared headers must build with the guest kernel's flags.
freestanding-check: $(BUILD)/obj/guest/virtio/freestanding_check.o
