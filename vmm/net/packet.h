// Ethernet, ARP, IPv4, UDP and ICMP: building frames and checking every
// field of frames that come from a guest. Addresses are held in host byte
// order; everything on the wire is big-endian. No fragments: a VM's MTU is
// 1500 and the gateway neither makes nor accepts them.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>

#include "vmm/net/frame_port.h"

namespace vmm::net {

using Ipv4 = uint32_t;  // host byte order

constexpr uint16_t kEtherTypeIpv4 = 0x0800;
constexpr uint16_t kEtherTypeArp = 0x0806;
constexpr uint8_t kIpProtoIcmp = 1;
constexpr uint8_t kIpProtoUdp = 17;
constexpr size_t kIpv4HeaderLen = 20;
constexpr size_t kUdpHeaderLen = 8;
constexpr size_t kMaxUdpPayload = kMaxFrameLen - kEthHeaderLen - kIpv4HeaderLen - kUdpHeaderLen;  // 1472
constexpr MacAddress kBroadcastMac = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

constexpr Ipv4 ipv4(uint8_t a, uint8_t b, uint8_t c, uint8_t d) {
  return (Ipv4(a) << 24) | (Ipv4(b) << 16) | (Ipv4(c) << 8) | d;
}
std::string format_ipv4(Ipv4 ip);

uint16_t load16(const uint8_t* p);
uint32_t load32(const uint8_t* p);
void store16(uint8_t* p, uint16_t v);
void store32(uint8_t* p, uint32_t v);
MacAddress load_mac(const uint8_t* p);
uint16_t ether_type(std::span<const uint8_t> frame);  // frame holds at least the header

// RFC 1071: the ones'-complement sum, folded, complemented. `partial` lets
// a pseudo-header be summed first. A buffer whose checksum field is right
// sums to 0.
uint32_t checksum_partial(std::span<const uint8_t> data, uint32_t partial = 0);
uint16_t checksum_finish(uint32_t partial);
uint16_t internet_checksum(std::span<const uint8_t> data);

struct ArpPacket {
  uint16_t op;  // 1 request, 2 reply
  MacAddress sender_mac;
  Ipv4 sender_ip;
  MacAddress target_mac;
  Ipv4 target_ip;
};
constexpr uint16_t kArpRequest = 1, kArpReply = 2;
// ARP for IPv4 over Ethernet only; nullopt for anything else or a short one.
std::optional<ArpPacket> parse_arp(std::span<const uint8_t> payload);
Frame build_arp(const MacAddress& eth_dst, const MacAddress& eth_src, const ArpPacket& arp);

enum class IpError { kNone, kTruncated, kBadVersion, kBadHeaderLength, kBadTotalLength, kBadChecksum, kFragment, kTtlExpired };
const char* ip_error_name(IpError e);
struct Ipv4Packet {
  Ipv4 src, dst;
  uint8_t protocol, ttl;
  std::span<const uint8_t> payload;  // trimmed to the total length (Ethernet pads short frames)
};
IpError parse_ipv4(std::span<const uint8_t> l3, Ipv4Packet& out);

enum class UdpError { kNone, kTruncated, kBadLength, kBadChecksum };
struct UdpDatagram {
  uint16_t src_port, dst_port;
  std::span<const uint8_t> payload;
};
// Checks the length against the IP payload and the checksum (0: none sent,
// which IPv4 allows).
UdpError parse_udp(const Ipv4Packet& ip, UdpDatagram& out);

// An Ethernet + IPv4 frame (no options, DF set, TTL 64) around `l4`.
Frame build_ipv4(const MacAddress& eth_dst, const MacAddress& eth_src, Ipv4 src, Ipv4 dst, uint8_t protocol,
                 uint16_t id, std::span<const uint8_t> l4);
// UDP with its checksum; payload at most kMaxUdpPayload bytes.
Frame build_udp(const MacAddress& eth_dst, const MacAddress& eth_src, Ipv4 src, Ipv4 dst, uint16_t id,
                uint16_t src_port, uint16_t dst_port, std::span<const uint8_t> payload);

}  // namespace vmm::net
