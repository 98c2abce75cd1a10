// A PCI device with every kind of BAR and an MSI-X table, for the tests
// and fuzz targets that play a hostile guest against vmm/pci.
#pragma once

#include <cstring>
#include <memory>

#include "vmm/irq/fake_irq_backend.h"
#include "vmm/pci/msix.h"
#include "vmm/pci/pci_bus.h"

namespace vmm::testing {

class MsixTestDevice : public PciDevice {
 public:
  explicit MsixTestDevice(GsiRouter& router) : PciDevice(PciIds{0x1af4, 0x1042, 0x018000, 1, 0x1af4, 2, 0}, "fuzz") {
    add_bar(0, PciBarKind::kMem64, 0x4000);
    add_bar(2, PciBarKind::kIo, 0x40);
    add_bar(3, PciBarKind::kMem32, 0x1000);
    msix = std::make_unique<MsiX>(*this, router, 5, 0, 0x1000, 0x3000);
  }
  std::unique_ptr<MsiX> msix;

 protected:
  void bar_read(uint32_t bar, uint64_t offset, uint8_t* data, uint32_t size) override {
    if (!msix->bar_read(bar, offset, data, size)) std::memset(data, 0, size);
  }
  void bar_write(uint32_t bar, uint64_t offset, const uint8_t* data, uint32_t size) override {
    msix->bar_write(bar, offset, data, size);
  }
};

// A bus with the host bridge at 00:00.0 and an MsixTestDevice at 00:02.0,
// over a fake KVM: what a hostile guest sees.
struct PciTestRig {
  FakeIrqBackend kvm;
  GsiRouter router{kvm, IrqCapabilities::all()};
  IoBus pio, mmio;
  std::shared_ptr<PciBus> bus = PciBus::create(pio, mmio);
  std::shared_ptr<MsixTestDevice> dev = std::make_shared<MsixTestDevice>(router);
  PciTestRig() {
    bus->add(std::make_shared<PciHostBridge>(), 0);
    bus->add(dev, 2);
  }
};

}  // namespace vmm::testing
