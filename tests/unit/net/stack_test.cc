// Two whole stacks on an in-memory cable: ARP, routing, ping, UDP, and the
// timers (retries, expiry, ping timeouts) on a fake clock.
#include <gtest/gtest.h>

#include <random>
#include <set>
#include <string>

#include "tests/unit/net/net_test_util.h"

namespace net {
namespace {

using namespace test;

struct Received {
  Ipv4Address src;
  uint16_t port;
  std::string data;
};

Udp::Handler collect(std::vector<Received>& out) {
  return [&out](Ipv4Address src, uint16_t port, const uint8_t* d, size_t n) {
    out.push_back({src, port, std::string(reinterpret_cast<const char*>(d), n)});
  };
}

TxResult send_str(UdpSocket& s, Ipv4Address dst, uint16_t port, const std::string& text) {
  return s.sendto(dst, port, reinterpret_cast<const uint8_t*>(text.data()), text.size());
}

bool is_arp(const std::vector<uint8_t>& f, uint16_t op) {
  return f.size() >= 42 && load16(&f[12]) == kEtherTypeArp && load16(&f[20]) == op;
}

TEST(Stack, AnnouncesItsAddressAtUp) {
  FakeClock clock;
  PairDevice da(clock, kMacA), db(clock, kMacB);
  PairDevice::connect(da, db);
  std::vector<std::vector<uint8_t>> out;
  da.set_filter([&](std::vector<uint8_t>& f) {
    out.push_back(f);
    return true;
  });
  Stack a(da, clock, config(kIpA));
  a.up();
  ASSERT_EQ(out.size(), 1u);
  const auto& f = out[0];
  ASSERT_TRUE(is_arp(f, kArpRequest));
  EXPECT_EQ(f.size(), kEthMinFrame);  // padded
  EXPECT_EQ(std::memcmp(f.data(), kBroadcastMac.b, 6), 0);
  EXPECT_EQ(load32(&f[28]), kIpA.value);  // sender
  EXPECT_EQ(load32(&f[38]), kIpA.value);  // target: our own address
  EXPECT_EQ(a.stats().arp_tx_announcements, 1u);
}

TEST(Stack, UdpBothWaysResolvesArpOnce) {
  TwoStacks n;
  std::vector<Received> at_a, at_b;
  UdpSocket sa(n.a), sb(n.b);
  ASSERT_TRUE(sa.bind(5000, collect(at_a)));
  ASSERT_TRUE(sb.bind(7, collect(at_b)));

  EXPECT_EQ(send_str(sa, kIpB, 7, "ping from a"), TxResult::kQueued);
  EXPECT_EQ(n.a.arp().pending_frames(kIpB), 1u);
  n.clock.advance(kMillisecond);
  ASSERT_EQ(at_b.size(), 1u);
  EXPECT_EQ(at_b[0].src, kIpA);
  EXPECT_EQ(at_b[0].port, 5000);
  EXPECT_EQ(at_b[0].data, "ping from a");
  EXPECT_EQ(n.a.stats().arp_tx_requests, 1u);
  EXPECT_EQ(n.a.stats().arp_resolved, 1u);
  EXPECT_EQ(n.b.stats().arp_tx_replies, 1u);
  ASSERT_TRUE(n.a.arp().lookup(kIpB).has_value());
  EXPECT_EQ(*n.a.arp().lookup(kIpB), kMacB);

  // B learned A from A's request: it answers without a request of its own.
  EXPECT_EQ(send_str(sb, kIpA, 5000, "reply from b"), TxResult::kSent);
  EXPECT_EQ(n.b.stats().arp_tx_requests, 0u);
  n.clock.advance(kMillisecond);
  ASSERT_EQ(at_a.size(), 1u);
  EXPECT_EQ(at_a[0].src, kIpB);
  EXPECT_EQ(at_a[0].port, 7);
  EXPECT_EQ(at_a[0].data, "reply from b");

  // More traffic reuses the cache.
  for (int i = 0; i < 10; ++i) EXPECT_EQ(send_str(sa, kIpB, 7, "x" + std::to_string(i)), TxResult::kSent);
  n.clock.advance(kMillisecond);
  EXPECT_EQ(at_b.size(), 11u);
  EXPECT_EQ(at_b.back().data, "x9");
  EXPECT_EQ(n.a.stats().arp_tx_requests, 1u);
  EXPECT_EQ(n.a.stats().total_drops(), 0u);
  EXPECT_EQ(n.b.stats().total_drops(), 0u);
  EXPECT_EQ(n.a.stats().udp_tx, 11u);
  EXPECT_EQ(n.b.stats().udp_delivered, 11u);
}

TEST(Stack, UdpSizesEmptyMaximumAndTooBig) {
  TwoStacks n;
  std::vector<Received> at_b;
  UdpSocket sa(n.a), sb(n.b);
  ASSERT_TRUE(sb.bind(9, collect(at_b)));
  EXPECT_TRUE(tx_ok(sa.sendto(kIpB, 9, nullptr, 0)));
  const std::string big(kUdpMaxPayload, 'z');
  EXPECT_TRUE(tx_ok(send_str(sa, kIpB, 9, big)));
  EXPECT_EQ(send_str(sa, kIpB, 9, big + "!"), TxResult::kTooBig);
  EXPECT_EQ(send_str(sa, kIpB, 0, "port 0"), TxResult::kBadPort);
  n.clock.advance(kMillisecond);
  ASSERT_EQ(at_b.size(), 2u);
  EXPECT_EQ(at_b[0].data, "");
  EXPECT_EQ(at_b[1].data, big);
  EXPECT_EQ(n.a.stats().udp_tx_fail_too_big, 1u);
  EXPECT_EQ(n.a.stats().udp_tx_fail_bad_port, 1u);
  EXPECT_TRUE(sa.bound());  // sendto bound an ephemeral port
  EXPECT_GE(sa.local_port(), Udp::kEphemeralFirst);
}

TEST(Stack, UdpBroadcastNeedsNoArp) {
  TwoStacks n;
  std::vector<Received> at_b;
  UdpSocket sa(n.a), sb(n.b);
  ASSERT_TRUE(sb.bind(9, collect(at_b)));
  EXPECT_EQ(send_str(sa, Ipv4Address::of(10, 0, 0, 255), 9, "subnet"), TxResult::kSent);
  EXPECT_EQ(send_str(sa, Ipv4Address{0xffffffff}, 9, "limited"), TxResult::kSent);
  n.clock.advance(kMillisecond);
  ASSERT_EQ(at_b.size(), 2u);
  EXPECT_EQ(n.a.stats().arp_tx_requests, 0u);
}

TEST(Stack, UdpPortsBindCloseAndEphemeral) {
  TwoStacks n;
  std::vector<Received> at_b;
  UdpSocket s1(n.b), s2(n.b);
  ASSERT_TRUE(s1.bind(7, collect(at_b)));
  EXPECT_FALSE(s2.bind(7, collect(at_b)));  // taken
  EXPECT_FALSE(s1.bind(8, collect(at_b)));  // already bound
  std::set<uint16_t> ports;
  std::vector<std::unique_ptr<UdpSocket>> many;
  for (int i = 0; i < 100; ++i) {
    many.push_back(std::make_unique<UdpSocket>(n.b));
    ASSERT_TRUE(many.back()->bind(0, nullptr));
    ports.insert(many.back()->local_port());
  }
  EXPECT_EQ(ports.size(), 100u);
  EXPECT_GE(*ports.begin(), Udp::kEphemeralFirst);

  UdpSocket sa(n.a);
  send_str(sa, kIpB, 7, "one");
  n.clock.advance(kMillisecond);
  EXPECT_EQ(at_b.size(), 1u);
  s1.close();
  EXPECT_FALSE(n.b.udp().port_in_use(7));
  send_str(sa, kIpB, 7, "two");
  n.clock.advance(kMillisecond);
  EXPECT_EQ(at_b.size(), 1u);
  EXPECT_EQ(n.b.stats().udp_drop_no_socket, 1u);
  ASSERT_TRUE(s2.bind(7, collect(at_b)));
  send_str(sa, kIpB, 7, "three");
  n.clock.advance(kMillisecond);
  EXPECT_EQ(at_b.size(), 2u);
}

TEST(Stack, UdpHandlerMayCloseOrRebindItsSocket) {
  TwoStacks n;
  UdpSocket sa(n.a), sb(n.b);
  int first = 0, second = 0;
  ASSERT_TRUE(sb.bind(7, [&](Ipv4Address, uint16_t, const uint8_t*, size_t) {
    ++first;
    sb.close();
    ASSERT_TRUE(sb.bind(7, [&](Ipv4Address, uint16_t, const uint8_t*, size_t) { ++second; }));
  }));
  send_str(sa, kIpB, 7, "a");
  n.clock.advance(kMillisecond);
  send_str(sa, kIpB, 7, "b");
  n.clock.advance(kMillisecond);
  EXPECT_EQ(first, 1);
  EXPECT_EQ(second, 1);
  // And a handler that closes for good.
  UdpSocket sc(n.b);
  int calls = 0;
  ASSERT_TRUE(sc.bind(8, [&](Ipv4Address, uint16_t, const uint8_t*, size_t) {
    ++calls;
    sc.close();
  }));
  send_str(sa, kIpB, 8, "a");
  send_str(sa, kIpB, 8, "b");
  n.clock.advance(kMillisecond);
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(n.b.stats().udp_drop_no_socket, 1u);
}

TEST(Stack, EchoServerRepliesFromTheHandler) {
  TwoStacks n;
  UdpSocket server(n.b);
  ASSERT_TRUE(server.bind(7, [&](Ipv4Address src, uint16_t port, const uint8_t* d, size_t len) {
    EXPECT_EQ(server.sendto(src, port, d, len), TxResult::kSent);
  }));
  std::vector<Received> at_a;
  UdpSocket client(n.a);
  ASSERT_TRUE(client.bind(0, collect(at_a)));
  for (int i = 0; i < 5; ++i) send_str(client, kIpB, 7, "msg" + std::to_string(i));
  n.clock.advance(kMillisecond);
  ASSERT_EQ(at_a.size(), 5u);
  for (int i = 0; i < 5; ++i) EXPECT_EQ(at_a[i].data, "msg" + std::to_string(i));
}

TEST(Stack, PingReportsEveryReplyWithRtt) {
  TwoStacks n;
  std::vector<PingEvent> events;
  const uint16_t id = n.a.icmp().ping(kIpB, 3, kSecond, [&](const PingEvent& e) { events.push_back(e); });
  ASSERT_NE(id, 0);
  n.clock.run_all();
  ASSERT_EQ(events.size(), 4u);
  for (int i = 0; i < 3; ++i) {
    EXPECT_FALSE(events[i].done);
    EXPECT_EQ(events[i].seq, i + 1);
    EXPECT_EQ(events[i].from, kIpB);
  }
  // The link takes 100 us each way; the first request waits for ARP.
  EXPECT_EQ(events[0].rtt_ns, 400'000u);
  EXPECT_EQ(events[1].rtt_ns, 200'000u);
  EXPECT_EQ(events[2].rtt_ns, 200'000u);
  EXPECT_TRUE(events[3].done);
  EXPECT_EQ(events[3].sent, 3u);
  EXPECT_EQ(events[3].received, 3u);
  EXPECT_EQ(n.b.stats().icmp_echo_requests, 3u);
  EXPECT_EQ(n.a.stats().icmp_echo_replies, 3u);
  EXPECT_EQ(n.a.icmp().active_pings(), 0u);
  EXPECT_EQ(n.clock.pending(), 0u);  // nothing left behind
}

TEST(Stack, PingWithoutAnswerTimesOut) {
  TwoStacks n;
  n.db.set_filter([](std::vector<uint8_t>&) { return false; });  // B is mute
  std::vector<PingEvent> events;
  n.a.icmp().ping(kIpB, 2, kSecond, [&](const PingEvent& e) { events.push_back(e); }, 2 * kSecond);
  const uint64_t start = n.clock.now_ns();
  n.clock.run_all();
  ASSERT_EQ(events.size(), 1u);
  EXPECT_TRUE(events[0].done);
  EXPECT_EQ(events[0].sent, 2u);
  EXPECT_EQ(events[0].received, 0u);
  EXPECT_EQ(n.clock.now_ns() - start, 3 * kSecond);  // last request at 1 s, then the 2 s timeout
}

TEST(Stack, PingHandlerMayCancelAndUnrelatedRepliesDoNotCount) {
  TwoStacks n;
  int replies = 0;
  uint16_t id = 0;
  id = n.a.icmp().ping(kIpB, 5, kSecond, [&](const PingEvent& e) {
    EXPECT_FALSE(e.done);
    ++replies;
    EXPECT_TRUE(n.a.icmp().cancel_ping(id));
  });
  n.clock.run_all();
  EXPECT_EQ(replies, 1);
  EXPECT_FALSE(n.a.icmp().cancel_ping(id));

  // A reply to nobody, a duplicate, and one with altered data.
  std::vector<std::vector<uint8_t>> replies_from_b;
  n.db.set_filter([&](std::vector<uint8_t>& f) {
    if (f.size() > kL4 && f[kIp + 9] == kProtoIcmp && f[kL4] == kIcmpEchoReply) replies_from_b.push_back(f);
    return true;
  });
  std::vector<PingEvent> events;
  n.a.icmp().ping(kIpB, 1, kSecond, [&](const PingEvent& e) { events.push_back(e); });
  n.clock.run_all();
  ASSERT_EQ(replies_from_b.size(), 1u);
  ASSERT_EQ(events.size(), 2u);
  const uint64_t before = n.a.stats().icmp_drop_unmatched_reply;
  n.da.inject(replies_from_b[0].data(), replies_from_b[0].size());  // session is over
  EXPECT_EQ(n.a.stats().icmp_drop_unmatched_reply, before + 1);
  auto stranger = ipv4_frame(kMacA, kMacB, kIpB, kIpA, kProtoIcmp, icmp_echo(0, 999, 1, bytes("hi")));
  n.da.inject(stranger.data(), stranger.size());
  EXPECT_EQ(n.a.stats().icmp_drop_unmatched_reply, before + 2);
}

TEST(Stack, PingDuplicateAndForgedRepliesDoNotCount) {
  TwoStacks n;
  // B's replies are held back so the test can replay and alter them.
  std::vector<std::vector<uint8_t>> held;
  n.db.set_filter([&](std::vector<uint8_t>& f) {
    if (f.size() > kL4 && f[kIp + 9] == kProtoIcmp && f[kL4] == kIcmpEchoReply) {
      held.push_back(f);
      return false;
    }
    return true;
  });
  std::vector<PingEvent> events;
  n.a.icmp().ping(kIpB, 2, kSecond, [&](const PingEvent& e) { events.push_back(e); }, 5 * kSecond);
  n.clock.advance(kMillisecond);
  ASSERT_EQ(held.size(), 1u);
  // Altered data (checksum fixed up): not what we sent.
  auto forged = held[0];
  forged[kL4 + 8 + 3] ^= 0xff;
  put16(forged, kL4 + 2, 0);
  put16(forged, kL4 + 2, ref_checksum(&forged[kL4], forged.size() - kL4));
  n.da.inject(forged.data(), forged.size());
  EXPECT_TRUE(events.empty());
  // From another address (IP header fixed up).
  auto other = held[0];
  put32(other, kIp + 12, kIpC.value);
  fix_ip_checksum(other);
  n.da.inject(other.data(), other.size());
  EXPECT_TRUE(events.empty());
  EXPECT_EQ(n.a.stats().icmp_drop_unmatched_reply, 2u);
  // The real one, twice.
  n.da.inject(held[0].data(), held[0].size());
  n.da.inject(held[0].data(), held[0].size());
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].seq, 1);
  EXPECT_EQ(n.a.stats().icmp_drop_unmatched_reply, 3u);
  n.clock.run_all();
  ASSERT_EQ(events.size(), 2u);
  EXPECT_TRUE(events[1].done);
  EXPECT_EQ(events[1].sent, 2u);
  EXPECT_EQ(events[1].received, 1u);
}

TEST(Stack, BroadcastPingIsIgnored) {
  TwoStacks n;
  auto f = ipv4_frame(kBroadcastMac, kMacA, kIpA, Ipv4Address::of(10, 0, 0, 255), kProtoIcmp,
                      icmp_echo(8, 1, 1, bytes("smurf")));
  const uint64_t tx = n.b.stats().eth_tx;
  n.db.inject(f.data(), f.size());
  EXPECT_EQ(n.b.stats().icmp_drop_broadcast_echo, 1u);
  EXPECT_EQ(n.b.stats().eth_tx, tx);
}

TEST(Stack, OffSubnetGoesThroughTheGateway) {
  // B plays the gateway.
  TwoStacks n(config(kIpA, kGateway), config(kGateway));
  std::vector<std::vector<uint8_t>> from_a;
  n.da.set_filter([&](std::vector<uint8_t>& f) {
    from_a.push_back(f);
    return true;
  });
  UdpSocket sa(n.a);
  const Ipv4Address far = Ipv4Address::of(192, 168, 1, 5);
  EXPECT_EQ(send_str(sa, far, 53, "query"), TxResult::kQueued);
  n.clock.advance(kMillisecond);
  ASSERT_EQ(from_a.size(), 2u);  // the ARP request for the gateway, then the datagram
  EXPECT_TRUE(is_arp(from_a[0], kArpRequest));
  EXPECT_EQ(load32(&from_a[0][38]), kGateway.value);
  EXPECT_EQ(std::memcmp(from_a[1].data(), kMacB.b, 6), 0);  // to the gateway's MAC
  EXPECT_EQ(load32(&from_a[1][kIp + 16]), far.value);        // for the far address
  EXPECT_EQ(n.b.stats().ip_drop_not_for_us, 1u);             // B does not forward
}

TEST(Stack, NoRoute) {
  TwoStacks n;  // no gateway
  UdpSocket sa(n.a);
  EXPECT_EQ(send_str(sa, Ipv4Address::of(192, 168, 1, 5), 53, "x"), TxResult::kNoRoute);
  EXPECT_EQ(send_str(sa, kIpA, 53, "x"), TxResult::kNoRoute);  // no loopback
  EXPECT_EQ(send_str(sa, Ipv4Address{}, 53, "x"), TxResult::kNoRoute);
  EXPECT_EQ(send_str(sa, Ipv4Address::of(224, 0, 0, 1), 53, "x"), TxResult::kNoRoute);
  EXPECT_EQ(n.a.stats().ip_tx_fail_no_route, 4u);
  EXPECT_EQ(n.a.stats().udp_tx, 0u);
}

TEST(Stack, DeviceBusyIsReportedAndCounted) {
  TwoStacks n;
  UdpSocket sa(n.a), sb(n.b);
  int got = 0;
  ASSERT_TRUE(sb.bind(7, [&](Ipv4Address, uint16_t, const uint8_t*, size_t) { ++got; }));
  send_str(sa, kIpB, 7, "resolve");
  n.clock.advance(kMillisecond);
  n.da.set_tx_full(true);
  EXPECT_EQ(send_str(sa, kIpB, 7, "lost"), TxResult::kDeviceBusy);
  EXPECT_EQ(n.a.stats().eth_tx_fail_device_busy, 1u);
  EXPECT_EQ(n.da.tx_dropped, 1u);
  n.da.set_tx_full(false);
  EXPECT_EQ(send_str(sa, kIpB, 7, "ok"), TxResult::kSent);
  n.clock.advance(kMillisecond);
  EXPECT_EQ(got, 2);
}

TEST(Arp, RetriesThenGivesUpAndDropsTheQueue) {
  TwoStacks n;
  std::vector<uint64_t> request_times;
  n.da.set_filter([&](std::vector<uint8_t>& f) {
    if (is_arp(f, kArpRequest) && load32(&f[38]) == kIpC.value) request_times.push_back(n.clock.now_ns());
    return true;
  });
  UdpSocket sa(n.a);
  const uint64_t start = n.clock.now_ns();
  for (int i = 0; i < 10; ++i) EXPECT_EQ(send_str(sa, kIpC, 7, "to nobody " + std::to_string(i)), TxResult::kQueued);
  EXPECT_EQ(n.a.arp().pending_frames(kIpC), 8u);  // bounded
  EXPECT_EQ(n.a.stats().arp_tx_fail_queue_full, 2u);
  n.clock.advance(2900 * kMillisecond);
  EXPECT_EQ(n.a.stats().arp_resolve_failed, 0u);
  n.clock.advance(200 * kMillisecond);
  ASSERT_EQ(request_times.size(), 3u);
  EXPECT_EQ(request_times[0], start);
  EXPECT_EQ(request_times[1], start + kSecond);
  EXPECT_EQ(request_times[2], start + 2 * kSecond);
  EXPECT_EQ(n.a.stats().arp_resolve_failed, 1u);
  EXPECT_EQ(n.a.stats().arp_tx_fail_unresolved, 8u);
  EXPECT_EQ(n.a.arp().pending_frames(kIpC), 0u);
  EXPECT_EQ(n.a.arp().entry_count(), 0u);
  EXPECT_EQ(n.clock.pending(), 0u);
  // A later send starts over.
  EXPECT_EQ(send_str(sa, kIpC, 7, "again"), TxResult::kQueued);
  EXPECT_EQ(request_times.size(), 4u);
}

TEST(Arp, ALateAnswerFlushesTheQueueInOrder) {
  TwoStacks n;
  int requests_seen = 0;
  n.da.set_filter([&](std::vector<uint8_t>& f) {
    // The first two requests are lost.
    return !(is_arp(f, kArpRequest) && load32(&f[38]) == kIpB.value && ++requests_seen <= 2);
  });
  std::vector<Received> at_b;
  UdpSocket sa(n.a), sb(n.b);
  ASSERT_TRUE(sb.bind(7, collect(at_b)));
  for (int i = 0; i < 3; ++i) send_str(sa, kIpB, 7, std::to_string(i));
  n.clock.advance(1500 * kMillisecond);
  EXPECT_TRUE(at_b.empty());
  n.clock.advance(kSecond);
  ASSERT_EQ(at_b.size(), 3u);
  EXPECT_EQ(at_b[0].data, "0");
  EXPECT_EQ(at_b[2].data, "2");
  EXPECT_EQ(n.a.stats().arp_tx_requests, 3u);
  EXPECT_EQ(n.a.stats().arp_resolve_failed, 0u);
}

TEST(Arp, EntriesExpireAndAreResolvedAgain) {
  TwoStacks n;
  UdpSocket sa(n.a);
  send_str(sa, kIpB, 7, "x");
  n.clock.advance(kMillisecond);
  EXPECT_EQ(send_str(sa, kIpB, 7, "x"), TxResult::kSent);
  n.clock.advance(60 * kSecond);
  EXPECT_FALSE(n.a.arp().lookup(kIpB).has_value());
  EXPECT_EQ(send_str(sa, kIpB, 7, "x"), TxResult::kQueued);
  EXPECT_EQ(n.a.stats().arp_expired, 1u);
  EXPECT_EQ(n.a.stats().arp_tx_requests, 2u);
  n.clock.advance(kMillisecond);
  EXPECT_TRUE(n.a.arp().lookup(kIpB).has_value());
}

TEST(Arp, CacheIsBoundedAndPendingEntriesAreKept) {
  ArpConfig small;
  small.max_entries = 2;
  TwoStacks n(config(kIpA), config(kIpB), small);
  UdpSocket sa(n.a);
  EXPECT_EQ(send_str(sa, Ipv4Address::of(10, 0, 0, 50), 7, "x"), TxResult::kQueued);
  EXPECT_EQ(send_str(sa, Ipv4Address::of(10, 0, 0, 51), 7, "x"), TxResult::kQueued);
  EXPECT_EQ(send_str(sa, Ipv4Address::of(10, 0, 0, 52), 7, "x"), TxResult::kNoResources);
  EXPECT_EQ(n.a.stats().arp_tx_fail_cache_full, 1u);
  n.clock.advance(4 * kSecond);  // both fail
  EXPECT_EQ(n.a.arp().entry_count(), 0u);
  // Resolved entries are evicted to make room.
  send_str(sa, kIpB, 7, "x");
  n.clock.advance(kMillisecond);
  EXPECT_EQ(send_str(sa, Ipv4Address::of(10, 0, 0, 50), 7, "x"), TxResult::kQueued);
  EXPECT_EQ(send_str(sa, Ipv4Address::of(10, 0, 0, 51), 7, "x"), TxResult::kQueued);
  EXPECT_FALSE(n.a.arp().lookup(kIpB).has_value());
  EXPECT_EQ(n.a.arp().entry_count(), 2u);
}

TEST(Arp, AnswersRequestsForUsOnlyAndLearnsTheAsker) {
  TwoStacks n;
  std::vector<std::vector<uint8_t>> from_b;
  n.db.set_filter([&](std::vector<uint8_t>& f) {
    from_b.push_back(f);
    return true;
  });
  auto req = arp_frame(kArpRequest, kBroadcastMac, kMacC, kIpC, kZeroMac, kIpB);
  n.db.inject(req.data(), req.size());
  ASSERT_EQ(from_b.size(), 1u);
  const auto& r = from_b[0];
  ASSERT_TRUE(is_arp(r, kArpReply));
  EXPECT_EQ(std::memcmp(r.data(), kMacC.b, 6), 0);       // unicast to the asker
  EXPECT_EQ(std::memcmp(&r[22], kMacB.b, 6), 0);         // sender: B
  EXPECT_EQ(load32(&r[28]), kIpB.value);
  EXPECT_EQ(std::memcmp(&r[32], kMacC.b, 6), 0);         // target: C
  EXPECT_EQ(load32(&r[38]), kIpC.value);
  ASSERT_TRUE(n.b.arp().lookup(kIpC).has_value());
  EXPECT_EQ(*n.b.arp().lookup(kIpC), kMacC);
  // A request for someone else: no answer, nothing learned.
  const Ipv4Address d = Ipv4Address::of(10, 0, 0, 14);
  auto other = arp_frame(kArpRequest, kBroadcastMac, kMacC, d, kZeroMac, kIpA);
  n.db.inject(other.data(), other.size());
  EXPECT_EQ(from_b.size(), 1u);
  EXPECT_FALSE(n.b.arp().lookup(d).has_value());
  // A probe (sender 0.0.0.0) is answered but teaches nothing.
  auto probe = arp_frame(kArpRequest, kBroadcastMac, kMacC, Ipv4Address{}, kZeroMac, kIpB);
  n.db.inject(probe.data(), probe.size());
  EXPECT_EQ(from_b.size(), 2u);
  EXPECT_FALSE(n.b.arp().lookup(Ipv4Address{}).has_value());
}

TEST(Arp, GratuitousUpdateAndConflict) {
  TwoStacks n;
  UdpSocket sa(n.a);
  send_str(sa, kIpB, 7, "x");
  n.clock.advance(kMillisecond);
  // B moves to another MAC and announces it: A updates its entry.
  auto moved = arp_frame(kArpRequest, kBroadcastMac, kMacC, kIpB, kZeroMac, kIpB);
  n.da.inject(moved.data(), moved.size());
  EXPECT_EQ(*n.a.arp().lookup(kIpB), kMacC);
  // Someone claims A's address.
  auto claim = arp_frame(kArpReply, kBroadcastMac, kMacC, kIpA, kZeroMac, kIpA);
  n.da.inject(claim.data(), claim.size());
  EXPECT_EQ(n.a.stats().arp_conflicts, 1u);
}

TEST(Stack, LossyLinkLosesSomeButNeverMisbehaves) {
  TwoStacks n;
  std::mt19937 rng(1234);
  auto lossy = [&](std::vector<uint8_t>&) { return std::uniform_int_distribution<int>(0, 99)(rng) >= 30; };
  n.da.set_filter(lossy);
  n.db.set_filter(lossy);
  std::vector<PingEvent> events;
  n.a.icmp().ping(kIpB, 50, 100 * kMillisecond, [&](const PingEvent& e) { events.push_back(e); });
  n.clock.run_all();
  ASSERT_FALSE(events.empty());
  const PingEvent& done = events.back();
  ASSERT_TRUE(done.done);
  EXPECT_EQ(done.sent, 50u);
  EXPECT_EQ(done.received, events.size() - 1);
  EXPECT_GT(done.received, 10u);   // ~49% of round trips survive
  EXPECT_LT(done.received, 45u);
  std::set<uint16_t> seqs;
  for (size_t i = 0; i + 1 < events.size(); ++i) seqs.insert(events[i].seq);
  EXPECT_EQ(seqs.size(), done.received);  // no duplicates

  // UDP echo over the same link: every echo that arrives is intact.
  UdpSocket server(n.b), client(n.a);
  ASSERT_TRUE(server.bind(7, [&](Ipv4Address src, uint16_t port, const uint8_t* d, size_t len) {
    server.sendto(src, port, d, len);
  }));
  std::vector<Received> echoes;
  ASSERT_TRUE(client.bind(0, collect(echoes)));
  for (int i = 0; i < 100; ++i) {
    send_str(client, kIpB, 7, "datagram " + std::to_string(i));
    n.clock.advance(10 * kMillisecond);
  }
  n.clock.run_all();
  EXPECT_GT(echoes.size(), 20u);
  EXPECT_LT(echoes.size(), 90u);
  for (const auto& e : echoes) EXPECT_EQ(e.data.rfind("datagram ", 0), 0u);
  EXPECT_EQ(n.a.stats().total_drops(), 0u);  // loss is silence, not damage
}

TEST(Stats, NamesAreUniqueAndEveryCounterIsVisited) {
  NetStats s;
  std::set<std::string> names;
  size_t count = 0;
  s.for_each([&](const char* proto, const char* name, uint64_t v) {
    names.insert(std::string(proto) + "." + name);
    EXPECT_EQ(v, 0u);
    ++count;
  });
  EXPECT_EQ(names.size(), count);
  EXPECT_EQ(count * sizeof(uint64_t), sizeof(NetStats));
  s.frag_drop_overlap = 2;
  s.udp_drop_no_socket = 3;
  s.udp_delivered = 100;
  EXPECT_EQ(s.total_drops(), 5u);
}

TEST(Stack, DestroyedWithTimersAndSocketsPending) {
  FakeClock clock;
  PairDevice da(clock, kMacA), db(clock, kMacB);
  PairDevice::connect(da, db);
  auto a = std::make_unique<Stack>(da, clock, config(kIpA));
  a->up();
  UdpSocket s(*a);
  send_str(s, kIpC, 7, "pending ARP");
  a->icmp().ping(kIpB, 3, kSecond, [](const PingEvent&) { FAIL() << "no event after destruction"; });
  a.reset();
  EXPECT_FALSE(s.bound());
  EXPECT_EQ(s.sendto(kIpB, 7, nullptr, 0), TxResult::kNoRoute);
  clock.run_all();  // only the cable's frames remain; they reach nobody
  EXPECT_EQ(clock.pending(), 0u);
}

}  // namespace
}  // namespace net
