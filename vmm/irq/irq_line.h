// A level-triggered interrupt line (PCI INTx, an ISA IRQ) into one of the
// in-kernel irqchip's GSIs. Devices hold the line high while they have an
// unmasked cause pending and drop it when the guest clears the cause.
//
// KVM_IRQ_LINE rather than an irqfd: an irqfd only pulses a GSI, so a
// level-triggered IOAPIC pin would lose the "still pending" state; KVM's
// resample irqfd fixes that, but needs a second eventfd and a thread to
// re-check the device on every EOI. KVM_IRQ_LINE sets the pin's level
// exactly (the IOAPIC re-delivers at EOI while it stays high), costs one
// ioctl per level change, and devices change it only on edges.
#pragma once

#include <atomic>
#include <cstdint>

namespace vmm {

class Vm;

class IrqLine {
 public:
  virtual ~IrqLine() = default;
  virtual void set_level(bool high) = 0;
  // The GSI (IOAPIC pin) the line drives: what PCI's Interrupt Line says.
  virtual uint32_t gsi() const = 0;
};

// KVM_IRQ_LINE on the VM. GSIs 0-15 reach the PIC and the IOAPIC pin of
// the same number, 16-23 the IOAPIC only (the default routes GsiRouter
// keeps). A failed ioctl is reported once and otherwise ignored: the line
// belongs to a device thread that has no one to throw to.
class KvmIrqLine final : public IrqLine {
 public:
  KvmIrqLine(Vm& vm, uint32_t gsi) : vm_(vm), gsi_(gsi) {}
  void set_level(bool high) override;
  uint32_t gsi() const override { return gsi_; }

 private:
  Vm& vm_;
  uint32_t gsi_;
  std::atomic<bool> failure_reported_{false};
};

}  // namespace vmm
