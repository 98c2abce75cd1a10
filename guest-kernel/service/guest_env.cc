#include "guest-kernel/service/guest_env.h"

#include "guest-kernel/arch/x86/cpu.h"
#include "guest-kernel/kernel/event_loop.h"
#include "guest-kernel/kernel/exit.h"
#include "guest-kernel/lib/print.h"
#include "guest-kernel/time/clock.h"
#include "storage-guests/common/ids.h"
#include "storage-guests/common/transport.h"

namespace service {

GuestEnv::GuestEnv(net::Stack& stack, sg::NodeId self, sg::Storage& storage)
    : stack_(stack), self_(self), storage_(storage), socket_(stack) {
  // Seeded from the TSC and the node id: distinct per node and per boot,
  // which is all Raft's randomized timeouts need.
  rng_state_ = x86::rdtsc() ^ (static_cast<uint64_t>(self) << 40) ^ 0x9e3779b97f4a7c15ull;
}

void GuestEnv::attach(sg::Node* node) {
  node_ = node;
  if (!socket_.bind(sg::kServicePort, [this](net::Ipv4Address src, uint16_t port, const uint8_t* data, size_t len) {
        receive(src, port, data, len);
      })) {
    panic("service: UDP port %u is taken", sg::kServicePort);
  }
}

void GuestEnv::receive(net::Ipv4Address src, uint16_t src_port, const uint8_t* data, size_t len) {
  sg::Bytes message;
  auto h = sg::unframe_datagram(data, len, message);
  if (!h || h->to != self_ || h->from == self_) {
    ++stats_.rejected;
    return;
  }
  if (sg::is_server_id(h->from)) {
    // A server speaks from its own address and port, nowhere else.
    if (src.value != sg::server_ip(h->from) || src_port != sg::kServicePort) {
      ++stats_.rejected;
      return;
    }
  } else {
    auto it = clients_.find(h->from);
    if (it == clients_.end() && clients_.size() >= kMaxClients) {
      auto oldest = clients_.begin();
      for (auto c = clients_.begin(); c != clients_.end(); ++c) {
        if (c->second.last_heard < oldest->second.last_heard) oldest = c;
      }
      clients_.erase(oldest);
    }
    clients_[h->from] = ClientAddress{src, src_port, ++heard_};
  }
  ++stats_.received;
  if (node_) node_->on_message(h->from, message);
}

void GuestEnv::send(sg::NodeId to, const sg::Bytes& message) {
  net::Ipv4Address ip;
  uint16_t port;
  if (sg::is_server_id(to)) {
    ip = net::Ipv4Address{sg::server_ip(to)};
    port = sg::kServicePort;
  } else {
    auto it = clients_.find(to);
    if (it == clients_.end()) {
      ++stats_.unroutable;
      return;
    }
    ip = it->second.ip;
    port = it->second.port;
  }
  const sg::Bytes datagram = sg::frame_datagram({self_, to}, message);
  if (datagram.size() > net::kUdpMaxPayload) {
    // Counted, and said once: Raft retries, and a message that never fits
    // is a bug to see in the log, not a silent stall.
    if (stats_.oversized++ == 0) {
      kprintf("service: dropped a %zu-byte message to node %u (one datagram holds %zu)\n", datagram.size(), to,
              net::kUdpMaxPayload);
    }
    return;
  }
  if (net::tx_ok(socket_.sendto(ip, port, datagram.data(), datagram.size()))) {
    ++stats_.sent;
  } else {
    ++stats_.unroutable;
  }
}

sg::TimeNs GuestEnv::now() const {
  const sg::TimeNs t = timekeeping::now_ns();
  // The VMM may move the offset back (the nemesis undoing a skew); the
  // services' clock then stands still until it catches up. One absurd
  // reading would freeze it for good, so now_ns() never wraps (clock.cc).
  if (t > last_now_) last_now_ = t;
  return last_now_;
}

sg::TimeNs GuestEnv::clock_uncertainty() const { return timekeeping::uncertainty_ns(); }

sg::TimerId GuestEnv::set_timer(sg::TimeNs delay) {
  // The event loop's id is the Env's id. The callback cannot capture it
  // (it exists only once add_timer returns), so it captures a key that
  // leads to it; both tables forget a timer when it fires or is cancelled.
  const uint64_t key = ++timer_key_;
  const sg::TimerId id = EventLoop::instance().add_timer(delay, [this, key] {
    auto it = timer_by_key_.find(key);
    if (it == timer_by_key_.end()) return;
    const sg::TimerId fired = it->second;
    timer_by_key_.erase(it);
    key_by_timer_.erase(fired);
    if (node_) node_->on_timer(fired);
  });
  timer_by_key_[key] = id;
  key_by_timer_[id] = key;
  return id;
}

void GuestEnv::cancel_timer(sg::TimerId id) {
  auto it = key_by_timer_.find(id);
  if (it == key_by_timer_.end()) return;
  EventLoop::instance().cancel_timer(id);
  timer_by_key_.erase(it->second);
  key_by_timer_.erase(it);
}

uint64_t GuestEnv::random() {
  // splitmix64
  uint64_t z = (rng_state_ += 0x9e3779b97f4a7c15ull);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
  return z ^ (z >> 31);
}

}  // namespace service
