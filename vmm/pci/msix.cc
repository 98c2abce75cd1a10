#include "vmm/pci/msix.h"

#include <cstdio>
#include <cstring>
#include <stdexcept>

namespace vmm {

using namespace pci;

namespace {
// Entry fields, by byte offset inside a 16-byte table entry.
constexpr uint32_t kAddrLo = 0, kAddrHi = 4, kData = 8, kControl = 12;
}  // namespace

MsiX::MsiX(PciDevice& dev, GsiRouter& router, uint16_t vectors, uint32_t bar, uint32_t table_offset,
           uint32_t pba_offset)
    : dev_(dev),
      router_(router),
      use_irqfd_(router.capabilities().irqfd),
      bar_(bar),
      table_offset_(table_offset),
      pba_offset_(pba_offset) {
  if (vectors == 0 || vectors > kMsixMaxVectors) throw std::logic_error(dev.name() + ": MSI-X needs 1-2048 vectors");
  if (bar >= kNumBars || !dev.bar_info(bar).present || dev.bar_info(bar).kind == PciBarKind::kIo)
    throw std::logic_error(dev.name() + ": MSI-X must live in a memory BAR");
  const uint64_t bar_size = dev.bar_info(bar).size;
  const uint64_t t_end = uint64_t(table_offset) + table_size(vectors);
  const uint64_t p_end = uint64_t(pba_offset) + pba_size(vectors);
  if ((table_offset | pba_offset) & 7) throw std::logic_error(dev.name() + ": MSI-X table/PBA not 8-byte aligned");
  if (t_end > bar_size || p_end > bar_size) throw std::logic_error(dev.name() + ": MSI-X table/PBA outside the BAR");
  if (table_offset < p_end && pba_offset < t_end) throw std::logic_error(dev.name() + ": MSI-X table and PBA overlap");

  entries_.resize(vectors);
  cap_ = dev.add_capability(kCapIdMsix, kMsixCapSize);
  dev.raw_set16(cap_ + kMsixControl, static_cast<uint16_t>(vectors - 1));
  dev.raw_set32(cap_ + kMsixTable, table_offset | bar);
  dev.raw_set32(cap_ + kMsixPba, pba_offset | bar);
  dev.set_wmask16(cap_ + kMsixControl, kMsixControlEnable | kMsixControlMaskAll);
  dev.add_config_hook(cap_ + kMsixControl, 2, [this] { control_written(); });
}

MsiX::~MsiX() {
  std::lock_guard lock(mu_);
  for (Entry& e : entries_) {
    if (!e.irqfd) continue;
    const uint32_t gsi = e.irqfd->gsi();
    e.irqfd.reset();  // unbind before the GSI can be reused
    router_.release_msi(gsi);
  }
}

bool MsiX::enabled() const {
  std::lock_guard lock(mu_);
  return enabled_;
}

bool MsiX::function_masked() const {
  std::lock_guard lock(mu_);
  return function_masked_;
}

bool MsiX::masked(uint16_t vector) const {
  std::lock_guard lock(mu_);
  return vector >= entries_.size() || (entries_[vector].control & kMsixEntryVectorCtrlMasked);
}

bool MsiX::pending(uint16_t vector) const {
  std::lock_guard lock(mu_);
  return vector < entries_.size() && entries_[vector].pending;
}

MsiMessage MsiX::message(uint16_t vector) const {
  std::lock_guard lock(mu_);
  return vector < entries_.size() ? entries_[vector].message() : MsiMessage{};
}

std::optional<uint32_t> MsiX::gsi(uint16_t vector) const {
  std::lock_guard lock(mu_);
  if (vector >= entries_.size() || !entries_[vector].irqfd) return std::nullopt;
  return entries_[vector].irqfd->gsi();
}

// Runs under the device's config lock after a guest write to Message Control.
void MsiX::control_written() {
  const uint16_t control = dev_.raw16(cap_ + kMsixControl);
  std::lock_guard lock(mu_);
  const bool was_blocked = !enabled_ || function_masked_;
  enabled_ = control & kMsixControlEnable;
  function_masked_ = control & kMsixControlMaskAll;
  if (was_blocked && enabled_ && !function_masked_) unmasked_locked();
}

bool MsiX::deliverable_locked(const Entry& e) const {
  return enabled_ && !function_masked_ && !(e.control & kMsixEntryVectorCtrlMasked);
}

void MsiX::prepare_locked(Entry& e) {
  if (!use_irqfd_) return;
  if (!e.irqfd) {
    uint32_t gsi = 0;
    try {
      gsi = router_.allocate_msi();
      e.irqfd = std::make_unique<IrqFd>(router_.backend(), gsi);
    } catch (const std::exception& ex) {
      // Out of GSIs or irqfds: this vector falls back to KVM_SIGNAL_MSI.
      if (gsi) router_.release_msi(gsi);
      std::fprintf(stderr, "vmm: %s: MSI-X vector without irqfd: %s\n", dev_.name().c_str(), ex.what());
      return;
    }
  }
  const MsiMessage msg = e.message();
  if (e.routed == msg) return;
  if (router_.update_msi(e.irqfd->gsi(), msg)) e.routed = msg;
  else e.routed.reset();  // KVM refused it; send_locked() tries SIGNAL_MSI
}

bool MsiX::send_locked(Entry& e) {
  if (e.irqfd) {
    prepare_locked(e);  // a no-op unless the guest changed an unmasked entry
    if (e.routed == e.message()) {
      e.irqfd->trigger();
      return true;
    }
  }
  return router_.signal_msi(e.message());
}

void MsiX::unmasked_locked() {
  for (Entry& e : entries_) {
    if (!deliverable_locked(e)) continue;
    prepare_locked(e);
    if (e.pending) {
      e.pending = false;
      send_locked(e);
    }
  }
}

bool MsiX::notify(uint16_t vector) {
  std::lock_guard lock(mu_);
  if (vector >= entries_.size() || !enabled_) return false;
  Entry& e = entries_[vector];
  if (function_masked_ || (e.control & kMsixEntryVectorCtrlMasked)) {
    e.pending = true;
    return true;
  }
  return send_locked(e);
}

uint32_t MsiX::read_table_locked(uint32_t index, uint32_t field) const {
  const Entry& e = entries_[index];
  switch (field) {
    case kAddrLo: return e.address_lo;
    case kAddrHi: return e.address_hi;
    case kData: return e.data;
    default: return e.control;
  }
}

bool MsiX::bar_read(uint32_t bar, uint64_t offset, uint8_t* data, uint32_t size) {
  if (bar != bar_) return false;
  const bool dword = size == 4 && offset % 4 == 0;
  const bool qword = size == 8 && offset % 8 == 0;
  if (offset >= table_offset_ && offset - table_offset_ < table_size(vectors())) {
    std::memset(data, 0xff, size);
    if (!dword && !qword) return true;
    const uint32_t off = static_cast<uint32_t>(offset - table_offset_);
    std::lock_guard lock(mu_);
    for (uint32_t i = 0; i < size / 4; ++i) {
      const uint32_t v = read_table_locked(off / kMsixEntrySize, off % kMsixEntrySize + 4 * i);
      std::memcpy(data + 4 * i, &v, 4);
    }
    return true;
  }
  if (offset >= pba_offset_ && offset - pba_offset_ < pba_size(vectors())) {
    std::memset(data, 0xff, size);
    if (!dword && !qword) return true;
    const uint32_t first = static_cast<uint32_t>(offset - pba_offset_) * 8;  // first vector's bit
    uint64_t bits = 0;
    std::lock_guard lock(mu_);
    for (uint32_t b = 0; b < size * 8 && first + b < entries_.size(); ++b)
      if (entries_[first + b].pending) bits |= 1ull << b;
    std::memcpy(data, &bits, size);
    return true;
  }
  return false;
}

bool MsiX::bar_write(uint32_t bar, uint64_t offset, const uint8_t* data, uint32_t size) {
  if (bar != bar_) return false;
  // The PBA is read-only.
  if (offset >= pba_offset_ && offset - pba_offset_ < pba_size(vectors())) return true;
  if (offset < table_offset_ || offset - table_offset_ >= table_size(vectors())) return false;
  if (!((size == 4 && offset % 4 == 0) || (size == 8 && offset % 8 == 0))) return true;  // ignored

  const uint32_t off = static_cast<uint32_t>(offset - table_offset_);
  std::lock_guard lock(mu_);
  Entry& e = entries_[off / kMsixEntrySize];
  const bool was_masked = e.control & kMsixEntryVectorCtrlMasked;
  const MsiMessage old = e.message();
  for (uint32_t i = 0; i < size / 4; ++i) {
    uint32_t v;
    std::memcpy(&v, data + 4 * i, 4);
    switch (off % kMsixEntrySize + 4 * i) {
      case kAddrLo: e.address_lo = v & ~3u; break;  // dword-aligned: bits 1:0 read as zero
      case kAddrHi: e.address_hi = v; break;
      case kData: e.data = v; break;
      default: e.control = v & kMsixEntryVectorCtrlMasked; break;  // the rest is reserved
    }
  }
  if (!deliverable_locked(e)) return true;
  if (was_masked) {
    // Unmasked: bring the route up to date, then send what was pending.
    prepare_locked(e);
    if (e.pending) {
      e.pending = false;
      send_locked(e);
    }
  } else if (e.message() != old) {
    // The spec leaves changing an unmasked entry undefined; follow it.
    prepare_locked(e);
  }
  return true;
}

std::vector<MsiX::EntryState> MsiX::table_state() const {
  std::lock_guard lock(mu_);
  std::vector<EntryState> out;
  for (const Entry& e : entries_) out.push_back({e.address_lo, e.address_hi, e.data, e.control, e.pending});
  return out;
}

bool MsiX::restore_table(const std::vector<EntryState>& table) {
  std::lock_guard lock(mu_);
  if (table.size() != entries_.size()) return false;
  for (size_t i = 0; i < table.size(); ++i) {
    Entry& e = entries_[i];
    e.address_lo = table[i].address_lo & ~3u;
    e.address_hi = table[i].address_hi;
    e.data = table[i].data;
    e.control = table[i].control & kMsixEntryVectorCtrlMasked;
    e.pending = table[i].pending;
  }
  unmasked_locked();
  return true;
}

}  // namespace vmm
