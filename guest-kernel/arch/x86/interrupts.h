// Interrupt and exception handling: the IDT, the saved-register frame, a
// handler registry for device and timer vectors, and decoded reports of
// CPU exceptions.
#pragma once

#include <stdint.h>

namespace x86 {

struct InterruptFrame {
  uint64_t r15, r14, r13, r12, r11, r10, r9, r8, rbp, rdi, rsi, rdx, rcx, rbx, rax;
  uint64_t vector, error_code;
  uint64_t rip, cs, rflags, rsp, ss;  // pushed by the CPU
};

// Vectors 32-47 stay unused (legacy PIC range, masked); device and timer
// vectors are handed out from 48 up; 255 is the spurious vector.
constexpr uint8_t kFirstDynamicVector = 48;
constexpr uint8_t kSpuriousVector = 255;

using InterruptHandler = void (*)(InterruptFrame& frame, void* context);

void idt_init();
// Registers a handler for a vector >= 32. Returns false if taken.
bool register_interrupt(uint8_t vector, InterruptHandler handler, void* context);
// Allocates a free vector and registers the handler; 0 if none is left.
uint8_t allocate_interrupt(InterruptHandler handler, void* context);
void free_interrupt(uint8_t vector);

// For the self-tests: while set, the next exception on this CPU is
// recorded and execution resumes at `resume_rip` instead of panicking.
struct ExpectedFault {
  bool armed = false;
  bool hit = false;
  uint64_t vector = 0;
  uint64_t error_code = 0;
  uint64_t cr2 = 0;
  uint64_t resume_rip = 0;
  uint64_t resume_rsp = 0;
};
ExpectedFault& expected_fault();

const char* exception_name(uint64_t vector);

// Sets the symbol table used to print backtraces (see kernel/symbols.h).
void print_backtrace(uint64_t rbp, uint64_t rip);

}  // namespace x86
