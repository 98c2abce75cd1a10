// eventfd(2) and the two ways KVM binds one: an irqfd (a write injects a
// GSI without leaving the kernel) and an ioeventfd (a guest write to an
// address signals the eventfd instead of exiting to userspace).
#pragma once

#include <cstdint>
#include <optional>

#include "vmm/irq/irq_backend.h"
#include "vmm/kvm.h"

namespace vmm {

class EventFd {
 public:
  // Non-blocking and close-on-exec: the VMM polls eventfds, never blocks
  // a vCPU or device thread on one by accident.
  EventFd();
  int fd() const { return fd_.get(); }
  // Adds 1 to the counter. Never fails in practice: the counter saturates
  // only after 2^64-2 unconsumed signals, and then one more is redundant.
  void signal() const;
  // Reads and resets the counter; 0 when it was 0.
  uint64_t consume() const;

 private:
  Fd fd_;
};

// An eventfd bound to a GSI with KVM_IRQFD for as long as this lives.
// The GSI's route (IRQCHIP pin or MSI) decides what a signal injects.
class IrqFd {
 public:
  IrqFd(IrqBackend& backend, uint32_t gsi);
  ~IrqFd();
  IrqFd(const IrqFd&) = delete;
  IrqFd& operator=(const IrqFd&) = delete;

  void trigger() const { event_.signal(); }
  uint32_t gsi() const { return gsi_; }
  const EventFd& event() const { return event_; }

 private:
  IrqBackend& backend_;
  EventFd event_;
  uint32_t gsi_;
};

enum class IoSpace { kPio, kMmio };

// A KVM_IOEVENTFD binding of a caller-owned eventfd to [addr, addr + len),
// optionally only for writes of `datamatch`; undone on destruction. The
// eventfd is borrowed so that a device can move its binding (when the
// guest moves a BAR) while its I/O thread keeps polling the same fd.
class IoEventFd {
 public:
  // `len` is 1, 2, 4 or 8 (KVM also accepts 0, "any length", for MMIO
  // without datamatch). Throws KvmError if KVM refuses.
  IoEventFd(IrqBackend& backend, const EventFd& event, IoSpace space, uint64_t addr, uint32_t len,
            std::optional<uint64_t> datamatch = std::nullopt);
  ~IoEventFd();
  IoEventFd(const IoEventFd&) = delete;
  IoEventFd& operator=(const IoEventFd&) = delete;

  uint64_t addr() const { return request_.addr; }

 private:
  IrqBackend& backend_;
  kvm_ioeventfd request_{};
};

}  // namespace vmm
