# The guest kernel: freestanding C++ and assembly, linked with boot/'s entry
# and linker script.
GUEST_SRCS += $(wildcard guest-kernel/*/*.cc guest-kernel/*/*/*.cc)
GUEST_ASM += $(wildcard guest-kernel/*/*.S guest-kernel/*/*/*.S)

# Timer accuracy and idle cost of the guest (build/bench/timer.md).
BENCH_TARGETS += bench-timer
.PHONY: bench-timer
bench-timer: all
	scripts/bench-timer

# Host unit tests of the kernel code that needs no kernel: the block log
# and its format over an in-memory disk, CRC-32C.
UNIT_TESTS += guest
guest_TEST_SRCS := $(wildcard tests/unit/guest/*.cc) guest-kernel/block/block_log.cc \
                   guest-kernel/block/block_log_format.cc guest-kernel/block/block_device.cc
