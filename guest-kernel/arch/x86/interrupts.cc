#include "guest-kernel/arch/x86/interrupts.h"

#include "guest-kernel/arch/x86/apic.h"
#include "guest-kernel/arch/x86/cpu.h"
#include "guest-kernel/arch/x86/gdt.h"
#include "guest-kernel/arch/x86/post_mortem.h"
#include "guest-kernel/kernel/exit.h"
#include "guest-kernel/kernel/symbols.h"
#include "guest-kernel/lib/print.h"

extern "C" const uint64_t isr_stub_table[256];

namespace x86 {
namespace {

struct IdtEntry {
  uint16_t offset_low;
  uint16_t selector;
  uint8_t ist;
  uint8_t type_attr;
  uint16_t offset_mid;
  uint32_t offset_high;
  uint32_t reserved;
} __attribute__((packed));
static_assert(sizeof(IdtEntry) == 16);

IdtEntry idt[256] __attribute__((aligned(16)));

struct Registration {
  InterruptHandler handler;
  void* context;
};
Registration handlers[256];
ExpectedFault g_expected_fault;

// Every vector runs on an IST stack. libstdc++.a is compiled with the red
// zone, so an interrupt taken on the current stack could overwrite up to
// 128 bytes below a library function's stack pointer. Interrupt gates keep
// IF clear, so interrupts never nest on their stack; exceptions have their
// own, and double faults and NMIs theirs.
uint8_t ist_for(unsigned vector) {
  if (vector == 8) return kIstDoubleFault;
  if (vector == 2) return kIstNmi;
  if (vector < 32) return kIstException;
  return kIstInterrupt;
}

const char* const kExceptionNames[32] = {
    "#DE divide error", "#DB debug", "NMI", "#BP breakpoint", "#OF overflow", "#BR bound range exceeded",
    "#UD invalid opcode", "#NM device not available", "#DF double fault", "coprocessor segment overrun",
    "#TS invalid TSS", "#NP segment not present", "#SS stack-segment fault", "#GP general protection fault",
    "#PF page fault", "reserved (15)", "#MF x87 floating-point error", "#AC alignment check",
    "#MC machine check", "#XM SIMD floating-point exception", "#VE virtualization exception",
    "#CP control protection", "reserved (22)", "reserved (23)", "reserved (24)", "reserved (25)",
    "reserved (26)", "reserved (27)", "#HV hypervisor injection", "#VC VMM communication",
    "#SX security exception", "reserved (31)"};

void describe_error_code(const InterruptFrame& f) {
  switch (f.vector) {
    case 14:
      kprintf("  error code %#lx: %s, %s, %s%s%s\n", f.error_code,
              (f.error_code & 1) ? "protection violation" : "page not present",
              (f.error_code & 2) ? "write" : "read", (f.error_code & 4) ? "user mode" : "kernel mode",
              (f.error_code & 8) ? ", reserved bit set" : "", (f.error_code & 16) ? ", instruction fetch" : "");
      break;
    case 10: case 11: case 12: case 13: case 17: case 21:
      if (f.error_code)
        kprintf("  error code %#lx: %s selector index %lu%s\n", f.error_code,
                (f.error_code & 2) ? "IDT" : ((f.error_code & 4) ? "LDT" : "GDT"), (f.error_code >> 3) & 0x1fff,
                (f.error_code & 1) ? ", external event" : "");
      else
        kprintf("  error code 0 (not caused by a segment selector)\n");
      break;
    case 8:
      kprintf("  error code %#lx\n", f.error_code);
      break;
    default:
      break;
  }
}

[[noreturn]] void report_exception(const InterruptFrame& f) {
  const uint64_t cr2 = read_cr2();
  kprintf("\nCPU EXCEPTION %lu: %s\n", f.vector, exception_name(f.vector));
  describe_error_code(f);
  char sym[96];
  symbolize(f.rip, sym, sizeof sym);
  kprintf("  at rip=%016lx %s\n", f.rip, sym);
  kprintf("  rax=%016lx rbx=%016lx rcx=%016lx rdx=%016lx\n", f.rax, f.rbx, f.rcx, f.rdx);
  kprintf("  rsi=%016lx rdi=%016lx rbp=%016lx rsp=%016lx\n", f.rsi, f.rdi, f.rbp, f.rsp);
  kprintf("  r8 =%016lx r9 =%016lx r10=%016lx r11=%016lx\n", f.r8, f.r9, f.r10, f.r11);
  kprintf("  r12=%016lx r13=%016lx r14=%016lx r15=%016lx\n", f.r12, f.r13, f.r14, f.r15);
  kprintf("  cs=%04lx ss=%04lx rflags=%016lx\n", f.cs, f.ss, f.rflags);
  kprintf("  cr0=%016lx cr2=%016lx cr3=%016lx cr4=%016lx\n", read_cr0(), cr2, read_cr3(), read_cr4());
  print_backtrace(f.rbp, f.rip);
  panic("unhandled CPU exception %lu (%s)", f.vector, exception_name(f.vector));
}

}  // namespace

const char* exception_name(uint64_t vector) { return vector < 32 ? kExceptionNames[vector] : "interrupt"; }

ExpectedFault& expected_fault() { return g_expected_fault; }

void print_backtrace(uint64_t rbp, uint64_t rip) {
  char sym[96];
  kprintf("  backtrace:\n");
  symbolize(rip, sym, sizeof sym);
  kprintf("    #0 %016lx %s\n", rip, sym);
  // Frames are (saved rbp, return address) pairs; the entry code zeroes
  // rbp, which ends the chain. Only follow pointers into RAM we mapped.
  for (int depth = 1; depth < 24 && rbp && (rbp & 7) == 0 && rbp >= 0x100000 && rbp < (1ull << 32); ++depth) {
    const uint64_t* frame = reinterpret_cast<const uint64_t*>(rbp);
    const uint64_t ret = frame[1];
    if (!ret) break;
    symbolize(ret, sym, sizeof sym);
    kprintf("    #%d %016lx %s\n", depth, ret, sym);
    if (frame[0] <= rbp) break;  // stacks grow down: callers' frames lie above
    rbp = frame[0];
  }
}

void idt_init() {
  for (unsigned v = 0; v < 256; ++v) {
    const uint64_t addr = isr_stub_table[v];
    IdtEntry& e = idt[v];
    e.offset_low = addr & 0xffff;
    e.selector = kKernelCode;
    e.ist = ist_for(v);
    e.type_attr = 0x8e;  // present, DPL 0, 64-bit interrupt gate (IF cleared)
    e.offset_mid = (addr >> 16) & 0xffff;
    e.offset_high = static_cast<uint32_t>(addr >> 32);
    e.reserved = 0;
  }
  DescriptorPointer p{sizeof(idt) - 1, reinterpret_cast<uint64_t>(idt)};
  lidt(p);
}

bool register_interrupt(uint8_t vector, InterruptHandler handler, void* context) {
  if (vector < 32 || handlers[vector].handler) return false;
  handlers[vector] = {handler, context};
  return true;
}

uint8_t allocate_interrupt(InterruptHandler handler, void* context) {
  for (unsigned v = kFirstDynamicVector; v < kSpuriousVector; ++v)
    if (register_interrupt(static_cast<uint8_t>(v), handler, context)) return static_cast<uint8_t>(v);
  return 0;
}

void free_interrupt(uint8_t vector) { handlers[vector] = {nullptr, nullptr}; }

namespace {

void dispatch(InterruptFrame* frame) {
  const uint64_t v = frame->vector;
  if (v < 32) {
    ExpectedFault& ef = g_expected_fault;
    if (ef.armed) {
      ef.armed = false;
      ef.hit = true;
      ef.vector = v;
      ef.error_code = frame->error_code;
      ef.cr2 = read_cr2();
      frame->rip = ef.resume_rip;
      if (ef.resume_rsp) frame->rsp = ef.resume_rsp;
      return;
    }
    report_exception(*frame);
  }
  if (v == kSpuriousVector) return;  // spurious: no EOI, as the SDM says
  if (handlers[v].handler) {
    handlers[v].handler(*frame, handlers[v].context);
    return;
  }
  // EOI'd all the same (not for exceptions): left in service, it would
  // block its priority class and every class below it.
  kprintf("guest-kernel: interrupt on unregistered vector %lu ignored\n", v);
  if (v >= 32) apic_eoi();
}

}  // namespace
}  // namespace x86

extern "C" void interrupt_dispatch(x86::InterruptFrame* frame) {
  // Breadcrumbs for the VMM's post-mortem of a triple fault.
  x86::post_mortem::enter(*frame);
  x86::dispatch(frame);
  x86::post_mortem::leave();
}
