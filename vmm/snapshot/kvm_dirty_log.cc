#include "vmm/snapshot/kvm_dirty_log.h"

namespace vmm::snapshot {

void KvmDirtyLog::start() {
  if (active_) return;
  // VMM-side marking first: a device write between the two steps is then
  // counted twice at worst, never missed.
  mem_.set_dirty_tracking(true);
  const auto& regions = mem_.regions();
  for (size_t slot = 0; slot < regions.size(); ++slot) {
    const MemoryRegion& r = regions[slot];
    // Same slot, address and size, new flags: KVM changes only the flags.
    vm_.set_memory_region(static_cast<uint32_t>(slot), r.gpa, r.size, r.host, KVM_MEM_LOG_DIRTY_PAGES);
  }
  active_ = true;
}

std::vector<uint64_t> KvmDirtyLog::take() {
  const auto& regions = mem_.regions();
  std::vector<uint64_t> all = mem_.vmm_dirty().take();
  for (size_t slot = 0; slot < regions.size() && active_; ++slot) {
    const MemoryRegion& r = regions[slot];
    const uint64_t pages = r.size / kPageSize;
    std::vector<uint64_t> bits((pages + 63) / 64, 0);
    kvm_dirty_log log{};
    log.slot = static_cast<uint32_t>(slot);
    log.dirty_bitmap = bits.data();
    // Without KVM_CAP_MANUAL_DIRTY_LOG_PROTECT2 this returns the log and
    // clears it, write-protecting the pages again, in one call.
    KVM_IOCTL(vm_.fd(), KVM_GET_DIRTY_LOG, &log);
    const uint64_t first = r.gpa / kPageSize;
    if (first % 64 == 0) {
      for (size_t i = 0; i < bits.size() && first / 64 + i < all.size(); ++i) all[first / 64 + i] |= bits[i];
    } else {
      for_each_page(bits, [&](uint64_t p) {
        const uint64_t g = first + p;
        if (g / 64 < all.size()) all[g / 64] |= 1ull << (g % 64);
      });
    }
  }
  return all;
}

}  // namespace vmm::snapshot
