// IPv4 fragmentation and reassembly: datagrams up to 64 KiB between two
// stacks (what the storage services send), and the hostile fragment
// patterns the reassembly rules and bounds exist for. Fragments injected
// into B are built by the test helpers (explicit offsets, reference
// checksum), not by the stack's own code.
#include <gtest/gtest.h>

#include <algorithm>
#include <map>
#include <memory>
#include <random>
#include <string>

#include "tests/unit/net/net_test_util.h"

namespace net {
namespace {

using namespace test;
using Frame = std::vector<uint8_t>;

struct Got {
  Ipv4Address src;
  uint16_t port;
  std::vector<uint8_t> data;
};

Udp::Handler collect(std::vector<Got>& out) {
  return [&out](Ipv4Address src, uint16_t port, const uint8_t* d, size_t n) {
    out.push_back({src, port, std::vector<uint8_t>(d, d + n)});
  };
}

TxResult send(UdpSocket& s, Ipv4Address dst, uint16_t port, const std::vector<uint8_t>& data) {
  return s.sendto(dst, port, data.data(), data.size());
}

bool is_ipv4(const Frame& f) { return f.size() >= kL4 && load16(&f[12]) == kEtherTypeIpv4; }

// B with a UDP sink on port 9; fragments are injected into it.
struct Rx : TwoStacks {
  explicit Rx(ReassemblyConfig r = {}) : TwoStacks(config(kIpA), config(kIpB), ArpConfig{}, r) {
    EXPECT_TRUE(sink.bind(9, collect(got)));
  }
  void inject(const Frame& f) {
    Frame copy(f);  // exact size: ASan sees over-reads
    db.inject(copy.data(), copy.size());
  }
  void inject(const std::vector<Frame>& frames) {
    for (const Frame& f : frames) inject(f);
  }
  const NetStats& st() const { return b.stats(); }
  UdpSocket sink{b};
  std::vector<Got> got;
};

// The IPv4 payload of a UDP datagram from A port 1000 to B port 9.
Frame udp_payload(const std::vector<uint8_t>& data) { return udp_segment(kIpA, kIpB, 1000, 9, data); }

// That datagram cut into fragments of `size` bytes, with identification `id`.
std::vector<Frame> udp_fragments(uint16_t id, const std::vector<uint8_t>& data, size_t size = kFragmentPayload) {
  return ipv4_fragments(kMacB, kMacA, kIpA, kIpB, kProtoUdp, id, udp_payload(data), size);
}

// One fragment [off, off + len) of an arbitrary payload (content `seed`).
Frame raw_fragment(uint16_t id, size_t off, size_t len, bool mf, uint32_t seed = 7) {
  return ipv4_fragment(kMacB, kMacA, kIpA, kIpB, kProtoUdp, id, pattern(off + len, seed), off, len, mf);
}

TEST(Fragment, SixtyKilobyteDatagramsBothWays) {
  TwoStacks n;
  std::vector<Got> at_a, at_b;
  UdpSocket sa(n.a), sb(n.b);
  ASSERT_TRUE(sa.bind(5000, collect(at_a)));
  ASSERT_TRUE(sb.bind(9, collect(at_b)));
  std::vector<Frame> wire;
  n.da.set_filter([&](Frame& f) {
    if (is_ipv4(f)) wire.push_back(f);
    return true;
  });

  const auto data = pattern(60000, 1);
  // ARP first: the queue holds the whole datagram, all 41 frames.
  EXPECT_EQ(send(sa, kIpB, 9, data), TxResult::kQueued);
  EXPECT_EQ(n.a.arp().pending_datagrams(kIpB), 1u);
  EXPECT_EQ(n.a.arp().pending_frames(kIpB), 41u);
  n.clock.advance(kMillisecond);
  ASSERT_EQ(at_b.size(), 1u);
  EXPECT_EQ(at_b[0].src, kIpA);
  EXPECT_EQ(at_b[0].port, 5000);
  EXPECT_TRUE(at_b[0].data == data);

  // On the wire: 8-byte-aligned fragments of at most the MTU, one
  // identification, MF on all but the last, DF clear, valid headers.
  ASSERT_EQ(wire.size(), 41u);  // 60008 bytes of UDP in 1480-byte pieces
  const uint16_t id = load16(&wire[0][kIp + 4]);
  size_t offset = 0;
  for (size_t i = 0; i < wire.size(); ++i) {
    const Frame& f = wire[i];
    const uint16_t flags = load16(&f[kIp + 6]);
    const size_t len = load16(&f[kIp + 2]) - 20u;
    EXPECT_LE(f.size(), kEthMaxFrame) << i;
    EXPECT_EQ(load16(&f[kIp + 4]), id) << i;
    EXPECT_EQ(flags & 0x4000, 0) << i;
    EXPECT_EQ((flags & 0x2000) != 0, i + 1 < wire.size()) << i;
    EXPECT_EQ((flags & 0x1fff) * 8u, offset) << i;
    EXPECT_EQ(ref_checksum(&f[kIp], 20), 0) << i;
    if (i + 1 < wire.size()) {
      EXPECT_EQ(len, 1480u) << i;
    }
    offset += len;
  }
  EXPECT_EQ(offset, 60008u);
  EXPECT_EQ(n.a.stats().frag_tx_datagrams, 1u);
  EXPECT_EQ(n.a.stats().frag_tx, 41u);
  EXPECT_EQ(n.a.stats().arp_queued, 1u);
  EXPECT_EQ(n.b.stats().frag_rx, 41u);
  EXPECT_EQ(n.b.stats().frag_reassembled, 1u);
  EXPECT_EQ(n.b.reassembly().datagrams(), 0u);
  EXPECT_EQ(n.b.reassembly().bytes_held(), 0u);

  // And back: B learned A's address from A's ARP request.
  const auto back = pattern(60000, 2);
  EXPECT_EQ(send(sb, kIpA, 5000, back), TxResult::kSent);
  n.clock.advance(kMillisecond);
  ASSERT_EQ(at_a.size(), 1u);
  EXPECT_TRUE(at_a[0].data == back);
  EXPECT_EQ(n.a.stats().frag_reassembled, 1u);

  // The largest UDP payload is 45 frames and gets another identification;
  // one byte more is refused.
  wire.clear();
  const auto largest = pattern(kUdpMaxPayload, 3);
  EXPECT_EQ(send(sa, kIpB, 9, largest), TxResult::kSent);
  n.clock.advance(kMillisecond);
  ASSERT_EQ(at_b.size(), 2u);
  EXPECT_TRUE(at_b[1].data == largest);
  ASSERT_EQ(wire.size(), 45u);
  EXPECT_NE(load16(&wire[0][kIp + 4]), id);
  EXPECT_EQ(load16(&wire[44][kIp + 6]), 44 * 1480 / 8);       // the last: no MF
  EXPECT_EQ(load16(&wire[44][kIp + 2]), 20 + 65515 - 44 * 1480);  // ends at 65515
  const std::vector<uint8_t> too_big(kUdpMaxPayload + 1);
  EXPECT_EQ(send(sa, kIpB, 9, too_big), TxResult::kTooBig);
  EXPECT_EQ(n.a.stats().udp_tx_fail_too_big, 1u);
  // The unfragmented limit still goes out as one frame, with DF.
  wire.clear();
  EXPECT_EQ(send(sa, kIpB, 9, pattern(kUdpMaxUnfragmentedPayload, 4)), TxResult::kSent);
  ASSERT_EQ(wire.size(), 1u);
  EXPECT_EQ(load16(&wire[0][kIp + 6]), 0x4000);
  n.clock.advance(kMillisecond);
  EXPECT_EQ(at_b.size(), 3u);
  EXPECT_EQ(n.a.stats().total_drops(), 0u);
  EXPECT_EQ(n.b.stats().total_drops(), 0u);
}

TEST(Fragment, ReorderedAndDuplicatedFragmentsReassembleOnce) {
  const auto data = pattern(20000, 5);
  const auto frags = udp_fragments(100, data);  // 14 fragments
  ASSERT_EQ(frags.size(), 14u);
  std::mt19937 rng(42);
  for (int round = 0; round < 20; ++round) {
    Rx t;
    std::vector<Frame> order = frags;
    // Duplicates of a few, anywhere but after the datagram completes.
    const int dups = round % 4;
    for (int d = 0; d < dups; ++d) order.push_back(frags[rng() % frags.size()]);
    std::shuffle(order.begin(), order.end(), rng);
    // The datagram completes with the last distinct fragment: move the
    // duplicates in front of it.
    std::vector<Frame> arranged;
    std::vector<bool> seen(frags.size());
    size_t distinct = 0;
    Frame completing;
    for (const Frame& f : order) {
      const size_t i = (load16(&f[kIp + 6]) & 0x1fff) * 8 / kFragmentPayload;
      if (!seen[i] && ++distinct == frags.size()) {
        completing = f;
        seen[i] = true;
        continue;
      }
      seen[i] = true;
      arranged.push_back(f);
    }
    arranged.push_back(completing);
    t.inject(arranged);
    ASSERT_EQ(t.got.size(), 1u) << round;
    EXPECT_TRUE(t.got[0].data == data) << round;
    EXPECT_EQ(t.st().frag_drop_duplicate, static_cast<uint64_t>(dups)) << round;
    EXPECT_EQ(t.st().frag_reassembled, 1u);
    EXPECT_EQ(t.b.reassembly().datagrams(), 0u);
  }
}

TEST(Fragment, LastFragmentFirst) {
  Rx t;
  const auto data = pattern(5000, 6);
  auto frags = udp_fragments(7, data);
  std::reverse(frags.begin(), frags.end());
  t.inject(frags[0]);  // fixes the total length before anything else came
  EXPECT_EQ(t.b.reassembly().datagrams(), 1u);
  t.inject(std::vector<Frame>(frags.begin() + 1, frags.end()));
  ASSERT_EQ(t.got.size(), 1u);
  EXPECT_TRUE(t.got[0].data == data);
  EXPECT_EQ(t.st().total_drops(), 0u);
}

TEST(Fragment, DuplicateAfterCompletionStartsAnOrphanThatTimesOut) {
  Rx t;
  const auto frags = udp_fragments(8, pattern(3000, 8));
  t.inject(frags);
  ASSERT_EQ(t.got.size(), 1u);
  t.inject(frags[1]);  // a duplicating link delivers it again, too late
  EXPECT_EQ(t.got.size(), 1u);
  EXPECT_EQ(t.b.reassembly().datagrams(), 1u);
  t.clock.advance(5 * kSecond);
  EXPECT_EQ(t.b.reassembly().datagrams(), 0u);
  EXPECT_EQ(t.st().frag_timeouts, 1u);
}

TEST(Fragment, LostFragmentTimesOutAndIsFreed) {
  TwoStacks n;
  std::vector<Got> at_b;
  UdpSocket sa(n.a), sb(n.b);
  ASSERT_TRUE(sb.bind(9, collect(at_b)));
  int ipv4_frames = 0;
  bool lose = true;
  n.da.set_filter([&](Frame& f) { return !(is_ipv4(f) && ++ipv4_frames == 10 && lose); });
  EXPECT_TRUE(tx_ok(send(sa, kIpB, 9, pattern(60000, 9))));
  n.clock.advance(kMillisecond);
  EXPECT_TRUE(at_b.empty());
  EXPECT_EQ(n.b.reassembly().datagrams(), 1u);
  // All of it but the lost 1480 bytes, and 40 fragments' overhead.
  EXPECT_EQ(n.b.reassembly().bytes_held(), 60008 - 1480 + 40 * Reassembly::kFragmentOverhead);
  n.clock.advance(4900 * kMillisecond);  // the timeout runs from the first fragment
  EXPECT_EQ(n.b.reassembly().datagrams(), 1u);
  EXPECT_EQ(n.b.stats().frag_timeouts, 0u);
  n.clock.advance(200 * kMillisecond);
  EXPECT_EQ(n.b.reassembly().datagrams(), 0u);
  EXPECT_EQ(n.b.reassembly().bytes_held(), 0u);
  EXPECT_EQ(n.b.stats().frag_timeouts, 1u);
  EXPECT_EQ(n.clock.pending(), 0u);
  // The next one gets through.
  lose = false;
  const auto data = pattern(60000, 10);
  EXPECT_EQ(send(sa, kIpB, 9, data), TxResult::kSent);
  n.clock.advance(kMillisecond);
  ASSERT_EQ(at_b.size(), 1u);
  EXPECT_TRUE(at_b[0].data == data);
}

TEST(Fragment, OverlapDiscardsTheWholeDatagramUntilItsTimeout) {
  Rx t;
  const auto frags = udp_fragments(20, pattern(6000, 11));  // 5 fragments
  t.inject(frags[0]);
  t.inject(frags[2]);
  // A forged fragment reaching 8 bytes into the third: rewriting data
  // already held is how overlap attacks get past filters.
  t.inject(raw_fragment(20, 1480 + 1480 - 8, 16, true, 99));
  EXPECT_EQ(t.st().frag_drop_overlap, 1u);
  EXPECT_EQ(t.b.reassembly().bytes_held(), 0u);  // what it held is freed
  EXPECT_EQ(t.b.reassembly().datagrams(), 1u);   // but the key is remembered
  // Every fragment of it is refused now, the genuine ones included.
  t.inject(frags);
  EXPECT_TRUE(t.got.empty());
  EXPECT_EQ(t.st().frag_drop_discarded, frags.size());
  EXPECT_EQ(t.b.reassembly().bytes_held(), 0u);
  // After the timeout the key is free again; a given-up datagram is not a
  // timeout.
  t.clock.advance(5 * kSecond);
  EXPECT_EQ(t.b.reassembly().datagrams(), 0u);
  EXPECT_EQ(t.st().frag_timeouts, 0u);
  t.inject(frags);
  ASSERT_EQ(t.got.size(), 1u);
}

TEST(Fragment, EveryKindOfOverlapIsCaught) {
  struct Case {
    const char* what;
    std::vector<Frame> frames;  // the last one overlaps
  };
  const std::vector<Case> cases = {
      {"same offset, other bytes", {raw_fragment(1, 0, 64, true, 1), raw_fragment(1, 0, 64, true, 2)}},
      {"same offset, longer", {raw_fragment(1, 0, 64, true), raw_fragment(1, 0, 72, true)}},
      {"same offset, shorter", {raw_fragment(1, 0, 64, true), raw_fragment(1, 0, 56, true)}},
      {"into the next", {raw_fragment(1, 64, 64, true), raw_fragment(1, 0, 72, true)}},
      {"into the previous", {raw_fragment(1, 0, 64, true), raw_fragment(1, 56, 64, true)}},
      {"inside one", {raw_fragment(1, 0, 128, true), raw_fragment(1, 32, 16, true)}},
      {"over two", {raw_fragment(1, 0, 16, true), raw_fragment(1, 32, 16, true), raw_fragment(1, 8, 48, true)}},
      {"last fragment over held data", {raw_fragment(1, 0, 128, true), raw_fragment(1, 120, 80, false)}},
  };
  for (const Case& c : cases) {
    Rx t;
    t.inject(c.frames);
    EXPECT_EQ(t.st().frag_drop_overlap, 1u) << c.what;
    EXPECT_EQ(t.st().total_drops(), 1u) << c.what;
    EXPECT_EQ(t.b.reassembly().bytes_held(), 0u) << c.what;
  }
  // Touching is not overlapping.
  Rx t;
  t.inject(raw_fragment(1, 0, 64, true));
  t.inject(raw_fragment(1, 128, 64, true));
  t.inject(raw_fragment(1, 64, 64, true));
  EXPECT_EQ(t.st().total_drops(), 0u);
  EXPECT_EQ(t.b.reassembly().bytes_held(), 3 * (64 + Reassembly::kFragmentOverhead));
}

TEST(Fragment, ConflictingTotalsDiscardTheDatagram) {
  struct Case {
    const char* what;
    std::vector<Frame> frames;  // the last one conflicts
  };
  const std::vector<Case> cases = {
      {"two last fragments, other ends", {raw_fragment(1, 2960, 40, false), raw_fragment(1, 1480, 20, false)}},
      {"a later last fragment ends further", {raw_fragment(1, 1480, 20, false), raw_fragment(1, 2960, 40, false)}},
      {"a fragment past the known end", {raw_fragment(1, 1480, 120, false), raw_fragment(1, 1600, 8, true)}},
      {"a last fragment before held data", {raw_fragment(1, 2960, 1480, true), raw_fragment(1, 1480, 20, false)}},
  };
  for (const Case& c : cases) {
    Rx t;
    t.inject(c.frames);
    EXPECT_EQ(t.st().frag_drop_bad_total, 1u) << c.what;
    EXPECT_EQ(t.st().total_drops(), 1u) << c.what;
    EXPECT_EQ(t.b.reassembly().bytes_held(), 0u) << c.what;
    t.inject(raw_fragment(1, 0, 1480, true));
    EXPECT_EQ(t.st().frag_drop_discarded, 1u) << c.what;
  }
  // The same last fragment twice is a duplicate, not a conflict.
  Rx t;
  const auto frags = udp_fragments(3, pattern(2000, 3));
  t.inject(frags[1]);
  t.inject(frags[1]);
  t.inject(frags[0]);
  ASSERT_EQ(t.got.size(), 1u);
  EXPECT_EQ(t.st().frag_drop_duplicate, 1u);
}

TEST(Fragment, BadLengthsAndOffsetsPastTheLimitAreRefusedWithoutHoldingAnything) {
  struct Case {
    const char* what;
    Frame frame;
    const char* counter;
  };
  const std::vector<Case> cases = {
      {"zero-length, MF", raw_fragment(1, 0, 0, true), "drop_bad_length"},
      {"zero-length last fragment", raw_fragment(1, 64, 0, false), "drop_bad_length"},
      {"not the last, 12 bytes", raw_fragment(1, 0, 12, true), "drop_bad_length"},
      {"the largest offset", raw_fragment(1, 65528, 8, true), "drop_too_big"},
      {"the largest offset, last", raw_fragment(1, 65528, 1, false), "drop_too_big"},
      {"ends one byte past 65535", raw_fragment(1, 65512, 4, false), "drop_too_big"},
      {"ends past 65535, MF", raw_fragment(1, 65512, 8, true), "drop_too_big"},
  };
  for (const Case& c : cases) {
    Rx t;
    t.inject(c.frame);
    std::map<std::string, uint64_t> frag;
    t.st().for_each([&](const char* p, const char* name, uint64_t v) {
      if (std::string(p) == "frag" && v) frag[name] = v;
    });
    EXPECT_EQ(frag[c.counter], 1u) << c.what;
    EXPECT_EQ(t.st().total_drops(), 1u) << c.what;
    EXPECT_EQ(t.b.reassembly().datagrams(), 0u) << c.what;
  }
  // Ending exactly at 65535 (with the 20-byte header) is allowed.
  Rx t;
  t.inject(raw_fragment(1, 65512, 3, false));
  EXPECT_EQ(t.st().total_drops(), 0u);
  EXPECT_EQ(t.b.reassembly().datagrams(), 1u);
}

TEST(Fragment, TooManyDatagramsEvictTheOldest) {
  Rx t;
  const size_t max = t.b.reassembly().config().max_datagrams;
  ASSERT_EQ(max, 16u);
  std::map<uint16_t, std::vector<Frame>> frags;
  std::map<uint16_t, std::vector<uint8_t>> data;
  for (uint16_t id = 1; id <= max + 1; ++id) {
    data[id] = pattern(4000, id);
    frags[id] = udp_fragments(id, data[id]);  // 3 fragments each
  }
  for (uint16_t id = 1; id <= max; ++id) {
    t.inject(frags[id][0]);
    t.clock.advance(kMillisecond);
  }
  EXPECT_EQ(t.b.reassembly().datagrams(), max);
  // One more: the oldest (1) goes. Dropping the newest instead would let
  // 16 stray fragments lock every new datagram out for the timeout.
  t.inject(frags[max + 1][0]);
  EXPECT_EQ(t.st().frag_evicted_table_full, 1u);
  EXPECT_EQ(t.b.reassembly().datagrams(), max);
  for (uint16_t id = 2; id <= max + 1; ++id) t.inject(std::vector<Frame>(frags[id].begin() + 1, frags[id].end()));
  ASSERT_EQ(t.got.size(), max);
  for (size_t i = 0; i < max; ++i) EXPECT_TRUE(t.got[i].data == data[static_cast<uint16_t>(i + 2)]) << i;
  EXPECT_EQ(t.b.reassembly().datagrams(), 0u);
  // The evicted one cannot complete: its rest is an orphan that times out.
  t.inject(std::vector<Frame>(frags[1].begin() + 1, frags[1].end()));
  EXPECT_EQ(t.got.size(), max);
  t.clock.advance(5 * kSecond);
  EXPECT_EQ(t.st().frag_timeouts, 1u);
  EXPECT_EQ(t.b.reassembly().datagrams(), 0u);
}

TEST(Fragment, DiscardedDatagramsAreEvictedBeforeLiveOnes) {
  Rx t;
  std::map<uint16_t, std::vector<Frame>> frags;
  for (uint16_t id = 1; id <= 17; ++id) frags[id] = udp_fragments(id, pattern(3000, id));
  for (uint16_t id = 1; id <= 16; ++id) t.inject(frags[id][0]);
  t.inject(raw_fragment(5, 8, 8, true));  // overlaps: 5 is given up
  t.inject(frags[17][0]);
  EXPECT_EQ(t.st().frag_evicted_table_full, 1u);
  t.inject(frags[1][1]);
  t.inject(frags[1][2]);
  EXPECT_EQ(t.got.size(), 1u);  // 1, the oldest, survived
}

TEST(Fragment, MemoryBoundEvictsTheOldest) {
  Rx t;
  const size_t max_bytes = t.b.reassembly().config().max_bytes;
  ASSERT_EQ(max_bytes, 256u * 1024);
  // Five datagrams with all but their last fragment: 40 x 1544 bytes
  // charged each, four fit.
  std::map<uint16_t, std::vector<Frame>> frags;
  std::map<uint16_t, std::vector<uint8_t>> data;
  for (uint16_t id = 1; id <= 5; ++id) {
    data[id] = pattern(60000, id);
    frags[id] = udp_fragments(id, data[id]);
    for (size_t i = 0; i + 1 < frags[id].size(); ++i) {
      t.inject(frags[id][i]);
      ASSERT_LE(t.b.reassembly().bytes_held(), max_bytes);
    }
  }
  EXPECT_EQ(t.st().frag_evicted_memory, 1u);
  EXPECT_EQ(t.b.reassembly().datagrams(), 4u);
  for (uint16_t id = 1; id <= 5; ++id) t.inject(frags[id].back());
  ASSERT_EQ(t.got.size(), 4u);
  EXPECT_TRUE(t.got[0].data == data[2]);
  EXPECT_TRUE(t.got[3].data == data[5]);
}

TEST(Fragment, DatagramAloneOverTheMemoryBoundIsDiscarded) {
  ReassemblyConfig small;
  small.max_bytes = 20000;
  TwoStacks n(config(kIpA), config(kIpB), ArpConfig{}, small);
  std::vector<Got> at_b;
  UdpSocket sa(n.a), sb(n.b);
  ASSERT_TRUE(sb.bind(9, collect(at_b)));
  EXPECT_TRUE(tx_ok(send(sa, kIpB, 9, pattern(60000, 1))));
  n.clock.advance(kMillisecond);
  EXPECT_TRUE(at_b.empty());
  EXPECT_EQ(n.b.stats().frag_drop_no_memory, 1u);
  // 12 x 1544 bytes fit in 20000; the 13th does not; the other 28 follow it.
  EXPECT_EQ(n.b.stats().frag_drop_discarded, 41u - 13u);
  EXPECT_EQ(n.b.reassembly().bytes_held(), 0u);
  // Smaller datagrams still work.
  const auto data = pattern(10000, 2);
  EXPECT_TRUE(tx_ok(send(sa, kIpB, 9, data)));
  n.clock.advance(kMillisecond);
  ASSERT_EQ(at_b.size(), 1u);
  EXPECT_TRUE(at_b[0].data == data);
}

TEST(Fragment, FloodOfTinyFragmentsIsChargedItsRealCost) {
  Rx t;
  const size_t max_bytes = t.b.reassembly().config().max_bytes;
  // 8-byte fragments of one datagram: each costs 8 + 64, so far fewer
  // than max_bytes / 8 are held.
  size_t accepted = 0;
  for (size_t off = 0; off < 4000 * 8; off += 8) {
    t.inject(raw_fragment(1, off, 8, true));
    ASSERT_LE(t.b.reassembly().bytes_held(), max_bytes);
    if (t.st().frag_drop_no_memory == 0) ++accepted;
  }
  EXPECT_EQ(accepted, max_bytes / (8 + Reassembly::kFragmentOverhead));
  EXPECT_EQ(t.st().frag_drop_no_memory, 1u);
  EXPECT_EQ(t.b.reassembly().bytes_held(), 0u);
}

TEST(Fragment, ReassembledUdpIsChecksummedWhole) {
  Rx t;
  auto frags = udp_fragments(30, pattern(5000, 12));
  // A flipped payload byte in the third fragment: its IPv4 header is
  // intact, only the UDP checksum over the whole datagram can tell.
  frags[2][kL4 + 100] ^= 0x40;
  t.inject(frags);
  EXPECT_TRUE(t.got.empty());
  EXPECT_EQ(t.st().frag_reassembled, 1u);
  EXPECT_EQ(t.st().udp_drop_bad_checksum, 1u);
}

TEST(Fragment, UnknownProtocolFragmentsAreNotHeld) {
  Rx t;
  t.inject(ipv4_fragment(kMacB, kMacA, kIpA, kIpB, 6, 1, pattern(3000, 1), 0, 1480, true));
  EXPECT_EQ(t.st().ip_drop_unknown_protocol, 1u);
  EXPECT_EQ(t.st().frag_rx, 0u);
  EXPECT_EQ(t.b.reassembly().datagrams(), 0u);
}

TEST(Fragment, KeyIncludesSourceAndProtocol) {
  Rx t;
  const auto udp = pattern(3000, 1);
  const auto udp_frags = udp_fragments(9, udp);
  // Same id, other protocol (ICMP, garbage) and other source: separate.
  t.inject(ipv4_fragment(kMacB, kMacA, kIpA, kIpB, kProtoIcmp, 9, pattern(3000, 2), 0, 1480, true));
  t.inject(ipv4_fragment(kMacB, kMacC, kIpC, kIpB, kProtoUdp, 9, pattern(3000, 3), 1480, 1480, true));
  t.inject(udp_frags);
  ASSERT_EQ(t.got.size(), 1u);
  EXPECT_TRUE(t.got[0].data == udp);
  EXPECT_EQ(t.b.reassembly().datagrams(), 2u);
  EXPECT_EQ(t.st().total_drops(), 0u);
}

TEST(Fragment, RingFullMidDatagramDropsTheRestAndCounts) {
  TwoStacks n;
  std::vector<Got> at_b;
  UdpSocket sa(n.a), sb(n.b);
  ASSERT_TRUE(sb.bind(9, collect(at_b)));
  send(sa, kIpB, 9, pattern(10, 0));  // resolve B
  n.clock.advance(kMillisecond);
  ASSERT_EQ(at_b.size(), 1u);

  n.da.set_tx_room(10);
  EXPECT_EQ(send(sa, kIpB, 9, pattern(60000, 1)), TxResult::kDeviceBusy);
  EXPECT_EQ(n.a.stats().frag_tx, 10u);
  EXPECT_EQ(n.a.stats().frag_tx_fail_cut, 1u);
  EXPECT_EQ(n.a.stats().eth_tx_fail_device_busy, 1u);
  EXPECT_EQ(n.da.tx_dropped, 1u);  // nothing tried after the refusal
  n.clock.advance(kMillisecond);
  EXPECT_EQ(at_b.size(), 1u);
  EXPECT_EQ(n.b.reassembly().datagrams(), 1u);
  n.clock.advance(5 * kSecond);
  EXPECT_EQ(n.b.stats().frag_timeouts, 1u);

  // Refused at the first fragment: nothing left, nothing cut.
  n.da.set_tx_room(0);
  EXPECT_EQ(send(sa, kIpB, 9, pattern(60000, 2)), TxResult::kDeviceBusy);
  EXPECT_EQ(n.a.stats().frag_tx_fail_cut, 1u);
  EXPECT_EQ(n.a.stats().eth_tx_fail_device_busy, 2u);

  n.da.set_tx_full(false);
  const auto data = pattern(60000, 3);
  EXPECT_EQ(send(sa, kIpB, 9, data), TxResult::kSent);
  n.clock.advance(kMillisecond);
  ASSERT_EQ(at_b.size(), 2u);
  EXPECT_TRUE(at_b[1].data == data);
}

TEST(Fragment, RingFullWhileFlushingTheArpQueueIsCounted) {
  TwoStacks n;
  std::vector<Got> at_b;
  UdpSocket sa(n.a), sb(n.b);
  ASSERT_TRUE(sb.bind(9, collect(at_b)));
  EXPECT_EQ(send(sa, kIpB, 9, pattern(60000, 1)), TxResult::kQueued);
  n.da.set_tx_room(5);  // the ARP request already left
  n.clock.advance(kMillisecond);
  EXPECT_EQ(n.a.stats().arp_resolved, 1u);
  EXPECT_EQ(n.a.stats().frag_tx, 5u);
  EXPECT_EQ(n.a.stats().frag_tx_fail_cut, 1u);
  EXPECT_TRUE(at_b.empty());
}

TEST(Fragment, ArpQueueHoldsWholeDatagramsOnly) {
  TwoStacks n;
  std::vector<Got> at_b;
  UdpSocket sa(n.a), sb(n.b);
  ASSERT_TRUE(sb.bind(9, collect(at_b)));
  // Three before B is resolved: all kept, all delivered in order.
  for (uint32_t i = 0; i < 3; ++i) EXPECT_EQ(send(sa, kIpB, 9, pattern(60000, i)), TxResult::kQueued);
  EXPECT_EQ(n.a.arp().pending_datagrams(kIpB), 3u);
  EXPECT_EQ(n.a.arp().pending_frames(kIpB), 3u * 41);
  n.clock.advance(kMillisecond);
  ASSERT_EQ(at_b.size(), 3u);
  for (uint32_t i = 0; i < 3; ++i) EXPECT_TRUE(at_b[i].data == pattern(60000, i)) << i;
  EXPECT_EQ(n.a.arp().queued_bytes(), 0u);

  // Ten of the largest to nobody: the byte bound keeps as many whole
  // datagrams as fit, dropping the oldest.
  const size_t frame_bytes = 44 * kEthMaxFrame + (34 + 65515 - 44 * 1480);  // one datagram's 45 frames
  const size_t fit = ArpConfig{}.max_queued_bytes / frame_bytes;
  ASSERT_EQ(fit, 7u);
  const std::vector<uint8_t> largest(kUdpMaxPayload, 0x5a);
  for (int i = 0; i < 10; ++i) EXPECT_EQ(send(sa, kIpC, 9, largest), TxResult::kQueued);
  EXPECT_EQ(n.a.arp().pending_datagrams(kIpC), fit);
  EXPECT_EQ(n.a.arp().pending_frames(kIpC), fit * 45);
  EXPECT_EQ(n.a.arp().queued_bytes(), fit * frame_bytes);
  EXPECT_EQ(n.a.stats().arp_tx_fail_queue_full, 10 - fit);
  // Another address gets no room: refused whole, nothing queued for it.
  const Ipv4Address d = Ipv4Address::of(10, 0, 0, 14);
  EXPECT_EQ(send(sa, d, 9, largest), TxResult::kNoResources);
  EXPECT_EQ(n.a.arp().pending_datagrams(d), 0u);
  EXPECT_EQ(n.a.stats().arp_tx_fail_queue_full, 11 - fit);
  // Small ones still fit beside them.
  EXPECT_EQ(send(sa, d, 9, pattern(100, 1)), TxResult::kQueued);
  n.clock.advance(4 * kSecond);  // resolution fails
  EXPECT_EQ(n.a.stats().arp_tx_fail_unresolved, fit + 1);
  EXPECT_EQ(n.a.arp().queued_bytes(), 0u);
}

TEST(Fragment, BroadcastDatagramIsFragmented) {
  TwoStacks n;
  std::vector<Got> at_b;
  UdpSocket sa(n.a), sb(n.b);
  ASSERT_TRUE(sb.bind(9, collect(at_b)));
  const auto data = pattern(5000, 1);
  EXPECT_EQ(send(sa, Ipv4Address::of(10, 0, 0, 255), 9, data), TxResult::kSent);
  EXPECT_EQ(n.a.stats().arp_tx_requests, 0u);
  n.clock.advance(kMillisecond);
  ASSERT_EQ(at_b.size(), 1u);
  EXPECT_TRUE(at_b[0].data == data);
}

TEST(Fragment, LargeIcmpEchoIsAnsweredInFragments) {
  TwoStacks n;
  std::vector<Frame> from_b;
  n.db.set_filter([&](Frame& f) {
    if (is_ipv4(f)) from_b.push_back(f);
    return true;
  });
  const auto data = pattern(20000, 77);
  Frame req = Stack::new_ipv4_frame(kIcmpHeaderLen + data.size());
  std::copy(data.begin(), data.end(), req.begin() + Stack::kIpv4PayloadOffset + kIcmpHeaderLen);
  write_icmp_echo(req.data() + Stack::kIpv4PayloadOffset, kIcmpEchoRequest, 0x4242, 1, data.size());
  EXPECT_EQ(n.a.send_ipv4(kIpB, kProtoIcmp, std::move(req)), TxResult::kQueued);
  n.clock.advance(kMillisecond);
  EXPECT_EQ(n.b.stats().icmp_echo_requests, 1u);
  EXPECT_EQ(n.b.stats().frag_reassembled, 1u);
  // The reply, put together here from B's frames by their offsets.
  ASSERT_EQ(from_b.size(), 14u);  // 20008 bytes of ICMP
  Frame reply(20008);
  for (const Frame& f : from_b) {
    const size_t off = (load16(&f[kIp + 6]) & 0x1fff) * 8u, len = load16(&f[kIp + 2]) - 20u;
    ASSERT_LE(off + len, reply.size());
    std::copy(f.begin() + kL4, f.begin() + kL4 + len, reply.begin() + off);
  }
  EXPECT_EQ(reply[0], kIcmpEchoReply);
  EXPECT_EQ(load16(&reply[4]), 0x4242);
  EXPECT_EQ(ref_checksum(reply.data(), reply.size()), 0);
  EXPECT_TRUE(std::equal(data.begin(), data.end(), reply.begin() + 8));
  // A reassembled it too (and, with no ping session, did not count it).
  EXPECT_EQ(n.a.stats().frag_reassembled, 1u);
  EXPECT_EQ(n.a.stats().icmp_drop_unmatched_reply, 1u);
}

TEST(Fragment, RandomFragmentationsOfInterleavedDatagrams) {
  Rx t;
  std::mt19937 rng(7);
  size_t expected = 0;
  for (int round = 0; round < 60; ++round) {
    std::vector<Frame> all;
    std::vector<std::vector<uint8_t>> sent;
    for (int k = 0; k < 3; ++k) {
      const size_t size = 8 * (1 + rng() % 185);  // 8..1480
      // Small fragments, small datagrams: three of them stay well within
      // the memory bound.
      const size_t limit = std::min<size_t>(kUdpMaxPayload, 60000 / (size + 64) * size);
      auto data = pattern(1 + rng() % limit, static_cast<uint32_t>(round * 3 + k));
      auto frags = udp_fragments(static_cast<uint16_t>(round * 3 + k), data, size);
      all.insert(all.end(), frags.begin(), frags.end());
      sent.push_back(std::move(data));
    }
    std::shuffle(all.begin(), all.end(), rng);
    t.inject(all);
    expected += 3;
    ASSERT_EQ(t.got.size(), expected) << round;
    // Delivered in completion order: compare as a set.
    for (const auto& d : sent)
      EXPECT_TRUE(std::any_of(t.got.end() - 3, t.got.end(), [&](const Got& g) { return g.data == d; })) << round;
  }
  EXPECT_EQ(t.st().total_drops(), 0u);
  EXPECT_EQ(t.b.reassembly().datagrams(), 0u);
  EXPECT_EQ(t.b.reassembly().bytes_held(), 0u);
}

TEST(Fragment, DestroyedWithReassemblyPending) {
  FakeClock clock;
  PairDevice da(clock, kMacA), db(clock, kMacB);
  PairDevice::connect(da, db);
  auto b = std::make_unique<Stack>(db, clock, config(kIpB));
  b->up();
  for (uint16_t id = 1; id <= 4; ++id) {
    Frame f = raw_fragment(id, 0, 1480, true);
    db.inject(f.data(), f.size());
  }
  EXPECT_EQ(b->reassembly().datagrams(), 4u);
  b.reset();
  clock.run_all();  // a timer left behind would run on freed memory (ASan)
  EXPECT_EQ(clock.pending(), 0u);
}

}  // namespace
}  // namespace net
