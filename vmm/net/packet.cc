#include "vmm/net/packet.h"

#include <cstdio>
#include <cstring>
#include <stdexcept>

namespace vmm::net {

std::string format_ipv4(Ipv4 ip) {
  char b[16];
  snprintf(b, sizeof b, "%u.%u.%u.%u", ip >> 24, (ip >> 16) & 0xff, (ip >> 8) & 0xff, ip & 0xff);
  return b;
}

uint16_t load16(const uint8_t* p) { return static_cast<uint16_t>((p[0] << 8) | p[1]); }
uint32_t load32(const uint8_t* p) { return (uint32_t(p[0]) << 24) | (uint32_t(p[1]) << 16) | (uint32_t(p[2]) << 8) | p[3]; }
void store16(uint8_t* p, uint16_t v) { p[0] = v >> 8, p[1] = v & 0xff; }
void store32(uint8_t* p, uint32_t v) { p[0] = v >> 24, p[1] = (v >> 16) & 0xff, p[2] = (v >> 8) & 0xff, p[3] = v & 0xff; }
MacAddress load_mac(const uint8_t* p) {
  MacAddress m;
  std::memcpy(m.data(), p, 6);
  return m;
}
uint16_t ether_type(std::span<const uint8_t> frame) { return load16(frame.data() + 12); }

uint32_t checksum_partial(std::span<const uint8_t> data, uint32_t partial) {
  uint64_t sum = partial;
  size_t i = 0;
  for (; i + 1 < data.size(); i += 2) sum += load16(&data[i]);
  if (i < data.size()) sum += uint32_t(data[i]) << 8;  // odd length: pad with a zero byte
  while (sum >> 32) sum = (sum & 0xffffffff) + (sum >> 32);
  return static_cast<uint32_t>(sum);
}

uint16_t checksum_finish(uint32_t partial) {
  uint32_t s = partial;
  while (s >> 16) s = (s & 0xffff) + (s >> 16);
  return static_cast<uint16_t>(~s);
}

uint16_t internet_checksum(std::span<const uint8_t> data) { return checksum_finish(checksum_partial(data)); }

std::optional<ArpPacket> parse_arp(std::span<const uint8_t> p) {
  // htype 1 (Ethernet), ptype IPv4, hlen 6, plen 4, then 20 bytes of addresses.
  if (p.size() < 28 || load16(&p[0]) != 1 || load16(&p[2]) != kEtherTypeIpv4 || p[4] != 6 || p[5] != 4)
    return std::nullopt;
  ArpPacket a;
  a.op = load16(&p[6]);
  if (a.op != kArpRequest && a.op != kArpReply) return std::nullopt;
  a.sender_mac = load_mac(&p[8]);
  a.sender_ip = load32(&p[14]);
  a.target_mac = load_mac(&p[18]);
  a.target_ip = load32(&p[24]);
  return a;
}

namespace {

Frame ethernet(const MacAddress& dst, const MacAddress& src, uint16_t type, size_t payload_len) {
  Frame f(kEthHeaderLen + payload_len, 0);
  std::memcpy(f.data(), dst.data(), 6);
  std::memcpy(f.data() + 6, src.data(), 6);
  store16(f.data() + 12, type);
  return f;
}

uint32_t pseudo_header_sum(Ipv4 src, Ipv4 dst, uint8_t protocol, size_t l4_len) {
  uint8_t ph[12];
  store32(ph, src);
  store32(ph + 4, dst);
  ph[8] = 0, ph[9] = protocol;
  store16(ph + 10, static_cast<uint16_t>(l4_len));
  return checksum_partial(ph);
}

}  // namespace

Frame build_arp(const MacAddress& eth_dst, const MacAddress& eth_src, const ArpPacket& a) {
  Frame f = ethernet(eth_dst, eth_src, kEtherTypeArp, 28);
  uint8_t* p = f.data() + kEthHeaderLen;
  store16(p, 1);
  store16(p + 2, kEtherTypeIpv4);
  p[4] = 6, p[5] = 4;
  store16(p + 6, a.op);
  std::memcpy(p + 8, a.sender_mac.data(), 6);
  store32(p + 14, a.sender_ip);
  std::memcpy(p + 18, a.target_mac.data(), 6);
  store32(p + 24, a.target_ip);
  return f;
}

const char* ip_error_name(IpError e) {
  switch (e) {
    case IpError::kNone: return "ok";
    case IpError::kTruncated: return "truncated";
    case IpError::kBadVersion: return "not version 4";
    case IpError::kBadHeaderLength: return "bad header length";
    case IpError::kBadTotalLength: return "bad total length";
    case IpError::kBadChecksum: return "bad header checksum";
    case IpError::kFragment: return "fragment";
    case IpError::kTtlExpired: return "TTL 0";
  }
  return "?";
}

IpError parse_ipv4(std::span<const uint8_t> l3, Ipv4Packet& out) {
  if (l3.size() < kIpv4HeaderLen) return IpError::kTruncated;
  if (l3[0] >> 4 != 4) return IpError::kBadVersion;
  const size_t ihl = size_t(l3[0] & 0xf) * 4;
  if (ihl < kIpv4HeaderLen || ihl > l3.size()) return IpError::kBadHeaderLength;
  const size_t total = load16(&l3[2]);
  if (total < ihl || total > l3.size()) return IpError::kBadTotalLength;
  if (internet_checksum(l3.first(ihl)) != 0) return IpError::kBadChecksum;
  const uint16_t frag = load16(&l3[6]);
  if ((frag & 0x2000) || (frag & 0x1fff)) return IpError::kFragment;  // MF set or a nonzero offset
  if (l3[8] == 0) return IpError::kTtlExpired;
  out.ttl = l3[8];
  out.protocol = l3[9];
  out.src = load32(&l3[12]);
  out.dst = load32(&l3[16]);
  out.payload = l3.subspan(ihl, total - ihl);
  return IpError::kNone;
}

UdpError parse_udp(const Ipv4Packet& ip, UdpDatagram& out) {
  const auto p = ip.payload;
  if (p.size() < kUdpHeaderLen) return UdpError::kTruncated;
  const size_t len = load16(&p[4]);
  if (len < kUdpHeaderLen || len > p.size()) return UdpError::kBadLength;
  if (load16(&p[6]) != 0 &&
      checksum_finish(checksum_partial(p.first(len), pseudo_header_sum(ip.src, ip.dst, kIpProtoUdp, len))) != 0)
    return UdpError::kBadChecksum;
  out.src_port = load16(&p[0]);
  out.dst_port = load16(&p[2]);
  out.payload = p.subspan(kUdpHeaderLen, len - kUdpHeaderLen);
  return UdpError::kNone;
}

Frame build_ipv4(const MacAddress& eth_dst, const MacAddress& eth_src, Ipv4 src, Ipv4 dst, uint8_t protocol,
                 uint16_t id, std::span<const uint8_t> l4) {
  if (l4.size() > kMaxFrameLen - kEthHeaderLen - kIpv4HeaderLen) throw std::length_error("IPv4 payload too large");
  Frame f = ethernet(eth_dst, eth_src, kEtherTypeIpv4, kIpv4HeaderLen + l4.size());
  uint8_t* ip = f.data() + kEthHeaderLen;
  ip[0] = 0x45;
  store16(ip + 2, static_cast<uint16_t>(kIpv4HeaderLen + l4.size()));
  store16(ip + 4, id);
  store16(ip + 6, 0x4000);  // DF: we never fragment
  ip[8] = 64;
  ip[9] = protocol;
  store32(ip + 12, src);
  store32(ip + 16, dst);
  store16(ip + 10, internet_checksum({ip, kIpv4HeaderLen}));
  if (!l4.empty()) std::memcpy(ip + kIpv4HeaderLen, l4.data(), l4.size());
  return f;
}

Frame build_udp(const MacAddress& eth_dst, const MacAddress& eth_src, Ipv4 src, Ipv4 dst, uint16_t id,
                uint16_t src_port, uint16_t dst_port, std::span<const uint8_t> payload) {
  if (payload.size() > kMaxUdpPayload) throw std::length_error("UDP payload too large");
  std::vector<uint8_t> udp(kUdpHeaderLen + payload.size());
  store16(&udp[0], src_port);
  store16(&udp[2], dst_port);
  store16(&udp[4], static_cast<uint16_t>(udp.size()));
  if (!payload.empty()) std::memcpy(&udp[kUdpHeaderLen], payload.data(), payload.size());
  uint16_t sum = checksum_finish(checksum_partial(udp, pseudo_header_sum(src, dst, kIpProtoUdp, udp.size())));
  store16(&udp[6], sum == 0 ? 0xffff : sum);  // 0 means "no checksum" in UDP
  return build_ipv4(eth_dst, eth_src, src, dst, kIpProtoUdp, id, udp);
}

}  // namespace vmm::net
