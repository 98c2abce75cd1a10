#include "vmm/memory/page_merger.h"

#include <gtest/gtest.h>

#include <cstring>
#include <random>

#include "vmm/guest_memory.h"

namespace vmm {
namespace {

constexpr uint64_t kPage = PageMerger::kPageSize;

// Fills page `p` with a pattern derived from `seed` (never all zero).
void fill(GuestMemory& m, uint64_t p, uint32_t seed) {
  uint8_t buf[kPage];
  std::mt19937 rng(seed);
  for (auto& b : buf) b = static_cast<uint8_t>(rng() | 1);
  ASSERT_TRUE(m.write(p * kPage, buf, kPage));
}

bool same(const GuestMemory& m, uint64_t p, uint32_t seed) {
  uint8_t buf[kPage];
  std::mt19937 rng(seed);
  for (auto& b : buf) b = static_cast<uint8_t>(rng() | 1);
  return std::memcmp(m.ptr(p * kPage, kPage), buf, kPage) == 0;
}

struct Counting {
  int quiesces = 0;
  PageMerger::Quiesce fn() {
    return [this](const std::function<void()>& work) {
      ++quiesces;
      work();
    };
  }
};

TEST(PageMerger, MergesIdenticalPagesAcrossVmsAndKeepsContents) {
  GuestMemory a(1 << 20), b(1 << 20);
  for (uint64_t p = 0; p < 256; ++p) {
    fill(a, p, 1000 + static_cast<uint32_t>(p % 16));  // 16 distinct contents
    fill(b, p, 1000 + static_cast<uint32_t>(p % 16));
  }
  Counting q;
  PageMerger m(q.fn());
  m.add(a, "a");
  m.add(b, "b");
  // Pass 1 records hashes, pass 2 finds the stable pages and merges.
  m.scan(512);
  EXPECT_EQ(m.stats().merges, 0u);
  m.scan(512);
  EXPECT_EQ(m.stats().pool_pages, 16u);
  EXPECT_EQ(m.stats().merges, 512u);
  EXPECT_EQ(m.pages_sharing(), 512u);
  EXPECT_EQ(m.bytes_saved(), (512u - 16u) * kPage);
  EXPECT_GE(q.quiesces, 1);
  for (uint64_t p = 0; p < 256; ++p) {
    EXPECT_TRUE(same(a, p, 1000 + static_cast<uint32_t>(p % 16))) << p;
    EXPECT_TRUE(same(b, p, 1000 + static_cast<uint32_t>(p % 16))) << p;
  }
}

TEST(PageMerger, WritesToMergedPagesArePrivate) {
  GuestMemory a(1 << 20), b(1 << 20);
  for (uint64_t p = 0; p < 8; ++p) {
    fill(a, p, 7);
    fill(b, p, 7);
  }
  Counting q;
  PageMerger m(q.fn());
  m.add(a, "a");
  m.add(b, "b");
  m.scan(512);
  m.scan(512);
  ASSERT_EQ(m.pages_sharing(), 16u);
  // The guest writes a checksummed pattern into a merged page.
  fill(a, 3, 99);
  EXPECT_TRUE(same(a, 3, 99));
  EXPECT_TRUE(same(b, 3, 7)) << "a write leaked into another VM's page";
  for (uint64_t p = 0; p < 8; ++p) {
    if (p != 3) {
      EXPECT_TRUE(same(a, p, 7)) << p;
    }
  }
  EXPECT_EQ(m.pages_sharing(), 15u) << "the copied page no longer counts as shared";
}

TEST(PageMerger, VolatilePagesAreNotMergedAndZeroPagesAreDropped) {
  GuestMemory a(1 << 20);
  fill(a, 0, 5);
  fill(a, 1, 5);
  std::memset(a.ptr(2 * kPage, kPage), 0, kPage);
  a.ptr(2 * kPage, kPage)[0] = 1;  // touched, so it has a page
  a.ptr(2 * kPage, kPage)[0] = 0;  // ...and zero again
  PageMerger m([](const std::function<void()>& w) { w(); });
  m.add(a, "a");
  m.scan(256);
  fill(a, 1, 6);  // page 1 changes between visits
  m.scan(256);
  EXPECT_EQ(m.stats().merges, 0u) << "page 1 changed, so page 0 has no stable twin";
  EXPECT_EQ(m.stats().zero_pages_dropped, 1u) << "only the touched zero page: untouched ones cost nothing";
  EXPECT_EQ(m.pages_zero(), 1u);
  EXPECT_TRUE(same(a, 0, 5));
  EXPECT_TRUE(same(a, 1, 6));
  EXPECT_EQ(a.ptr(2 * kPage, kPage)[0], 0);
}

TEST(PageMerger, AWriteInsideTheQuiesceWindowIsNeverLost) {
  // The quiesce callback is where the writers stop; a write that slips in
  // just before it (after the page was chosen) must make the merge back off.
  GuestMemory a(1 << 20);
  fill(a, 0, 5);
  fill(a, 1, 5);
  bool write_first = false;
  PageMerger m([&](const std::function<void()>& w) {
    if (write_first) fill(a, 1, 8);
    w();
  });
  m.add(a, "a");
  m.scan(256);
  write_first = true;
  m.scan(256);
  EXPECT_EQ(m.stats().merges, 0u);
  EXPECT_GE(m.stats().raced, 1u);
  EXPECT_TRUE(same(a, 0, 5));
  EXPECT_TRUE(same(a, 1, 8));
}

TEST(PageMerger, ZeroingAMergedPageReadsZeroesNotThePool) {
  GuestMemory a(1 << 20);
  fill(a, 0, 5);
  fill(a, 1, 5);
  PageMerger m([](const std::function<void()>& w) { w(); });
  m.add(a, "a");
  m.scan(256);
  m.scan(256);
  ASSERT_EQ(m.pages_sharing(), 2u);
  std::memset(a.ptr(0, kPage), 0, kPage);  // copy on write, then zero
  m.scan(256);                             // sees the change
  m.scan(256);                             // stable zero: dropped
  EXPECT_GE(m.stats().zero_pages_dropped, 1u);
  EXPECT_EQ(a.ptr(0, kPage)[100], 0) << "the dropped page shows the pool page again";
  EXPECT_TRUE(same(a, 1, 5));
}

TEST(PageMerger, HashIsNeverZeroAndDetectsZeroPages) {
  uint8_t page[kPage] = {};
  bool zero = false;
  EXPECT_NE(hash_page(page, &zero), 0u);
  EXPECT_TRUE(zero);
  page[kPage - 1] = 1;
  EXPECT_NE(hash_page(page, &zero), 0u);
  EXPECT_FALSE(zero);
}

// release() is the balloon's hook: whatever state a page is in (merged
// onto the pool, copied on write, dropped as zero, never merged), it must
// read zeroes afterwards and the merger must forget it.
TEST(PageMerger, ReleaseZeroesMergedPrivateAndDroppedPages) {
  GuestMemory a(1 << 20), b(1 << 20);
  for (uint64_t p : {0, 1}) {
    fill(a, p, 5);
    fill(b, p, 5);
  }
  fill(a, 3, 7);  // private, unique
  std::memset(a.ptr(2 * kPage, kPage), 0, kPage);  // backed and zero: dropped
  PageMerger m([](const std::function<void()>& w) { w(); });
  m.add(a, "a");
  m.add(b, "b");
  m.scan(512);
  m.scan(512);
  ASSERT_EQ(m.pages_sharing(), 4u);
  ASSERT_EQ(m.stats().zero_pages_dropped, 1u);  // page 2; the untouched ones are left alone
  fill(a, 1, 9);                                 // copied on write, still in the pool mapping
  // Pages 0-3 of a: merged, copied-on-write, zero-dropped, private.
  ASSERT_EQ(m.release(a.ptr(0, kPage), 4 * kPage), 0);
  for (uint64_t p = 0; p < 4; ++p) {
    const uint8_t* q = a.ptr(p * kPage, kPage);
    for (uint64_t i = 0; i < kPage; ++i) ASSERT_EQ(q[i], 0) << "page " << p << " byte " << i;
  }
  EXPECT_EQ(m.stats().pages_released, 4u);
  EXPECT_EQ(m.stats().pages_released_pooled, 2u) << "pages 0 and 1 were in the pool mapping";
  EXPECT_TRUE(same(b, 0, 5)) << "b's pages share the pool page a left";
  EXPECT_TRUE(same(b, 1, 5));
  EXPECT_EQ(m.pages_sharing(), 2u);
  // A released page is an ordinary page again: written, it keeps its data,
  // and once stable it merges again.
  fill(a, 0, 5);
  m.scan(512);
  m.scan(512);
  EXPECT_TRUE(same(a, 0, 5));
  EXPECT_EQ(m.pages_sharing(), 3u);
  EXPECT_EQ(m.release(a.ptr(0, kPage) + 1, kPage), EINVAL) << "unaligned";
}

TEST(PageMerger, ReleaseOfMemoryItDoesNotTrackStillReleases) {
  GuestMemory a(1 << 20);
  fill(a, 0, 5);
  PageMerger m([](const std::function<void()>& w) { w(); });
  ASSERT_EQ(m.release(a.ptr(0, kPage), kPage), 0);
  EXPECT_EQ(a.ptr(0, kPage)[17], 0);
}

}  // namespace
}  // namespace vmm
