#include "vmm/cpu_state.h"

#include <cstdio>

namespace vmm {
namespace {

kvm_segment flat_segment(uint16_t selector, uint8_t type) {
  kvm_segment s{};
  s.base = 0;
  s.limit = 0xffffffff;
  s.selector = selector;
  s.type = type;
  s.present = 1;
  s.dpl = 0;
  s.db = 1;  // 32-bit
  s.s = 1;   // code/data
  s.l = 0;
  s.g = 1;   // 4 KiB granularity: limit covers 4 GiB
  return s;
}

std::string segment_line(const char* name, const kvm_segment& s) {
  char b[160];
  snprintf(b, sizeof b, "%-4s sel=%04x base=%016llx limit=%08x type=%x p=%u dpl=%u db=%u s=%u l=%u g=%u\n", name,
           s.selector, static_cast<unsigned long long>(s.base), s.limit, s.type, s.present, s.dpl, s.db, s.s, s.l, s.g);
  return b;
}

}  // namespace

void set_pvh_entry_state(kvm_sregs& sregs, kvm_regs& regs, uint32_t entry, uint32_t start_info) {
  const kvm_segment code = flat_segment(0x10, 0xb);  // execute/read, accessed
  const kvm_segment data = flat_segment(0x18, 0x3);  // read/write, accessed
  sregs.cs = code;
  sregs.ds = sregs.es = sregs.fs = sregs.gs = sregs.ss = data;
  sregs.cr0 = 0x11;  // PE | ET
  sregs.cr4 = 0;
  sregs.efer = 0;
  regs = kvm_regs{};
  regs.rip = entry;
  regs.rbx = start_info;
  regs.rflags = 0x2;  // bit 1 is always set
}

std::vector<kvm_cpuid_entry2> cpuid_for_vcpu(std::vector<kvm_cpuid_entry2> entries, int index, int count) {
  for (auto& e : entries) {
    if (e.function == 1) {
      e.ebx = (e.ebx & 0x0000ffff) | (static_cast<uint32_t>(count) << 16) | (static_cast<uint32_t>(index) << 24);
      e.ecx |= 1u << 31;  // running under a hypervisor
      if (count > 1) e.edx |= 1u << 28;  // HTT: more than one logical CPU
    } else if (e.function == 0xb) {
      e.edx = static_cast<uint32_t>(index);  // x2APIC ID
    }
  }
  return entries;
}

std::string format_cpu_state(const kvm_regs& r, const kvm_sregs& s) {
  char b[256];
  std::string out;
  snprintf(b, sizeof b, "rip=%016llx rflags=%016llx\n", r.rip, r.rflags);
  out += b;
  snprintf(b, sizeof b, "rax=%016llx rbx=%016llx rcx=%016llx rdx=%016llx\n", r.rax, r.rbx, r.rcx, r.rdx);
  out += b;
  snprintf(b, sizeof b, "rsi=%016llx rdi=%016llx rbp=%016llx rsp=%016llx\n", r.rsi, r.rdi, r.rbp, r.rsp);
  out += b;
  snprintf(b, sizeof b, "r8 =%016llx r9 =%016llx r10=%016llx r11=%016llx\n", r.r8, r.r9, r.r10, r.r11);
  out += b;
  snprintf(b, sizeof b, "r12=%016llx r13=%016llx r14=%016llx r15=%016llx\n", r.r12, r.r13, r.r14, r.r15);
  out += b;
  snprintf(b, sizeof b, "cr0=%016llx cr2=%016llx cr3=%016llx cr4=%016llx efer=%016llx\n", s.cr0, s.cr2, s.cr3, s.cr4,
           s.efer);
  out += b;
  out += segment_line("cs", s.cs);
  out += segment_line("ds", s.ds);
  out += segment_line("ss", s.ss);
  out += segment_line("es", s.es);
  out += segment_line("fs", s.fs);
  out += segment_line("gs", s.gs);
  out += segment_line("tr", s.tr);
  snprintf(b, sizeof b, "gdt base=%016llx limit=%04x  idt base=%016llx limit=%04x\n", s.gdt.base, s.gdt.limit,
           s.idt.base, s.idt.limit);
  out += b;
  return out;
}

}  // namespace vmm
