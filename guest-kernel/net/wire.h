// Wire formats of Ethernet II, ARP (Ethernet/IPv4), IPv4, ICMP echo and UDP:
// byte order, the Internet checksum, and bounds-checked parsers. A parser
// reads only inside [data, data + len) and reports the first reason a
// packet is unacceptable; the stack turns that reason into a counter.
// Freestanding: compiled into the guest and into the host unit tests.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "guest-kernel/net/net_device.h"

namespace net {

// ---- addresses -------------------------------------------------------------

// An IPv4 address in host byte order (10.0.0.1 is 0x0a000001).
struct Ipv4Address {
  uint32_t value = 0;
  static constexpr Ipv4Address of(uint8_t a, uint8_t b, uint8_t c, uint8_t d) {
    return {static_cast<uint32_t>(a) << 24 | static_cast<uint32_t>(b) << 16 | static_cast<uint32_t>(c) << 8 | d};
  }
  bool operator==(const Ipv4Address&) const = default;
  bool is_zero() const { return value == 0; }
  bool is_limited_broadcast() const { return value == 0xffffffffu; }
  bool is_multicast() const { return (value >> 28) == 0xe; }
};

constexpr MacAddress kBroadcastMac{{0xff, 0xff, 0xff, 0xff, 0xff, 0xff}};
constexpr MacAddress kZeroMac{{0, 0, 0, 0, 0, 0}};
// Group bit: broadcast and multicast addresses, never a station's own.
inline bool is_group(const MacAddress& m) { return m.b[0] & 1; }

// Text forms for printing: "10.0.0.1" (buf of at least 16 bytes) and
// "52:54:00:12:34:56" (at least 18 bytes).
void format_ipv4(Ipv4Address a, char* buf);
void format_mac(const MacAddress& m, char* buf);

// ---- byte order ------------------------------------------------------------

inline uint16_t load16(const uint8_t* p) { return static_cast<uint16_t>(p[0] << 8 | p[1]); }
inline uint32_t load32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) << 24 | static_cast<uint32_t>(p[1]) << 16 | static_cast<uint32_t>(p[2]) << 8 | p[3];
}
inline void store16(uint8_t* p, uint16_t v) {
  p[0] = static_cast<uint8_t>(v >> 8);
  p[1] = static_cast<uint8_t>(v);
}
inline void store32(uint8_t* p, uint32_t v) {
  p[0] = static_cast<uint8_t>(v >> 24);
  p[1] = static_cast<uint8_t>(v >> 16);
  p[2] = static_cast<uint8_t>(v >> 8);
  p[3] = static_cast<uint8_t>(v);
}

// ---- the Internet checksum (RFC 1071) ---------------------------------------

// One's-complement sum of 16-bit big-endian words (an odd last byte is
// padded with zero), not yet folded or inverted, so that pieces (a
// pseudo-header and a payload) can be added up.
uint32_t checksum_add(uint32_t sum, const uint8_t* data, size_t len);
// Folds and inverts: the value to store in a header. Summing a packet that
// carries a correct checksum gives 0.
uint16_t checksum_finish(uint32_t sum);
inline uint16_t internet_checksum(const uint8_t* data, size_t len) { return checksum_finish(checksum_add(0, data, len)); }
// The UDP pseudo-header's part of the sum.
uint32_t pseudo_header_sum(Ipv4Address src, Ipv4Address dst, uint8_t protocol, uint16_t length);

// ---- Ethernet II -----------------------------------------------------------

constexpr size_t kEthHeaderLen = 14;
constexpr size_t kEthMinFrame = 60;     // without FCS; shorter frames are padded
constexpr size_t kMtu = 1500;
constexpr size_t kEthMaxFrame = kEthHeaderLen + kMtu;
constexpr uint16_t kEtherTypeIpv4 = 0x0800;
constexpr uint16_t kEtherTypeArp = 0x0806;

enum class EthError : uint8_t { kNone, kRunt, kOversize };

struct EthFrame {
  MacAddress dst, src;
  uint16_t type;
  const uint8_t* payload;
  size_t payload_len;
};

EthError parse_eth(const uint8_t* data, size_t len, EthFrame* out);
void write_eth(uint8_t* frame, const MacAddress& dst, const MacAddress& src, uint16_t type);

// ---- ARP for IPv4 over Ethernet (RFC 826) ----------------------------------

constexpr size_t kArpLen = 28;
constexpr uint16_t kArpRequest = 1;
constexpr uint16_t kArpReply = 2;

enum class ArpError : uint8_t { kNone, kTruncated, kUnsupported, kBadOperation, kBadSender };

struct ArpPacket {
  uint16_t op;
  MacAddress sender_mac, target_mac;
  Ipv4Address sender_ip, target_ip;
};

// Accepts only hardware type 1 (Ethernet, 6-byte addresses), protocol
// 0x0800 (4-byte addresses), request or reply, and a sender that could be
// a station (not a group MAC, not a broadcast or multicast IP).
ArpError parse_arp(const uint8_t* data, size_t len, ArpPacket* out);
void write_arp(uint8_t* out, const ArpPacket& p);  // kArpLen bytes

// ---- IPv4 (RFC 791) ----------------------------------------------------------

constexpr size_t kIpv4HeaderLen = 20;   // what we send: no options
constexpr size_t kIpv4MaxTotal = 65535;  // the total length field's limit
// The largest payload one datagram carries (with our 20-byte header).
constexpr size_t kIpv4MaxPayload = kIpv4MaxTotal - kIpv4HeaderLen;  // 65515
// Payload bytes per fragment we send: what fits the MTU, rounded down to
// the 8-byte unit of the offset field. A 65515-byte payload is 45 frames.
constexpr size_t kFragmentPayload = (kMtu - kIpv4HeaderLen) / 8 * 8;  // 1480
// The flags and offset word (header bytes 6-7).
constexpr uint16_t kIpv4DontFragment = 0x4000;
constexpr uint16_t kIpv4MoreFragments = 0x2000;
constexpr uint16_t kIpv4OffsetMask = 0x1fff;  // in 8-byte units
constexpr uint8_t kProtoIcmp = 1;
constexpr uint8_t kProtoUdp = 17;
constexpr uint8_t kDefaultTtl = 64;

enum class Ipv4Error : uint8_t {
  kNone,
  kTruncated,        // shorter than a minimal header
  kBadVersion,       // not 4
  kBadHeaderLength,  // IHL < 5 or past the data
  kBadTotalLength,   // total length < header or past the data
  kBadChecksum,
  kBadTtl,           // TTL 0: no sender may emit it
};

struct Ipv4Packet {
  Ipv4Address src, dst;
  uint8_t protocol, ttl;
  uint16_t id;
  // Fragmentation: the payload's offset in its datagram (bytes) and MF.
  // Neither set: a whole datagram. Checking a fragment against its
  // datagram is reassembly's job (reassembly.h).
  uint32_t fragment_offset;
  bool more_fragments;
  bool is_fragment() const { return more_fragments || fragment_offset != 0; }
  // The payload up to the header's total length: bytes past it (Ethernet
  // padding of short frames) are not part of the packet.
  const uint8_t* payload;
  size_t payload_len;
};

Ipv4Error parse_ipv4(const uint8_t* data, size_t len, Ipv4Packet* out);
// Writes a 20-byte header and its checksum. `flags_offset` is header
// word 6: DF for a packet that fits the MTU (the default), MF and the
// offset (in 8-byte units) for a fragment.
void write_ipv4(uint8_t* out, Ipv4Address src, Ipv4Address dst, uint8_t protocol, uint16_t id,
                size_t payload_len, uint16_t flags_offset = kIpv4DontFragment);

// ---- ICMP (RFC 792): echo only -----------------------------------------------

constexpr size_t kIcmpHeaderLen = 8;
constexpr uint8_t kIcmpEchoReply = 0;
constexpr uint8_t kIcmpEchoRequest = 8;

enum class IcmpError : uint8_t { kNone, kTruncated, kBadChecksum };

struct IcmpMessage {
  uint8_t type, code;
  uint16_t id, seq;      // meaningful for echo messages
  const uint8_t* data;   // after the 8-byte header
  size_t data_len;
};

IcmpError parse_icmp(const uint8_t* data, size_t len, IcmpMessage* out);
// Writes an echo header in front of `data_len` bytes already at out + 8 and
// checksums the whole message.
void write_icmp_echo(uint8_t* out, uint8_t type, uint16_t id, uint16_t seq, size_t data_len);

// ---- UDP (RFC 768) -------------------------------------------------------------

constexpr size_t kUdpHeaderLen = 8;
// The largest UDP payload: what one IPv4 datagram holds (sent in up to 45
// fragments), and what fits one frame unfragmented.
constexpr size_t kUdpMaxPayload = kIpv4MaxPayload - kUdpHeaderLen;                   // 65507
constexpr size_t kUdpMaxUnfragmentedPayload = kMtu - kIpv4HeaderLen - kUdpHeaderLen;  // 1472

enum class UdpError : uint8_t { kNone, kTruncated, kBadLength, kBadChecksum, kBadPort };

struct UdpDatagram {
  uint16_t src_port, dst_port;
  const uint8_t* data;
  size_t data_len;
};

// `len` is the IP payload length; the UDP length field must lie between
// the header and it (bytes after the UDP length are ignored). A nonzero
// checksum is verified over the pseudo-header; zero means "none sent".
UdpError parse_udp(const uint8_t* data, size_t len, Ipv4Address src, Ipv4Address dst, UdpDatagram* out);
// Writes the header in front of `data_len` bytes already at out + 8,
// checksum included (0 is sent as 0xffff, as 0 means "no checksum").
void write_udp(uint8_t* out, Ipv4Address src, Ipv4Address dst, uint16_t src_port, uint16_t dst_port,
               size_t data_len);

}  // namespace net
