#include "guest-kernel/net/udp.h"

#include <string.h>

#include <utility>

#include "guest-kernel/net/stack.h"

namespace net {

Udp::~Udp() {
  for (auto& [port, b] : bindings_) {
    b.socket->udp_ = nullptr;
    b.socket->port_ = 0;
  }
}

uint16_t Udp::bind(UdpSocket* socket, uint16_t port, Handler handler) {
  if (port == 0) {
    const unsigned range = kEphemeralLast - kEphemeralFirst + 1;
    for (unsigned tries = 0; tries < range && port == 0; ++tries) {
      const uint16_t candidate = next_ephemeral_;
      next_ephemeral_ = candidate == kEphemeralLast ? kEphemeralFirst : static_cast<uint16_t>(candidate + 1);
      if (!bindings_.count(candidate)) port = candidate;
    }
    if (port == 0) return 0;
  } else if (bindings_.count(port)) {
    return 0;
  }
  bindings_.emplace(port, Binding{socket, std::move(handler), ++generation_});
  return port;
}

void Udp::unbind(uint16_t port) { bindings_.erase(port); }

void Udp::input(Ipv4Address src, Ipv4Address dst, const uint8_t* data, size_t len) {
  NetStats& st = stack_.stats();
  ++st.udp_rx;
  UdpDatagram d;
  switch (parse_udp(data, len, src, dst, &d)) {
    case UdpError::kNone: break;
    case UdpError::kTruncated: ++st.udp_drop_truncated; return;
    case UdpError::kBadLength: ++st.udp_drop_bad_length; return;
    case UdpError::kBadChecksum: ++st.udp_drop_bad_checksum; return;
    case UdpError::kBadPort: ++st.udp_drop_bad_port; return;
  }
  auto it = bindings_.find(d.dst_port);
  if (it == bindings_.end() || !it->second.handler) {
    ++st.udp_drop_no_socket;
    return;
  }
  ++st.udp_delivered;
  // Moved out for the call: the handler may close its socket (erasing the
  // binding) or bind the port anew; it gets its handler back only if its
  // own binding is still there.
  const uint16_t port = d.dst_port;
  const uint64_t generation = it->second.generation;
  Handler h = std::move(it->second.handler);
  h(src, d.src_port, d.data, d.data_len);
  it = bindings_.find(port);
  if (it != bindings_.end() && it->second.generation == generation) it->second.handler = std::move(h);
}

TxResult Udp::send(uint16_t src_port, Ipv4Address dst, uint16_t dst_port, const uint8_t* data, size_t len) {
  NetStats& st = stack_.stats();
  if (len > kUdpMaxPayload) {
    ++st.udp_tx_fail_too_big;
    return TxResult::kTooBig;
  }
  if (dst_port == 0) {
    ++st.udp_tx_fail_bad_port;
    return TxResult::kBadPort;
  }
  std::vector<uint8_t> frame = Stack::new_ipv4_frame(kUdpHeaderLen + len);
  uint8_t* udp = frame.data() + Stack::kIpv4PayloadOffset;
  if (len) memcpy(udp + kUdpHeaderLen, data, len);
  write_udp(udp, stack_.address(), dst, src_port, dst_port, len);
  const TxResult r = stack_.send_ipv4(dst, kProtoUdp, std::move(frame));
  if (tx_ok(r)) ++st.udp_tx;
  return r;
}

UdpSocket::UdpSocket(Stack& stack) : udp_(&stack.udp()) {}

bool UdpSocket::bind(uint16_t port, Handler handler) {
  if (!udp_ || port_) return false;
  port_ = udp_->bind(this, port, std::move(handler));
  return port_ != 0;
}

TxResult UdpSocket::sendto(Ipv4Address dst, uint16_t dst_port, const uint8_t* data, size_t len) {
  if (!udp_) return TxResult::kNoRoute;
  if (!port_ && !bind(0, nullptr)) return TxResult::kNoResources;
  return udp_->send(port_, dst, dst_port, data, len);
}

void UdpSocket::close() {
  if (udp_ && port_) udp_->unbind(port_);
  port_ = 0;
}

}  // namespace net
