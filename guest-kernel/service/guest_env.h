// sg::Env in the guest kernel: datagrams over the UDP stack (the transport
// header and address plan of storage-guests/common/transport.h), timers on
// the kernel's event loop, the local clock from kvmclock plus the VMM's
// per-VM offset (which the nemesis skews), and the block log for storage.
//
// Who is who: servers are found at fixed addresses (server_ip(id)), and a
// datagram claiming to come from server k is accepted only from that
// address. Clients (host programs behind the gateway) are learned from
// their datagrams: the last address a client id spoke from is where its
// answers go; the table is bounded and forgets the least recently heard.
#pragma once

#include <stdint.h>

#include <map>

#include "guest-kernel/net/stack.h"
#include "guest-kernel/net/tx_result.h"
#include "guest-kernel/net/udp.h"
#include "storage-guests/common/env.h"

namespace service {

struct EnvStats {
  uint64_t sent = 0, received = 0;
  uint64_t rejected = 0;     // malformed, not for us, or a spoofed server
  uint64_t unroutable = 0;   // to an unknown client, or the stack refused
  uint64_t oversized = 0;    // larger than one datagram
};

class GuestEnv final : public sg::Env {
 public:
  GuestEnv(net::Stack& stack, sg::NodeId self, sg::Storage& storage);

  // Binds the service port and delivers datagrams to `node` from now on.
  void attach(sg::Node* node);

  sg::NodeId self() const override { return self_; }
  void send(sg::NodeId to, const sg::Bytes& message) override;
  sg::TimeNs now() const override;
  sg::TimeNs clock_uncertainty() const override;
  sg::TimerId set_timer(sg::TimeNs delay) override;
  void cancel_timer(sg::TimerId id) override;
  sg::Storage& storage() override { return storage_; }
  uint64_t random() override;

  const EnvStats& stats() const { return stats_; }

 private:
  struct ClientAddress {
    net::Ipv4Address ip;
    uint16_t port;
    uint64_t last_heard;
  };
  static constexpr size_t kMaxClients = 256;
  void receive(net::Ipv4Address src, uint16_t src_port, const uint8_t* data, size_t len);

  net::Stack& stack_;
  sg::NodeId self_;
  sg::Storage& storage_;
  sg::Node* node_ = nullptr;
  net::UdpSocket socket_;
  std::map<sg::NodeId, ClientAddress> clients_;
  mutable sg::TimeNs last_now_ = 0;  // now() never goes backwards
  uint64_t rng_state_;
  uint64_t heard_ = 0;
  uint64_t timer_key_ = 0;
  std::map<uint64_t, sg::TimerId> timer_by_key_;
  std::map<sg::TimerId, uint64_t> key_by_timer_;
  EnvStats stats_;
};

}  // namespace service
