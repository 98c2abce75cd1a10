#include "guest-kernel/net/stack.h"

#include <string.h>

namespace net {

Stack::Stack(NetDevice& device, Clock& clock, const InterfaceConfig& config, const ArpConfig& arp)
    : device_(device), clock_(clock), config_(config), mac_(device.mac()), arp_(*this, arp), icmp_(*this), udp_(*this) {}

Stack::~Stack() {
  if (up_) device_.set_receiver(nullptr, nullptr);
}

void Stack::up() {
  device_.set_receiver([](void* self, const uint8_t* frame, size_t len) { static_cast<Stack*>(self)->receive(frame, len); },
                       this);
  up_ = true;
  arp_.announce();
}

void Stack::receive(const uint8_t* frame, size_t len) {
  ++stats_.eth_rx;
  EthFrame eth;
  switch (parse_eth(frame, len, &eth)) {
    case EthError::kNone: break;
    case EthError::kRunt: ++stats_.eth_drop_runt; return;
    case EthError::kOversize: ++stats_.eth_drop_oversize; return;
  }
  // No multicast groups are joined, so only our address and broadcast.
  if (!(eth.dst == mac_) && !(eth.dst == kBroadcastMac)) {
    ++stats_.eth_drop_not_for_us;
    return;
  }
  switch (eth.type) {
    case kEtherTypeArp: arp_.input(eth.payload, eth.payload_len); break;
    case kEtherTypeIpv4: receive_ipv4(eth.payload, eth.payload_len); break;
    default: ++stats_.eth_drop_unknown_type; break;
  }
}

void Stack::receive_ipv4(const uint8_t* data, size_t len) {
  ++stats_.ip_rx;
  Ipv4Packet ip;
  switch (parse_ipv4(data, len, &ip)) {
    case Ipv4Error::kNone: break;
    case Ipv4Error::kTruncated: ++stats_.ip_drop_truncated; return;
    case Ipv4Error::kBadVersion: ++stats_.ip_drop_bad_version; return;
    case Ipv4Error::kBadHeaderLength: ++stats_.ip_drop_bad_header_length; return;
    case Ipv4Error::kBadTotalLength: ++stats_.ip_drop_bad_total_length; return;
    case Ipv4Error::kBadChecksum: ++stats_.ip_drop_bad_checksum; return;
    case Ipv4Error::kFragment: ++stats_.ip_drop_fragment; return;
    case Ipv4Error::kBadTtl: ++stats_.ip_drop_bad_ttl; return;
  }
  const bool broadcast = ip.dst.is_limited_broadcast() || ip.dst == subnet_broadcast();
  if (!(ip.dst == config_.address) && !broadcast) {
    ++stats_.ip_drop_not_for_us;
    return;
  }
  // A source no station can have, or our own (a reflection or an address
  // conflict): nothing sensible can be answered.
  if (ip.src.is_limited_broadcast() || ip.src.is_multicast() || ip.src == config_.address ||
      ip.src == subnet_broadcast()) {
    ++stats_.ip_drop_bad_source;
    return;
  }
  switch (ip.protocol) {
    case kProtoIcmp: icmp_.input(ip.src, broadcast, ip.payload, ip.payload_len); break;
    case kProtoUdp: udp_.input(ip.src, ip.dst, ip.payload, ip.payload_len); break;
    default: ++stats_.ip_drop_unknown_protocol; break;
  }
}

std::vector<uint8_t> Stack::new_ipv4_frame(size_t payload_len) {
  return std::vector<uint8_t>(kIpv4PayloadOffset + payload_len);
}

TxResult Stack::send_ipv4(Ipv4Address dst, uint8_t protocol, std::vector<uint8_t>&& frame) {
  if (frame.size() < kIpv4PayloadOffset) return TxResult::kNoResources;  // not from new_ipv4_frame()
  const size_t payload_len = frame.size() - kIpv4PayloadOffset;
  if (payload_len > kMtu - kIpv4HeaderLen) {
    ++stats_.ip_tx_fail_too_big;
    return TxResult::kTooBig;
  }
  // Routing for one interface: broadcasts go to every station, the subnet
  // directly, the rest through the gateway.
  const bool broadcast = dst.is_limited_broadcast() || dst == subnet_broadcast();
  Ipv4Address next_hop = dst;
  if (!broadcast) {
    if (dst.is_zero() || dst.is_multicast() || dst == config_.address) {
      ++stats_.ip_tx_fail_no_route;
      return TxResult::kNoRoute;
    }
    if (!on_subnet(dst)) {
      if (config_.gateway.is_zero()) {
        ++stats_.ip_tx_fail_no_route;
        return TxResult::kNoRoute;
      }
      next_hop = config_.gateway;
    }
  }
  write_ipv4(frame.data() + kEthHeaderLen, config_.address, dst, protocol, next_ip_id_++, payload_len);
  write_eth(frame.data(), broadcast ? kBroadcastMac : kZeroMac, mac_, kEtherTypeIpv4);
  ++stats_.ip_tx;
  if (broadcast) return transmit(frame);
  return arp_.send(next_hop, std::move(frame));
}

TxResult Stack::transmit(std::vector<uint8_t>& frame) {
  // Short frames are padded, as an Ethernet MAC would; receivers (our own
  // included) trim by the IPv4 total length.
  if (frame.size() < kEthMinFrame) frame.resize(kEthMinFrame, 0);
  memcpy(frame.data() + 6, mac_.b, 6);
  if (!device_.transmit(frame.data(), frame.size())) {
    ++stats_.eth_tx_fail_device_busy;
    return TxResult::kDeviceBusy;
  }
  ++stats_.eth_tx;
  return TxResult::kSent;
}

}  // namespace net
