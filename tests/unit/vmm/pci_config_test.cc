// PCI configuration space: register semantics of PciDevice, and the two
// ways the guest reaches it (mechanism #1 ports and ECAM) through IoBus.
#include <gtest/gtest.h>

#include <cstring>

#include "vmm/io_bus.h"
#include "vmm/pci/pci_bus.h"
#include "vmm/pci/pci_device.h"

namespace vmm {
namespace {

using namespace pci;

constexpr PciIds kTestIds{0x1af4, 0x1041, 0x020000, 0x01, 0x1af4, 0x0001, 0x01};

std::shared_ptr<PciDevice> make_device() {
  auto d = std::make_shared<PciDevice>(kTestIds, "test");
  d->add_bar(0, PciBarKind::kMem32, 0x1000);
  return d;
}

// Reads through the ports: CONFIG_ADDRESS, then the data port at the byte
// offset the register's low bits select.
uint32_t port_read(IoBus& pio, uint32_t bus, uint32_t dev, uint32_t reg, uint32_t size) {
  const uint32_t addr = 0x80000000u | bus << 16 | dev << 11 | (reg & 0xfc);
  pio.write(0xcf8, reinterpret_cast<const uint8_t*>(&addr), 4);
  uint32_t v = 0;
  pio.read(0xcfc + (reg & 3), reinterpret_cast<uint8_t*>(&v), size);
  return v;
}

void port_write(IoBus& pio, uint32_t bus, uint32_t dev, uint32_t reg, uint32_t size, uint32_t value) {
  const uint32_t addr = 0x80000000u | bus << 16 | dev << 11 | (reg & 0xfc);
  pio.write(0xcf8, reinterpret_cast<const uint8_t*>(&addr), 4);
  pio.write(0xcfc + (reg & 3), reinterpret_cast<const uint8_t*>(&value), size);
}

uint32_t ecam_read(IoBus& mmio, uint32_t bus, uint32_t dev, uint32_t fn, uint32_t reg, uint32_t size) {
  uint32_t v = 0;
  mmio.read(PciLayout::kEcamBase + (uint64_t(bus) << 20 | dev << 15 | fn << 12 | reg), reinterpret_cast<uint8_t*>(&v),
            size);
  return v;
}

TEST(PciConfigTest, HeaderFieldsReadBackAtEverySize) {
  auto d = make_device();
  EXPECT_EQ(d->config_read(kVendorId, 4), 0x10411af4u);
  EXPECT_EQ(d->config_read(kVendorId, 2), 0x1af4u);
  EXPECT_EQ(d->config_read(kDeviceId, 2), 0x1041u);
  EXPECT_EQ(d->config_read(kVendorId + 1, 1), 0x1au);
  EXPECT_EQ(d->config_read(kVendorId + 1, 2), 0x411au);  // inside one dword: allowed
  EXPECT_EQ(d->config_read(kRevision, 4), 0x02000001u);  // class 02 00 00, revision 1
  EXPECT_EQ(d->config_read(kHeaderType, 1), 0u);
  EXPECT_EQ(d->config_read(kSubsystemVendorId, 4), 0x00011af4u);
  EXPECT_EQ(d->config_read(kInterruptPin, 1), 1u);
}

TEST(PciConfigTest, ReadOnlyRegistersIgnoreWritesAtEveryOffsetAndSize) {
  auto d = make_device();
  // Every byte outside the writable registers keeps its value whatever the
  // access size and offset of the write.
  std::array<uint32_t, 64> before{};
  for (uint32_t r = 0; r < 64; ++r) before[r] = d->config_read(4 * r, 4);
  auto writable = [](uint32_t off) {
    return (off >= kCommand && off < kCommand + 2) || off == kCacheLineSize || off == kLatencyTimer ||
           (off >= kBar0 && off < kBar0 + 4) || off == kInterruptLine;
  };
  for (uint32_t size : {1u, 2u, 4u})
    for (uint32_t off = 0; off < kConfigSpaceSize; off += size)
      if (!writable(off) && !(size > 1 && writable(off + 1)) && !(size == 4 && (writable(off + 2) || writable(off + 3))))
        d->config_write(off, size, 0xa5a5a5a5u);
  // Dwords holding writable bytes were skipped above; all others are intact.
  for (uint32_t r = 0; r < 64; ++r) {
    if (r == 1 || r == 3 || r == 4 || r == 15) continue;
    EXPECT_EQ(d->config_read(4 * r, 4), before[r]) << "dword " << r;
  }
  EXPECT_EQ(d->config_read(kStatus, 2), 0u);
}

TEST(PciConfigTest, WritableRegistersTakeByteWordAndDwordWrites) {
  auto d = make_device();
  d->config_write(kCacheLineSize, 1, 0x10);
  d->config_write(kLatencyTimer, 1, 0x40);
  EXPECT_EQ(d->config_read(kCacheLineSize, 2), 0x4010u);
  d->config_write(kCacheLineSize, 4, 0xffff2233);  // header type and BIST stay read-only
  EXPECT_EQ(d->config_read(kCacheLineSize, 4), 0x00002233u);
  d->config_write(kInterruptLine, 2, 0xff0b);  // pin is read-only
  EXPECT_EQ(d->config_read(kInterruptLine, 2), 0x010bu);
  // Command: only the defined enables stick.
  d->config_write(kCommand, 2, 0xffff);
  EXPECT_EQ(d->config_read(kCommand, 2), 0x0547u);
  d->config_write(kCommand + 1, 1, 0x00);
  EXPECT_EQ(d->config_read(kCommand, 2), 0x0047u);
}

TEST(PciConfigTest, StatusErrorBitsAreWriteOneToClear) {
  auto d = make_device();
  // Model a device that latched errors (as a device model would).
  d->raw_set16(kStatus, 0xf900 | kStatusCapList);
  d->config_write(kStatus, 2, 0x0800);  // clear signaled target abort only
  EXPECT_EQ(d->config_read(kStatus, 2), 0xf100u | kStatusCapList);
  d->config_write(kStatus, 2, 0x0000);  // writing zeros changes nothing
  EXPECT_EQ(d->config_read(kStatus, 2), 0xf100u | kStatusCapList);
  // A dword write to command also writes status: the 1s clear, the rest stays.
  d->config_write(kCommand, 4, 0x80000002);
  EXPECT_EQ(d->config_read(kStatus, 2), 0x7100u | kStatusCapList);
  EXPECT_EQ(d->config_read(kCommand, 2), 0x0002u);
  d->config_write(kStatus + 1, 1, 0xff);
  EXPECT_EQ(d->config_read(kStatus, 2), kStatusCapList);  // capability bit is read-only
}

TEST(PciConfigTest, CapabilityListIsLinked) {
  auto d = make_device();
  EXPECT_EQ(d->config_read(kStatus, 2) & kStatusCapList, 0u);
  const uint8_t a = d->add_capability(kCapIdVendor, 6);
  const uint8_t b = d->add_capability(kCapIdMsix, 12);
  EXPECT_EQ(a, 0x40);
  EXPECT_EQ(b, 0x48);  // dword-aligned after the first
  EXPECT_NE(d->config_read(kStatus, 2) & kStatusCapList, 0u);
  EXPECT_EQ(d->config_read(kCapabilityList, 1), a);
  EXPECT_EQ(d->config_read(a, 2), uint32_t(b) << 8 | kCapIdVendor);
  EXPECT_EQ(d->config_read(b, 2), uint32_t(kCapIdMsix));  // next = 0 ends the list
  d->config_write(a, 4, 0xffffffff);  // the header is read-only
  EXPECT_EQ(d->config_read(a, 2), uint32_t(b) << 8 | kCapIdVendor);
  EXPECT_THROW(d->add_capability(kCapIdVendor, 200), std::logic_error);
}

TEST(PciConfigTest, InvalidAccessesAreHarmless) {
  auto d = make_device();
  EXPECT_EQ(d->config_read(kVendorId, 3), 0xffffffffu);
  EXPECT_EQ(d->config_read(kVendorId + 3, 2), 0xffffffffu);  // crosses a dword
  EXPECT_EQ(d->config_read(kVendorId + 2, 4), 0xffffffffu);
  EXPECT_EQ(d->config_read(4096, 1), 0xffffffffu);
  EXPECT_EQ(d->config_read(0xffffffffu, 4), 0xffffffffu);
  d->config_write(4094, 4, 0);
  d->config_write(0xfffffffeu, 2, 0);
  d->config_write(kCommand, 8, 0xffffffff);
  EXPECT_EQ(d->config_read(kCommand, 2), 0u);
  // Extended space of a conventional device: zeros, read-only.
  d->config_write(0x100, 4, 0xffffffff);
  EXPECT_EQ(d->config_read(0x100, 4), 0u);
  EXPECT_EQ(d->config_read(0xffc, 4), 0u);
}

TEST(PciConfigTest, ConfigHooksSeeOverlappingWrites) {
  auto d = make_device();
  const uint8_t cap = d->add_capability(kCapIdVendor, 8);
  d->set_wmask16(cap + 2, 0xffff);
  int calls = 0;
  d->add_config_hook(cap + 2, 2, [&] { ++calls; });
  d->config_write(cap + 3, 1, 1);
  d->config_write(cap, 4, 0);
  d->config_write(cap + 4, 4, 0);  // outside
  d->config_write(cap + 1, 1, 0);  // outside
  EXPECT_EQ(calls, 2);
}

class PciBusTest : public ::testing::Test {
 protected:
  void SetUp() override {
    bus = PciBus::create(pio, mmio);
    bus->add(std::make_shared<PciHostBridge>(), 0);
    dev = make_device();
    EXPECT_EQ(bus->add(dev), 1u);
  }
  IoBus pio, mmio;
  std::shared_ptr<PciBus> bus;
  std::shared_ptr<PciDevice> dev;
};

TEST_F(PciBusTest, HostBridgeAtZero) {
  EXPECT_EQ(port_read(pio, 0, 0, kVendorId, 4), 0x29c08086u);
  EXPECT_EQ(port_read(pio, 0, 0, kRevision, 4) >> 8, 0x060000u);
  EXPECT_EQ(ecam_read(mmio, 0, 0, 0, kVendorId, 4), 0x29c08086u);
  EXPECT_EQ(port_read(pio, 0, 1, kVendorId, 4), 0x10411af4u);
}

TEST_F(PciBusTest, Mechanism1DataPortAtEveryByteOffset) {
  for (uint32_t reg = 0; reg < 16; ++reg) {
    const uint32_t dword = port_read(pio, 0, 1, reg & ~3u, 4);
    EXPECT_EQ(port_read(pio, 0, 1, reg, 1), (dword >> 8 * (reg & 3)) & 0xff) << reg;
    if ((reg & 3) <= 2) {
      EXPECT_EQ(port_read(pio, 0, 1, reg, 2), (dword >> 8 * (reg & 3)) & 0xffff) << reg;
    }
  }
  // Unaligned data port access that runs past 0xcff: all-ones.
  EXPECT_EQ(port_read(pio, 0, 1, 2, 4), 0xffffffffu);
  EXPECT_EQ(port_read(pio, 0, 1, 3, 2), 0xffffu);
  // Writes at an offset reach the right byte.
  port_write(pio, 0, 1, kLatencyTimer, 1, 0x20);
  port_write(pio, 0, 1, kCacheLineSize, 1, 0x08);
  EXPECT_EQ(dev->config_read(kCacheLineSize, 2), 0x2008u);
  port_write(pio, 0, 1, kInterruptLine, 2, 0x0a0a);
  EXPECT_EQ(dev->config_read(kInterruptLine, 1), 0x0au);
}

TEST_F(PciBusTest, ConfigAddressDecoding) {
  uint32_t v = 0x12345678 | 0x80000000u;
  pio.write(0xcf8, reinterpret_cast<uint8_t*>(&v), 4);
  uint32_t back = 0;
  pio.read(0xcf8, reinterpret_cast<uint8_t*>(&back), 4);
  EXPECT_EQ(back, 0x80345678u & 0x80fffffcu);  // reserved bits read as zero
  // Only dword accesses reach CONFIG_ADDRESS (Linux's probe writes a byte
  // to 0xcfb and expects the latch unchanged).
  uint8_t b = 0x01;
  pio.write(0xcfb, &b, 1);
  uint16_t w = 0;
  pio.write(0xcf8, reinterpret_cast<uint8_t*>(&w), 2);
  pio.read(0xcf8, reinterpret_cast<uint8_t*>(&back), 4);
  EXPECT_EQ(back, 0x80345678u & 0x80fffffcu);
  pio.read(0xcf8, reinterpret_cast<uint8_t*>(&w), 2);
  EXPECT_EQ(w, 0xffffu);

  // Enable bit clear: the data port reads all-ones and writes are dropped.
  v = 1u << 11 | kCacheLineSize;
  pio.write(0xcf8, reinterpret_cast<uint8_t*>(&v), 4);
  uint32_t d = 0;
  pio.read(0xcfc, reinterpret_cast<uint8_t*>(&d), 4);
  EXPECT_EQ(d, 0xffffffffu);
  d = 0x44;
  pio.write(0xcfc, reinterpret_cast<uint8_t*>(&d), 1);
  EXPECT_EQ(dev->config_read(kCacheLineSize, 1), 0u);
  // Function and register fields: function 1 of slot 1 is absent.
  v = 0x80000000u | 1u << 11 | 1u << 8;
  pio.write(0xcf8, reinterpret_cast<uint8_t*>(&v), 4);
  pio.read(0xcfc, reinterpret_cast<uint8_t*>(&d), 4);
  EXPECT_EQ(d, 0xffffffffu);
}

TEST_F(PciBusTest, AbsentDevicesReadAllOnes) {
  for (uint32_t slot = 2; slot < 32; ++slot) EXPECT_EQ(port_read(pio, 0, slot, kVendorId, 4), 0xffffffffu);
  EXPECT_EQ(port_read(pio, 1, 0, kVendorId, 4), 0xffffffffu);    // bus 1
  EXPECT_EQ(port_read(pio, 255, 1, kVendorId, 2), 0xffffu);
  EXPECT_EQ(ecam_read(mmio, 0, 1, 3, kVendorId, 4), 0xffffffffu);  // function 3
  EXPECT_EQ(ecam_read(mmio, 7, 0, 0, kVendorId, 4), 0xffffffffu);
  EXPECT_EQ(ecam_read(mmio, 0, 5, 0, kVendorId, 1), 0xffu);
  port_write(pio, 0, 5, kCommand, 2, 0xffff);  // nowhere to go; no crash
}

TEST_F(PciBusTest, EcamAccessesEveryRegisterSize) {
  EXPECT_EQ(ecam_read(mmio, 0, 1, 0, kDeviceId, 2), 0x1041u);
  EXPECT_EQ(ecam_read(mmio, 0, 1, 0, kClassProgIf + 2, 1), 0x02u);
  uint8_t v = 0x33;
  mmio.write(PciLayout::kEcamBase + (1u << 15) + kInterruptLine, &v, 1);
  EXPECT_EQ(dev->config_read(kInterruptLine, 1), 0x33u);
  // Misaligned, oversized: all-ones, ignored.
  EXPECT_EQ(ecam_read(mmio, 0, 1, 0, kVendorId + 1, 4), 0xffffffffu);
  uint64_t q = 0;
  mmio.read(PciLayout::kEcamBase + (1u << 15), reinterpret_cast<uint8_t*>(&q), 8);
  EXPECT_EQ(q, ~0ull);
  mmio.write(PciLayout::kEcamBase + (1u << 15) + kInterruptLine - 1, reinterpret_cast<uint8_t*>(&q), 4);
  EXPECT_EQ(dev->config_read(kInterruptLine, 1), 0x33u);
}

TEST_F(PciBusTest, SlotsAreCheckedAndAllocated) {
  EXPECT_THROW(bus->add(make_device(), 1), std::logic_error);
  EXPECT_THROW(bus->add(make_device(), 32), std::logic_error);
  EXPECT_EQ(bus->add(make_device()), 2u);
  EXPECT_EQ(bus->add(make_device(), 31), 31u);
  EXPECT_EQ(bus->device(31)->config_read(kVendorId, 2), 0x1af4u);
  EXPECT_EQ(bus->device(40), nullptr);
}

}  // namespace
}  // namespace vmm
