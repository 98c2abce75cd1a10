// The network demos of the kernel command line (see net_boot.h), used by
// the integration tests: ping=, udp-echo=, udp-send=. Each runs the event
// loop until it is done. Guest only.
#include <vector>

#include "boot/platform.h"
#include "guest-kernel/kernel/event_loop.h"
#include "guest-kernel/kernel/exit.h"
#include "guest-kernel/lib/print.h"
#include "guest-kernel/lib/string.h"
#include "guest-kernel/net/net_boot.h"
#include "guest-kernel/net/parse.h"

namespace net {

namespace {

// Per-datagram wait for udp-send's echo; the first also covers ARP
// resolution while the peer may still be booting (3 requests, 1 s apart).
constexpr uint64_t kEchoWaitNs = 1 * kSecond;
constexpr uint64_t kFirstEchoWaitNs = 4 * kSecond;

uint32_t run_ping(Stack& s, const PingArgs& args) {
  char dst[16];
  format_ipv4(args.dst, dst);
  kprintf("ping: %s, %u requests %u ms apart\n", dst, args.count, args.interval_ms);
  bool done = false;
  unsigned sent = 0, received = 0;
  const uint16_t id = s.icmp().ping(args.dst, args.count, args.interval_ms * kMillisecond, [&](const PingEvent& e) {
    if (e.done) {
      done = true;
      sent = e.sent;
      received = e.received;
      return;
    }
    char from[16];
    format_ipv4(e.from, from);
    const uint64_t tenths = (e.rtt_ns + 50'000) / 100'000;  // rounded to 0.1 ms
    kprintf("ping: reply from %s seq=%u time=%lu.%lu ms\n", from, e.seq, static_cast<unsigned long>(tenths / 10),
            static_cast<unsigned long>(tenths % 10));
  });
  if (!id) {
    kprintf("ping: could not start\n");
    return platform::kStatusTestsFailed;
  }
  EventLoop::instance().run([&] { return done; });
  kprintf("ping: %u sent, %u received\n", sent, received);
  return sent == args.count && received == args.count ? platform::kStatusOk : platform::kStatusTestsFailed;
}

uint32_t run_udp_echo(Stack& s, const UdpEchoArgs& args) {
  UdpSocket sock(s);
  unsigned echoed = 0;
  if (!sock.bind(args.port, [&](Ipv4Address src, uint16_t port, const uint8_t* data, size_t len) {
        if (tx_ok(sock.sendto(src, port, data, len))) ++echoed;
      })) {
    kprintf("udp-echo: port %u is taken\n", args.port);
    return platform::kStatusTestsFailed;
  }
  char addr[16];
  format_ipv4(s.address(), addr);
  if (args.count)
    kprintf("udp-echo: listening on %s port %u for %u datagrams\n", addr, args.port, args.count);
  else
    kprintf("udp-echo: listening on %s port %u\n", addr, args.port);
  EventLoop::instance().run([&] { return args.count && echoed >= args.count; });
  kprintf("udp-echo: %u echoed\n", echoed);
  return platform::kStatusOk;
}

uint32_t run_udp_send(Stack& s, const UdpSendArgs& args) {
  UdpSocket sock(s);
  std::vector<uint8_t> expect;
  bool echoed = false;
  if (!sock.bind(0, [&](Ipv4Address src, uint16_t port, const uint8_t* data, size_t len) {
        // Only the echo of the datagram in flight counts: right peer,
        // right port, same bytes.
        if (src == args.dst && port == args.port && len == expect.size() && memcmp(data, expect.data(), len) == 0)
          echoed = true;
      })) {
    kprintf("udp: no ephemeral port\n");
    return platform::kStatusTestsFailed;
  }
  char dst[16];
  format_ipv4(args.dst, dst);
  if (args.size)
    kprintf("udp: sending %u datagrams of %zu bytes to %s port %u from port %u\n", args.count, args.size, dst,
            args.port, sock.local_port());
  else
    kprintf("udp: sending %u datagrams to %s port %u from port %u\n", args.count, dst, args.port, sock.local_port());
  EventLoop& loop = EventLoop::instance();
  unsigned sent = 0, matched = 0;
  for (unsigned i = 0; i < args.count; ++i) {
    char text[48];
    const size_t text_len = ksnprintf(text, sizeof text, "udp-send %u of %u", i + 1, args.count);
    // The text, then (with SIZE) bytes that differ by datagram and by
    // position, so that a fragment put back in the wrong place shows.
    expect.resize(args.size ? args.size : text_len);
    for (size_t k = 0; k < expect.size(); ++k)
      expect[k] = k < text_len ? static_cast<uint8_t>(text[k]) : static_cast<uint8_t>(k * 7 + (k >> 8) + i * 13);
    echoed = false;
    const TxResult r = sock.sendto(args.dst, args.port, expect.data(), expect.size());
    ++sent;
    if (!tx_ok(r)) {
      kprintf("udp: datagram %u not sent: %s\n", i + 1, to_string(r));
      continue;
    }
    bool timed_out = false;
    const auto timer = loop.add_timer(i == 0 ? kFirstEchoWaitNs : kEchoWaitNs, [&] { timed_out = true; });
    loop.run([&] { return echoed || timed_out; });
    loop.cancel_timer(timer);
    if (echoed) ++matched;
  }
  kprintf("udp: %u sent, %u echoed\n", sent, matched);
  return matched == args.count ? platform::kStatusOk : platform::kStatusTestsFailed;
}

}  // namespace

bool run_demos(const Cmdline& cmdline, uint32_t* status) {
  enum { kPing, kEcho, kSend } demo;
  const char* key;
  if (cmdline.has("ping")) demo = kPing, key = "ping";
  else if (cmdline.has("udp-echo")) demo = kEcho, key = "udp-echo";
  else if (cmdline.has("udp-send")) demo = kSend, key = "udp-send";
  else return false;
  char value[64];
  if (!cmdline.get(key, value, sizeof value)) panic("%s= needs a value (at most %zu characters)", key, sizeof value - 1);
  Stack* s = stack();
  // The arguments are checked first, so a typo is reported even without a NIC.
  PingArgs ping;
  UdpEchoArgs echo;
  UdpSendArgs send;
  const char* err = demo == kPing   ? parse_ping_args(value, &ping)
                    : demo == kEcho ? parse_udp_echo_args(value, &echo)
                                    : parse_udp_send_args(value, &send);
  if (err) panic("%s", err);
  if (!s) {
    kprintf("%s: no network (needs a network device and ip=)\n", key);
    *status = platform::kStatusTestsFailed;
    return true;
  }
  *status = demo == kPing ? run_ping(*s, ping) : demo == kEcho ? run_udp_echo(*s, echo) : run_udp_send(*s, send);
  if (cmdline.has("net-stats") || *status != platform::kStatusOk) print_stats(s->stats());
  // linger=MS: stay on the network a while (answering ARP, pings, echoes)
  // so that a peer still running its own demo is not left talking to nobody.
  unsigned long linger_ms = 0;
  if (cmdline.has("linger") && (!cmdline.get_uint("linger", &linger_ms) || linger_ms > 600'000)) {
    panic("linger= needs milliseconds, at most 600000");
  }
  if (linger_ms) {
    bool done = false;
    EventLoop& loop = EventLoop::instance();
    loop.add_timer(linger_ms * kMillisecond, [&done] { done = true; });
    loop.run([&done] { return done; });
  }
  return true;
}

}  // namespace net
