// The mem-pattern checks must catch what merging could get wrong: a flipped
// byte anywhere, and a whole, self-consistent page that is not this one's.
#include "guest-kernel/kernel/page_pattern.h"

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

namespace {

using page_pattern::kWords;

TEST(PagePattern, AWrittenPageChecksAndEveryFlippedByteIsCaught) {
  std::vector<uint64_t> page(kWords);
  page_pattern::write(page.data(), 7);
  EXPECT_TRUE(page_pattern::check(page.data(), 7));
  auto* bytes = reinterpret_cast<uint8_t*>(page.data());
  for (size_t b = 0; b < page_pattern::kPageBytes; ++b) {
    for (uint8_t bit : {1, 0x80}) {
      bytes[b] ^= bit;
      ASSERT_FALSE(page_pattern::check(page.data(), 7)) << "byte " << b << " bit " << int(bit);
      bytes[b] ^= bit;
    }
  }
  EXPECT_TRUE(page_pattern::check(page.data(), 7));
}

TEST(PagePattern, AnotherPatternsPageOrAZeroPageIsNotThisOne) {
  std::vector<uint64_t> a(kWords), b(kWords), zero(kWords);
  page_pattern::write(a.data(), 3);
  page_pattern::write(b.data(), 4);
  EXPECT_TRUE(page_pattern::check(b.data(), 4));
  EXPECT_FALSE(page_pattern::check(b.data(), 3)) << "whole and checksummed, but pattern 4, not 3";
  EXPECT_FALSE(page_pattern::check(zero.data(), 0));
  EXPECT_NE(std::memcmp(a.data(), b.data(), page_pattern::kPageBytes), 0);
  // Identical ids give identical pages (what makes them mergeable).
  std::vector<uint64_t> a2(kWords);
  page_pattern::write(a2.data(), 3);
  EXPECT_EQ(std::memcmp(a.data(), a2.data(), page_pattern::kPageBytes), 0);
}

}  // namespace
