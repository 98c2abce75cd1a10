// libFuzzer target: a hostile guest driving the PCI bus. The input is a
// sequence of accesses (configuration mechanism #1, ECAM, the BARs wherever
// the guest moved them, the MSI-X table) with device notifications in
// between. The VMM must never crash, and the bus must keep answering.
#include <cstddef>
#include <cstdint>
#include <cstring>

#include "tests/fuzz/fuzz_input.h"

#include "tests/unit/vmm/pci_test_device.h"
#include "vmm/irq/fake_irq_backend.h"
#include "vmm/pci/pci_bus.h"

namespace {

using fuzz::Input;

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace vmm;
  testing::PciTestRig rig;
  IoBus& pio = rig.pio;
  IoBus& mmio = rig.mmio;
  auto& dev = rig.dev;

  Input in{data, size};
  static const uint32_t kSizes[] = {1, 2, 4, 8, 3};
  for (int ops = 0; in.n && ops < 4096; ++ops) {
    const uint8_t op = static_cast<uint8_t>(in.take(1));
    const uint32_t len = kSizes[(op >> 4) % 5];
    const bool write = op & 0x80;
    uint8_t buf[8];
    const uint64_t value = in.take(4);
    std::memcpy(buf, &value, 8);
    switch (op & 7) {
      case 0: {  // CONFIG_ADDRESS then a data-port access
        const uint32_t addr = static_cast<uint32_t>(in.take(4));
        pio.write(0xcf8, reinterpret_cast<const uint8_t*>(&addr), 4);
        const uint64_t port = 0xcf8 + in.take(1) % 8;
        write ? pio.write(port, buf, len) : pio.read(port, buf, len);
        break;
      }
      case 1: {  // ECAM
        const uint64_t off = in.take(4) % PciLayout::kEcamSize;
        write ? mmio.write(PciLayout::kEcamBase + off, buf, len) : mmio.read(PciLayout::kEcamBase + off, buf, len);
        break;
      }
      case 2:  // direct configuration access, including past the end
        if (write) dev->config_write(static_cast<uint32_t>(in.take(2)), len, static_cast<uint32_t>(value));
        else dev->config_read(static_cast<uint32_t>(in.take(2)), len);
        break;
      case 3: {  // a BAR, wherever it is mapped now
        const uint32_t bar = static_cast<uint32_t>(in.take(1) % 6);
        if (auto at = dev->bar_mapping(bar)) {
          IoBus& target = bar == 2 ? pio : mmio;
          const uint64_t off = in.take(2);
          write ? target.write(*at + off, buf, len) : target.read(*at + off, buf, len);
        }
        break;
      }
      case 4:  // the device raises a vector, valid or not
        dev->msix->notify(static_cast<uint16_t>(in.take(1) % 8));
        break;
      default: {  // anywhere in MMIO or I/O space
        const uint64_t addr = in.take(8);
        IoBus& target = (op & 1) ? pio : mmio;
        write ? target.write(addr, buf, len) : target.read(addr, buf, len);
        break;
      }
    }
  }
  // The host bridge still answers at 00:00.0.
  const uint32_t addr = 0x80000000u;
  uint8_t id[4];
  pio.write(0xcf8, reinterpret_cast<const uint8_t*>(&addr), 4);
  pio.read(0xcfc, id, 4);
  if (id[0] != 0x86 || id[1] != 0x80) __builtin_trap();
  return 0;
}
