// The kernel's GDT and TSS. The TSS exists for its interrupt stack table:
// every vector runs on an IST stack (see idt.cc for why), with separate
// stacks for double faults and NMIs so they work even when the stack that
// faulted is broken.
#pragma once

#include <stdint.h>

namespace x86 {

constexpr uint16_t kKernelCode = 0x08;
constexpr uint16_t kKernelData = 0x10;
constexpr uint16_t kTssSelector = 0x18;

enum Ist : uint8_t {
  kIstNone = 0,
  kIstDoubleFault = 1,
  kIstNmi = 2,
  kIstException = 3,
  kIstInterrupt = 4,
};

// Loads the GDT and TSS; `ist_stack_tops[i]` is the top of IST stack i+1.
void gdt_init(const uint64_t ist_stack_tops[4]);

}  // namespace x86
