// The KVM-facing half of interrupt plumbing, behind a small interface so
// that the routing and MSI-X logic above it is unit-tested without
// /dev/kvm (fake_irq_backend.h records what would have reached KVM).
#pragma once

#include <linux/kvm.h>

#include <cstdint>
#include <span>
#include <string>

namespace vmm {

class Kvm;
class Vm;

// An MSI message as a device writes it: the doorbell address and the data.
struct MsiMessage {
  uint64_t address = 0;
  uint32_t data = 0;
  bool operator==(const MsiMessage&) const = default;
};

class IrqBackend {
 public:
  virtual ~IrqBackend() = default;
  // Replaces KVM's whole GSI routing table. Throws KvmError on failure.
  virtual void set_gsi_routing(std::span<const kvm_irq_routing_entry> entries) = 0;
  // KVM_IRQFD assign/deassign. Throws KvmError on failure.
  virtual void set_irqfd(int eventfd, uint32_t gsi, bool assign) = 0;
  // KVM_IOEVENTFD with the request's flags. Throws KvmError on failure.
  virtual void set_ioeventfd(const kvm_ioeventfd& request) = 0;
  // KVM_SIGNAL_MSI: > 0 delivered, 0 blocked by the guest, -errno on error.
  // Never throws: the message is guest-chosen.
  virtual int signal_msi(const MsiMessage& msg) = 0;
};

// What this KVM offers. All four exist since Linux 3.5 on x86, but a
// sandboxed /dev/kvm may lack some, and the VMM must say which.
struct IrqCapabilities {
  bool irqfd = false;       // KVM_CAP_IRQFD
  bool ioeventfd = false;   // KVM_CAP_IOEVENTFD
  bool irq_routing = false; // KVM_CAP_IRQ_ROUTING
  bool signal_msi = false;  // KVM_CAP_SIGNAL_MSI
  uint32_t max_routes = 0;  // KVM_CAP_IRQ_ROUTING's value: GSIs are below it

  static IrqCapabilities probe(const Kvm& kvm);
  static IrqCapabilities all(uint32_t max_routes = 4096) { return {true, true, true, true, max_routes}; }
  // MSI needs routing plus one way to fire a message (irqfd or SIGNAL_MSI).
  bool can_deliver_msi() const { return irq_routing && (irqfd || signal_msi); }
  // "KVM_CAP_IRQFD, KVM_CAP_SIGNAL_MSI" etc.; empty when nothing is missing.
  std::string missing() const;
};

// The real backend: forwards to the VM file descriptor.
class KvmIrqBackend final : public IrqBackend {
 public:
  explicit KvmIrqBackend(Vm& vm) : vm_(vm) {}
  void set_gsi_routing(std::span<const kvm_irq_routing_entry> entries) override;
  void set_irqfd(int eventfd, uint32_t gsi, bool assign) override;
  void set_ioeventfd(const kvm_ioeventfd& request) override;
  int signal_msi(const MsiMessage& msg) override;

 private:
  Vm& vm_;
};

}  // namespace vmm
