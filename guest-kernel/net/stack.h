// One IPv4 interface on one NetDevice: Ethernet demultiplexing, IPv4 input
// checks, reassembly and output routing, fragmentation, and the protocols
// above (ARP, ICMP, UDP).
//
// Fragmentation: a packet that fits the 1500-byte MTU goes out whole with
// DF set, as before. A larger one (up to 65515 payload bytes) is cut into
// 1480-byte fragments (the last shorter), all with one identification
// from the stack's counter, and handed to ARP as one datagram. If the NIC
// refuses a fragment (ring full), the rest of that datagram is dropped:
// eth.tx_fail_device_busy counts the refused frame, frag.tx_fail_cut the
// datagram if some of it had already left. A 64 KiB datagram is 45
// frames; the virtio-net and e1000 rings hold 256.
//
// Threading: none. Everything runs on the event loop: frames arrive through
// the device's receiver, timers through the Clock. Output is synchronous up
// to the device's transmit() (or the ARP queue).
//
// Lifetime: create, call up(), destroy after every UdpSocket and ping that
// uses it is gone (sockets still bound at destruction are detached, pings
// cancelled). The destructor detaches the receiver and cancels all timers.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <vector>

#include "guest-kernel/net/arp.h"
#include "guest-kernel/net/clock.h"
#include "guest-kernel/net/icmp.h"
#include "guest-kernel/net/net_device.h"
#include "guest-kernel/net/reassembly.h"
#include "guest-kernel/net/stats.h"
#include "guest-kernel/net/tx_result.h"
#include "guest-kernel/net/udp.h"
#include "guest-kernel/net/wire.h"

namespace net {

struct InterfaceConfig {
  Ipv4Address address;
  Ipv4Address netmask = Ipv4Address::of(255, 255, 255, 0);
  Ipv4Address gateway;  // 0: none, off-subnet destinations are unreachable
};

class Stack {
 public:
  // Offset of the IPv4 payload in frames from new_ipv4_frame().
  static constexpr size_t kIpv4PayloadOffset = kEthHeaderLen + kIpv4HeaderLen;

  Stack(NetDevice& device, Clock& clock, const InterfaceConfig& config, const ArpConfig& arp = {},
        const ReassemblyConfig& reassembly = {});
  ~Stack();
  Stack(const Stack&) = delete;
  Stack& operator=(const Stack&) = delete;

  // Starts receiving and announces our address (gratuitous ARP).
  void up();

  // One received Ethernet frame (also what the device's receiver calls).
  void receive(const uint8_t* frame, size_t len);

  // A frame with room for an IPv4 packet of `payload_len` bytes (at most
  // kIpv4MaxPayload); the caller writes its payload at
  // kIpv4PayloadOffset, then send_ipv4().
  static std::vector<uint8_t> new_ipv4_frame(size_t payload_len);
  // Fills in the IPv4 and Ethernet headers, routes, fragments if the
  // packet exceeds the MTU, and sends.
  TxResult send_ipv4(Ipv4Address dst, uint8_t protocol, std::vector<uint8_t>&& frame);

  // Writes our source MAC and transmits a complete frame (padded to the
  // Ethernet minimum), counting it.
  TxResult transmit(std::vector<uint8_t>& frame);
  // Transmits a datagram's frames to `dst`, in order, stopping at the
  // first the NIC refuses (the rest could not be reassembled anyway).
  TxResult transmit_frames(Frames& frames, const MacAddress& dst);

  const InterfaceConfig& config() const { return config_; }
  Ipv4Address address() const { return config_.address; }
  Ipv4Address subnet_broadcast() const { return {config_.address.value | ~config_.netmask.value}; }
  bool on_subnet(Ipv4Address a) const {
    return (a.value & config_.netmask.value) == (config_.address.value & config_.netmask.value);
  }
  MacAddress mac() const { return mac_; }
  NetDevice& device() { return device_; }
  Clock& clock() { return clock_; }
  NetStats& stats() { return stats_; }
  const NetStats& stats() const { return stats_; }
  Arp& arp() { return arp_; }
  Icmp& icmp() { return icmp_; }
  Udp& udp() { return udp_; }
  Reassembly& reassembly() { return reassembly_; }

 private:
  void receive_ipv4(const uint8_t* data, size_t len);
  // Hands a whole datagram's payload to its protocol.
  void deliver(const Ipv4Packet& ip, bool broadcast, const uint8_t* payload, size_t len);
  // Cuts a packet from new_ipv4_frame() into fragments of at most
  // kFragmentPayload bytes, headers written but for the destination MAC.
  Frames fragment(const std::vector<uint8_t>& frame, Ipv4Address dst, uint8_t protocol, uint16_t id);

  NetDevice& device_;
  Clock& clock_;
  InterfaceConfig config_;
  MacAddress mac_;
  NetStats stats_;
  uint16_t next_ip_id_ = 1;
  bool up_ = false;
  // Declared last: they use the members above while built and destroyed.
  Reassembly reassembly_;
  Arp arp_;
  Icmp icmp_;
  Udp udp_;
};

}  // namespace net
