#include "vmm/pci/msi.h"

#include <cstdio>

namespace vmm {

using namespace pci;

Msi::Msi(PciDevice& dev, GsiRouter& router, std::function<void(bool)> on_enable)
    : dev_(dev), router_(router), use_irqfd_(router.capabilities().irqfd), on_enable_(std::move(on_enable)) {
  cap_ = dev.add_capability(kCapIdMsi, kMsiCapSize64);
  dev.raw_set16(cap_ + kMsiControl, kMsiControl64Bit);  // one vector (MMC 0), no per-vector masking
  dev.set_wmask16(cap_ + kMsiControl, kMsiControlEnable | kMsiControlMmeMask);
  dev.set_wmask32(cap_ + kMsiAddressLo, ~3u);  // dword-aligned: bits 1:0 read as zero
  dev.set_wmask32(cap_ + kMsiAddressHi, ~0u);
  dev.set_wmask16(cap_ + kMsiData64, 0xffff);
  dev.add_config_hook(cap_, kMsiCapSize64, [this] { config_written(); });
}

Msi::~Msi() {
  std::lock_guard lock(mu_);
  if (!irqfd_) return;
  const uint32_t gsi = irqfd_->gsi();
  irqfd_.reset();  // unbind before the GSI can be reused
  router_.release_msi(gsi);
}

bool Msi::enabled() const {
  std::lock_guard lock(mu_);
  return enabled_;
}

MsiMessage Msi::message() const {
  std::lock_guard lock(mu_);
  return message_;
}

std::optional<uint32_t> Msi::gsi() const {
  std::lock_guard lock(mu_);
  if (!irqfd_) return std::nullopt;
  return irqfd_->gsi();
}

// Runs under the device's config lock after any guest write that touches
// the capability, so the raw registers are stable here.
void Msi::config_written() {
  const bool enabled = dev_.raw16(cap_ + kMsiControl) & kMsiControlEnable;
  const MsiMessage message{dev_.raw32(cap_ + kMsiAddressLo) | uint64_t{dev_.raw32(cap_ + kMsiAddressHi)} << 32,
                           dev_.raw16(cap_ + kMsiData64)};
  bool changed;
  {
    std::lock_guard lock(mu_);
    changed = enabled != enabled_;
    enabled_ = enabled;
    message_ = message;
    // The route is prepared when MSI comes on and kept in step while it
    // is on, so notify() never pushes a routing table from a device thread.
    if (enabled_) route_locked();
  }
  if (changed && on_enable_) on_enable_(enabled);
}

void Msi::route_locked() {
  if (!use_irqfd_) return;
  if (!irqfd_) {
    uint32_t gsi = 0;
    try {
      gsi = router_.allocate_msi();
      irqfd_ = std::make_unique<IrqFd>(router_.backend(), gsi);
    } catch (const std::exception& e) {
      // Out of GSIs or irqfds: KVM_SIGNAL_MSI still delivers, one ioctl
      // per message. Said once; the guest may enable MSI again and again.
      if (gsi) router_.release_msi(gsi);
      if (!irqfd_failure_logged_) {
        irqfd_failure_logged_ = true;
        std::fprintf(stderr, "vmm: %s: MSI without irqfd (KVM_SIGNAL_MSI instead): %s\n", dev_.name().c_str(),
                     e.what());
      }
      return;
    }
  }
  if (routed_ == message_) return;
  if (router_.update_msi(irqfd_->gsi(), message_)) routed_ = message_;
  else routed_.reset();  // KVM refused the table; notify() tries KVM_SIGNAL_MSI
}

bool Msi::notify() {
  std::lock_guard lock(mu_);
  if (!enabled_) return false;
  if (irqfd_ && routed_ == message_) {
    irqfd_->trigger();
    return true;
  }
  return router_.signal_msi(message_);
}

}  // namespace vmm
