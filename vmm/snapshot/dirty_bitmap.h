// A bitmap of dirty 4 KiB guest pages, one bit per page, in KVM's layout
// (bit p of 64-bit word p / 64 is page p), so a KVM_GET_DIRTY_LOG bitmap
// merges in word by word. Setting bits is lock-free (atomic OR), so device
// threads can mark pages while another thread takes the bitmap: take()
// swaps each word with zero, and a bit set concurrently lands either in
// what take() returns or in the bitmap for next time, never nowhere.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <vector>

namespace vmm::snapshot {

constexpr uint64_t kPageSize = 4096;

class DirtyBitmap {
 public:
  explicit DirtyBitmap(uint64_t pages);
  uint64_t pages() const { return pages_; }
  size_t words() const { return words_.size(); }

  void set(uint64_t page) {
    if (page < pages_) words_[page / 64].fetch_or(1ull << (page % 64), std::memory_order_relaxed);
  }
  // Every page that [byte, byte + len) touches; pages past the end ignored.
  void set_bytes(uint64_t byte, uint64_t len);
  bool test(uint64_t page) const {
    return page < pages_ && (words_[page / 64].load(std::memory_order_relaxed) >> (page % 64)) & 1;
  }
  // ORs `bits` (KVM's layout, page 0 = first_page) in; bits past pages() ignored.
  void merge(std::span<const uint64_t> bits, uint64_t first_page = 0);
  // Returns the bitmap and clears it, word by word atomically.
  std::vector<uint64_t> take();
  uint64_t count() const;
  void clear() { (void)take(); }

 private:
  uint64_t pages_;
  std::unique_ptr<std::atomic<uint64_t>[]> storage_;
  std::span<std::atomic<uint64_t>> words_;
};

// Helpers on plain bitmaps (what take() and KVM return).
uint64_t count_pages(std::span<const uint64_t> bits);
void for_each_page(std::span<const uint64_t> bits, const std::function<void(uint64_t page)>& fn);

}  // namespace vmm::snapshot
