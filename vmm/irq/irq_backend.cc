#include "vmm/irq/irq_backend.h"

#include <algorithm>

#include "vmm/kvm.h"

namespace vmm {

IrqCapabilities IrqCapabilities::probe(const Kvm& kvm) {
  IrqCapabilities c;
  c.irqfd = kvm.check_extension(KVM_CAP_IRQFD) > 0;
  c.ioeventfd = kvm.check_extension(KVM_CAP_IOEVENTFD) > 0;
  const int routes = kvm.check_extension(KVM_CAP_IRQ_ROUTING);
  c.irq_routing = routes > 0;
  // x86 answers with KVM_MAX_IRQ_ROUTES (1024 before Linux 4.1, 4096 since).
  c.max_routes = routes > 0 ? static_cast<uint32_t>(std::min(routes, 4096)) : 0;
  c.signal_msi = kvm.check_extension(KVM_CAP_SIGNAL_MSI) > 0;
  return c;
}

std::string IrqCapabilities::missing() const {
  std::string s;
  auto add = [&s](bool have, const char* name) {
    if (have) return;
    if (!s.empty()) s += ", ";
    s += name;
  };
  add(irqfd, "KVM_CAP_IRQFD");
  add(ioeventfd, "KVM_CAP_IOEVENTFD");
  add(irq_routing, "KVM_CAP_IRQ_ROUTING");
  add(signal_msi, "KVM_CAP_SIGNAL_MSI");
  return s;
}

void KvmIrqBackend::set_gsi_routing(std::span<const kvm_irq_routing_entry> entries) { vm_.set_gsi_routing(entries); }
void KvmIrqBackend::set_irqfd(int eventfd, uint32_t gsi, bool assign) { vm_.set_irqfd(eventfd, gsi, assign); }
void KvmIrqBackend::set_ioeventfd(const kvm_ioeventfd& request) { vm_.set_ioeventfd(request); }
int KvmIrqBackend::signal_msi(const MsiMessage& msg) { return vm_.signal_msi(msg.address, msg.data); }

}  // namespace vmm
