// libFuzzer target: a hostile network against the guest's network stack.
// The input is a program: frames of any length and content injected into
// stack B, interleaved with time passing and with B sending (UDP to known
// and unknown addresses, pings, datagrams large enough to be fragmented),
// so that ARP queues, retries, ping sessions and replies to A (which
// parses them in turn) all see hostile state. A fragment mode cuts a valid
// UDP datagram into fragments of a fuzzed size, reorders them and
// optionally mutates, duplicates or loses some, so reassembly sees
// plausible fragments, not only random bytes. The stack must never crash
// or read out of bounds, its bounds must hold, and an unmutated datagram
// that reassembly has room for must be delivered.
#include <cstddef>
#include <cstdint>
#include <vector>

#include "guest-kernel/net/pair_device.h"
#include "guest-kernel/net/stack.h"
#include "tests/fuzz/fuzz_input.h"
#include "tests/unit/net/fake_clock.h"
#include "tests/unit/net/net_test_util.h"

namespace {

using namespace net;
using fuzz::Input;

constexpr MacAddress kMacA{{0x52, 0x54, 0, 0, 0, 0x0a}};
constexpr MacAddress kMacB{{0x52, 0x54, 0, 0, 0, 0x0b}};
constexpr Ipv4Address kIpA = Ipv4Address::of(10, 0, 0, 11);
constexpr Ipv4Address kIpB = Ipv4Address::of(10, 0, 0, 12);

// A valid UDP datagram from A to B's echo port, cut into fragments of a
// fuzzed size, shuffled, and perhaps damaged. Returns true if the
// fragments are exactly the datagram's (no mutation, loss or duplicate).
bool fragmented_datagram(Input& in, uint16_t id, std::vector<std::vector<uint8_t>>* out) {
  const size_t len = 1 + in.take(2) % 9000;
  const size_t size = 8 * (1 + in.take(1) % 185);  // 8..1480
  const std::vector<uint8_t> seg = net::test::udp_segment(kIpA, kIpB, 1000, 7, net::test::pattern(len, id));
  *out = net::test::ipv4_fragments(kMacB, kMacA, kIpA, kIpB, kProtoUdp, id, seg, size);
  auto& f = *out;
  const size_t n = f.size();
  for (size_t i = 0, swaps = in.take(1) % 64; i < swaps && i < n; ++i) std::swap(f[i], f[in.take(2) % n]);
  const unsigned mutations = static_cast<unsigned>(in.take(1) % 4);
  for (unsigned m = 0; m < mutations && !f.empty(); ++m) {
    std::vector<uint8_t>& g = f[in.take(2) % f.size()];
    using net::test::kIp;
    using net::test::kL4;
    switch (in.take(1) % 7) {
      case 0:  // payload bit flip: only the UDP checksum can tell
        if (g.size() > kL4) g[kL4 + in.take(2) % (g.size() - kL4)] ^= static_cast<uint8_t>(1u << in.take(1) % 8);
        break;
      case 1: net::test::put16(g, kIp + 6, static_cast<uint16_t>(in.take(2))); break;  // flags and offset
      case 2: g[kIp + 6] ^= 0x20; break;                                                 // MF
      case 3: net::test::put16(g, kIp + 4, static_cast<uint16_t>(in.take(2))); break;    // id
      case 4: {  // a shorter fragment
        const size_t keep = kL4 + in.take(2) % (g.size() - kL4 + 1);
        g.resize(keep);
        net::test::put16(g, kIp + 2, static_cast<uint16_t>(keep - kIp));
        break;
      }
      case 5: f.push_back(f[in.take(2) % f.size()]); break;  // a duplicate
      case 6: f.erase(f.begin() + static_cast<long>(in.take(2) % f.size())); break;  // a loss
    }
    for (auto& h : f) net::test::fix_ip_checksum(h);
  }
  return mutations == 0;
}

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
  arp.max_queued_bytes = 0;  // raised to the minimum: one largest datagram
  ReassemblyConfig reasm;  // small, so that every bound is reachable
  reasm.max_datagrams = 4;
  reasm.max_bytes = 32 * 1024;
  reasm.timeout_ns = 500 * kMillisecond;
  Stack a(da, clock, ca, arp, reasm), b(db, clock, cb, arp, reasm);
  a.up();
  b.up();
  UdpSocket echo(b), client(b), big(a);
  uint64_t echoed = 0;
  echo.bind(7, [&](Ipv4Address src, uint16_t port, const uint8_t* d, size_t n) {
    CHECK(n <= kUdpMaxPayload);
    ++echoed;
    echo.sendto(src, port, d, n);
  });
  uint16_t next_id = 0;
  uint64_t injected = 0, pings = 0;
  std::vector<uint8_t> frame;
  for (int ops = 0; in.n && ops < 256; ++ops) {
    const uint8_t op = static_cast<uint8_t>(in.take(1));
    switch (op % 8) {
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
      case 6: {  // a fragmented datagram for B, maybe damaged
        std::vector<std::vector<uint8_t>> frags;
        const bool clean = fragmented_datagram(in, next_id++, &frags);
        // Alone in reassembly, unmutated, within the bound: it must arrive.
        size_t cost = 0;
        for (const auto& f : frags) cost += f.size() - 34 + Reassembly::kFragmentOverhead;
        const bool must_arrive = clean && b.reassembly().datagrams() == 0 && cost <= reasm.max_bytes;
        const uint64_t before = echoed;
        for (auto& f : frags) {
          db.inject(f.data(), f.size());
          ++injected;
        }
        if (must_arrive) CHECK(echoed == before + 1);
        break;
      }
      case 7: {  // A sends B a large datagram: real fragments, B's echo fragmented back
        const size_t len = in.take(2) % (kUdpMaxPayload + 1);
        const Ipv4Address dst = in.take(1) & 1 ? cb.address : Ipv4Address{static_cast<uint32_t>(in.take(4))};
        std::vector<uint8_t> payload(len, op);
        big.sendto(dst, 7, payload.data(), payload.size());
        break;
      }
    }
    CHECK(b.arp().entry_count() <= arp.max_entries);
    for (Stack* s : {&a, &b}) {
      CHECK(s->reassembly().datagrams() <= reasm.max_datagrams);
      CHECK(s->reassembly().bytes_held() <= reasm.max_bytes);
      CHECK(s->arp().queued_bytes() <= s->arp().config().max_queued_bytes);
    }
  }
  clock.run_all();
  CHECK(b.icmp().active_pings() == 0 && a.icmp().active_pings() == 0);
  // Every reassembly timed out or finished, and nothing is held.
  CHECK(a.reassembly().datagrams() == 0 && b.reassembly().datagrams() == 0);
  CHECK(a.reassembly().bytes_held() == 0 && b.reassembly().bytes_held() == 0);
  CHECK(b.stats().eth_rx >= injected);
  (void)pings;
  return 0;
}
