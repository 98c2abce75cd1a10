// Hostile input through the whole receive path: every malformed frame is
// refused, counted under its reason, and changes nothing else; a random
// mutation run checks that no input crashes the stack or leaks past its
// bounds (ASan) and that the stack still works afterwards.
#include <gtest/gtest.h>

#include <random>
#include <string>

#include "tests/unit/net/net_test_util.h"

namespace net {
namespace {

using namespace test;

struct Target : TwoStacks {
  Target() {
    EXPECT_TRUE(sock.bind(7, [this](Ipv4Address, uint16_t, const uint8_t* d, size_t n) {
      ++delivered;
      last.assign(reinterpret_cast<const char*>(d), n);
    }));
  }
  // Injects into B; returns the counter deltas that changed.
  std::map<std::string, uint64_t> inject(const std::vector<uint8_t>& f) {
    std::map<std::string, uint64_t> before;
    b.stats().for_each([&](const char* p, const char* n, uint64_t v) { before[std::string(p) + "." + n] = v; });
    // An exact-size copy, so that ASan catches any read past the end.
    std::vector<uint8_t> copy(f);
    db.inject(copy.data(), copy.size());
    std::map<std::string, uint64_t> changed;
    b.stats().for_each([&](const char* p, const char* n, uint64_t v) {
      const std::string k = std::string(p) + "." + n;
      if (v != before[k]) changed[k] = v - before[k];
    });
    return changed;
  }
  UdpSocket sock{b};
  int delivered = 0;
  std::string last;
};

std::vector<uint8_t> good_udp() {
  return ipv4_frame(kMacB, kMacA, kIpA, kIpB, kProtoUdp, udp_segment(kIpA, kIpB, 1000, 7, bytes("payload!")));
}
std::vector<uint8_t> good_ping() {
  return ipv4_frame(kMacB, kMacA, kIpA, kIpB, kProtoIcmp, icmp_echo(8, 1, 1, bytes("abcdefgh")));
}
std::vector<uint8_t> good_arp() { return arp_frame(kArpRequest, kBroadcastMac, kMacA, kIpA, kZeroMac, kIpB); }

TEST(Malformed, ValidFramesAreAccepted) {
  Target t;
  auto c = t.inject(good_udp());
  EXPECT_EQ(t.delivered, 1);
  EXPECT_EQ(t.last, "payload!");
  EXPECT_EQ(c["udp.delivered"], 1u);
  const uint64_t tx = t.b.stats().eth_tx;
  t.inject(good_ping());
  EXPECT_EQ(t.b.stats().icmp_echo_requests, 1u);
  EXPECT_EQ(t.b.stats().eth_tx, tx + 1);  // the reply
  t.inject(good_arp());
  EXPECT_EQ(t.b.stats().arp_tx_replies, 1u);
  // Padded to the Ethernet minimum with junk: the junk is not payload.
  auto small = ipv4_frame(kMacB, kMacA, kIpA, kIpB, kProtoUdp, udp_segment(kIpA, kIpB, 1000, 7, bytes("hi")));
  small.resize(60, 0xa5);
  t.inject(small);
  EXPECT_EQ(t.last, "hi");
  EXPECT_EQ(t.b.stats().total_drops(), 0u);
}

// Each truncation of a valid frame must be refused with exactly one drop
// counter and no delivery or reply.
void expect_every_truncation_dropped(const std::vector<uint8_t>& good) {
  for (size_t n = 0; n < good.size(); ++n) {
    Target t;
    const uint64_t tx = t.b.stats().eth_tx;
    auto c = t.inject(std::vector<uint8_t>(good.begin(), good.begin() + n));
    uint64_t drops = 0;
    for (auto& [k, v] : c)
      if (k.find(".drop_") != std::string::npos) drops += v;
    EXPECT_EQ(drops, 1u) << "cut at " << n;
    EXPECT_EQ(t.delivered, 0) << n;
    EXPECT_EQ(t.b.stats().eth_tx, tx) << n;
    EXPECT_EQ(t.b.stats().total_drops(), 1u) << n;
  }
}

TEST(Malformed, EveryTruncationOfUdpIsDropped) { expect_every_truncation_dropped(good_udp()); }
TEST(Malformed, EveryTruncationOfPingIsDropped) { expect_every_truncation_dropped(good_ping()); }
TEST(Malformed, EveryTruncationOfArpIsDropped) { expect_every_truncation_dropped(good_arp()); }

TEST(Malformed, EachDefectHasItsCounter) {
  struct Case {
    const char* counter;
    std::vector<uint8_t> frame;
  };
  std::vector<Case> cases;
  auto edit = [](std::vector<uint8_t> f, auto fn, bool fix_ip = true) {
    fn(f);
    if (fix_ip) fix_ip_checksum(f);
    return f;
  };
  cases.push_back({"eth.drop_runt", std::vector<uint8_t>(13, 0)});
  cases.push_back({"eth.drop_oversize", edit(good_udp(), [](auto& f) { f.resize(1515, 0); })});
  cases.push_back({"eth.drop_not_for_us", edit(good_udp(), [](auto& f) { std::memcpy(f.data(), kMacC.b, 6); })});
  cases.push_back({"eth.drop_not_for_us", edit(good_udp(), [](auto& f) { f[0] = 0x01; })});  // multicast
  cases.push_back({"eth.drop_unknown_type", edit(good_udp(), [](auto& f) { put16(f, 12, 0x86dd); })});
  cases.push_back({"eth.drop_unknown_type", edit(good_udp(), [](auto& f) { put16(f, 12, 0x8100); })});  // VLAN
  cases.push_back({"ip.drop_bad_version", edit(good_udp(), [](auto& f) { f[kIp] = 0x65; })});
  cases.push_back({"ip.drop_bad_header_length", edit(good_udp(), [](auto& f) { f[kIp] = 0x44; })});
  cases.push_back({"ip.drop_bad_header_length", edit(good_udp(), [](auto& f) { f[kIp] = 0x4f; })});
  cases.push_back({"ip.drop_bad_total_length", edit(good_udp(), [](auto& f) { put16(f, kIp + 2, 500); })});
  cases.push_back({"ip.drop_bad_total_length", edit(good_udp(), [](auto& f) { put16(f, kIp + 2, 10); })});
  cases.push_back({"ip.drop_bad_checksum", edit(good_udp(), [](auto& f) { f[kIp + 10] ^= 0x10; }, false)});
  // Fragments refused before anything is held (the rest: fragment_test.cc).
  cases.push_back({"frag.drop_bad_length", edit(good_udp(), [](auto& f) {
                     put16(f, kIp + 6, 0x2000);  // MF with 15 bytes: not a multiple of 8
                     f.pop_back();
                     put16(f, kIp + 2, static_cast<uint16_t>(f.size() - kIp));
                   })});
  cases.push_back({"frag.drop_bad_length", edit(good_udp(), [](auto& f) {
                     put16(f, kIp + 6, 0x0010);  // a last fragment without a byte
                     f.resize(kL4);
                     put16(f, kIp + 2, 20);
                   })});
  cases.push_back({"frag.drop_too_big", edit(good_udp(), [](auto& f) { put16(f, kIp + 6, 0x1fff); })});
  cases.push_back({"ip.drop_bad_ttl", edit(good_udp(), [](auto& f) { f[kIp + 8] = 0; })});
  cases.push_back({"ip.drop_not_for_us", edit(good_udp(), [](auto& f) { put32(f, kIp + 16, kIpC.value); })});
  cases.push_back({"ip.drop_bad_source", edit(good_udp(), [](auto& f) { put32(f, kIp + 12, 0xffffffff); })});
  cases.push_back({"ip.drop_bad_source", edit(good_udp(), [](auto& f) { put32(f, kIp + 12, 0xe0000001); })});
  cases.push_back({"ip.drop_bad_source", edit(good_udp(), [](auto& f) { put32(f, kIp + 12, kIpB.value); })});
  cases.push_back({"ip.drop_unknown_protocol", edit(good_udp(), [](auto& f) { f[kIp + 9] = 6; })});
  cases.push_back({"icmp.drop_bad_checksum", edit(good_ping(), [](auto& f) { f.back() ^= 1; }, false)});
  cases.push_back({"icmp.drop_other_type",
                   ipv4_frame(kMacB, kMacA, kIpA, kIpB, kProtoIcmp, icmp_echo(3, 0, 0, bytes("unreach")))});
  cases.push_back({"icmp.drop_other_type",
                   ipv4_frame(kMacB, kMacA, kIpA, kIpB, kProtoIcmp, icmp_echo(13, 0, 0, bytes("tstamp")))});
  cases.push_back({"udp.drop_bad_checksum", edit(good_udp(), [](auto& f) { f.back() ^= 1; }, false)});
  cases.push_back({"udp.drop_bad_length", edit(good_udp(), [](auto& f) { put16(f, kL4 + 4, 7); })});
  cases.push_back({"udp.drop_bad_length", edit(good_udp(), [](auto& f) { put16(f, kL4 + 4, 17); })});
  cases.push_back({"udp.drop_bad_port",
                   ipv4_frame(kMacB, kMacA, kIpA, kIpB, kProtoUdp, udp_segment(kIpA, kIpB, 1000, 0, bytes("x")))});
  cases.push_back({"udp.drop_no_socket",
                   ipv4_frame(kMacB, kMacA, kIpA, kIpB, kProtoUdp, udp_segment(kIpA, kIpB, 1000, 8, bytes("x")))});
  cases.push_back({"arp.drop_unsupported", edit(good_arp(), [](auto& f) { f[18] = 8; }, false)});
  cases.push_back({"arp.drop_bad_operation", edit(good_arp(), [](auto& f) { put16(f, 20, 3); }, false)});
  cases.push_back({"arp.drop_bad_sender", edit(good_arp(), [](auto& f) { f[22] = 0xff; }, false)});
  for (const Case& c : cases) {
    Target t;
    const uint64_t tx = t.b.stats().eth_tx;
    auto changed = t.inject(c.frame);
    EXPECT_EQ(changed[c.counter], 1u) << c.counter;
    EXPECT_EQ(t.b.stats().total_drops(), 1u) << c.counter;
    EXPECT_EQ(t.delivered, 0) << c.counter;
    EXPECT_EQ(t.b.stats().eth_tx, tx) << c.counter << ": nothing is sent in answer";
    EXPECT_EQ(t.b.arp().entry_count(), 0u) << c.counter << ": nothing is learned";
  }
}

TEST(Malformed, RandomMutationsNeverCrashAndTheStackStillWorks) {
  Target t;
  std::mt19937 rng(20240601);
  const std::vector<std::vector<uint8_t>> seeds = {good_udp(), good_ping(), good_arp()};
  uint64_t frames = 0;
  for (int round = 0; round < 20000; ++round) {
    std::vector<uint8_t> f = seeds[rng() % seeds.size()];
    const int edits = 1 + rng() % 4;
    for (int e = 0; e < edits; ++e) {
      switch (rng() % 5) {
        case 0: f[rng() % f.size()] ^= static_cast<uint8_t>(1u << (rng() % 8)); break;
        case 1: f[rng() % f.size()] = static_cast<uint8_t>(rng()); break;
        case 2: f.resize(rng() % (f.size() + 1)); break;
        case 3: f.resize(f.size() + rng() % 64, static_cast<uint8_t>(rng())); break;
        case 4:  // a plausible length field with a fixed-up checksum: gets past the first checks
          if (f.size() >= kL4 + 8 && load16(&f[12]) == kEtherTypeIpv4) {
            put16(f, kIp + 2, static_cast<uint16_t>(rng() % 80));
            put16(f, kL4 + 4, static_cast<uint16_t>(rng() % 80));
            fix_ip_checksum(f);
          }
          break;
      }
      if (f.empty()) f.push_back(0);
    }
    t.inject(f);
    ++frames;
    if (round % 1000 == 0) t.clock.advance(kSecond);  // let timers run between bursts
  }
  t.clock.run_all();
  EXPECT_EQ(t.b.stats().eth_rx, frames + /*A's announcement*/ 1);
  EXPECT_GT(t.b.stats().total_drops(), frames / 2);
  // Still healthy: a ping and a datagram get through both ways.
  std::vector<PingEvent> events;
  t.a.icmp().ping(kIpB, 2, 100 * kMillisecond, [&](const PingEvent& e) { events.push_back(e); });
  UdpSocket client(t.a);
  const int before = t.delivered;
  client.sendto(kIpB, 7, reinterpret_cast<const uint8_t*>("alive"), 5);
  t.clock.run_all();
  ASSERT_FALSE(events.empty());
  EXPECT_EQ(events.back().received, 2u);
  EXPECT_EQ(t.delivered, before + 1);
  EXPECT_EQ(t.last, "alive");
}

}  // namespace
}  // namespace net
