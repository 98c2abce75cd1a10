// The dirty-page bitmap (vmm/snapshot/dirty_bitmap.h) and GuestMemory's
// marking of host writes, which KVM's dirty log does not see.
#include "vmm/snapshot/dirty_bitmap.h"

#include <gtest/gtest.h>

#include <thread>

#include "vmm/guest_memory.h"

namespace vmm::snapshot {
namespace {

std::vector<uint64_t> pages_of(std::span<const uint64_t> bits) {
  std::vector<uint64_t> out;
  for_each_page(bits, [&](uint64_t p) { out.push_back(p); });
  return out;
}

TEST(DirtyBitmapTest, SetTestCountTake) {
  DirtyBitmap b(130);
  EXPECT_EQ(b.words(), 3u);
  b.set(0);
  b.set(63);
  b.set(64);
  b.set(129);
  b.set(130);  // past the end: ignored
  EXPECT_TRUE(b.test(63) && b.test(64) && b.test(129));
  EXPECT_FALSE(b.test(1) || b.test(130));
  EXPECT_EQ(b.count(), 4u);
  const auto taken = b.take();
  EXPECT_EQ(pages_of(taken), (std::vector<uint64_t>{0, 63, 64, 129}));
  EXPECT_EQ(count_pages(taken), 4u);
  EXPECT_EQ(b.count(), 0u) << "take() clears";
}

TEST(DirtyBitmapTest, SetBytesCoversEveryTouchedPage) {
  DirtyBitmap b(10);
  b.set_bytes(4095, 2);  // pages 0 and 1
  b.set_bytes(3 * 4096, 4096);  // page 3 only
  b.set_bytes(5 * 4096, 0);  // nothing
  b.set_bytes(9 * 4096 + 10, 1ull << 40);  // runs past the end: page 9 only
  b.set_bytes(UINT64_MAX - 5, 100);  // would wrap: nothing inside
  EXPECT_EQ(pages_of(b.take()), (std::vector<uint64_t>{0, 1, 3, 9}));
}

TEST(DirtyBitmapTest, MergeKvmLayoutAlignedAndUnaligned) {
  DirtyBitmap b(100);
  const std::vector<uint64_t> kvm{0x8000000000000001ull, 0xffffffffffffffffull};
  b.merge(kvm);  // pages 0, 63 and 64..99 (bits past the end dropped)
  EXPECT_EQ(b.count(), 2u + 36u);
  DirtyBitmap c(100);
  c.merge(std::vector<uint64_t>{0b101}, 10);  // a slot starting at page 10
  EXPECT_EQ(pages_of(c.take()), (std::vector<uint64_t>{10, 12}));
}

TEST(DirtyBitmapTest, ConcurrentSetsAreNeverLost) {
  DirtyBitmap b(1 << 16);
  std::vector<uint64_t> seen(b.words(), 0);
  std::atomic<bool> done{false};
  std::thread writer([&] {
    for (uint64_t p = 0; p < b.pages(); ++p) b.set(p);
    done = true;
  });
  while (!done) {
    auto t = b.take();
    for (size_t i = 0; i < t.size(); ++i) seen[i] |= t[i];
  }
  writer.join();
  auto t = b.take();
  for (size_t i = 0; i < t.size(); ++i) seen[i] |= t[i];
  EXPECT_EQ(count_pages(seen), b.pages());
}

TEST(GuestMemoryDirtyTest, HostWritesAreMarkedOnlyWhileTracking) {
  GuestMemory mem(16 << 20);
  const uint8_t x[8] = {1};
  ASSERT_TRUE(mem.write(0x5000, x, sizeof x));
  EXPECT_EQ(mem.vmm_dirty().count(), 0u) << "not tracking";
  mem.set_dirty_tracking(true);
  ASSERT_TRUE(mem.write(0x5ffc, x, sizeof x));  // straddles pages 5 and 6
  mem.mark_dirty(0x10000, 1);
  EXPECT_FALSE(mem.write((16 << 20) - 4, x, sizeof x)) << "outside RAM: refused, not marked";
  EXPECT_EQ(pages_of(mem.vmm_dirty().take()), (std::vector<uint64_t>{5, 6, 16}));
  mem.set_dirty_tracking(false);
  mem.mark_dirty(0x20000, 1);
  EXPECT_EQ(mem.vmm_dirty().count(), 0u);
}

}  // namespace
}  // namespace vmm::snapshot
