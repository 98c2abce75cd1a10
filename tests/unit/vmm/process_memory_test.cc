// /proc/self/status parsing for the VMM's RSS report (--stats, balloon).
#include "vmm/memory/process_memory.h"

#include <gtest/gtest.h>
#include <sys/mman.h>

#include <cstring>

namespace vmm {
namespace {

TEST(ProcessMemoryTest, ParsesRssAndPeak) {
  const auto pm = parse_process_memory(
      "Name:\tvmm\nVmPeak:\t  999 kB\nVmHWM:\t    2048 kB\nVmRSS:\t    1024 kB\nThreads:\t3\n");
  ASSERT_TRUE(pm.has_value());
  EXPECT_EQ(pm->rss_bytes, 1024u << 10);
  EXPECT_EQ(pm->peak_rss_bytes, 2048u << 10);
}

TEST(ProcessMemoryTest, RefusesMissingOrMalformedFields) {
  EXPECT_FALSE(parse_process_memory("VmRSS:\t1024 kB\n").has_value());  // no VmHWM
  EXPECT_FALSE(parse_process_memory("VmHWM:\t1 kB\nVmRSS:\tlots kB\n").has_value());
  EXPECT_FALSE(parse_process_memory("VmHWM:\t1 kB\nVmRSS:\t1 MB\n").has_value());
  EXPECT_FALSE(parse_process_memory("VmHWMx:\t1 kB\nVmRSS:\t1 kB\n").has_value());
  EXPECT_FALSE(parse_process_memory("").has_value());
}

TEST(ProcessMemoryTest, ReadsThisProcessAndSeesPagesComeAndGo) {
  const auto before = read_process_memory();
  ASSERT_TRUE(before.has_value());
  EXPECT_GT(before->rss_bytes, 0u);
  EXPECT_GE(before->peak_rss_bytes + (1u << 20), before->rss_bytes);
  // 32 MiB touched, then dropped as the balloon drops guest pages.
  constexpr size_t kBytes = 32u << 20;
  void* p = ::mmap(nullptr, kBytes, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  ASSERT_NE(p, MAP_FAILED);
  std::memset(p, 1, kBytes);
  const auto touched = read_process_memory();
  ASSERT_TRUE(touched.has_value());
  EXPECT_GE(touched->rss_bytes, before->rss_bytes + kBytes - (4u << 20));
  ASSERT_EQ(::madvise(p, kBytes, MADV_DONTNEED), 0);
  const auto dropped = read_process_memory();
  ASSERT_TRUE(dropped.has_value());
  EXPECT_LE(dropped->rss_bytes + kBytes - (4u << 20), touched->rss_bytes);
  // The kernel's counters are batched per CPU: exact to a few pages only.
  EXPECT_GE(dropped->peak_rss_bytes + (1u << 20), touched->rss_bytes);
  ::munmap(p, kBytes);
}

}  // namespace
}  // namespace vmm
