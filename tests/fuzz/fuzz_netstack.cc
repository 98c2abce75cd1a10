// libFuzzer target: a hostile network against the guest's network stack.
// The input is a program: frames of any length and content injected into
// stack B, interleaved with time passing and with B sending (UDP to known
// and unknown addresses, pings), so that ARP queues, retries, ping sessions
// and replies to A (which parses them in turn) all see hostile state. The
// stack must never crash or read out of bounds, and its bounds must hold.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "guest-kernel/net/pair_device.h"
#include "guest-kernel/net/stack.h"
#include "tests/fuzz/fuzz_input.h"
#include "tests/unit/net/fake_clock.h"

namespace {

using namespace net;
using fuzz::Input;

#define CHECK(c) \
  do {           \
    if (!(c)) __builtin_trap(); \
  } while (0)

constexpr MacAddress kMacA{{0x52, 0x54, 0, 0, 0, 0x0a}};
constexpr MacAddress kMacB{{0x52, 0x54, 0, 0, 0, 0x0b}};

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  Input in{data, size};
  FakeClock clock;
  PairDevice da(clock, kMacA), db(clock, kMacB);
  PairDevice::connect(da, db);
  InterfaceConfig ca, cb;
  ca.address = Ipv4Address::of(10, 0, 0, 11);
  cb.address = Ipv4Address::of(10, 0, 0, 12);
  cb.gateway = Ipv4Address::of(10, 0, 0, 1);
  ArpConfig arp;
  arp.max_entries = 8;  // small, so eviction and "cache full" are reachable
  arp.max_pending = 4;
  Stack a(da, clock, ca, arp), b(db, clock, cb, arp);
  a.up();
  b.up();
  UdpSocket echo(b), client(b);
  echo.bind(7, [&](Ipv4Address src, uint16_t port, const uint8_t* d, size_t n) {
    CHECK(n <= kUdpMaxPayload);
    echo.sendto(src, port, d, n);
  });
  uint64_t injected = 0, pings = 0;
  std::vector<uint8_t> frame;
  for (int ops = 0; in.n && ops < 256; ++ops) {
    const uint8_t op = static_cast<uint8_t>(in.take(1));
    switch (op % 6) {
      case 0:
      case 1:
      case 2: {  // a frame from the wire
        const size_t len = in.take(2) % (kEthMaxFrame + 64);
        const size_t k = len < in.n ? len : in.n;
        frame.assign(in.p, in.p + k);  // exact size: ASan sees over-reads
        in.p += k;
        in.n -= k;
        // Often make it for B, so that it gets past the Ethernet check.
        if (op & 0x40 && frame.size() >= 6) std::copy(kMacB.b, kMacB.b + 6, frame.begin());
        db.inject(frame.data(), frame.size());
        ++injected;
        break;
      }
      case 3:
        clock.advance(in.take(2) * kMillisecond);
        break;
      case 4: {  // B sends to a fuzzed address
        const Ipv4Address dst{static_cast<uint32_t>(in.take(4))};
        const size_t len = in.take(2) % (kUdpMaxPayload + 8);
        std::vector<uint8_t> payload(len, op);
        client.sendto(dst, static_cast<uint16_t>(in.take(2)), payload.data(), payload.size());
        break;
      }
      case 5:
        if (b.icmp().ping(Ipv4Address{static_cast<uint32_t>(in.take(4))}, 1 + op % 4, 100 * kMillisecond,
                          [&](const PingEvent& e) { CHECK(e.received <= e.sent); }))
          ++pings;
        break;
    }
    CHECK(b.arp().entry_count() <= arp.max_entries);
  }
  clock.run_all();
  CHECK(b.icmp().active_pings() == 0 && a.icmp().active_pings() == 0);
  CHECK(b.stats().eth_rx >= injected);
  (void)pings;
  return 0;
}
