#include "vmm/pci/pci_device.h"

#include <bit>
#include <cstdio>
#include <cstring>
#include <stdexcept>

namespace vmm {

using namespace pci;

// The IoDevice a mapped BAR puts on a bus. It holds the device weakly: the
// bus may keep a window alive in a snapshot after the device is gone.
class PciDevice::BarWindow final : public IoDevice {
 public:
  BarWindow(std::weak_ptr<PciDevice> dev, uint32_t bar) : dev_(std::move(dev)), bar_(bar) {}
  void read(uint64_t offset, uint8_t* data, uint32_t size) override {
    if (auto d = dev_.lock()) d->bar_read(bar_, offset, data, size);
    else std::memset(data, 0xff, size);
  }
  void write(uint64_t offset, const uint8_t* data, uint32_t size) override {
    if (auto d = dev_.lock()) d->bar_write(bar_, offset, data, size);
  }

 private:
  std::weak_ptr<PciDevice> dev_;
  uint32_t bar_;
};

PciDevice::PciDevice(const PciIds& ids, std::string name) : name_(std::move(name)) {
  raw_set16(kVendorId, ids.vendor);
  raw_set16(kDeviceId, ids.device);
  raw_set8(kRevision, ids.revision);
  raw_set8(kClassProgIf, static_cast<uint8_t>(ids.class_code));
  raw_set16(kClassProgIf + 1, static_cast<uint16_t>(ids.class_code >> 8));
  raw_set8(kHeaderType, kHeaderTypeNormal);
  raw_set16(kSubsystemVendorId, ids.subsystem_vendor);
  raw_set16(kSubsystemId, ids.subsystem_id);
  raw_set8(kInterruptPin, ids.interrupt_pin);

  // Command: the enables a driver may flip. I/O and memory decoding only
  // take effect for BAR kinds the device has, but the bits are writable on
  // every function, as on most hardware.
  set_wmask16(kCommand, kCommandIo | kCommandMemory | kCommandMaster | kCommandParity | kCommandSerr |
                            kCommandIntxDisable);
  w1cmask_[kStatus] = kStatusRw1c & 0xff;
  w1cmask_[kStatus + 1] = kStatusRw1c >> 8;
  wmask_[kCacheLineSize] = 0xff;
  wmask_[kLatencyTimer] = 0xff;
  wmask_[kInterruptLine] = 0xff;
  // BARs, the ROM BAR, capability pointer: read-only zero until declared.
}

// The raw accessors are for setup and hooks, never for guest-supplied
// offsets; at() still turns a VMM bug into an exception, not a stray write.
void PciDevice::raw_set16(uint32_t off, uint16_t v) {
  config_.at(off + 1);
  std::memcpy(&config_[off], &v, 2);
}
void PciDevice::raw_set32(uint32_t off, uint32_t v) {
  config_.at(off + 3);
  std::memcpy(&config_[off], &v, 4);
}
uint16_t PciDevice::raw16(uint32_t off) const {
  config_.at(off + 1);
  uint16_t v;
  std::memcpy(&v, &config_[off], 2);
  return v;
}
uint32_t PciDevice::raw32(uint32_t off) const {
  config_.at(off + 3);
  uint32_t v;
  std::memcpy(&v, &config_[off], 4);
  return v;
}
void PciDevice::set_wmask16(uint32_t off, uint16_t mask) {
  wmask_.at(off + 1);
  std::memcpy(&wmask_[off], &mask, 2);
}
void PciDevice::set_wmask32(uint32_t off, uint32_t mask) {
  wmask_.at(off + 3);
  std::memcpy(&wmask_[off], &mask, 4);
}

void PciDevice::add_bar(uint32_t index, PciBarKind kind, uint64_t size, bool prefetchable) {
  const bool is64 = kind == PciBarKind::kMem64;
  if (index >= kNumBars || (is64 && index + 1 >= kNumBars)) throw std::logic_error(name_ + ": bad BAR index");
  if (bars_[index].info.present || (is64 && bars_[index + 1].info.present))
    throw std::logic_error(name_ + ": BAR " + std::to_string(index) + " declared twice");
  if (index > 0 && bars_[index - 1].info.present && bars_[index - 1].info.kind == PciBarKind::kMem64)
    throw std::logic_error(name_ + ": BAR " + std::to_string(index) + " is the upper half of a 64-bit BAR");
  if (!std::has_single_bit(size)) throw std::logic_error(name_ + ": BAR size must be a power of two");
  if (kind == PciBarKind::kIo && (size < 4 || size > 256)) throw std::logic_error(name_ + ": I/O BAR size 4-256");
  if (kind != PciBarKind::kIo && size < 16) throw std::logic_error(name_ + ": memory BAR size below 16");
  if (kind == PciBarKind::kMem32 && size > (1ull << 31)) throw std::logic_error(name_ + ": 32-bit BAR too big");
  if (kind == PciBarKind::kIo && prefetchable) throw std::logic_error(name_ + ": I/O BARs are not prefetchable");

  bars_[index].info = BarInfo{true, kind, size, prefetchable};
  const uint32_t reg = kBar0 + 4 * index;
  // The low bits say what the BAR is and never change; the writable bits
  // are the address bits at and above the size. I/O BARs decode 16 bits
  // (x86 port space), so their upper half is hardwired to zero.
  switch (kind) {
    case PciBarKind::kIo:
      raw_set32(reg, kBarIo);
      set_wmask32(reg, static_cast<uint32_t>(~(size - 1)) & 0xfffc);
      break;
    case PciBarKind::kMem32:
      raw_set32(reg, prefetchable ? kBarPrefetch : 0);
      set_wmask32(reg, static_cast<uint32_t>(~(size - 1)) & ~0xfu);
      break;
    case PciBarKind::kMem64:
      raw_set32(reg, kBarMem64 | (prefetchable ? kBarPrefetch : 0));
      set_wmask32(reg, static_cast<uint32_t>(~(size - 1)) & ~0xfu);
      set_wmask32(reg + 4, static_cast<uint32_t>(~(size - 1) >> 32));
      break;
  }
}

uint8_t PciDevice::add_capability(uint8_t id, uint8_t length) {
  const uint32_t off = (next_cap_ + 3) & ~3u;
  if (length < 2 || off + length > kConfigSpaceSize) throw std::logic_error(name_ + ": no room for a capability");
  raw_set8(off, id);
  raw_set8(off + 1, 0);
  if (last_cap_) raw_set8(last_cap_ + 1, static_cast<uint8_t>(off));
  else raw_set8(kCapabilityList, static_cast<uint8_t>(off));
  raw_set16(kStatus, raw16(kStatus) | kStatusCapList);
  last_cap_ = off;
  next_cap_ = off + length;
  return static_cast<uint8_t>(off);
}

void PciDevice::add_config_hook(uint32_t offset, uint32_t length, std::function<void()> hook) {
  hooks_.push_back(Hook{offset, length, std::move(hook)});
}

namespace {
bool valid_config_access(uint32_t offset, uint32_t size) {
  return (size == 1 || size == 2 || size == 4) && offset < kExtConfigSpaceSize && (offset & 3) + size <= 4;
}
}  // namespace

uint32_t PciDevice::config_read(uint32_t offset, uint32_t size) {
  if (!valid_config_access(offset, size)) return 0xffffffffu;
  std::lock_guard lock(config_mu_);
  uint32_t v = 0;
  std::memcpy(&v, &config_[offset], size);
  return v;
}

void PciDevice::config_write(uint32_t offset, uint32_t size, uint32_t value) {
  if (!valid_config_access(offset, size)) return;
  std::lock_guard lock(config_mu_);
  for (uint32_t i = 0; i < size; ++i) {
    const uint8_t in = static_cast<uint8_t>(value >> (8 * i));
    uint8_t& b = config_[offset + i];
    b = static_cast<uint8_t>((b & ~wmask_[offset + i]) | (in & wmask_[offset + i]));
    b = static_cast<uint8_t>(b & ~(in & w1cmask_[offset + i]));
  }
  const uint32_t end = offset + size;
  // Command (decoding enables) or BAR registers: the mappings may change.
  auto overlaps = [&](uint32_t start, uint32_t len) { return offset < start + len && start < end; };
  if (overlaps(kCommand, 2) || overlaps(kBar0, 4 * kNumBars)) update_mappings_locked();
  for (const Hook& h : hooks_)
    if (overlaps(h.offset, h.length)) h.fn();
}

uint64_t PciDevice::bar_address_locked(uint32_t index) const {
  const BarInfo& b = bars_[index].info;
  const uint32_t lo = raw32(kBar0 + 4 * index);
  switch (b.kind) {
    case PciBarKind::kIo:
      return lo & ~3u;
    case PciBarKind::kMem32:
      return lo & ~0xfu;
    case PciBarKind::kMem64:
      return (lo & ~0xfull) | (uint64_t(raw32(kBar0 + 4 * index + 4)) << 32);
  }
  return 0;
}

uint64_t PciDevice::bar_address(uint32_t index) {
  std::lock_guard lock(config_mu_);
  return index < kNumBars && bars_[index].info.present ? bar_address_locked(index) : 0;
}

std::optional<uint64_t> PciDevice::bar_mapping(uint32_t index) {
  std::lock_guard lock(config_mu_);
  return index < kNumBars ? bars_[index].mapped : std::nullopt;
}

void PciDevice::attach(IoBus* pio, IoBus* mmio) {
  std::lock_guard lock(config_mu_);
  pio_ = pio;
  mmio_ = mmio;
  update_mappings_locked();
}

void PciDevice::assign_bar(uint32_t index, uint64_t address) {
  std::lock_guard lock(config_mu_);
  if (index >= kNumBars || !bars_[index].info.present) throw std::logic_error(name_ + ": no such BAR");
  const uint32_t reg = kBar0 + 4 * index;
  const uint32_t mask = raw32(reg) & (bars_[index].info.kind == PciBarKind::kIo ? 3u : 0xfu);
  raw_set32(reg, static_cast<uint32_t>(address) | mask);
  if (bars_[index].info.kind == PciBarKind::kMem64) raw_set32(reg + 4, static_cast<uint32_t>(address >> 32));
  update_mappings_locked();
}

// Brings the bus mappings in line with the BAR registers and the command
// register's decoding enables. Called after every write that could change
// either; most calls find nothing to do.
void PciDevice::update_mappings_locked() {
  if (!pio_ || !mmio_) return;  // not on a bus yet
  const uint16_t command = raw16(kCommand);
  for (uint32_t i = 0; i < kNumBars; ++i) {
    Bar& bar = bars_[i];
    if (!bar.info.present) continue;
    const bool io = bar.info.kind == PciBarKind::kIo;
    const uint64_t addr = bar_address_locked(i);
    std::optional<uint64_t> want;
    // Address 0 is how firmware leaves a BAR unassigned; I/O BARs must fit
    // the 64 KiB port space.
    const bool decoding = command & (io ? kCommandIo : kCommandMemory);
    if (decoding && addr != 0 && (!io || addr + bar.info.size <= 0x10000)) want = addr;
    if (want == bar.mapped) continue;

    IoBus* bus = io ? pio_ : mmio_;
    const std::optional<uint64_t> before = bar.mapped;
    if (bar.mapped) {
      bus->remove(*bar.mapped, bar.window.get());
      bar.mapped.reset();
    }
    if (want) {
      if (!bar.window) bar.window = std::make_shared<BarWindow>(weak_from_this(), i);
      // The guest may point a BAR at another device's range; real hardware
      // would decode both and answer garbage. Here the BAR stays unmapped
      // until the guest moves it somewhere free.
      if (bus->try_add(*want, bar.info.size, bar.window, name_ + " BAR" + std::to_string(i))) {
        bar.mapped = want;
      } else if (!bar.refusal_logged) {
        // Once per BAR: a guest could otherwise flood the log.
        bar.refusal_logged = true;
        std::fprintf(stderr, "vmm: %s: BAR%u at 0x%llx overlaps another device; left unmapped\n", name_.c_str(), i,
                     static_cast<unsigned long long>(*want));
      }
    }
    if (bar.mapped != before) bar_remapped(i, bar.mapped);
  }
}

void PciDevice::bar_read(uint32_t, uint64_t, uint8_t* data, uint32_t size) { std::memset(data, 0xff, size); }
void PciDevice::bar_write(uint32_t, uint64_t, const uint8_t*, uint32_t) {}

PciDevice::ConfigImage PciDevice::config_image() {
  std::lock_guard lock(config_mu_);
  return config_;
}

void PciDevice::restore_config_image(const ConfigImage& image) {
  for (uint32_t off = 0; off < pci::kExtConfigSpaceSize; off += 4) {
    uint32_t wmask = 0, w1c = 0, v = 0;
    for (uint32_t i = 0; i < 4; ++i) {
      wmask |= uint32_t(wmask_[off + i]) << (8 * i);
      w1c |= uint32_t(w1cmask_[off + i]) << (8 * i);
      v |= uint32_t(image[off + i]) << (8 * i);
    }
    if (wmask & ~w1c) config_write(off, 4, v & ~w1c);
  }
}

}  // namespace vmm
