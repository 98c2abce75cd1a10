#include "guest-kernel/net/wire.h"

#include <string.h>

namespace net {

namespace {

char* put_decimal(char* p, unsigned v) {
  char tmp[4];
  int n = 0;
  do {
    tmp[n++] = static_cast<char>('0' + v % 10);
    v /= 10;
  } while (v);
  while (n) *p++ = tmp[--n];
  return p;
}

MacAddress load_mac(const uint8_t* p) {
  MacAddress m;
  memcpy(m.b, p, 6);
  return m;
}

}  // namespace

void format_ipv4(Ipv4Address a, char* buf) {
  char* p = buf;
  for (int shift = 24; shift >= 0; shift -= 8) {
    p = put_decimal(p, (a.value >> shift) & 0xff);
    if (shift) *p++ = '.';
  }
  *p = '\0';
}

void format_mac(const MacAddress& m, char* buf) {
  static const char kHex[] = "0123456789abcdef";
  for (int i = 0; i < 6; ++i) {
    buf[3 * i] = kHex[m.b[i] >> 4];
    buf[3 * i + 1] = kHex[m.b[i] & 0xf];
    buf[3 * i + 2] = i < 5 ? ':' : '\0';
  }
}

// ---- checksum ----------------------------------------------------------------

uint32_t checksum_add(uint32_t sum, const uint8_t* data, size_t len) {
  // A 64-bit accumulator cannot overflow for any frame we handle; fold
  // back into 32 bits so that callers can chain pieces.
  uint64_t s = sum;
  size_t i = 0;
  for (; i + 1 < len; i += 2) s += load16(data + i);
  if (i < len) s += static_cast<uint32_t>(data[i]) << 8;
  while (s >> 32) s = (s & 0xffffffffu) + (s >> 32);
  return static_cast<uint32_t>(s);
}

uint16_t checksum_finish(uint32_t sum) {
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return static_cast<uint16_t>(~sum);
}

uint32_t pseudo_header_sum(Ipv4Address src, Ipv4Address dst, uint8_t protocol, uint16_t length) {
  uint8_t ph[12];
  store32(ph, src.value);
  store32(ph + 4, dst.value);
  ph[8] = 0;
  ph[9] = protocol;
  store16(ph + 10, length);
  return checksum_add(0, ph, sizeof ph);
}

// ---- Ethernet ----------------------------------------------------------------

EthError parse_eth(const uint8_t* data, size_t len, EthFrame* out) {
  if (len < kEthHeaderLen) return EthError::kRunt;
  if (len > kEthMaxFrame) return EthError::kOversize;
  out->dst = load_mac(data);
  out->src = load_mac(data + 6);
  out->type = load16(data + 12);
  out->payload = data + kEthHeaderLen;
  out->payload_len = len - kEthHeaderLen;
  return EthError::kNone;
}

void write_eth(uint8_t* frame, const MacAddress& dst, const MacAddress& src, uint16_t type) {
  memcpy(frame, dst.b, 6);
  memcpy(frame + 6, src.b, 6);
  store16(frame + 12, type);
}

// ---- ARP -----------------------------------------------------------------------

ArpError parse_arp(const uint8_t* data, size_t len, ArpPacket* out) {
  if (len < kArpLen) return ArpError::kTruncated;
  if (load16(data) != 1 || load16(data + 2) != kEtherTypeIpv4 || data[4] != 6 || data[5] != 4)
    return ArpError::kUnsupported;
  out->op = load16(data + 6);
  if (out->op != kArpRequest && out->op != kArpReply) return ArpError::kBadOperation;
  out->sender_mac = load_mac(data + 8);
  out->sender_ip = {load32(data + 14)};
  out->target_mac = load_mac(data + 18);
  out->target_ip = {load32(data + 24)};
  if (is_group(out->sender_mac) || out->sender_mac == kZeroMac || out->sender_ip.is_limited_broadcast() ||
      out->sender_ip.is_multicast())
    return ArpError::kBadSender;
  return ArpError::kNone;
}

void write_arp(uint8_t* out, const ArpPacket& p) {
  store16(out, 1);
  store16(out + 2, kEtherTypeIpv4);
  out[4] = 6;
  out[5] = 4;
  store16(out + 6, p.op);
  memcpy(out + 8, p.sender_mac.b, 6);
  store32(out + 14, p.sender_ip.value);
  memcpy(out + 18, p.target_mac.b, 6);
  store32(out + 24, p.target_ip.value);
}

// ---- IPv4 ----------------------------------------------------------------------

Ipv4Error parse_ipv4(const uint8_t* data, size_t len, Ipv4Packet* out) {
  if (len < kIpv4HeaderLen) return Ipv4Error::kTruncated;
  if (data[0] >> 4 != 4) return Ipv4Error::kBadVersion;
  const size_t header_len = (data[0] & 0xf) * 4u;
  if (header_len < kIpv4HeaderLen || header_len > len) return Ipv4Error::kBadHeaderLength;
  const size_t total = load16(data + 2);
  if (total < header_len || total > len) return Ipv4Error::kBadTotalLength;
  if (internet_checksum(data, header_len) != 0) return Ipv4Error::kBadChecksum;
  if (data[8] == 0) return Ipv4Error::kBadTtl;
  // DF and the reserved bit mean nothing to a receiver.
  const uint16_t flags_offset = load16(data + 6);
  out->more_fragments = flags_offset & kIpv4MoreFragments;
  out->fragment_offset = (flags_offset & kIpv4OffsetMask) * 8u;
  out->id = load16(data + 4);
  out->ttl = data[8];
  out->protocol = data[9];
  out->src = {load32(data + 12)};
  out->dst = {load32(data + 16)};
  out->payload = data + header_len;  // options, if any, are skipped
  out->payload_len = total - header_len;
  return Ipv4Error::kNone;
}

void write_ipv4(uint8_t* out, Ipv4Address src, Ipv4Address dst, uint8_t protocol, uint16_t id,
                size_t payload_len, uint16_t flags_offset) {
  out[0] = 0x45;  // version 4, 5 words
  out[1] = 0;     // DSCP/ECN
  store16(out + 2, static_cast<uint16_t>(kIpv4HeaderLen + payload_len));
  store16(out + 4, id);
  store16(out + 6, flags_offset);
  out[8] = kDefaultTtl;
  out[9] = protocol;
  store16(out + 10, 0);
  store32(out + 12, src.value);
  store32(out + 16, dst.value);
  store16(out + 10, internet_checksum(out, kIpv4HeaderLen));
}

// ---- ICMP ----------------------------------------------------------------------

IcmpError parse_icmp(const uint8_t* data, size_t len, IcmpMessage* out) {
  if (len < kIcmpHeaderLen) return IcmpError::kTruncated;
  if (internet_checksum(data, len) != 0) return IcmpError::kBadChecksum;
  out->type = data[0];
  out->code = data[1];
  out->id = load16(data + 4);
  out->seq = load16(data + 6);
  out->data = data + kIcmpHeaderLen;
  out->data_len = len - kIcmpHeaderLen;
  return IcmpError::kNone;
}

void write_icmp_echo(uint8_t* out, uint8_t type, uint16_t id, uint16_t seq, size_t data_len) {
  out[0] = type;
  out[1] = 0;
  store16(out + 2, 0);
  store16(out + 4, id);
  store16(out + 6, seq);
  store16(out + 2, internet_checksum(out, kIcmpHeaderLen + data_len));
}

// ---- UDP -----------------------------------------------------------------------

UdpError parse_udp(const uint8_t* data, size_t len, Ipv4Address src, Ipv4Address dst, UdpDatagram* out) {
  if (len < kUdpHeaderLen) return UdpError::kTruncated;
  const size_t udp_len = load16(data + 4);
  if (udp_len < kUdpHeaderLen || udp_len > len) return UdpError::kBadLength;
  const uint16_t sum = load16(data + 6);
  if (sum != 0) {
    const uint32_t s = pseudo_header_sum(src, dst, kProtoUdp, static_cast<uint16_t>(udp_len));
    if (checksum_finish(checksum_add(s, data, udp_len)) != 0) return UdpError::kBadChecksum;
  }
  out->src_port = load16(data);
  out->dst_port = load16(data + 2);
  if (out->dst_port == 0) return UdpError::kBadPort;
  out->data = data + kUdpHeaderLen;
  out->data_len = udp_len - kUdpHeaderLen;
  return UdpError::kNone;
}

void write_udp(uint8_t* out, Ipv4Address src, Ipv4Address dst, uint16_t src_port, uint16_t dst_port,
               size_t data_len) {
  const uint16_t udp_len = static_cast<uint16_t>(kUdpHeaderLen + data_len);
  store16(out, src_port);
  store16(out + 2, dst_port);
  store16(out + 4, udp_len);
  store16(out + 6, 0);
  uint16_t sum = checksum_finish(checksum_add(pseudo_header_sum(src, dst, kProtoUdp, udp_len), out, udp_len));
  if (sum == 0) sum = 0xffff;
  store16(out + 6, sum);
}

}  // namespace net
