#include "vmm/vcpu_probe.h"

#include <gtest/gtest.h>

#include <cstring>

namespace vmm {
namespace {

void set_reg(kvm_lapic_state& lapic, uint32_t reg, uint32_t v) { std::memcpy(lapic.regs + reg, &v, sizeof v); }

TEST(VcpuProbe, DecodesVectorsHighestFirst) {
  kvm_lapic_state lapic{};
  set_reg(lapic, 0x100 + 0x10 * 1, 1u << 16);         // ISR: vector 48
  set_reg(lapic, 0x100 + 0x10 * 7, 1u << 31);         // ISR: vector 255
  set_reg(lapic, 0x200 + 0x10 * 1, (1u << 17) | 1u);  // IRR: vectors 49 and 32
  EXPECT_EQ(lapic_vectors(lapic, 0x100), (std::vector<uint8_t>{255, 48}));
  EXPECT_EQ(lapic_vectors(lapic, 0x200), (std::vector<uint8_t>{49, 32}));
  EXPECT_TRUE(lapic_vectors(lapic, 0x180).empty());
}

TEST(VcpuProbe, RegisterOutsideThePageReadsZero) {
  kvm_lapic_state lapic{};
  set_reg(lapic, 0x3fc, 0xdeadbeef);
  EXPECT_EQ(lapic_reg(lapic, 0x3fc), 0xdeadbeefu);
  EXPECT_EQ(lapic_reg(lapic, 0x3fd), 0u);
  EXPECT_EQ(lapic_reg(lapic, 0x1000), 0u);
}

TEST(VcpuProbe, NamesMpStates) {
  EXPECT_STREQ(mp_state_name(KVM_MP_STATE_HALTED), "halted");
  EXPECT_STREQ(mp_state_name(KVM_MP_STATE_RUNNABLE), "runnable");
  EXPECT_STREQ(mp_state_name(1234), "other");
}

}  // namespace
}  // namespace vmm
