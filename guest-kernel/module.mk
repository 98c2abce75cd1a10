# The guest kernel: freestanding C++ and assembly, linked with boot/'s entry
# and linker script.
GUEST_SRCS += $(wildcard guest-kernel/*/*.cc guest-kernel/*/*/*.cc)
GUEST_ASM += $(wildcard guest-kernel/*/*.S guest-kernel/*/*/*.S)

# Timer accuracy and idle cost of the guest (build/bench/timer.md).
BENCH_TARGETS += bench-timer
.PHONY: bench-timer
bench-timer: all
	scripts/bench-timer
