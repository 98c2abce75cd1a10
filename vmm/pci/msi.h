// Plain MSI (PCI Local Bus 3.0 section 6.8.1) with one vector, reusable by
// any PciDevice: the capability in configuration space (64-bit message
// address, no per-vector masking) and delivery through KVM.
//
// Registers: Message Control (enable RW; Multiple Message Capable reads 0,
// one vector; Multiple Message Enable is writable as the spec requires but
// ignored, the one message goes out unchanged; 64-bit capable reads 1),
// Message Address (bits 1:0 hardwired to zero), Message Upper Address,
// Message Data (16 bits). Everything else reads zero and ignores writes;
// the guest's values are only ever handed to KVM, which decides what an
// address means.
//
// Delivery: with KVM_CAP_IRQFD the vector gets a GSI, an MSI route and an
// irqfd the first time the guest enables MSI, and the route follows the
// guest's writes to the address and data while MSI is enabled, so notify()
// is one eventfd write. Without irqfd (or if KVM refused the route) each
// notify() is KVM_SIGNAL_MSI.
//
// When to send is the device's business (for example once per rising edge
// of its interrupt condition); this class only knows whether MSI is on and
// what the message is. Thread-safe: the registers are written from vCPU
// threads (configuration hooks), notify() comes from device threads; one
// mutex orders them. Lock order: device config -> Msi -> GsiRouter.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>

#include "vmm/irq/eventfd.h"
#include "vmm/irq/gsi_router.h"
#include "vmm/pci/pci_device.h"

namespace vmm {

class Msi {
 public:
  // Adds the capability to `dev` (before it goes on a bus). `on_enable`,
  // if given, runs after a guest write changed the enable bit, with the
  // device's config lock held and this object's lock released (so it may
  // call notify()); it receives the new state.
  Msi(PciDevice& dev, GsiRouter& router, std::function<void(bool enabled)> on_enable = {});
  ~Msi();
  Msi(const Msi&) = delete;
  Msi& operator=(const Msi&) = delete;

  // Sends the message. False if it went nowhere: MSI disabled, or KVM
  // refused it (a guest-chosen message may be invalid).
  bool notify();

  uint8_t capability_offset() const { return cap_; }
  bool enabled() const;
  MsiMessage message() const;
  // The GSI carrying the message, once it has one (irqfd delivery only).
  std::optional<uint32_t> gsi() const;

 private:
  void config_written();  // hook: mirrors the registers, follows the route
  void route_locked();

  PciDevice& dev_;
  GsiRouter& router_;
  const bool use_irqfd_;
  const std::function<void(bool)> on_enable_;
  uint8_t cap_ = 0;
  mutable std::mutex mu_;
  bool enabled_ = false;
  MsiMessage message_;
  std::unique_ptr<IrqFd> irqfd_;       // with its GSI, from the first enable
  std::optional<MsiMessage> routed_;  // the message KVM's route holds
  bool irqfd_failure_logged_ = false;
};

}  // namespace vmm
