#include "vmm/snapshot/dirty_bitmap.h"

#include <bit>

namespace vmm::snapshot {

DirtyBitmap::DirtyBitmap(uint64_t pages)
    : pages_(pages), storage_(new std::atomic<uint64_t>[(pages + 63) / 64]), words_(storage_.get(), (pages + 63) / 64) {
  for (auto& w : words_) w.store(0, std::memory_order_relaxed);
}

void DirtyBitmap::set_bytes(uint64_t byte, uint64_t len) {
  if (len == 0) return;
  const uint64_t first = byte / kPageSize;
  // No overflow: byte + len - 1 is computed only when it cannot wrap.
  const uint64_t last = len - 1 > UINT64_MAX - byte ? UINT64_MAX / kPageSize : (byte + len - 1) / kPageSize;
  for (uint64_t p = first; p <= last && p < pages_; ++p) set(p);
}

void DirtyBitmap::merge(std::span<const uint64_t> bits, uint64_t first_page) {
  if (first_page % 64 == 0) {
    const uint64_t base = first_page / 64;
    for (size_t i = 0; i < bits.size() && base + i < words_.size(); ++i) {
      uint64_t v = bits[i];
      // The last word may reach past pages_: keep only real pages.
      const uint64_t first_of_word = (base + i) * 64;
      if (first_of_word + 64 > pages_) v &= pages_ - first_of_word >= 64 ? ~0ull : (1ull << (pages_ - first_of_word)) - 1;
      if (v) words_[base + i].fetch_or(v, std::memory_order_relaxed);
    }
    return;
  }
  for_each_page(bits, [&](uint64_t p) { set(first_page + p); });
}

std::vector<uint64_t> DirtyBitmap::take() {
  std::vector<uint64_t> out(words_.size());
  for (size_t i = 0; i < words_.size(); ++i) out[i] = words_[i].exchange(0, std::memory_order_acq_rel);
  return out;
}

uint64_t DirtyBitmap::count() const {
  uint64_t n = 0;
  for (const auto& w : words_) n += static_cast<uint64_t>(std::popcount(w.load(std::memory_order_relaxed)));
  return n;
}

uint64_t count_pages(std::span<const uint64_t> bits) {
  uint64_t n = 0;
  for (uint64_t w : bits) n += static_cast<uint64_t>(std::popcount(w));
  return n;
}

void for_each_page(std::span<const uint64_t> bits, const std::function<void(uint64_t)>& fn) {
  for (size_t i = 0; i < bits.size(); ++i) {
    for (uint64_t w = bits[i]; w; w &= w - 1) fn(i * 64 + static_cast<uint64_t>(std::countr_zero(w)));
  }
}

}  // namespace vmm::snapshot
