#include "guest-kernel/arch/x86/post_mortem.h"

#include "guest-kernel/arch/x86/cpu.h"
#include "guest-kernel/arch/x86/interrupts.h"
#include "guest-kernel/kernel/exit.h"

namespace x86::post_mortem {
namespace {

constexpr uint64_t kPage = 4096;

platform::PostMortemInfo g_info;
bool g_published = false;

DescriptorPointer sidt() {
  DescriptorPointer p{};
  asm volatile("sidt %0" : "=m"(p));
  return p;
}

DescriptorPointer sgdt() {
  DescriptorPointer p{};
  asm volatile("sgdt %0" : "=m"(p));
  return p;
}

uint16_t str() {
  uint16_t sel;
  asm volatile("str %0" : "=r"(sel));
  return sel;
}

// The base of the 64-bit system descriptor (two GDT slots) at `sel`.
uint64_t system_descriptor_base(const DescriptorPointer& gdt, uint16_t sel) {
  const uint32_t index = sel & ~7u;
  if (!sel || index + 15 > gdt.limit) return 0;
  const uint64_t* d = reinterpret_cast<const uint64_t*>(gdt.base + index);
  return ((d[0] >> 16) & 0xffffff) | (((d[0] >> 56) & 0xff) << 24) | ((d[1] & 0xffffffff) << 32);
}

}  // namespace

void set_stack(unsigned slot, uint64_t top, size_t pages, bool guarded) {
  if (slot >= platform::kPostMortemStacks) return;
  g_info.stacks[slot].top = top;
  g_info.stacks[slot].guard = guarded ? top - (pages + 1) * kPage : 0;
}

void publish() {
  const DescriptorPointer idt = sidt();
  const DescriptorPointer gdt = sgdt();
  g_info.magic = platform::kPostMortemMagic;
  g_info.size = sizeof g_info;
  g_info.idt_base = idt.base;
  g_info.idt_limit = idt.limit;
  g_info.gdt_base = gdt.base;
  g_info.gdt_limit = gdt.limit;
  g_info.tr = str();
  g_info.tss_base = system_descriptor_base(gdt, g_info.tr);
  g_info.cr3 = read_cr3();
  g_published = true;
  // Only a VMM that answers the read hears of it: elsewhere (QEMU) the
  // port may belong to something else.
  if (inl(platform::kPostMortemPort) != platform::kPostMortemMagic) return;
  // The VMM reads the structure when the write exits: every store above
  // must be in memory first (outl's asm does not clobber memory).
  asm volatile("" ::: "memory");
  // The kernel is identity-mapped below 4 GiB: the address is the GPA.
  outl(platform::kPostMortemPort, static_cast<uint32_t>(reinterpret_cast<uint64_t>(&g_info)));
}

void tables_changed() {
  if (g_published) publish();
}

void check_cpu_state() {
  if (!g_published) return;
  const DescriptorPointer idt = sidt(), gdt = sgdt();
  const uint16_t tr = str();
  const uint64_t cr3 = read_cr3();
  if (idt.base != g_info.idt_base || idt.limit != g_info.idt_limit)
    panic("post-mortem: IDTR changed under us: was %#lx/%#x, now %#lx/%#x", g_info.idt_base, g_info.idt_limit,
          idt.base, idt.limit);
  if (gdt.base != g_info.gdt_base || gdt.limit != g_info.gdt_limit)
    panic("post-mortem: GDTR changed under us: was %#lx/%#x, now %#lx/%#x", g_info.gdt_base, g_info.gdt_limit,
          gdt.base, gdt.limit);
  if (tr != g_info.tr) panic("post-mortem: TR changed under us: was %#x, now %#x", g_info.tr, tr);
  if (cr3 != g_info.cr3) panic("post-mortem: CR3 changed under us: was %#lx, now %#lx", g_info.cr3, cr3);
}

void enter(const InterruptFrame& f) {
  const uint64_t n = g_info.crumb_count;
  platform::PostMortemCrumb& c = g_info.crumbs[n & (platform::kPostMortemCrumbs - 1)];
  c.tsc = rdtsc();
  c.vector = f.vector | (f.error_code << 32);
  c.rip = f.rip;
  c.rsp = f.rsp;
  g_info.crumb_count = n + 1;
}

void leave() { ++g_info.crumb_done; }

const platform::PostMortemInfo& info() { return g_info; }

}  // namespace x86::post_mortem
