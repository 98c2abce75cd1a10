// Self-tests of the network stack inside the guest, without a NIC: the
// parsers and checksums under the kernel's compiler flags, and two whole
// stacks joined by an in-memory cable running on the real event loop and
// clock (the binding the NIC drivers will use).
#include <stdint.h>

#include <vector>

#include "guest-kernel/kernel/event_loop.h"
#include "guest-kernel/kernel/selftest.h"
#include "guest-kernel/lib/print.h"
#include "guest-kernel/lib/string.h"
#include "guest-kernel/net/event_loop_clock.h"
#include "guest-kernel/net/pair_device.h"
#include "guest-kernel/net/parse.h"
#include "guest-kernel/net/stack.h"

namespace {

using namespace net;

constexpr MacAddress kMacA{{0x52, 0x54, 0, 0, 0, 0x0a}};
constexpr MacAddress kMacB{{0x52, 0x54, 0, 0, 0, 0x0b}};

}  // namespace

KTEST(net_checksum_known_vector) {
  // RFC 1071's example words, and a captured IPv4 header (checksum b861).
  const uint8_t words[] = {0x00, 0x01, 0xf2, 0x03, 0xf4, 0xf5, 0xf6, 0xf7};
  KCHECK(checksum_finish(checksum_add(0, words, sizeof words)) == static_cast<uint16_t>(~0xddf2));
  const uint8_t h[] = {0x45, 0x00, 0x00, 0x73, 0x00, 0x00, 0x40, 0x00, 0x40, 0x11,
                       0x00, 0x00, 0xc0, 0xa8, 0x00, 0x01, 0xc0, 0xa8, 0x00, 0xc7};
  KCHECK(internet_checksum(h, sizeof h) == 0xb861);
}

KTEST(net_parse_command_line_values) {
  InterfaceConfig c;
  KCHECK(parse_interface_config("10.0.0.11", nullptr, "10.0.0.1", &c) == nullptr);
  KCHECK(c.address == Ipv4Address::of(10, 0, 0, 11) && c.netmask == Ipv4Address::of(255, 255, 255, 0));
  KCHECK(c.gateway == Ipv4Address::of(10, 0, 0, 1));
  KCHECK(parse_interface_config("10.0.0.11", "16", nullptr, &c) == nullptr && c.netmask.value == 0xffff0000u);
  KCHECK(parse_interface_config("10.0.0.256", nullptr, nullptr, &c) != nullptr);
  KCHECK(parse_interface_config("10.0.0.11", nullptr, "10.0.1.1", &c) != nullptr);
  KCHECK(parse_interface_config("10.0.0.11", "255.0.255.0", nullptr, &c) != nullptr);
  PingArgs p;
  KCHECK(parse_ping_args("10.0.0.12,5", &p) == nullptr && p.count == 5 && p.dst == Ipv4Address::of(10, 0, 0, 12));
  KCHECK(parse_ping_args("10.0.0.12,0", &p) != nullptr);
  UdpSendArgs s;
  KCHECK(parse_udp_send_args("10.0.0.12:7,4", &s) == nullptr && s.port == 7 && s.count == 4);
  KCHECK(parse_udp_send_args("10.0.0.12:70000,4", &s) != nullptr);
  UdpEchoArgs e;
  KCHECK(parse_udp_echo_args("7", &e) == nullptr && e.port == 7 && e.count == 0);
  char buf[18];
  format_ipv4(Ipv4Address::of(192, 168, 10, 1), buf);
  KCHECK(strcmp(buf, "192.168.10.1") == 0);
}

KTEST(net_parsers_refuse_every_truncation) {
  // A UDP datagram built by the stack's writers, cut at every length.
  const Ipv4Address a = Ipv4Address::of(10, 0, 0, 11), b = Ipv4Address::of(10, 0, 0, 12);
  const size_t n = kIpv4HeaderLen + kUdpHeaderLen + 5;
  uint8_t pkt[n];
  memcpy(pkt + kIpv4HeaderLen + kUdpHeaderLen, "hello", 5);
  write_udp(pkt + kIpv4HeaderLen, a, b, 1000, 7, 5);
  write_ipv4(pkt, a, b, kProtoUdp, 1, kUdpHeaderLen + 5);
  Ipv4Packet ip;
  KCHECK(parse_ipv4(pkt, n, &ip) == Ipv4Error::kNone);
  UdpDatagram d;
  KCHECK(parse_udp(ip.payload, ip.payload_len, ip.src, ip.dst, &d) == UdpError::kNone && d.data_len == 5);
  for (size_t len = 0; len < n; ++len) KCHECKF(parse_ipv4(pkt, len, &ip) != Ipv4Error::kNone, "cut at %zu", len);
  pkt[kIpv4HeaderLen + kUdpHeaderLen] ^= 1;  // payload damaged: the UDP checksum notices
  KCHECK(parse_udp(ip.payload, ip.payload_len, ip.src, ip.dst, &d) == UdpError::kBadChecksum);
  pkt[6] = 0x20;  // MF
  KCHECK(parse_ipv4(pkt, n, &ip) != Ipv4Error::kNone);
}

KTEST(net_two_stacks_on_the_event_loop) {
  EventLoopClock clock;
  PairDevice da(clock, kMacA), db(clock, kMacB);
  PairDevice::connect(da, db);
  InterfaceConfig ca, cb;
  ca.address = Ipv4Address::of(10, 0, 0, 11);
  cb.address = Ipv4Address::of(10, 0, 0, 12);
  Stack a(da, clock, ca), b(db, clock, cb);
  a.up();
  b.up();
  EventLoop& loop = EventLoop::instance();
  bool timed_out = false;
  const auto guard = loop.add_timer(2 * kSecond, [&] { timed_out = true; });

  // Ping: 3 requests 10 ms apart, every reply back.
  unsigned replies = 0;
  bool done = false;
  PingEvent summary{};
  a.icmp().ping(cb.address, 3, 10 * kMillisecond, [&](const PingEvent& e) {
    if (e.done) {
      done = true;
      summary = e;
    } else {
      ++replies;
    }
  });
  loop.run([&] { return done || timed_out; });
  KCHECK(!timed_out);
  KCHECK(replies == 3 && summary.sent == 3 && summary.received == 3);

  // UDP echo, B serving A.
  UdpSocket server(b), client(a);
  KCHECK(server.bind(7, [&](Ipv4Address src, uint16_t port, const uint8_t* d, size_t n) {
    server.sendto(src, port, d, n);
  }));
  unsigned echoes = 0;
  KCHECK(client.bind(0, [&](Ipv4Address src, uint16_t port, const uint8_t* d, size_t n) {
    if (src == cb.address && port == 7 && n == 4 && memcmp(d, "echo", 4) == 0) ++echoes;
  }));
  for (int i = 0; i < 5; ++i) KCHECK(tx_ok(client.sendto(cb.address, 7, reinterpret_cast<const uint8_t*>("echo"), 4)));
  loop.run([&] { return echoes == 5 || timed_out; });
  KCHECK(!timed_out);
  KCHECK(echoes == 5);
  KCHECKF(a.stats().total_drops() == 0 && b.stats().total_drops() == 0, "drops: a %lu b %lu",
          static_cast<unsigned long>(a.stats().total_drops()), static_cast<unsigned long>(b.stats().total_drops()));
  loop.cancel_timer(guard);
}
