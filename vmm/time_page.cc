#include "vmm/time_page.h"

#include <atomic>
#include <stdexcept>

namespace vmm {

TimePage::TimePage(GuestMemory& mem) : mem_(mem) {
  uint8_t* p = mem.ptr(platform::kTimePageGpa, sizeof(platform::TimePage));
  if (!p) throw std::runtime_error("guest RAM too small for the time page");
  page_ = reinterpret_cast<volatile platform::TimePage*>(p);
  page_->sequence = 0;
  page_->offset_ns = 0;
  page_->uncertainty_ns = 0;
  std::atomic_thread_fence(std::memory_order_release);
  page_->magic = platform::kTimePageMagic;
}

void TimePage::set(int64_t offset_ns, uint64_t uncertainty_ns) {
  std::lock_guard lock(mu_);
  // Odd while writing: a guest that reads in between retries.
  page_->sequence = page_->sequence + 1;
  std::atomic_thread_fence(std::memory_order_release);
  page_->offset_ns = offset_ns;
  page_->uncertainty_ns = uncertainty_ns;
  std::atomic_thread_fence(std::memory_order_release);
  page_->sequence = page_->sequence + 1;
  mem_.mark_dirty(platform::kTimePageGpa, sizeof(platform::TimePage));  // KVM's dirty log misses host writes
}

int64_t TimePage::offset_ns() const {
  std::lock_guard lock(mu_);
  return page_->offset_ns;
}

uint64_t TimePage::uncertainty_ns() const {
  std::lock_guard lock(mu_);
  return page_->uncertainty_ns;
}

}  // namespace vmm
