// UDP: the port table and sockets.
//
// Delivery is a callback, not a queue: a datagram for a bound port is
// handed to the socket's handler on the event loop, inside the receive
// path, and is only valid during the call. The guest has one thread, so a
// queue would only add copying and a bound to pick; a service that must
// defer work copies what it needs. The handler may send, close its socket
// or bind others; it must not destroy the Stack.
//
// Ports: bind(0) and sendto() on an unbound socket take an ephemeral port
// from 49152-65535, round-robin, skipping ports in use.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <functional>
#include <map>

#include "guest-kernel/net/tx_result.h"
#include "guest-kernel/net/wire.h"

namespace net {

class Stack;
class UdpSocket;

class Udp {
 public:
  using Handler = std::function<void(Ipv4Address src, uint16_t src_port, const uint8_t* data, size_t len)>;
  static constexpr uint16_t kEphemeralFirst = 49152;
  static constexpr uint16_t kEphemeralLast = 65535;

  explicit Udp(Stack& stack) : stack_(stack) {}
  ~Udp();  // detaches sockets still bound
  Udp(const Udp&) = delete;
  Udp& operator=(const Udp&) = delete;

  // A UDP datagram from IPv4 (`len` is the IP payload length).
  void input(Ipv4Address src, Ipv4Address dst, const uint8_t* data, size_t len);
  TxResult send(uint16_t src_port, Ipv4Address dst, uint16_t dst_port, const uint8_t* data, size_t len);
  bool port_in_use(uint16_t port) const { return bindings_.count(port) != 0; }

 private:
  friend class UdpSocket;
  struct Binding {
    UdpSocket* socket;
    Handler handler;
    uint64_t generation;  // tells a rebind apart from the binding a handler ran for
  };
  // Binds `port` (0: an ephemeral one); returns the port, 0 on failure.
  uint16_t bind(UdpSocket* socket, uint16_t port, Handler handler);
  void unbind(uint16_t port);

  Stack& stack_;
  std::map<uint16_t, Binding> bindings_;
  uint16_t next_ephemeral_ = kEphemeralFirst;
  uint64_t generation_ = 0;
};

class UdpSocket {
 public:
  using Handler = Udp::Handler;
  explicit UdpSocket(Stack& stack);
  ~UdpSocket() { close(); }
  UdpSocket(const UdpSocket&) = delete;
  UdpSocket& operator=(const UdpSocket&) = delete;

  // Binds `port` (0: ephemeral) with a receive handler; false if the port
  // is taken, the socket is already bound, or no ephemeral port is free.
  bool bind(uint16_t port, Handler handler);
  // Sends one datagram (at most kUdpMaxPayload = 65507 bytes; beyond
  // kUdpMaxUnfragmentedPayload = 1472 it leaves in IPv4 fragments) from
  // our port, binding an ephemeral one (without a handler) first if
  // unbound.
  TxResult sendto(Ipv4Address dst, uint16_t dst_port, const uint8_t* data, size_t len);
  void close();
  uint16_t local_port() const { return port_; }
  bool bound() const { return port_ != 0; }

 private:
  friend class Udp;
  Udp* udp_;  // null once the stack is gone
  uint16_t port_ = 0;
};

}  // namespace net
