#include "guest-kernel/arch/x86/gdt.h"

#include "guest-kernel/arch/x86/cpu.h"

namespace x86 {
namespace {

struct Tss {
  uint32_t reserved0;
  uint64_t rsp[3];
  uint64_t reserved1;
  uint64_t ist[7];
  uint64_t reserved2;
  uint16_t reserved3;
  uint16_t iomap_base;
} __attribute__((packed));
static_assert(sizeof(Tss) == 104);

Tss tss;
uint64_t gdt[5] __attribute__((aligned(16)));

}  // namespace

void gdt_init(const uint64_t ist_stack_tops[4]) {
  for (int i = 0; i < 4; ++i) tss.ist[i] = ist_stack_tops[i];
  tss.iomap_base = sizeof(Tss);  // no I/O permission bitmap

  gdt[0] = 0;
  gdt[1] = 0x00af9a000000ffffull;  // 64-bit code, DPL 0
  gdt[2] = 0x00cf92000000ffffull;  // data
  // A 64-bit TSS descriptor takes two slots.
  const uint64_t base = reinterpret_cast<uint64_t>(&tss);
  const uint64_t limit = sizeof(Tss) - 1;
  gdt[3] = (limit & 0xffff) | ((base & 0xffffff) << 16) | (0x89ull << 40) | (((limit >> 16) & 0xf) << 48) |
           (((base >> 24) & 0xff) << 56);
  gdt[4] = base >> 32;

  DescriptorPointer p{sizeof(gdt) - 1, reinterpret_cast<uint64_t>(gdt)};
  lgdt(p);
  // Reload CS with a far return, then the data segments.
  asm volatile(
      "pushq %0\n"
      "leaq 1f(%%rip), %%rax\n"
      "pushq %%rax\n"
      "lretq\n"
      "1:\n"
      "mov %1, %%ds\n"
      "mov %1, %%es\n"
      "mov %1, %%ss\n" ::"i"(uint64_t(kKernelCode)),
      "r"(uint16_t(kKernelData))
      : "rax", "memory");
  ltr(kTssSelector);
}

}  // namespace x86
