// One IPv4 interface on one NetDevice: Ethernet demultiplexing, IPv4 input
// checks and output routing, and the protocols above (ARP, ICMP, UDP).
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

  Stack(NetDevice& device, Clock& clock, const InterfaceConfig& config, const ArpConfig& arp = {});
  ~Stack();
  Stack(const Stack&) = delete;
  Stack& operator=(const Stack&) = delete;

  // Starts receiving and announces our address (gratuitous ARP).
  void up();

  // One received Ethernet frame (also what the device's receiver calls).
  void receive(const uint8_t* frame, size_t len);

  // A frame with room for an IPv4 packet of `payload_len` bytes; the
  // caller writes its payload at kIpv4PayloadOffset, then send_ipv4().
  static std::vector<uint8_t> new_ipv4_frame(size_t payload_len);
  // Fills in the IPv4 and Ethernet headers, routes and sends.
  TxResult send_ipv4(Ipv4Address dst, uint8_t protocol, std::vector<uint8_t>&& frame);

  // Writes our source MAC and transmits a complete frame (padded to the
  // Ethernet minimum), counting it.
  TxResult transmit(std::vector<uint8_t>& frame);

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

 private:
  void receive_ipv4(const uint8_t* data, size_t len);

  NetDevice& device_;
  Clock& clock_;
  InterfaceConfig config_;
  MacAddress mac_;
  NetStats stats_;
  uint16_t next_ip_id_ = 1;
  bool up_ = false;
  // Declared last: they use the members above while built and destroyed.
  Arp arp_;
  Icmp icmp_;
  Udp udp_;
};

}  // namespace net
