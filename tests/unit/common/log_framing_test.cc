#include "storage-guests/common/log_framing.h"

#include <gtest/gtest.h>

#include <random>

namespace sg {
namespace {

Bytes rec(size_t n, uint8_t seed) {
  Bytes b(n);
  for (size_t i = 0; i < n; ++i) b[i] = static_cast<uint8_t>(seed + i * 7);
  return b;
}

std::vector<Bytes> replay(const std::vector<Bytes>& log, size_t* malformed = nullptr) {
  LogReplay r;
  for (const Bytes& b : log) r.feed(b.data(), b.size());
  if (malformed) *malformed = r.malformed();
  return r.finish();
}

void append_to(std::vector<Bytes>& log, const std::vector<Bytes>& frames) {
  log.insert(log.end(), frames.begin(), frames.end());
}

TEST(LogFraming, SmallAndLargeRecordsRoundTrip) {
  for (size_t max : {16u, 100u, 4096u}) {
    std::vector<Bytes> log, want;
    for (size_t n : {0u, 1u, 15u, 16u, 17u, 99u, 1000u, 10000u}) {
      want.push_back(rec(n, static_cast<uint8_t>(n)));
      auto frames = frame_append(want.back(), max);
      for (const auto& f : frames) EXPECT_LE(f.size(), max);
      append_to(log, frames);
    }
    size_t bad = 9;
    EXPECT_EQ(replay(log, &bad), want) << max;
    EXPECT_EQ(bad, 0u);
  }
}

TEST(LogFraming, RewriteReplacesEverythingBeforeIt) {
  std::vector<Bytes> log;
  append_to(log, frame_append(rec(10, 1), 64));
  append_to(log, frame_append(rec(300, 2), 64));
  append_to(log, frame_rewrite({rec(5, 3), rec(200, 4)}, 64));
  append_to(log, frame_append(rec(7, 5), 64));
  EXPECT_EQ(replay(log), (std::vector<Bytes>{rec(5, 3), rec(200, 4), rec(7, 5)}));
  // A rewrite to nothing.
  append_to(log, frame_rewrite({}, 64));
  EXPECT_TRUE(replay(log).empty());
}

TEST(LogFraming, ACrashAtEveryPointGivesOldOrNewStateNeverAMix) {
  std::vector<Bytes> before;
  append_to(before, frame_append(rec(10, 1), 32));
  append_to(before, frame_append(rec(100, 2), 32));
  const std::vector<Bytes> old_state{rec(10, 1), rec(100, 2)};
  std::vector<Bytes> log = before;
  append_to(log, frame_rewrite({rec(50, 3), rec(60, 4), rec(5, 5)}, 32));
  const std::vector<Bytes> new_state{rec(50, 3), rec(60, 4), rec(5, 5)};
  for (size_t cut = before.size(); cut <= log.size(); ++cut) {
    std::vector<Bytes> prefix(log.begin(), log.begin() + static_cast<long>(cut));
    auto got = replay(prefix);
    if (cut == log.size()) {
      EXPECT_EQ(got, new_state);
    } else {
      EXPECT_EQ(got, old_state) << "cut after " << cut << " log records";
    }
  }
  // A large append cut short is dropped, the records before it survive.
  std::vector<Bytes> log2 = before;
  append_to(log2, frame_append(rec(200, 9), 32));
  for (size_t cut = before.size(); cut < log2.size(); ++cut) {
    std::vector<Bytes> prefix(log2.begin(), log2.begin() + static_cast<long>(cut));
    EXPECT_EQ(replay(prefix), old_state) << cut;
  }
}

TEST(LogFraming, MalformedRecordsEndTheReplayWithoutCrashing) {
  const std::vector<Bytes> good{rec(3, 1)};
  std::vector<Bytes> base;
  append_to(base, frame_append(rec(3, 1), 64));
  const std::vector<Bytes> bad_records = {
      {},                                   // empty
      {0},                                  // unknown kind
      {9, 1, 2},                            // unknown kind
      {3, 1, 2},                            // a middle piece with no first
      {4, 1, 2},                            // a last piece with no first
      {2, 1, 0},                            // first piece without its length
      {2, 0xff, 0xff, 0xff, 0x7f, 1},       // absurd total length
      {2, 1, 0, 0, 0, 1},                   // first piece as long as the total
      {5, 1, 0},                            // rewrite header too short
  };
  for (const Bytes& bad : bad_records) {
    std::vector<Bytes> log = base;
    log.push_back(bad);
    append_to(log, frame_append(rec(4, 2), 64));  // ignored after the bad one
    size_t malformed = 0;
    EXPECT_EQ(replay(log, &malformed), good);
    EXPECT_EQ(malformed, 1u);
  }
  // Random garbage never crashes.
  std::mt19937 rng(3);
  for (int i = 0; i < 5000; ++i) {
    LogReplay r;
    for (int j = 0; j < 5; ++j) {
      Bytes b(rng() % 12);
      for (auto& x : b) x = static_cast<uint8_t>(rng() % 8);
      r.feed(b.data(), b.size());
    }
    r.finish();
  }
}

}  // namespace
}  // namespace sg
