#include "guest-kernel/kernel/faults.h"

#include <stdint.h>

#include "guest-kernel/arch/x86/cpu.h"
#include "guest-kernel/kernel/exit.h"
#include "guest-kernel/lib/string.h"

bool trigger_fault(const char* kind) {
  if (strcmp(kind, "pf") == 0) {
    // An address in the non-canonical-free but unmapped range above 4 GiB.
    volatile uint64_t* p = reinterpret_cast<volatile uint64_t*>(0x7f0000000000ull);
    *p = 1;
  } else if (strcmp(kind, "gp") == 0) {
    // A non-canonical address raises #GP, not #PF.
    volatile uint64_t* p = reinterpret_cast<volatile uint64_t*>(0x8000000000000000ull);
    *p = 1;
  } else if (strcmp(kind, "ud") == 0) {
    asm volatile("ud2");
  } else if (strcmp(kind, "de") == 0) {
    // In asm: the compiler may rewrite `1u / x` as `x == 1`, which never
    // faults.
    asm volatile("xor %%ecx, %%ecx\n\tmov $1, %%eax\n\txor %%edx, %%edx\n\tdiv %%ecx" ::: "eax", "ecx", "edx");
  } else if (strcmp(kind, "triple") == 0) {
    // No IDT at all: the next exception cannot be delivered, nor the double
    // fault that follows, so the CPU shuts down.
    x86::DescriptorPointer empty{0, 0};
    x86::lidt(empty);
    asm volatile("ud2");
  } else {
    return false;
  }
  panic("fault '%s' was raised but did not fault", kind);
}
