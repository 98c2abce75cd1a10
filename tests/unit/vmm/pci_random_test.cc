// A hostile guest, deterministically: seeded random accesses of every size
// at every offset through both configuration mechanisms, the BARs and the
// MSI-X table, with notifications in between. Under ASan/UBSan this is the
// "never crash the VMM" check; the invariants say the device stayed sane.
#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "vmm/irq/fake_irq_backend.h"
#include "vmm/pci/msix.h"
#include "vmm/pci/pci_bus.h"
#include "tests/unit/vmm/pci_test_device.h"

namespace vmm {
namespace {

using namespace pci;

TEST(PciRandomTest, RandomGuestAccessesNeverBreakTheBus) {
  testing::PciTestRig rig;
  IoBus& pio = rig.pio;
  IoBus& mmio = rig.mmio;
  auto& dev = rig.dev;

  std::mt19937_64 rng(12345);
  const uint32_t sizes[] = {1, 2, 3, 4, 8};
  auto pick_size = [&] { return sizes[rng() % 5]; };
  uint8_t buf[8];
  int bar_hits = 0, sent = 0;
  for (int i = 0; i < 200000; ++i) {
    const uint64_t r = rng();
    std::memcpy(buf, &r, 8);
    const uint32_t size = pick_size();
    const bool write = rng() & 1;
    switch (rng() % 6) {
      case 0: {  // mechanism #1: sometimes a sane address, sometimes anything
        const uint32_t addr = (rng() & 1) ? 0x80000000u | 2u << 11 | (rng() & 0xfc) : static_cast<uint32_t>(rng());
        pio.write(0xcf8, reinterpret_cast<const uint8_t*>(&addr), 4);
        const uint64_t port = 0xcf8 + rng() % 8;
        if (write) pio.write(port, buf, size);
        else pio.read(port, buf, size);
        break;
      }
      case 1: {  // ECAM, mostly our device
        const uint64_t off = (rng() & 1) ? (2u << 15 | (rng() & 0xfff)) : rng() % PciLayout::kEcamSize;
        if (write) mmio.write(PciLayout::kEcamBase + off, buf, size);
        else mmio.read(PciLayout::kEcamBase + off, buf, size);
        break;
      }
      case 2:  // direct config access, any offset
        if (write) dev->config_write(static_cast<uint32_t>(rng() % 0x1100), size, static_cast<uint32_t>(r));
        else dev->config_read(static_cast<uint32_t>(rng() % 0x1100), size);
        break;
      case 3: {  // wherever the BARs are now (the guest may have moved them)
        const uint32_t b = (rng() % 3 == 0) ? 2 : (rng() & 1) ? 0 : 3;
        if (auto at = dev->bar_mapping(b)) {
          ++bar_hits;
          IoBus& target = b == 2 ? pio : mmio;
          const uint64_t addr = *at + rng() % (dev->bar_info(b).size + 8);
          if (write) target.write(addr, buf, size);
          else target.read(addr, buf, size);
        }
        break;
      }
      case 4:  // the MSI-X table and PBA, aimed
        if (write) dev->msix->bar_write(0, 0x1000 + rng() % 0x2100, buf, size);
        else dev->msix->bar_read(0, 0x1000 + rng() % 0x2100, buf, size);
        break;
      case 5:
        sent += dev->msix->notify(static_cast<uint16_t>(rng() % 8));
        break;
    }
    if (i % 1000 == 0) {
      // What no guest write can change.
      ASSERT_EQ(dev->config_read(kVendorId, 4), 0x10421af4u);
      ASSERT_EQ(dev->config_read(kHeaderType, 1), 0u);
      ASSERT_EQ(dev->config_read(dev->msix->capability_offset(), 1), kCapIdMsix);
      ASSERT_EQ(rig.bus->config_read(0, 0, kVendorId, 4), 0x29c08086u);
      ASSERT_LE(rig.kvm.routing.size(), 40u + 5u);
    }
  }
  // The walk really reached the BARs and delivered interrupts (fixed seed).
  EXPECT_GT(bar_hits, 1000);
  EXPECT_GT(sent, 100);
}

}  // namespace
}  // namespace vmm
