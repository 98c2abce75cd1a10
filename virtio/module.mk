# virtio/: the shared ring definitions are headers only; the host device
# models (virtio/host/) are part of the VMM library (vmm/module.mk).

UNIT_TESTS += virtio
# virtio/guest/virtqueue.cc needs no kernel: paired with the host queue.
virtio_TEST_SRCS := $(wildcard tests/unit/virtio/*.cc) $(VMM_LIB_SRCS) virtio/guest/virtqueue.cc
virtio_TEST_LIBS := -pthread -luring

# The shared headers must build with the guest kernel's flags.
freestanding-check: $(BUILD)/obj/guest/virtio/freestanding_check.o

# The guest drivers (virtio-pci transport, virtqueue, blk, net) are part of
# the guest kernel.
GUEST_SRCS += $(wildcard virtio/guest/*.cc)
