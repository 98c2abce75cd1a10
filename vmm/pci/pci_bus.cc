#include "vmm/pci/pci_bus.h"

#include <algorithm>
#include <cstring>
#include <stdexcept>
#include <string>

namespace vmm {

using namespace pci;

namespace {

// The IoDevices that put the two configuration mechanisms on the buses.
// They own the PciBus, so it lives as long as a bus can reach it.
class ConfigPorts final : public IoDevice {
 public:
  explicit ConfigPorts(std::shared_ptr<PciBus> bus) : bus_(std::move(bus)) {}
  void read(uint64_t offset, uint8_t* data, uint32_t size) override { bus_->io_read(offset, data, size); }
  void write(uint64_t offset, const uint8_t* data, uint32_t size) override { bus_->io_write(offset, data, size); }

 private:
  std::shared_ptr<PciBus> bus_;
};

class EcamWindow final : public IoDevice {
 public:
  explicit EcamWindow(std::shared_ptr<PciBus> bus) : bus_(std::move(bus)) {}
  void read(uint64_t offset, uint8_t* data, uint32_t size) override { bus_->ecam_read(offset, data, size); }
  void write(uint64_t offset, const uint8_t* data, uint32_t size) override { bus_->ecam_write(offset, data, size); }

 private:
  std::shared_ptr<PciBus> bus_;
};

// CONFIG_ADDRESS: enable (31), bus (23:16), device (15:11), function
// (10:8), dword register (7:2). Reserved bits 30:24 and 1:0 read as zero.
constexpr uint32_t kConfigAddressEnable = 1u << 31;
constexpr uint32_t kConfigAddressMask = 0x80fffffc;

uint32_t load(const uint8_t* data, uint32_t size) {
  uint32_t v = 0;
  std::memcpy(&v, data, std::min<uint32_t>(size, 4));
  return v;
}

void store(uint8_t* data, uint32_t size, uint32_t v) {
  std::memset(data, 0xff, size);
  std::memcpy(data, &v, std::min<uint32_t>(size, 4));
}

bool valid_size(uint32_t size) { return size == 1 || size == 2 || size == 4; }

}  // namespace

std::optional<uint64_t> PciAddressAllocator::allocate(uint64_t size, uint64_t align) {
  const uint64_t start = (next_ + align - 1) & ~(align - 1);
  if (start < next_ || start > end_ || size > end_ - start) return std::nullopt;
  next_ = start + size;
  return start;
}

PciBus::PciBus(IoBus& pio, IoBus& mmio) : pio_(pio), mmio_(mmio) {}

std::shared_ptr<PciBus> PciBus::create(IoBus& pio, IoBus& mmio, bool ecam) {
  std::shared_ptr<PciBus> bus(new PciBus(pio, mmio));
  pio.add(PciLayout::kConfigAddressPort, 8, std::make_shared<ConfigPorts>(bus), "PCI config (mechanism #1)");
  if (ecam) mmio.add(PciLayout::kEcamBase, PciLayout::kEcamSize, std::make_shared<EcamWindow>(bus), "PCI ECAM");
  return bus;
}

uint32_t PciBus::add(std::shared_ptr<PciDevice> device, std::optional<uint32_t> slot) {
  std::lock_guard lock(mu_);
  if (!slot) {
    auto free = std::find(slots_.begin(), slots_.end(), nullptr);
    if (free == slots_.end()) throw std::logic_error("PCI bus 0 is full");
    slot = static_cast<uint32_t>(free - slots_.begin());
  }
  if (*slot >= kSlots || slots_[*slot]) throw std::logic_error("PCI slot " + std::to_string(*slot) + " unavailable");

  device->attach(&pio_, &mmio_);
  uint16_t decode = 0;
  for (uint32_t i = 0; i < kNumBars; ++i) {
    const PciDevice::BarInfo& b = device->bar_info(i);
    if (!b.present) continue;
    std::optional<uint64_t> addr;
    if (b.kind == PciBarKind::kIo) {
      addr = io_alloc_.allocate(b.size, b.size);
      decode |= kCommandIo;
    } else {
      // At least page-aligned, so that no two BARs share a page: the guest
      // can map them separately and KVM could map them directly later.
      addr = mmio_alloc_.allocate(b.size, std::max<uint64_t>(b.size, 4096));
      decode |= kCommandMemory;
    }
    if (!addr) throw std::runtime_error(device->name() + ": no room for BAR" + std::to_string(i) + " in the PCI window");
    device->assign_bar(i, *addr);
  }
  // Firmware turns decoding on for what it placed; this maps the BARs.
  if (decode) device->config_write(kCommand, 2, device->config_read(kCommand, 2) | decode);
  slots_[*slot] = std::move(device);
  return *slot;
}

std::shared_ptr<PciDevice> PciBus::device(uint32_t slot) const {
  std::lock_guard lock(mu_);
  return slot < kSlots ? slots_[slot] : nullptr;
}

std::shared_ptr<PciDevice> PciBus::find(uint32_t bus, uint32_t devfn) const {
  // Bus 0 only, single-function devices only: everything else is absent.
  if (bus != 0 || (devfn & 7) != 0 || devfn >= 256) return nullptr;
  std::lock_guard lock(mu_);
  return slots_[devfn >> 3];
}

uint32_t PciBus::config_read(uint32_t bus, uint32_t devfn, uint32_t offset, uint32_t size) const {
  // The device is held by reference during the access and called without
  // the bus lock: its own lock orders accesses to its registers.
  if (auto dev = find(bus, devfn)) return dev->config_read(offset, size);
  return 0xffffffffu;
}

void PciBus::config_write(uint32_t bus, uint32_t devfn, uint32_t offset, uint32_t size, uint32_t value) {
  if (auto dev = find(bus, devfn)) dev->config_write(offset, size, value);
}

void PciBus::io_read(uint64_t offset, uint8_t* data, uint32_t size) {
  if (offset < 4) {
    // CONFIG_ADDRESS answers only 32-bit accesses; byte accesses to
    // 0xcf8-0xcfb belong to other chipset registers (0xcf9 is the reset
    // control on PIIX), which we do not have.
    uint32_t v = 0xffffffffu;
    if (offset == 0 && size == 4) {
      std::lock_guard lock(mu_);
      v = config_address_;
    }
    store(data, size, v);
    return;
  }
  const uint32_t byte = static_cast<uint32_t>(offset - 4);
  uint32_t address;
  {
    std::lock_guard lock(mu_);
    address = config_address_;
  }
  uint32_t v = 0xffffffffu;
  if (valid_size(size) && byte + size <= 4 && (address & kConfigAddressEnable))
    v = config_read((address >> 16) & 0xff, (address >> 8) & 0xff, (address & 0xfc) + byte, size);
  store(data, size, v);
}

void PciBus::io_write(uint64_t offset, const uint8_t* data, uint32_t size) {
  if (offset < 4) {
    if (offset == 0 && size == 4) {
      std::lock_guard lock(mu_);
      config_address_ = load(data, 4) & kConfigAddressMask;
    }
    return;  // e.g. Linux's probe writes a byte to 0xcfb: ignored
  }
  const uint32_t byte = static_cast<uint32_t>(offset - 4);
  uint32_t address;
  {
    std::lock_guard lock(mu_);
    address = config_address_;
  }
  if (valid_size(size) && byte + size <= 4 && (address & kConfigAddressEnable))
    config_write((address >> 16) & 0xff, (address >> 8) & 0xff, (address & 0xfc) + byte, size, load(data, size));
}

// ECAM offset: bus (27:20), device (19:15), function (14:12), register (11:0).
void PciBus::ecam_read(uint64_t offset, uint8_t* data, uint32_t size) {
  const uint32_t reg = offset & 0xfff;
  uint32_t v = 0xffffffffu;
  if (valid_size(size) && (reg & 3) + size <= 4 && offset < PciLayout::kEcamSize)
    v = config_read(static_cast<uint32_t>(offset >> 20), (offset >> 12) & 0xff, reg, size);
  store(data, size, v);
}

void PciBus::ecam_write(uint64_t offset, const uint8_t* data, uint32_t size) {
  const uint32_t reg = offset & 0xfff;
  if (valid_size(size) && (reg & 3) + size <= 4 && offset < PciLayout::kEcamSize)
    config_write(static_cast<uint32_t>(offset >> 20), (offset >> 12) & 0xff, reg, size, load(data, size));
}

}  // namespace vmm
