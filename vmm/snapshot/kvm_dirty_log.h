// Dirty-page tracking of a VM's RAM: KVM's log of the guest's own writes
// (KVM_MEM_LOG_DIRTY_PAGES on every RAM slot, read and cleared by
// KVM_GET_DIRTY_LOG) together with the VMM's log of its own writes into
// guest RAM (GuestMemory::mark_dirty: device DMA, which KVM cannot see).
// An incremental snapshot writes exactly the pages take() returns.
#pragma once

#include <cstdint>
#include <vector>

#include "vmm/guest_memory.h"
#include "vmm/kvm.h"

namespace vmm::snapshot {

class KvmDirtyLog {
 public:
  // Slot i of `vm` must map mem.regions()[i] (as Machine sets them up).
  KvmDirtyLog(Vm& vm, GuestMemory& mem) : vm_(vm), mem_(mem) {}
  bool active() const { return active_; }
  // Turns logging on for every RAM slot and the VMM-side marking. Call
  // with the vCPUs paused: KVM starts from an empty log.
  void start();
  // Every page written since start() or the last take(), by the guest or
  // by the VMM, as one bitmap over guest physical pages; both logs are
  // cleared. Call with the vCPUs paused and the devices quiesced, so the
  // bitmap and RAM agree.
  std::vector<uint64_t> take();
  // A snapshot that failed after take(): its pages go back into the VMM
  // log, so the next incremental snapshot still writes them.
  void give_back(const std::vector<uint64_t>& pages) { mem_.vmm_dirty().merge(pages); }

 private:
  Vm& vm_;
  GuestMemory& mem_;
  bool active_ = false;
};

}  // namespace vmm::snapshot
