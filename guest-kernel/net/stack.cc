#include "guest-kernel/net/stack.h"

#include <string.h>

namespace net {

Stack::Stack(NetDevice& device, Clock& clock, const InterfaceConfig& config, const ArpConfig& arp,
             const ReassemblyConfig& reassembly)
    : device_(device),
      clock_(clock),
      config_(config),
      mac_(device.mac()),
      reassembly_(clock, stats_, reassembly),
      arp_(*this, arp),
      icmp_(*this),
      udp_(*this) {}

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
  if (ip.protocol != kProtoIcmp && ip.protocol != kProtoUdp) {
    ++stats_.ip_drop_unknown_protocol;  // before reassembly: nothing is held for it
    return;
  }
  if (!ip.is_fragment()) {
    deliver(ip, broadcast, ip.payload, ip.payload_len);
    return;
  }
  std::vector<uint8_t> whole;
  if (reassembly_.input(ip, &whole)) deliver(ip, broadcast, whole.data(), whole.size());
}

void Stack::deliver(const Ipv4Packet& ip, bool broadcast, const uint8_t* payload, size_t len) {
  switch (ip.protocol) {
    case kProtoIcmp: icmp_.input(ip.src, broadcast, payload, len); break;
    case kProtoUdp: udp_.input(ip.src, ip.dst, payload, len); break;
    default: ++stats_.ip_drop_unknown_protocol; break;  // checked by the caller
  }
}

std::vector<uint8_t> Stack::new_ipv4_frame(size_t payload_len) {
  return std::vector<uint8_t>(kIpv4PayloadOffset + payload_len);
}

TxResult Stack::send_ipv4(Ipv4Address dst, uint8_t protocol, std::vector<uint8_t>&& frame) {
  if (frame.size() < kIpv4PayloadOffset) return TxResult::kNoResources;  // not from new_ipv4_frame()
  const size_t payload_len = frame.size() - kIpv4PayloadOffset;
  if (payload_len > kIpv4MaxPayload) {
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
  const uint16_t id = next_ip_id_++;
  Frames frames;
  if (payload_len <= kMtu - kIpv4HeaderLen) {
    write_ipv4(frame.data() + kEthHeaderLen, config_.address, dst, protocol, id, payload_len);
    write_eth(frame.data(), kZeroMac, mac_, kEtherTypeIpv4);
    frames.push_back(std::move(frame));
  } else {
    frames = fragment(frame, dst, protocol, id);
    ++stats_.frag_tx_datagrams;
  }
  ++stats_.ip_tx;
  if (broadcast) return transmit_frames(frames, kBroadcastMac);
  return arp_.send(next_hop, std::move(frames));
}

Frames Stack::fragment(const std::vector<uint8_t>& frame, Ipv4Address dst, uint8_t protocol, uint16_t id) {
  const uint8_t* payload = frame.data() + kIpv4PayloadOffset;
  const size_t len = frame.size() - kIpv4PayloadOffset;
  Frames frames;
  frames.reserve((len + kFragmentPayload - 1) / kFragmentPayload);
  for (size_t off = 0; off < len; off += kFragmentPayload) {
    const size_t n = len - off < kFragmentPayload ? len - off : kFragmentPayload;
    std::vector<uint8_t> f = new_ipv4_frame(n);
    memcpy(f.data() + kIpv4PayloadOffset, payload + off, n);
    // off <= kIpv4MaxPayload, so off / 8 fits the 13-bit field.
    uint16_t flags_offset = static_cast<uint16_t>(off / 8);
    if (off + n < len) flags_offset |= kIpv4MoreFragments;
    write_ipv4(f.data() + kEthHeaderLen, config_.address, dst, protocol, id, n, flags_offset);
    write_eth(f.data(), kZeroMac, mac_, kEtherTypeIpv4);
    frames.push_back(std::move(f));
  }
  return frames;
}

TxResult Stack::transmit_frames(Frames& frames, const MacAddress& dst) {
  const bool fragments = frames.size() > 1;
  for (size_t i = 0; i < frames.size(); ++i) {
    memcpy(frames[i].data(), dst.b, 6);
    if (transmit(frames[i]) != TxResult::kSent) {
      if (i > 0) ++stats_.frag_tx_fail_cut;
      return TxResult::kDeviceBusy;
    }
    if (fragments) ++stats_.frag_tx;
  }
  return TxResult::kSent;
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
