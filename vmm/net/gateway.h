// The gateway port of the switch (DESIGN.md decision 8): the one way host
// programs reach the VMs, by UDP on 127.0.0.1. No TAP, bridge or route.
//
// On the switch it is a host with its own MAC and IP (by default
// 52:54:00:00:00:01 and 10.0.0.1 on 10.0.0.0/24). It answers ARP for its IP
// and ICMP echo to it, resolves VM MACs by ARP itself, and relays UDP:
//
//   host-initiated: a datagram to 127.0.0.1:(base + i) from a host peer
//     H:h enters VM i from 10.0.0.1:E to (VM i's IP):service_port, where E
//     is a gateway port in 49152-65535 allocated to (i, H:h). A datagram
//     from VM i to 10.0.0.1:E goes back to H:h from 127.0.0.1:(base + i),
//     so a connected host socket accepts it.
//   guest-initiated: a datagram from VM i's IP, port g, to 10.0.0.1:P with
//     P below 49152 goes to 127.0.0.1:P from a host socket kept for (i, g)
//     (bound to an ephemeral port); what a host program sends back to that
//     socket from port Q enters VM i from 10.0.0.1:Q to port g.
//
// Every field of a frame from a VM is checked (lengths, checksums, no
// fragments, TTL, addresses); what is refused is counted by reason.
// One thread polls (epoll) the host sockets and the gateway's frame queue.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "vmm/net/frame_port.h"
#include "vmm/net/packet.h"
#include "vmm/net/switch.h"

namespace vmm::net {

constexpr MacAddress kGatewayMac = {0x52, 0x54, 0x00, 0x00, 0x00, 0x01};
constexpr Ipv4 kGatewayIp = ipv4(10, 0, 0, 1);
constexpr Ipv4 kVmNetmask = ipv4(255, 255, 255, 0);
constexpr uint16_t kDefaultServicePort = 7000;
// Gateway ports at or above this are relay mappings of host-initiated
// traffic; guest-initiated traffic may go to any port below it.
constexpr uint16_t kFirstMappedPort = 49152;

struct GatewayConfig {
  MacAddress mac = kGatewayMac;
  Ipv4 ip = kGatewayIp;
  Ipv4 netmask = kVmNetmask;
  std::vector<Ipv4> vm_ips;      // VM i's address, inside ip/netmask
  uint16_t host_base_port = 0;   // 127.0.0.1:(base + i) reaches VM i; 0: none
  uint16_t service_port = kDefaultServicePort;
  size_t max_guest_flows = 256;  // host sockets kept for guest-initiated flows (LRU)
  uint64_t arp_retry_ns = 1000000000;
  int arp_tries = 3;             // then the datagrams waiting for the MAC are dropped
  size_t inbox_limit = 1024;     // frames queued from the switch
};

struct GatewayStats {
  uint64_t arp_replies_sent = 0, arp_requests_sent = 0, arp_learned = 0;
  uint64_t icmp_echo_replies = 0;
  uint64_t udp_to_vm = 0, udp_to_host = 0;
  // Frames from VMs refused, by reason.
  uint64_t bad_arp = 0;            // malformed, or not Ethernet/IPv4 ARP
  uint64_t not_for_us = 0;         // another destination MAC or IP, or an EtherType we do not speak
  uint64_t bad_ip_header = 0;      // truncated, version, header or total length
  uint64_t bad_ip_checksum = 0;
  uint64_t fragments = 0;
  uint64_t ttl_expired = 0;
  uint64_t bad_source = 0;         // source IP outside the VM network, or no VM's
  uint64_t unsupported_protocol = 0;
  uint64_t bad_udp = 0;            // truncated or bad length
  uint64_t bad_udp_checksum = 0;
  uint64_t bad_icmp = 0;           // truncated, bad checksum, or not an echo request
  uint64_t no_mapping = 0;         // to a gateway port >= 49152 with no host peer behind it
  uint64_t wrong_vm = 0;           // a reply to a mapping from another VM than the one asked
  // Drops on the way in or out.
  uint64_t inbox_full = 0;
  uint64_t too_large = 0;          // host datagram over 1472 bytes (we never fragment)
  uint64_t arp_failed = 0;         // datagrams dropped: the VM never answered ARP
  uint64_t arp_queue_full = 0;
  uint64_t host_send_errors = 0;
  uint64_t transmit_errors = 0;    // the switch refused a frame
  uint64_t mappings_evicted = 0, flows_evicted = 0;
};

class Gateway {
 public:
  // Binds 127.0.0.1:(base + i) for every VM (std::runtime_error naming the
  // port when one cannot be bound), attaches to the switch as "gateway" and
  // starts the gateway thread.
  Gateway(Switch& sw, GatewayConfig config);
  ~Gateway();
  Gateway(const Gateway&) = delete;
  Gateway& operator=(const Gateway&) = delete;

  GatewayStats stats() const;
  std::string format_stats() const;
  const GatewayConfig& config() const { return config_; }

  class Impl;

 private:
  GatewayConfig config_;
  std::unique_ptr<Impl> impl_;
};

}  // namespace vmm::net
