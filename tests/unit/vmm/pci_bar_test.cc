// BARs: the sizing protocol, firmware-style placement, and mappings on the
// I/O buses that follow the guest's reprogramming and decoding enables.
#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <thread>
#include <vector>

#include "vmm/io_bus.h"
#include "vmm/pci/pci_bus.h"
#include "vmm/pci/pci_device.h"

namespace vmm {
namespace {

using namespace pci;

// A device whose BARs answer with their index and the offset, and record writes.
class BarDevice : public PciDevice {
 public:
  BarDevice() : PciDevice(PciIds{0x1af4, 0x1042, 0x018000, 1, 0x1af4, 2, 0}, "bar-test") {
    add_bar(0, PciBarKind::kMem32, 0x1000);
    add_bar(1, PciBarKind::kIo, 0x20);
    add_bar(2, PciBarKind::kMem64, 0x4000, true);
  }
  std::atomic<int> writes{0};
  std::optional<uint64_t> last_remap[kNumBars];
  int remaps = 0;

 protected:
  void bar_read(uint32_t bar, uint64_t offset, uint8_t* data, uint32_t size) override {
    std::memset(data, 0, size);
    data[0] = static_cast<uint8_t>(0xb0 + bar);
    if (size > 1) data[1] = static_cast<uint8_t>(offset);
  }
  void bar_write(uint32_t, uint64_t, const uint8_t*, uint32_t) override { ++writes; }
  void bar_remapped(uint32_t bar, std::optional<uint64_t> address) override {
    last_remap[bar] = address;
    ++remaps;
  }
};

uint16_t read16(IoBus& bus, uint64_t addr) {
  uint16_t v = 0;
  bus.read(addr, reinterpret_cast<uint8_t*>(&v), 2);
  return v;
}

class PciBarTest : public ::testing::Test {
 protected:
  void SetUp() override {
    bus = PciBus::create(pio, mmio);
    bus->add(std::make_shared<PciHostBridge>(), 0);
    dev = std::make_shared<BarDevice>();
    bus->add(dev, 3);
  }
  IoBus pio, mmio;
  std::shared_ptr<PciBus> bus;
  std::shared_ptr<BarDevice> dev;
};

TEST(PciBarSizingTest, Mem32ReportsSizeAndType) {
  BarDevice d;
  d.config_write(kBar0, 4, 0xffffffff);
  EXPECT_EQ(d.config_read(kBar0, 4), 0xfffff000u);  // 4 KiB, 32-bit, not prefetchable
  d.config_write(kBar0, 4, 0x12345678);
  EXPECT_EQ(d.config_read(kBar0, 4), 0x12345000u);  // low address bits read as zero
}

TEST(PciBarSizingTest, IoReportsSizeAndType) {
  BarDevice d;
  d.config_write(kBar0 + 4, 4, 0xffffffff);
  EXPECT_EQ(d.config_read(kBar0 + 4, 4), 0x0000ffe1u);  // 32 ports, 16-bit decode, I/O bit
  d.config_write(kBar0 + 4, 2, 0xc0ff);
  EXPECT_EQ(d.config_read(kBar0 + 4, 4), 0x0000c0e1u);
}

TEST(PciBarSizingTest, Mem64ReportsSizeAcrossBothHalves) {
  BarDevice d;
  EXPECT_EQ(d.config_read(kBar0 + 8, 4), 0x0000000cu);  // 64-bit, prefetchable
  d.config_write(kBar0 + 8, 4, 0xffffffff);
  d.config_write(kBar0 + 12, 4, 0xffffffff);
  EXPECT_EQ(d.config_read(kBar0 + 8, 4), 0xffffc00cu);
  EXPECT_EQ(d.config_read(kBar0 + 12, 4), 0xffffffffu);  // a 16 KiB BAR decodes all 64 bits
  d.config_write(kBar0 + 8, 4, 0x80000000);
  d.config_write(kBar0 + 12, 4, 0x00000012);
  EXPECT_EQ(d.bar_address(2), 0x1280000000ull);
  // Undeclared BARs and the ROM BAR are read-only zero: "not implemented".
  for (uint32_t reg : {kBar0 + 16, kBar0 + 20, kRomAddress}) {
    d.config_write(reg, 4, 0xffffffff);
    EXPECT_EQ(d.config_read(reg, 4), 0u) << reg;
  }
}

TEST(PciBarSizingTest, LargeMem64SizesTheUpperHalf) {
  PciDevice d(PciIds{1, 2, 0, 0, 0, 0, 0}, "big");
  d.add_bar(0, PciBarKind::kMem64, 1ull << 33);
  d.config_write(kBar0, 4, 0xffffffff);
  d.config_write(kBar0 + 4, 4, 0xffffffff);
  EXPECT_EQ(d.config_read(kBar0, 4), 0x00000004u);
  EXPECT_EQ(d.config_read(kBar0 + 4, 4), 0xfffffffeu);
}

TEST(PciBarSizingTest, BadDeclarationsThrow) {
  PciDevice d(PciIds{1, 2, 0, 0, 0, 0, 0}, "bad");
  EXPECT_THROW(d.add_bar(6, PciBarKind::kMem32, 4096), std::logic_error);
  EXPECT_THROW(d.add_bar(5, PciBarKind::kMem64, 4096), std::logic_error);
  EXPECT_THROW(d.add_bar(0, PciBarKind::kMem32, 3000), std::logic_error);
  EXPECT_THROW(d.add_bar(0, PciBarKind::kIo, 512), std::logic_error);
  EXPECT_THROW(d.add_bar(0, PciBarKind::kMem32, 8), std::logic_error);
  d.add_bar(0, PciBarKind::kMem64, 4096);
  EXPECT_THROW(d.add_bar(1, PciBarKind::kMem32, 4096), std::logic_error);  // upper half of BAR0
  EXPECT_THROW(d.add_bar(0, PciBarKind::kMem32, 4096), std::logic_error);
}

TEST(PciAllocatorTest, NaturallyAlignedBumpAllocation) {
  PciAddressAllocator a(0xc0000000, 0x100000);
  EXPECT_EQ(a.allocate(0x1000, 0x1000), 0xc0000000u);
  EXPECT_EQ(a.allocate(0x4000, 0x4000), 0xc0004000u);
  EXPECT_EQ(a.allocate(0x1000, 0x1000), 0xc0008000u);
  EXPECT_EQ(a.allocate(0x100000, 0x100000), std::nullopt);  // would end past the window
  EXPECT_EQ(a.allocate(0x1000, 0x1000), 0xc0009000u);        // a failure consumes nothing
  EXPECT_EQ(a.allocate(0x80000, 0x80000), 0xc0080000u);
  EXPECT_EQ(a.allocate(0x10, 0x10), std::nullopt);            // full (nothing is reused)
}

TEST_F(PciBarTest, FirmwarePlacesBarsInTheWindowsAndEnablesDecoding) {
  const uint64_t b0 = dev->bar_address(0), b1 = dev->bar_address(1), b2 = dev->bar_address(2);
  EXPECT_GE(b0, PciLayout::kMmioBase);
  EXPECT_LT(b2 + 0x4000, PciLayout::kEcamBase);
  EXPECT_EQ(b0 % 0x1000, 0u);
  EXPECT_EQ(b2 % 0x4000, 0u);
  EXPECT_GE(b1, PciLayout::kIoBase);
  EXPECT_EQ(b1 % 0x20, 0u);
  EXPECT_EQ(dev->config_read(kCommand, 2), uint32_t(kCommandIo | kCommandMemory));
  EXPECT_EQ(dev->bar_mapping(0), b0);
  EXPECT_EQ(dev->bar_mapping(1), b1);
  EXPECT_EQ(dev->bar_mapping(2), b2);
  EXPECT_EQ(read16(mmio, b0 + 0x10), 0x10b0);
  EXPECT_EQ(read16(pio, b1 + 4), 0x04b1);
  EXPECT_EQ(read16(mmio, b2 + 0x3ffe), 0xfeb2);
  // The next device's BARs do not overlap.
  auto other = std::make_shared<BarDevice>();
  bus->add(other);
  EXPECT_GE(other->bar_address(0), b2 + 0x4000);
  EXPECT_EQ(other->bar_address(1), b1 + 0x20);
}

TEST_F(PciBarTest, ReprogrammingMovesTheDispatch) {
  const uint64_t old0 = dev->bar_address(0);
  const uint64_t new0 = 0xd0000000;
  dev->config_write(kBar0, 4, static_cast<uint32_t>(new0));
  EXPECT_EQ(dev->bar_mapping(0), new0);
  EXPECT_EQ(read16(mmio, new0 + 2), 0x02b0);
  EXPECT_EQ(read16(mmio, old0 + 2), 0xffff);  // nothing there any more
  EXPECT_EQ(dev->last_remap[0], new0);

  // 64-bit BAR moved above 4 GiB, one half at a time.
  dev->config_write(kBar0 + 12, 4, 0x1);
  dev->config_write(kBar0 + 8, 4, 0x40000000);
  EXPECT_EQ(dev->bar_mapping(2), 0x140000000ull);
  EXPECT_EQ(read16(mmio, 0x140000000ull), 0x00b2);

  // I/O BAR.
  dev->config_write(kBar0 + 4, 4, 0xe000);
  EXPECT_EQ(read16(pio, 0xe000), 0x00b1);
  uint8_t b = 1;
  pio.write(0xe01f, &b, 1);
  EXPECT_EQ(dev->writes, 1);
}

TEST_F(PciBarTest, CommandDecodingBitsMapAndUnmap) {
  const uint64_t b0 = dev->bar_address(0), b1 = dev->bar_address(1);
  dev->config_write(kCommand, 2, kCommandIo);  // memory decoding off
  EXPECT_EQ(dev->bar_mapping(0), std::nullopt);
  EXPECT_EQ(dev->bar_mapping(2), std::nullopt);
  EXPECT_EQ(dev->last_remap[0], std::nullopt);
  EXPECT_EQ(read16(mmio, b0), 0xffff);
  EXPECT_EQ(read16(pio, b1), 0x00b1);
  dev->config_write(kCommand, 2, kCommandMemory);  // and the reverse
  EXPECT_EQ(read16(mmio, b0), 0x00b0);
  EXPECT_EQ(read16(pio, b1), 0xffff);
  // Sizing with decoding off (as Linux does) maps nothing, and the BAR
  // comes back where it was.
  dev->config_write(kCommand, 2, 0);
  const int remaps = dev->remaps;
  dev->config_write(kBar0, 4, 0xffffffff);
  EXPECT_EQ(dev->config_read(kBar0, 4), 0xfffff000u);
  dev->config_write(kBar0, 4, static_cast<uint32_t>(b0));
  EXPECT_EQ(dev->remaps, remaps);
  dev->config_write(kCommand, 2, kCommandIo | kCommandMemory);
  EXPECT_EQ(read16(mmio, b0), 0x00b0);
  EXPECT_EQ(read16(pio, b1), 0x00b1);
}

TEST_F(PciBarTest, HostileBarPlacementsAreRefusedNotFatal) {
  const uint64_t b1 = dev->bar_address(1);
  // Onto the config ports: the bus keeps the config ports, the BAR stays unmapped.
  dev->config_write(kBar0 + 4, 4, 0x0ce0);
  EXPECT_EQ(dev->bar_mapping(1), std::nullopt);
  uint32_t v = 0x80000000u;
  pio.write(0xcf8, reinterpret_cast<uint8_t*>(&v), 4);
  pio.read(0xcfc, reinterpret_cast<uint8_t*>(&v), 4);
  EXPECT_EQ(v, 0x29c08086u);
  // Moving it somewhere free maps it again.
  dev->config_write(kBar0 + 4, 4, static_cast<uint32_t>(b1));
  EXPECT_EQ(dev->bar_mapping(1), b1);
  // Onto the ECAM window and onto another BAR.
  dev->config_write(kBar0, 4, static_cast<uint32_t>(PciLayout::kEcamBase));
  EXPECT_EQ(dev->bar_mapping(0), std::nullopt);
  dev->config_write(kBar0, 4, static_cast<uint32_t>(dev->bar_address(2)));
  EXPECT_EQ(dev->bar_mapping(0), std::nullopt);
  // Top of the 64-bit space: base + size would wrap.
  dev->config_write(kBar0 + 8, 4, 0xffffc000);
  dev->config_write(kBar0 + 12, 4, 0xffffffff);
  EXPECT_EQ(dev->bar_mapping(2), std::nullopt);
  // Address zero means unassigned.
  dev->config_write(kBar0 + 8, 4, 0);
  dev->config_write(kBar0 + 12, 4, 0);
  EXPECT_EQ(dev->bar_mapping(2), std::nullopt);
  // Every other BAR still works.
  EXPECT_EQ(read16(pio, b1), 0x00b1);
}

TEST(IoBusDynamicTest, TryAddAndRemove) {
  struct Dev : IoDevice {
    void read(uint64_t, uint8_t* d, uint32_t s) override { std::memset(d, 7, s); }
    void write(uint64_t, const uint8_t*, uint32_t) override {}
  };
  IoBus bus;
  auto a = std::make_shared<Dev>(), b = std::make_shared<Dev>();
  EXPECT_TRUE(bus.try_add(0x1000, 0x100, a, "a"));
  EXPECT_FALSE(bus.try_add(0x10ff, 0x100, b, "b"));
  EXPECT_FALSE(bus.try_add(~0ull - 4, 0x100, b, "b"));
  EXPECT_FALSE(bus.remove(0x1000, b.get()));  // not b's range
  EXPECT_FALSE(bus.remove(0x1001, a.get()));
  EXPECT_TRUE(bus.remove(0x1000, a.get()));
  uint8_t v = 0;
  EXPECT_FALSE(bus.read(0x1000, &v, 1));
  EXPECT_TRUE(bus.try_add(0x10ff, 0x100, b, "b"));
}

// vCPU threads dispatch while another moves a range back and forth: every
// read sees either the device or all-ones, never anything else or a crash
// (ASan catches a use-after-free of a replaced snapshot).
TEST(IoBusDynamicTest, ConcurrentDispatchDuringMoves) {
  struct Dev : IoDevice {
    void read(uint64_t, uint8_t* d, uint32_t s) override { std::memset(d, 0x5a, s); }
    void write(uint64_t, const uint8_t*, uint32_t) override {}
  };
  IoBus bus;
  auto dev = std::make_shared<Dev>();
  bus.add(0x2000, 0x10, dev, "dev");
  std::atomic<bool> stop{false};
  std::atomic<int> bad{0};
  std::vector<std::thread> readers;
  for (int t = 0; t < 3; ++t)
    readers.emplace_back([&] {
      while (!stop) {
        uint8_t v[4];
        bus.read(0x2000, v, 4);
        if (v[0] != 0x5a && v[0] != 0xff) ++bad;
      }
    });
  for (int i = 0; i < 2000; ++i) {
    ASSERT_TRUE(bus.remove(0x2000, dev.get()));
    bus.add(0x2000, 0x10, dev, "dev");
  }
  stop = true;
  for (auto& t : readers) t.join();
  EXPECT_EQ(bad, 0);
}

}  // namespace
}  // namespace vmm
