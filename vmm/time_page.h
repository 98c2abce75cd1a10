// The per-VM paravirtual time page (boot/platform.h): a page of guest RAM
// holding a clock offset and an uncertainty bound that the guest's clock
// applies. Writing it is how the VMM skews one VM's clock at run time;
// KVM_SET_CLOCK before boot would be cancelled by the guest's wall-clock
// read, and it cannot express an error bound at all.
#pragma once

#include <cstdint>
#include <mutex>

#include "boot/platform.h"
#include "vmm/guest_memory.h"

namespace vmm {

class TimePage {
 public:
  // Claims the page at platform::kTimePageGpa (reserved in the memory map).
  explicit TimePage(GuestMemory& mem);
  // Publishes new values under the page's sequence count; safe while the
  // guest runs and against concurrent callers.
  void set(int64_t offset_ns, uint64_t uncertainty_ns);
  // Keeps set() from writing the page until the lock is dropped (same-page
  // merging compares and remaps guest pages with every writer stopped).
  std::unique_lock<std::mutex> hold_writes() { return std::unique_lock(mu_); }
  int64_t offset_ns() const;
  uint64_t uncertainty_ns() const;

 private:
  GuestMemory& mem_;
  volatile platform::TimePage* page_;
  mutable std::mutex mu_;
};

}  // namespace vmm
