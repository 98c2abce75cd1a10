// MSI-X: the capability, the table and PBA in a BAR, masking and pending
// bits, and delivery through the GSI router (fake KVM, real eventfds).
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstring>

#include "vmm/irq/fake_irq_backend.h"
#include "vmm/pci/msix.h"
#include "vmm/pci/pci_bus.h"

namespace vmm {
namespace {

using namespace pci;

constexpr uint32_t kTable = 0x0000, kPba = 0x2000;

// A device with MSI-X in BAR 0 and its own register at 0x3000.
class MsixDevice : public PciDevice {
 public:
  MsixDevice(GsiRouter& router, uint16_t vectors) : PciDevice(PciIds{0x1af4, 0x1041, 0x020000, 1, 0, 0, 0}, "msix") {
    add_bar(0, PciBarKind::kMem32, 0x4000);
    msix = std::make_unique<MsiX>(*this, router, vectors, 0, kTable, kPba);
  }
  std::unique_ptr<MsiX> msix;
  int own_writes = 0;

  // Public here so that tests can play the bus.
  void bar_read(uint32_t bar, uint64_t offset, uint8_t* data, uint32_t size) override {
    if (!msix->bar_read(bar, offset, data, size)) std::memset(data, 0x11, size);
  }
  void bar_write(uint32_t bar, uint64_t offset, const uint8_t* data, uint32_t size) override {
    if (!msix->bar_write(bar, offset, data, size)) ++own_writes;
  }
};

class MsixTest : public ::testing::Test {
 protected:
  explicit MsixTest(IrqCapabilities caps = IrqCapabilities::all()) : router(kvm, caps) {}
  void SetUp() override { dev = std::make_shared<MsixDevice>(router, 4); }

  uint32_t cap() const { return dev->msix->capability_offset(); }
  void control(uint16_t v) { dev->config_write(cap() + kMsixControl, 2, v); }
  void write32(uint64_t off, uint32_t v) { dev->bar_write(0, off, reinterpret_cast<uint8_t*>(&v), 4); }
  void write64(uint64_t off, uint64_t v) { dev->bar_write(0, off, reinterpret_cast<uint8_t*>(&v), 8); }
  uint32_t read32(uint64_t off) {
    uint32_t v;
    dev->bar_read(0, off, reinterpret_cast<uint8_t*>(&v), 4);
    return v;
  }
  uint64_t read64(uint64_t off) {
    uint64_t v;
    dev->bar_read(0, off, reinterpret_cast<uint8_t*>(&v), 8);
    return v;
  }
  // Programs entry `v` and leaves it masked or not.
  void program(uint16_t v, uint64_t addr, uint32_t data, bool masked) {
    write64(kTable + 16 * v, addr);
    write32(kTable + 16 * v + 8, data);
    write32(kTable + 16 * v + 12, masked ? 1 : 0);
  }
  // How many times the irqfd bound to vector `v`'s GSI fired since last asked.
  uint64_t fired(uint16_t v) {
    auto gsi = dev->msix->gsi(v);
    if (!gsi) return 0;
    for (const auto& [fd, g] : kvm.irqfds) {
      if (g != *gsi) continue;
      uint64_t n = 0;
      return ::read(fd, &n, sizeof n) == sizeof n ? n : 0;
    }
    return 0;
  }

  FakeIrqBackend kvm;
  GsiRouter router;
  std::shared_ptr<MsixDevice> dev;
};

TEST_F(MsixTest, CapabilityDescribesTableAndPba) {
  ASSERT_NE(cap(), 0u);
  EXPECT_EQ(dev->config_read(kCapabilityList, 1), cap());
  EXPECT_EQ(dev->config_read(cap(), 1), kCapIdMsix);
  EXPECT_EQ(dev->config_read(cap() + kMsixControl, 2), 3u);  // table size - 1
  EXPECT_EQ(dev->config_read(cap() + kMsixTable, 4), kTable | 0u);
  EXPECT_EQ(dev->config_read(cap() + kMsixPba, 4), kPba | 0u);
  // Only enable and function mask are writable.
  dev->config_write(cap(), 4, 0xffffffff);
  EXPECT_EQ(dev->config_read(cap() + kMsixControl, 2), 0xc003u);
  EXPECT_TRUE(dev->msix->enabled());
  EXPECT_TRUE(dev->msix->function_masked());
  dev->config_write(cap() + kMsixTable, 4, 0xffffffff);
  dev->config_write(cap() + kMsixPba, 4, 0);
  EXPECT_EQ(dev->config_read(cap() + kMsixTable, 4), kTable);
  EXPECT_EQ(dev->config_read(cap() + kMsixPba, 4), kPba);
  dev->config_write(cap() + kMsixControl + 1, 1, 0x00);
  EXPECT_FALSE(dev->msix->enabled());
}

TEST_F(MsixTest, TableEntriesTakeDwordAndQwordAccesses) {
  // Reset state: every vector masked, zero message.
  for (uint16_t v = 0; v < 4; ++v) EXPECT_EQ(read32(kTable + 16 * v + 12), 1u);
  write32(kTable + 16 + 0, 0xfee01007);  // address bits 1:0 are read-only zero
  write32(kTable + 16 + 4, 0x00000001);
  write32(kTable + 16 + 8, 0x00004055);
  write32(kTable + 16 + 12, 0xfffffffe);  // reserved control bits stay zero
  EXPECT_EQ(read32(kTable + 16), 0xfee01004u);
  EXPECT_EQ(read64(kTable + 16), 0x1'fee01004ull);
  EXPECT_EQ(read64(kTable + 16 + 8), 0x4055ull);
  EXPECT_EQ(dev->msix->message(1), (MsiMessage{0x1'fee01004, 0x4055}));
  EXPECT_FALSE(dev->msix->masked(1));
  write64(kTable + 16 * 3, 0x00000002'fee00000ull);
  write64(kTable + 16 * 3 + 8, 0x00000001'00000042ull);  // data and control in one write
  EXPECT_EQ(dev->msix->message(3), (MsiMessage{0x2'fee00000, 0x42}));
  EXPECT_TRUE(dev->msix->masked(3));
}

TEST_F(MsixTest, OddAccessesAreIgnoredSafely) {
  program(0, 0xfee00000, 0x41, true);
  // Sizes other than 4 and 8, and misaligned accesses: all-ones, no effect.
  uint16_t w = 0;
  dev->bar_write(0, kTable + 8, reinterpret_cast<uint8_t*>(&w), 2);
  uint8_t b = 0;
  dev->bar_write(0, kTable + 12, &b, 1);
  write32(kTable + 9, 0);
  write64(kTable + 4, 0);
  EXPECT_EQ(dev->msix->message(0), (MsiMessage{0xfee00000, 0x41}));
  EXPECT_TRUE(dev->msix->masked(0));
  dev->bar_read(0, kTable + 8, reinterpret_cast<uint8_t*>(&w), 2);
  EXPECT_EQ(w, 0xffff);
  EXPECT_EQ(read64(kTable + 4), ~0ull);
  EXPECT_EQ(read32(kTable + 2), ~0u);
  // The PBA is read-only.
  EXPECT_TRUE(dev->msix->notify(0) == false);  // disabled: dropped
  write64(kPba, ~0ull);
  EXPECT_EQ(read64(kPba), 0u);
  // Past the table and the PBA: the device's own registers, not MSI-X.
  EXPECT_EQ(read32(kTable + 16 * 4), 0x11111111u);
  EXPECT_EQ(read32(kPba + 8), 0x11111111u);
  write32(0x3000, 1);
  EXPECT_EQ(dev->own_writes, 1);
  // Another BAR is never MSI-X; vectors past the table go nowhere.
  EXPECT_FALSE(dev->msix->bar_read(1, kTable, reinterpret_cast<uint8_t*>(&w), 2));
  EXPECT_FALSE(dev->msix->bar_write(0, ~0ull - 3, reinterpret_cast<uint8_t*>(&w), 2));
  control(kMsixControlEnable);
  EXPECT_FALSE(dev->msix->notify(4));
  EXPECT_FALSE(dev->msix->notify(0xffff));
  EXPECT_FALSE(dev->msix->pending(4));
}

TEST_F(MsixTest, DisabledDropsMaskedPendsUnmaskFires) {
  program(2, 0xfee00000, 0x51, true);
  EXPECT_FALSE(dev->msix->notify(2));  // MSI-X disabled
  EXPECT_FALSE(dev->msix->pending(2));

  control(kMsixControlEnable);
  EXPECT_TRUE(dev->msix->notify(2));  // masked vector: pending, not sent
  EXPECT_TRUE(dev->msix->pending(2));
  EXPECT_EQ(read64(kPba), 1ull << 2);
  EXPECT_EQ(read32(kPba), 1u << 2);
  EXPECT_EQ(fired(2), 0u);

  write32(kTable + 16 * 2 + 12, 0);  // unmask: the pending message goes out
  EXPECT_FALSE(dev->msix->pending(2));
  EXPECT_EQ(read64(kPba), 0u);
  EXPECT_EQ(fired(2), 1u);
  ASSERT_TRUE(dev->msix->gsi(2));
  EXPECT_EQ(kvm.msi_route(*dev->msix->gsi(2)), (MsiMessage{0xfee00000, 0x51}));

  EXPECT_TRUE(dev->msix->notify(2));
  EXPECT_TRUE(dev->msix->notify(2));
  EXPECT_EQ(fired(2), 2u);
  EXPECT_TRUE(kvm.signalled.empty());  // all through the irqfd
}

TEST_F(MsixTest, FunctionMaskHoldsEveryVector) {
  program(0, 0xfee00000, 0x40, false);
  program(1, 0xfee00000, 0x41, false);
  program(3, 0xfee00000, 0x43, true);
  control(kMsixControlEnable | kMsixControlMaskAll);  // Linux's order: enable masked, then unmask
  EXPECT_TRUE(dev->msix->notify(0));
  EXPECT_TRUE(dev->msix->notify(3));
  EXPECT_EQ(read32(kPba), 0b1001u);
  EXPECT_EQ(fired(0), 0u);
  control(kMsixControlEnable);
  EXPECT_EQ(fired(0), 1u);          // unmasked vector: sent
  EXPECT_EQ(read32(kPba), 0b1000u);  // vector 3 is still masked itself
  EXPECT_EQ(fired(3), 0u);
  write32(kTable + 16 * 3 + 12, 0);
  EXPECT_EQ(fired(3), 1u);
  EXPECT_EQ(read32(kPba), 0u);
}

TEST_F(MsixTest, RoutesFollowRewrittenEntries) {
  control(kMsixControlEnable);
  program(1, 0xfee00000, 0x60, false);
  const uint32_t gsi = *dev->msix->gsi(1);
  EXPECT_EQ(kvm.msi_route(gsi), (MsiMessage{0xfee00000, 0x60}));
  const int pushes = kvm.routing_pushes;
  // The usual way: mask, rewrite, unmask. One push for the new message.
  write32(kTable + 16 + 12, 1);
  write64(kTable + 16, 0xfee02000);
  write32(kTable + 16 + 8, 0x61);
  EXPECT_EQ(kvm.routing_pushes, pushes);  // nothing while masked
  write32(kTable + 16 + 12, 0);
  EXPECT_EQ(kvm.routing_pushes, pushes + 1);
  EXPECT_EQ(kvm.msi_route(gsi), (MsiMessage{0xfee02000, 0x61}));
  // Rewriting an unmasked entry (undefined by the spec) still follows.
  write32(kTable + 16 + 8, 0x62);
  EXPECT_EQ(kvm.msi_route(gsi), (MsiMessage{0xfee02000, 0x62}));
  EXPECT_TRUE(dev->msix->notify(1));
  EXPECT_EQ(fired(1), 1u);
  // Unmasking an unchanged entry pushes nothing.
  const int now = kvm.routing_pushes;
  write32(kTable + 16 + 12, 1);
  write32(kTable + 16 + 12, 0);
  EXPECT_EQ(kvm.routing_pushes, now);
}

TEST_F(MsixTest, RefusedRouteFallsBackToSignalMsi) {
  control(kMsixControlEnable);
  program(0, 0xfee00000, 0x70, false);
  kvm.fail_routing = true;
  write32(kTable + 8, 0x71);  // KVM refuses the new route
  EXPECT_TRUE(dev->msix->notify(0));
  EXPECT_EQ(fired(0), 0u);
  ASSERT_EQ(kvm.signalled.size(), 1u);
  EXPECT_EQ(kvm.signalled[0], (MsiMessage{0xfee00000, 0x71}));
  kvm.fail_routing = false;
  EXPECT_TRUE(dev->msix->notify(0));  // retried at the next notify
  EXPECT_EQ(fired(0), 1u);
}

TEST_F(MsixTest, DestructionReleasesGsisAndIrqfds) {
  control(kMsixControlEnable);
  program(0, 0xfee00000, 0x40, false);
  program(1, 0xfee00000, 0x41, false);
  EXPECT_EQ(kvm.irqfds.size(), 2u);
  EXPECT_EQ(kvm.routing.size(), 42u);
  dev->msix.reset();
  EXPECT_TRUE(kvm.irqfds.empty());
  EXPECT_EQ(kvm.routing.size(), 40u);
}

TEST_F(MsixTest, BadLayoutsThrow) {
  auto make = [&](uint16_t n, uint32_t bar, uint32_t t, uint32_t p) {
    PciDevice d(PciIds{}, "bad");
    d.add_bar(0, PciBarKind::kMem32, 0x1000);
    d.add_bar(1, PciBarKind::kIo, 0x20);
    MsiX m(d, router, n, bar, t, p);
  };
  EXPECT_THROW(make(0, 0, 0, 0x800), std::logic_error);
  EXPECT_THROW(make(2049, 0, 0, 0x800), std::logic_error);
  EXPECT_THROW(make(4, 1, 0, 0x800), std::logic_error);      // I/O BAR
  EXPECT_THROW(make(4, 2, 0, 0x800), std::logic_error);      // no such BAR
  EXPECT_THROW(make(4, 0, 4, 0x800), std::logic_error);      // misaligned
  EXPECT_THROW(make(4, 0, 0, 0x20), std::logic_error);       // PBA inside the table
  EXPECT_THROW(make(4, 0, 0xff0, 0x800), std::logic_error);  // past the BAR
  EXPECT_NO_THROW(make(4, 0, 0, 0x800));
}

class MsixSignalOnlyTest : public MsixTest {
 protected:
  static IrqCapabilities caps() {
    IrqCapabilities c = IrqCapabilities::all();
    c.irqfd = false;
    return c;
  }
  MsixSignalOnlyTest() : MsixTest(caps()) {}
};

TEST_F(MsixSignalOnlyTest, WithoutIrqfdEachNotifyIsSignalMsi) {
  control(kMsixControlEnable);
  program(1, 0xfee00000, 0x45, true);
  EXPECT_TRUE(dev->msix->notify(1));
  EXPECT_TRUE(kvm.signalled.empty());
  write32(kTable + 16 + 12, 0);
  ASSERT_EQ(kvm.signalled.size(), 1u);
  EXPECT_TRUE(dev->msix->notify(1));
  ASSERT_EQ(kvm.signalled.size(), 2u);
  EXPECT_EQ(kvm.signalled[1], (MsiMessage{0xfee00000, 0x45}));
  EXPECT_FALSE(dev->msix->gsi(1));
  EXPECT_EQ(kvm.routing.size(), 40u);  // no routes needed
}

// The whole path a guest takes: find the BAR through config space, program
// the table over MMIO, enable through config space, get an interrupt.
TEST(MsixOnBusTest, GuestProgramsTableThroughTheBar) {
  FakeIrqBackend kvm;
  GsiRouter router(kvm, IrqCapabilities::all());
  IoBus pio, mmio;
  auto bus = PciBus::create(pio, mmio);
  auto dev = std::make_shared<MsixDevice>(router, 2);
  bus->add(dev, 4);
  const uint64_t bar = dev->config_read(kBar0, 4) & ~0xfu;
  ASSERT_NE(bar, 0u);
  const uint64_t addr = 0xfee00000;
  const uint32_t data = 0x4049, unmask = 0;
  mmio.write(bar + kTable + 16, reinterpret_cast<const uint8_t*>(&addr), 8);
  mmio.write(bar + kTable + 16 + 8, reinterpret_cast<const uint8_t*>(&data), 4);
  mmio.write(bar + kTable + 16 + 12, reinterpret_cast<const uint8_t*>(&unmask), 4);
  const uint32_t cap = dev->msix->capability_offset();
  const uint16_t enable = kMsixControlEnable;
  mmio.write(PciLayout::kEcamBase + (4u << 15) + cap + kMsixControl, reinterpret_cast<const uint8_t*>(&enable), 2);
  EXPECT_TRUE(dev->msix->notify(1));
  auto gsi = dev->msix->gsi(1);
  ASSERT_TRUE(gsi);
  EXPECT_EQ(kvm.msi_route(*gsi), (MsiMessage{addr, data}));
  uint64_t pba = 1;
  mmio.read(bar + kPba, reinterpret_cast<uint8_t*>(&pba), 8);
  EXPECT_EQ(pba, 0u);
}

}  // namespace
}  // namespace vmm
