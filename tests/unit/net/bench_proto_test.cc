// netbench=: argument syntax, the datagram header, the RTT summary.
#include "guest-kernel/net/bench_proto.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <random>
#include <vector>

namespace net::bench {
namespace {

TEST(BenchArgs, ParsesEveryMode) {
  Args a;
  ASSERT_EQ(parse_args("sink,5001,4", &a), nullptr);
  EXPECT_EQ(a.mode, Mode::kSink);
  EXPECT_EQ(a.port, 5001);
  EXPECT_EQ(a.seconds, 4u);

  ASSERT_EQ(parse_args("stream,10.0.0.11:5001,1472,600", &a), nullptr);
  EXPECT_EQ(a.mode, Mode::kStream);
  EXPECT_EQ(a.dst, Ipv4Address::of(10, 0, 0, 11));
  EXPECT_EQ(a.port, 5001);
  EXPECT_EQ(a.size, 1472u);
  EXPECT_EQ(a.seconds, 600u);

  ASSERT_EQ(parse_args("rr,10.0.0.10:7,16,100000", &a), nullptr);
  EXPECT_EQ(a.mode, Mode::kRr);
  EXPECT_EQ(a.dst, Ipv4Address::of(10, 0, 0, 10));
  EXPECT_EQ(a.port, 7);
  EXPECT_EQ(a.size, 16u);
  EXPECT_EQ(a.count, 100000u);

  ASSERT_EQ(parse_args("echo,65535", &a), nullptr);
  EXPECT_EQ(a.mode, Mode::kEcho);
  EXPECT_EQ(a.port, 65535);
}

TEST(BenchArgs, RefusesWithAReasonAndLeavesTheOutputAlone) {
  const char* bad[] = {"", "sink", "sink,", "sink,0,4", "sink,65536,4", "sink,5001", "sink,5001,0", "sink,5001,601",
                       "sink,5001,4,", "sink,5001,4,9", "stream,10.0.0.11,64,4", "stream,10.0.0.11:0,64,4",
                       "stream,10.0.0:5001,64,4", "stream,10.0.0.11:5001,15,4", "stream,10.0.0.11:5001,1473,4",
                       "stream,10.0.0.11:5001,64", "stream,10.0.0.11:5001,64,0", "rr,10.0.0.11:7,64,0",
                       "rr,10.0.0.11:7,64,100001", "rr,:7,64,10", "echo", "echo,0", "echo,7,1", "flood,1,2",
                       "SINK,5001,4", "sink,05001,4", "sink,+5,4", "stream,10.0.0.11:5001,64,-1"};
  for (const char* s : bad) {
    Args a;
    a.port = 4242;
    const char* err = parse_args(s, &a);
    ASSERT_NE(err, nullptr) << s;
    EXPECT_NE(std::string(err).find("netbench="), std::string::npos) << err;
    EXPECT_EQ(a.port, 4242) << "untouched on failure: " << s;
  }
}

TEST(BenchHeader, RoundTripsAndRefusesForeignDatagrams) {
  uint8_t buf[64] = {};
  ASSERT_TRUE(encode(buf, sizeof buf, Kind::kData, 0x0123456789abcdefull));
  // Fixed little-endian layout: magic, kind, sequence.
  EXPECT_EQ(buf[0], 0x42);
  EXPECT_EQ(buf[3], 0x4e);
  EXPECT_EQ(buf[4], 3);
  EXPECT_EQ(buf[8], 0xef);
  EXPECT_EQ(buf[15], 0x01);
  Kind k;
  uint64_t seq;
  ASSERT_TRUE(decode(buf, sizeof buf, &k, &seq));
  EXPECT_EQ(k, Kind::kData);
  EXPECT_EQ(seq, 0x0123456789abcdefull);
  EXPECT_TRUE(decode(buf, kHeaderBytes, &k, &seq));
  EXPECT_FALSE(decode(buf, kHeaderBytes - 1, &k, &seq));
  EXPECT_FALSE(decode(nullptr, 64, &k, &seq));
  EXPECT_FALSE(encode(buf, kHeaderBytes - 1, Kind::kFin, 1));

  for (uint32_t kind : {0u, 7u, 0xffffffffu}) {
    uint8_t bad[16];
    ASSERT_TRUE(encode(bad, sizeof bad, Kind::kHello, 1));
    std::memcpy(bad + 4, &kind, 4);
    EXPECT_FALSE(decode(bad, sizeof bad, &k, &seq)) << kind;
  }
  buf[1] ^= 1;  // magic
  EXPECT_FALSE(decode(buf, sizeof buf, &k, &seq));
}

TEST(RttSummary, NearestRankPercentiles) {
  EXPECT_EQ(summarize(nullptr, 0).p50_ns, 0u);
  std::vector<uint64_t> one{42};
  const RttSummary s1 = summarize(one.data(), one.size());
  EXPECT_EQ(s1.p50_ns, 42u);
  EXPECT_EQ(s1.p99_ns, 42u);
  EXPECT_EQ(s1.mean_ns, 42u);

  // 1..100 shuffled: p50 is the 50th value, p99 the 99th.
  std::vector<uint64_t> v(100);
  for (size_t i = 0; i < v.size(); ++i) v[i] = i + 1;
  std::shuffle(v.begin(), v.end(), std::mt19937(7));
  const RttSummary s = summarize(v.data(), v.size());
  EXPECT_EQ(s.p50_ns, 50u);
  EXPECT_EQ(s.p99_ns, 99u);
  EXPECT_EQ(s.min_ns, 1u);
  EXPECT_EQ(s.max_ns, 100u);
  EXPECT_EQ(s.mean_ns, 50u);  // 50.5 truncated
  EXPECT_TRUE(std::is_sorted(v.begin(), v.end()));

  // 1000 samples, one outlier: p99 must not be the outlier, the max is.
  std::vector<uint64_t> w(1000, 100);
  w[500] = 1'000'000;
  const RttSummary t = summarize(w.data(), w.size());
  EXPECT_EQ(t.p99_ns, 100u);
  EXPECT_EQ(t.max_ns, 1'000'000u);
  EXPECT_EQ(t.mean_ns, (999u * 100 + 1'000'000) / 1000);
}

}  // namespace
}  // namespace net::bench
