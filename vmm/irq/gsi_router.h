// Owner of the VM's GSI routing table.
//
// KVM_SET_GSI_ROUTING replaces KVM's whole table, so whoever calls it must
// also carry the legacy entries KVM's default table has (GSI 0-15 to both
// the PIC and the IOAPIC pin of the same number, 16-23 to the IOAPIC only):
// without them KVM_IRQ_LINE and the in-kernel PIT stop reaching the guest.
// This class keeps those, adds MSI routes on demand (one GSI per MSI-X
// vector that uses an irqfd) and pushes the table only when it changed.
// Thread-safe: devices update routes from vCPU threads (table writes) and
// I/O threads (first interrupt after a change).
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <vector>

#include "vmm/irq/irq_backend.h"

namespace vmm {

class GsiRouter {
 public:
  static constexpr uint32_t kLegacyGsis = 24;     // IOAPIC pins
  static constexpr uint32_t kLegacyEntries = 40;  // 24 IOAPIC + 16 PIC

  // Pushes the legacy table at once, so a KVM that rejects it fails here,
  // at startup, rather than at the first interrupt. Throws std::runtime_error
  // if KVM lacks KVM_CAP_IRQ_ROUTING, KvmError if the push fails.
  GsiRouter(IrqBackend& backend, const IrqCapabilities& caps);
  GsiRouter(const GsiRouter&) = delete;
  GsiRouter& operator=(const GsiRouter&) = delete;

  // A free GSI (>= 24) for an MSI; it has no route until update_msi().
  // Throws std::runtime_error when all are taken (a VMM configuration
  // error: too many vectors, not something a guest can cause).
  uint32_t allocate_msi();
  // Routes `gsi` to `msg`, pushing the table if that changes it. False if
  // `gsi` was not allocated here or KVM refused the table (the message is
  // guest-chosen; the previous route stays).
  bool update_msi(uint32_t gsi, const MsiMessage& msg);
  // Frees `gsi` and drops its route. Unbind its irqfd first.
  void release_msi(uint32_t gsi);
  // One MSI without a route, by KVM_SIGNAL_MSI. False if not delivered.
  bool signal_msi(const MsiMessage& msg);

  IrqBackend& backend() { return backend_; }
  const IrqCapabilities& capabilities() const { return caps_; }
  // The table as last pushed to KVM, and how many pushes were made.
  std::vector<kvm_irq_routing_entry> table() const;
  uint64_t pushes() const;

 private:
  std::vector<kvm_irq_routing_entry> build_locked() const;
  bool push_locked();

  IrqBackend& backend_;
  const IrqCapabilities caps_;
  mutable std::mutex mu_;
  // Allocated MSI GSIs; a route exists for those with a message.
  std::map<uint32_t, std::optional<MsiMessage>> msi_;
  std::vector<kvm_irq_routing_entry> pushed_;
  uint64_t pushes_ = 0;
  uint64_t refusals_ = 0;
};

// The legacy part of KVM's default x86 table (arch/x86/kvm/irq_comm.c).
std::vector<kvm_irq_routing_entry> legacy_irq_routes();

}  // namespace vmm
