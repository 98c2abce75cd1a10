#include "vmm/kvm_stats.h"

#include <linux/kvm.h>

#include <gtest/gtest.h>

#include <cstring>

namespace vmm {
namespace {

// Builds a stats file head the way KVM lays it out: header, id, descriptors.
std::vector<uint8_t> make_file(uint32_t name_size, const std::vector<std::tuple<std::string, uint32_t, uint16_t>>& descs,
                               uint32_t* data_offset_out) {
  const uint32_t desc_offset = sizeof(kvm_stats_header) + name_size;  // the id string comes first
  const uint32_t desc_size = 16 + name_size;
  const uint32_t data_offset = desc_offset + desc_size * static_cast<uint32_t>(descs.size());
  std::vector<uint8_t> file(data_offset);
  kvm_stats_header h{0, name_size, static_cast<uint32_t>(descs.size()), sizeof(kvm_stats_header), desc_offset,
                     data_offset};
  std::memcpy(file.data(), &h, sizeof h);
  uint32_t data_at = 0;
  for (size_t i = 0; i < descs.size(); ++i) {
    const auto& [name, flags, size] = descs[i];
    uint8_t* d = file.data() + desc_offset + i * desc_size;
    std::memcpy(d, &flags, 4);
    std::memcpy(d + 6, &size, 2);
    std::memcpy(d + 8, &data_at, 4);
    std::memcpy(d + 16, name.data(), std::min<size_t>(name.size(), name_size));
    data_at += 8 * size;
  }
  *data_offset_out = data_offset;
  return file;
}

TEST(KvmStats, ParsesSingleCountersAndSkipsHistograms) {
  uint32_t expect_data = 0;
  auto file = make_file(48,
                        {{"exits", KVM_STATS_TYPE_CUMULATIVE, 1},
                         {"halt_poll_hist", KVM_STATS_TYPE_LOG_HIST, 32},
                         {"io_exits", KVM_STATS_TYPE_CUMULATIVE, 1},
                         {"blocking", KVM_STATS_TYPE_INSTANT, 1}},
                        &expect_data);
  uint32_t data_offset = 0;
  auto counters = KvmStats::parse_descriptors(file, &data_offset);
  EXPECT_EQ(data_offset, expect_data);
  ASSERT_EQ(counters.size(), 3u);
  EXPECT_EQ(counters[0].name, "exits");
  EXPECT_EQ(counters[0].offset, 0u);
  EXPECT_EQ(counters[1].name, "io_exits");
  EXPECT_EQ(counters[1].offset, 8u + 8u * 32u);
  EXPECT_EQ(counters[2].name, "blocking");
  // Only cumulative counters have meaningful window differences.
  EXPECT_TRUE(counters[0].cumulative);
  EXPECT_TRUE(counters[1].cumulative);
  EXPECT_FALSE(counters[2].cumulative);
}

TEST(KvmStats, MalformedFilesAreErrorsNotCrashes) {
  uint32_t data_offset = 0;
  auto good = make_file(32, {{"exits", KVM_STATS_TYPE_CUMULATIVE, 1}, {"io_exits", 0, 1}}, &data_offset);
  // Truncated at every length.
  for (size_t len = 0; len < good.size(); ++len) {
    std::span<const uint8_t> part(good.data(), len);
    EXPECT_THROW(KvmStats::parse_descriptors(part, &data_offset), std::runtime_error) << len;
  }
  // A name that fills its whole field (no terminator).
  auto unterminated = make_file(8, {{"12345678", 0, 1}}, &data_offset);
  EXPECT_THROW(KvmStats::parse_descriptors(unterminated, &data_offset), std::runtime_error);
  // Absurd name sizes.
  auto bad = good;
  uint32_t huge = 1u << 30;
  std::memcpy(bad.data() + 4, &huge, 4);
  EXPECT_THROW(KvmStats::parse_descriptors(bad, &data_offset), std::runtime_error);
  uint32_t zero = 0;
  std::memcpy(bad.data() + 4, &zero, 4);
  EXPECT_THROW(KvmStats::parse_descriptors(bad, &data_offset), std::runtime_error);
  // A descriptor block claimed far past the end.
  bad = good;
  uint32_t far = 0xfffffff0;
  std::memcpy(bad.data() + 16, &far, 4);
  EXPECT_THROW(KvmStats::parse_descriptors(bad, &data_offset), std::runtime_error);
}

}  // namespace
}  // namespace vmm
