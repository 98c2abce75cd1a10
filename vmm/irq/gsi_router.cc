#include "vmm/irq/gsi_router.h"

#include <cstdio>
#include <stdexcept>
#include <string>

#include "vmm/kvm.h"

namespace vmm {

std::vector<kvm_irq_routing_entry> legacy_irq_routes() {
  std::vector<kvm_irq_routing_entry> t;
  auto irqchip = [&t](uint32_t gsi, uint32_t chip, uint32_t pin) {
    kvm_irq_routing_entry e{};
    e.gsi = gsi;
    e.type = KVM_IRQ_ROUTING_IRQCHIP;
    e.u.irqchip.irqchip = chip;
    e.u.irqchip.pin = pin;
    t.push_back(e);
  };
  for (uint32_t gsi = 0; gsi < GsiRouter::kLegacyGsis; ++gsi) {
    irqchip(gsi, KVM_IRQCHIP_IOAPIC, gsi);
    if (gsi < 16) irqchip(gsi, gsi < 8 ? KVM_IRQCHIP_PIC_MASTER : KVM_IRQCHIP_PIC_SLAVE, gsi % 8);
  }
  return t;
}

GsiRouter::GsiRouter(IrqBackend& backend, const IrqCapabilities& caps) : backend_(backend), caps_(caps) {
  if (!caps_.irq_routing) throw std::runtime_error("KVM lacks KVM_CAP_IRQ_ROUTING: no MSI routing");
  if (caps_.max_routes <= kLegacyEntries)
    throw std::runtime_error("KVM allows only " + std::to_string(caps_.max_routes) + " interrupt routes");
  std::lock_guard lock(mu_);
  pushed_ = build_locked();
  backend_.set_gsi_routing(pushed_);
  ++pushes_;
}

std::vector<kvm_irq_routing_entry> GsiRouter::build_locked() const {
  std::vector<kvm_irq_routing_entry> t = legacy_irq_routes();
  for (const auto& [gsi, msg] : msi_) {
    if (!msg) continue;
    kvm_irq_routing_entry e{};
    e.gsi = gsi;
    e.type = KVM_IRQ_ROUTING_MSI;
    e.u.msi.address_lo = static_cast<uint32_t>(msg->address);
    e.u.msi.address_hi = static_cast<uint32_t>(msg->address >> 32);
    e.u.msi.data = msg->data;
    t.push_back(e);
  }
  return t;
}

bool GsiRouter::push_locked() {
  std::vector<kvm_irq_routing_entry> t = build_locked();
  try {
    backend_.set_gsi_routing(t);
  } catch (const KvmError& e) {
    // The MSI messages are guest-chosen: say it once, not at every write.
    if (refusals_++ == 0)
      std::fprintf(stderr, "vmm: KVM_SET_GSI_ROUTING refused the table (further refusals not shown): %s\n",
                   e.what());
    return false;
  }
  pushed_ = std::move(t);
  ++pushes_;
  return true;
}

uint32_t GsiRouter::allocate_msi() {
  std::lock_guard lock(mu_);
  // Every GSI must stay below max_routes, and so must the number of entries.
  if (kLegacyEntries + msi_.size() < caps_.max_routes) {
    uint32_t gsi = kLegacyGsis;
    for (const auto& [used, msg] : msi_) {  // lowest free GSI: sorted keys
      if (used != gsi) break;
      ++gsi;
    }
    if (gsi < caps_.max_routes) {
      msi_.emplace(gsi, std::nullopt);
      return gsi;
    }
  }
  throw std::runtime_error("no free GSI for an MSI route (KVM allows " + std::to_string(caps_.max_routes) + ")");
}

bool GsiRouter::update_msi(uint32_t gsi, const MsiMessage& msg) {
  std::lock_guard lock(mu_);
  auto it = msi_.find(gsi);
  if (it == msi_.end()) return false;
  if (it->second == msg) return true;  // KVM already has it: no push
  const std::optional<MsiMessage> old = it->second;
  it->second = msg;
  if (push_locked()) return true;
  it->second = old;
  return false;
}

void GsiRouter::release_msi(uint32_t gsi) {
  std::lock_guard lock(mu_);
  auto it = msi_.find(gsi);
  if (it == msi_.end()) return;
  const bool routed = it->second.has_value();
  msi_.erase(it);
  if (routed) push_locked();
}

bool GsiRouter::signal_msi(const MsiMessage& msg) {
  if (!caps_.signal_msi) return false;
  return backend_.signal_msi(msg) > 0;
}

std::vector<kvm_irq_routing_entry> GsiRouter::table() const {
  std::lock_guard lock(mu_);
  return pushed_;
}

uint64_t GsiRouter::pushes() const {
  std::lock_guard lock(mu_);
  return pushes_;
}

}  // namespace vmm
