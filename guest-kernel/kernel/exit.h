// Leaving the VM: the debug-exit port (our VMM, QEMU's isa-debug-exit).
#pragma once

#include <stdint.h>

[[noreturn]] void vm_exit(uint32_t status);
[[noreturn]] void panic(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
