// MSI-X (PCI Local Bus 3.0 section 6.8.2), reusable by any PciDevice: the
// capability in config space, the vector table and the pending-bit array
// (PBA) in one of the device's memory BARs, and delivery through KVM.
//
// Semantics: a vector fires only when MSI-X is enabled and neither the
// function nor the vector is masked; otherwise notify() sets its pending
// bit, and the message goes out when the vector becomes unmasked (the
// pending bit then clears). Table entries take 4- and 8-byte aligned
// accesses; anything else reads all-ones and writes nothing, as do
// accesses past the table or PBA: every offset, size and index the guest
// supplies is checked.
//
// Delivery: with KVM_CAP_IRQFD each vector gets its own GSI, MSI route and
// irqfd, set up the first time the vector is unmasked, so notify() is one
// eventfd write (and the same fd can later be handed to an I/O thread or
// vhost). The route follows the table entry: it is pushed to KVM when the
// vector is unmasked after a change, or at the next notify() if the guest
// changed an unmasked entry. Without irqfd, each notify() is KVM_SIGNAL_MSI.
//
// Thread-safe: the table is written from vCPU threads, notify() comes from
// device threads; one mutex orders them.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <vector>

#include "vmm/irq/eventfd.h"
#include "vmm/irq/gsi_router.h"
#include "vmm/pci/pci_device.h"

namespace vmm {

class MsiX {
 public:
  // Adds the capability to `dev` (before it goes on a bus): `vectors`
  // entries (1-2048), the table at `table_offset` and the PBA at
  // `pba_offset` in memory BAR `bar`, both 8-byte aligned, inside the BAR
  // and not overlapping. Throws std::logic_error otherwise.
  MsiX(PciDevice& dev, GsiRouter& router, uint16_t vectors, uint32_t bar, uint32_t table_offset,
       uint32_t pba_offset);
  ~MsiX();
  MsiX(const MsiX&) = delete;
  MsiX& operator=(const MsiX&) = delete;

  static constexpr uint32_t table_size(uint16_t vectors) { return vectors * pci::kMsixEntrySize; }
  static constexpr uint32_t pba_size(uint16_t vectors) { return (vectors + 63u) / 64u * 8u; }

  // The device's bar_read/bar_write call these first: true if the access
  // starts inside the table or the PBA (then it is handled here).
  bool bar_read(uint32_t bar, uint64_t offset, uint8_t* data, uint32_t size);
  bool bar_write(uint32_t bar, uint64_t offset, const uint8_t* data, uint32_t size);

  // Raises `vector`: sends its message, or sets its pending bit while it is
  // masked. False if it went nowhere: out of range, MSI-X disabled, or KVM
  // refused the message.
  bool notify(uint16_t vector);

  uint16_t vectors() const { return static_cast<uint16_t>(entries_.size()); }
  uint8_t capability_offset() const { return cap_; }
  bool enabled() const;
  bool function_masked() const;
  bool masked(uint16_t vector) const;
  bool pending(uint16_t vector) const;
  MsiMessage message(uint16_t vector) const;
  // The GSI carrying `vector`, once it has one (irqfd delivery only).
  std::optional<uint32_t> gsi(uint16_t vector) const;

  // ---- Snapshots (vmm/snapshot) -------------------------------------------
  struct EntryState {
    uint32_t address_lo = 0, address_hi = 0, data = 0, control = 0;
    bool pending = false;
  };
  std::vector<EntryState> table_state() const;
  // After the configuration space (enable, function mask) was restored:
  // loads the table and pending bits, sets up routes and irqfds for the
  // deliverable vectors and sends what is pending and deliverable. False
  // (nothing changed) if the number of vectors differs.
  bool restore_table(const std::vector<EntryState>& table);

 private:
  struct Entry {
    uint32_t address_lo = 0;
    uint32_t address_hi = 0;
    uint32_t data = 0;
    uint32_t control = pci::kMsixEntryVectorCtrlMasked;  // masked at reset
    bool pending = false;
    std::unique_ptr<IrqFd> irqfd;         // with its GSI, once unmasked
    std::optional<MsiMessage> routed;    // the message KVM's route holds
    MsiMessage message() const { return {address_lo | (uint64_t(address_hi) << 32), data}; }
  };
  void control_written();  // config hook: enable / function mask
  bool deliverable_locked(const Entry& e) const;
  // Gives an unmasked vector its GSI and irqfd and brings its route up to date.
  void prepare_locked(Entry& e);
  bool send_locked(Entry& e);
  // After something was unmasked: routes, then the pending messages.
  void unmasked_locked();
  uint32_t read_table_locked(uint32_t index, uint32_t field) const;

  PciDevice& dev_;
  GsiRouter& router_;
  const bool use_irqfd_;
  const uint32_t bar_;
  const uint32_t table_offset_, pba_offset_;
  uint8_t cap_ = 0;
  mutable std::mutex mu_;
  std::vector<Entry> entries_;
  bool enabled_ = false;
  bool function_masked_ = false;
};

}  // namespace vmm
