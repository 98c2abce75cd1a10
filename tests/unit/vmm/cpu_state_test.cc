#include "vmm/cpu_state.h"

#include <gtest/gtest.h>

namespace vmm {
namespace {

TEST(CpuStateTest, PvhEntryIsFlat32BitProtectedMode) {
  kvm_sregs s{};
  kvm_regs r{};
  set_pvh_entry_state(s, r, 0x100000, 0x6000);
  EXPECT_EQ(r.rip, 0x100000u);
  EXPECT_EQ(r.rbx, 0x6000u);
  EXPECT_EQ(r.rflags, 2u);
  EXPECT_EQ(s.cr0 & 1, 1u) << "protected mode";
  EXPECT_EQ(s.cr0 & 0x80000000u, 0u) << "paging off";
  EXPECT_EQ(s.cs.db, 1);
  EXPECT_EQ(s.cs.l, 0);
  EXPECT_EQ(s.cs.limit, 0xffffffffu);
  EXPECT_EQ(s.cs.type & 0x8, 0x8) << "code segment";
  EXPECT_EQ(s.ds.type & 0x8, 0) << "data segment";
  EXPECT_EQ(s.ss.base, 0u);
}

TEST(CpuStateTest, CpuidCarriesApicIdsAndHypervisorBit) {
  std::vector<kvm_cpuid_entry2> in(2);
  in[0].function = 1;
  in[0].ebx = 0x12345678;
  in[1].function = 0xb;
  auto out = cpuid_for_vcpu(in, 3, 4);
  EXPECT_EQ(out[0].ebx >> 24, 3u);
  EXPECT_EQ((out[0].ebx >> 16) & 0xff, 4u);
  EXPECT_EQ(out[0].ebx & 0xffff, 0x5678u);
  EXPECT_TRUE(out[0].ecx & (1u << 31));
  EXPECT_EQ(out[1].edx, 3u);
}

TEST(CpuStateTest, DumpNamesEveryRegister) {
  kvm_regs r{};
  kvm_sregs s{};
  r.rip = 0xabcdef;
  const std::string dump = format_cpu_state(r, s);
  for (const char* name : {"rip=", "rax=", "r15=", "cr0=", "cr2=", "cr3=", "efer=", "cs ", "tr ", "idt "})
    EXPECT_NE(dump.find(name), std::string::npos) << name;
  EXPECT_NE(dump.find("0000000000abcdef"), std::string::npos);
}

}  // namespace
}  // namespace vmm
