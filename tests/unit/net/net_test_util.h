// Shared pieces of the network stack tests: two stacks joined by a
// PairDevice over a FakeClock, and frame builders written independently
// of the stack's own writers (explicit offsets, a reference checksum), so
// the tests do not check the code against itself.
#pragma once

#include <cstdint>
#include <cstring>
#include <vector>

#include "guest-kernel/net/pair_device.h"
#include "guest-kernel/net/stack.h"
#include "tests/unit/net/fake_clock.h"

namespace net::test {

constexpr MacAddress kMacA{{0x52, 0x54, 0x00, 0x00, 0x00, 0x0a}};
constexpr MacAddress kMacB{{0x52, 0x54, 0x00, 0x00, 0x00, 0x0b}};
constexpr MacAddress kMacC{{0x52, 0x54, 0x00, 0x00, 0x00, 0x0c}};
constexpr Ipv4Address kIpA = Ipv4Address::of(10, 0, 0, 11);
constexpr Ipv4Address kIpB = Ipv4Address::of(10, 0, 0, 12);
constexpr Ipv4Address kIpC = Ipv4Address::of(10, 0, 0, 13);
constexpr Ipv4Address kGateway = Ipv4Address::of(10, 0, 0, 1);

inline InterfaceConfig config(Ipv4Address ip, Ipv4Address gw = {}) {
  InterfaceConfig c;
  c.address = ip;
  c.gateway = gw;
  return c;
}

// Two stacks, A and B, on one cable.
struct TwoStacks {
  explicit TwoStacks(InterfaceConfig ca = config(kIpA), InterfaceConfig cb = config(kIpB), ArpConfig arp = {},
                     ReassemblyConfig reassembly = {})
      : a(da, clock, ca, arp, reassembly), b(db, clock, cb, arp, reassembly) {
    PairDevice::connect(da, db);
    a.up();
    b.up();
    clock.advance(kMillisecond);  // the announcements arrive
  }
  FakeClock clock;
  PairDevice da{clock, kMacA}, db{clock, kMacB};
  Stack a, b;
};

// The RFC 1071 sum, the obvious way.
inline uint16_t ref_checksum(const uint8_t* p, size_t n, uint32_t sum = 0) {
  for (size_t i = 0; i < n; ++i) sum += (i % 2 == 0) ? p[i] << 8 : p[i];
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

inline void put16(std::vector<uint8_t>& f, size_t at, uint16_t v) {
  f[at] = static_cast<uint8_t>(v >> 8);
  f[at + 1] = static_cast<uint8_t>(v);
}
inline void put32(std::vector<uint8_t>& f, size_t at, uint32_t v) {
  put16(f, at, static_cast<uint16_t>(v >> 16));
  put16(f, at + 2, static_cast<uint16_t>(v));
}

inline std::vector<uint8_t> eth_header(const MacAddress& dst, const MacAddress& src, uint16_t type) {
  std::vector<uint8_t> f(14);
  std::memcpy(f.data(), dst.b, 6);
  std::memcpy(f.data() + 6, src.b, 6);
  put16(f, 12, type);
  return f;
}

// Offsets in a frame built below (no IP options).
constexpr size_t kIp = 14, kL4 = 34;

// Recomputes the IPv4 header checksum (IHL from the frame, clamped).
inline void fix_ip_checksum(std::vector<uint8_t>& f) {
  size_t ihl = (f[kIp] & 0xf) * 4u;
  if (kIp + ihl > f.size()) ihl = f.size() - kIp;
  put16(f, kIp + 10, 0);
  put16(f, kIp + 10, ref_checksum(f.data() + kIp, ihl));
}

inline std::vector<uint8_t> ipv4_frame(const MacAddress& dst_mac, const MacAddress& src_mac, Ipv4Address src,
                                       Ipv4Address dst, uint8_t proto, const std::vector<uint8_t>& l4) {
  std::vector<uint8_t> f = eth_header(dst_mac, src_mac, 0x0800);
  f.resize(kL4);
  f[kIp] = 0x45;
  put16(f, kIp + 2, static_cast<uint16_t>(20 + l4.size()));
  put16(f, kIp + 4, 0x1234);
  put16(f, kIp + 6, 0x4000);
  f[kIp + 8] = 64;
  f[kIp + 9] = proto;
  put32(f, kIp + 12, src.value);
  put32(f, kIp + 16, dst.value);
  f.insert(f.end(), l4.begin(), l4.end());
  fix_ip_checksum(f);
  return f;
}

// One fragment of a datagram whose IPv4 payload is `payload`: bytes
// [off, off + len), MF as given, DF clear.
inline std::vector<uint8_t> ipv4_fragment(const MacAddress& dst_mac, const MacAddress& src_mac, Ipv4Address src,
                                          Ipv4Address dst, uint8_t proto, uint16_t id,
                                          const std::vector<uint8_t>& payload, size_t off, size_t len, bool mf) {
  std::vector<uint8_t> part(payload.begin() + off, payload.begin() + off + len);
  std::vector<uint8_t> f = ipv4_frame(dst_mac, src_mac, src, dst, proto, part);
  put16(f, kIp + 4, id);
  put16(f, kIp + 6, static_cast<uint16_t>((mf ? 0x2000 : 0) | (off / 8)));
  fix_ip_checksum(f);
  return f;
}

// `payload` cut into fragments of `size` bytes (a multiple of 8; the last
// one shorter), in order.
inline std::vector<std::vector<uint8_t>> ipv4_fragments(const MacAddress& dst_mac, const MacAddress& src_mac,
                                                        Ipv4Address src, Ipv4Address dst, uint8_t proto, uint16_t id,
                                                        const std::vector<uint8_t>& payload, size_t size) {
  std::vector<std::vector<uint8_t>> out;
  for (size_t off = 0; off < payload.size(); off += size) {
    const size_t len = payload.size() - off < size ? payload.size() - off : size;
    out.push_back(ipv4_fragment(dst_mac, src_mac, src, dst, proto, id, payload, off, len, off + len < payload.size()));
  }
  return out;
}

inline std::vector<uint8_t> udp_segment(Ipv4Address src, Ipv4Address dst, uint16_t sport, uint16_t dport,
                                        const std::vector<uint8_t>& data, bool with_checksum = true) {
  std::vector<uint8_t> u(8);
  put16(u, 0, sport);
  put16(u, 2, dport);
  put16(u, 4, static_cast<uint16_t>(8 + data.size()));
  u.insert(u.end(), data.begin(), data.end());
  if (with_checksum) {
    std::vector<uint8_t> ph(12);
    put32(ph, 0, src.value);
    put32(ph, 4, dst.value);
    ph[9] = 17;
    put16(ph, 10, static_cast<uint16_t>(u.size()));
    ph.insert(ph.end(), u.begin(), u.end());
    uint16_t c = ref_checksum(ph.data(), ph.size());
    put16(u, 6, c ? c : 0xffff);
  }
  return u;
}

inline std::vector<uint8_t> icmp_echo(uint8_t type, uint16_t id, uint16_t seq, const std::vector<uint8_t>& data) {
  std::vector<uint8_t> m(8);
  m[0] = type;
  put16(m, 4, id);
  put16(m, 6, seq);
  m.insert(m.end(), data.begin(), data.end());
  put16(m, 2, ref_checksum(m.data(), m.size()));
  return m;
}

inline std::vector<uint8_t> arp_frame(uint16_t op, const MacAddress& eth_dst, const MacAddress& sender_mac,
                                      Ipv4Address sender_ip, const MacAddress& target_mac, Ipv4Address target_ip) {
  std::vector<uint8_t> f = eth_header(eth_dst, sender_mac, 0x0806);
  f.resize(14 + 28);
  put16(f, 14, 1);
  put16(f, 16, 0x0800);
  f[18] = 6;
  f[19] = 4;
  put16(f, 20, op);
  std::memcpy(&f[22], sender_mac.b, 6);
  put32(f, 28, sender_ip.value);
  std::memcpy(&f[32], target_mac.b, 6);
  put32(f, 38, target_ip.value);
  return f;
}

// `n` bytes that differ from one datagram (`seed`) to the next.
inline std::vector<uint8_t> pattern(size_t n, uint32_t seed) {
  std::vector<uint8_t> v(n);
  uint32_t x = seed * 2654435761u + 1;
  for (auto& b : v) {
    x = x * 1103515245u + 12345u;
    b = static_cast<uint8_t>(x >> 16);
  }
  return v;
}

inline std::vector<uint8_t> bytes(const char* s) { return std::vector<uint8_t>(s, s + std::strlen(s)); }

}  // namespace net::test
