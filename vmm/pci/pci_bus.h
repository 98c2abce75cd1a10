// PCI bus 0 and its two configuration mechanisms: #1 (CONFIG_ADDRESS at
// 0xcf8, CONFIG_DATA at 0xcfc-0xcff) and PCI Express ECAM (memory-mapped,
// 4 KiB per function). Also the firmware's job of placing BARs: the VMM
// assigns each BAR an address and turns decoding on, as SeaBIOS would; the
// guest may move them later and the mappings follow (see PciDevice).
//
// The guest physical layout (tell the guest kernel; the memory map must
// reserve the ECAM window):
//   0xc0000000-0xdfffffff  32-bit BAR window (RAM ends at 0xc0000000)
//   0xe0000000-0xefffffff  ECAM, buses 0-255 (only bus 0 is populated)
//   0xfec00000, 0xfee00000  IOAPIC and LAPIC: never given to BARs
//   ports 0xc000-0xffff     I/O BAR window
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>

#include "vmm/io_bus.h"
#include "vmm/pci/pci_device.h"

namespace vmm {

struct PciLayout {
  static constexpr uint64_t kMmioBase = 0xc0000000;
  static constexpr uint64_t kMmioSize = 0x20000000;
  static constexpr uint64_t kEcamBase = 0xe0000000;
  static constexpr uint64_t kEcamSize = 0x10000000;  // 256 buses x 1 MiB
  static constexpr uint64_t kIoBase = 0xc000;
  static constexpr uint64_t kIoSize = 0x4000;
  static constexpr uint16_t kConfigAddressPort = 0xcf8;
  static constexpr uint16_t kConfigDataPort = 0xcfc;
};

// A bump allocator of naturally aligned ranges in one window: BARs are
// placed once at startup, so nothing is ever freed.
class PciAddressAllocator {
 public:
  PciAddressAllocator(uint64_t base, uint64_t size) : next_(base), end_(base + size) {}
  // `align` is a power of two. Nothing when the window is full.
  std::optional<uint64_t> allocate(uint64_t size, uint64_t align);

 private:
  uint64_t next_, end_;
};

class PciBus : public std::enable_shared_from_this<PciBus> {
 public:
  static constexpr uint32_t kSlots = 32;

  // Makes the bus and registers its configuration mechanisms on `pio`
  // (0xcf8-0xcff) and, if `ecam`, on `mmio`. The buses must outlive every
  // vCPU access; the PciBus stays alive as long as they reference it.
  static std::shared_ptr<PciBus> create(IoBus& pio, IoBus& mmio, bool ecam = true);

  // Puts `device` at 00:slot.0 (or the lowest free slot), places its BARs
  // and enables decoding. Returns the slot. Throws std::logic_error if the
  // slot is taken or out of range, std::runtime_error if a BAR window is full.
  uint32_t add(std::shared_ptr<PciDevice> device, std::optional<uint32_t> slot = std::nullopt);
  std::shared_ptr<PciDevice> device(uint32_t slot) const;

  // A configuration access to bus 0; absent functions read all-ones.
  // `devfn` is device << 3 | function.
  uint32_t config_read(uint32_t bus, uint32_t devfn, uint32_t offset, uint32_t size) const;
  void config_write(uint32_t bus, uint32_t devfn, uint32_t offset, uint32_t size, uint32_t value);

  // Mechanism #1, as the I/O ports see it (offset from 0xcf8).
  void io_read(uint64_t offset, uint8_t* data, uint32_t size);
  void io_write(uint64_t offset, const uint8_t* data, uint32_t size);
  // ECAM, as the MMIO window sees it (offset from its base).
  void ecam_read(uint64_t offset, uint8_t* data, uint32_t size);
  void ecam_write(uint64_t offset, const uint8_t* data, uint32_t size);

 private:
  PciBus(IoBus& pio, IoBus& mmio);
  std::shared_ptr<PciDevice> find(uint32_t bus, uint32_t devfn) const;

  IoBus& pio_;
  IoBus& mmio_;
  mutable std::mutex mu_;  // guards the slots, the address latch, the allocators
  std::array<std::shared_ptr<PciDevice>, kSlots> slots_{};
  uint32_t config_address_ = 0;
  PciAddressAllocator mmio_alloc_{PciLayout::kMmioBase, PciLayout::kMmioSize};
  PciAddressAllocator io_alloc_{PciLayout::kIoBase, PciLayout::kIoSize};
};

}  // namespace vmm
