// Text forms the network code accepts: addresses, the interface settings
// of the kernel command line (ip= mask= gw=) and the arguments of the
// network demos (ping=, udp-echo=, udp-send=). Strict on purpose: a typo on
// the command line must fail with a message, not become another address.
// Freestanding, host-tested.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "guest-kernel/net/stack.h"
#include "guest-kernel/net/wire.h"

namespace net {

// Dotted quad, four decimal parts 0-255 without leading zeros ("010" is
// octal to inet_aton and decimal to others, so it is refused).
bool parse_ipv4(const char* s, Ipv4Address* out);
// Decimal without sign or leading zeros, at most `max`.
bool parse_decimal(const char* s, size_t len, uint64_t max, uint64_t* out);

// ip= (required), mask= (dotted "255.255.255.0" or a prefix length "24";
// default /24), gw= (optional, must be on the subnet). Returns nullptr on
// success, else a one-line reason.
const char* parse_interface_config(const char* ip, const char* mask, const char* gw, InterfaceConfig* out);

// ping=IP[,COUNT[,INTERVAL_MS]]: COUNT 1-1000 (default 3), interval
// 10-10000 ms (default 1000).
struct PingArgs {
  Ipv4Address dst;
  unsigned count = 3;
  unsigned interval_ms = 1000;
};
const char* parse_ping_args(const char* s, PingArgs* out);

// udp-send=IP:PORT[,N[,SIZE]]: N 1-100000 datagrams (default 1) of SIZE
// bytes, 1-65507 (kUdpMaxPayload; above 1472 they leave in fragments).
// SIZE 0 (the default) sends short text datagrams.
struct UdpSendArgs {
  Ipv4Address dst;
  uint16_t port = 0;
  unsigned count = 1;
  size_t size = 0;
};
const char* parse_udp_send_args(const char* s, UdpSendArgs* out);

// udp-echo=PORT[,N]: N > 0 ends the server after N datagrams echoed;
// without it the server runs until the VM is stopped.
struct UdpEchoArgs {
  uint16_t port = 0;
  unsigned count = 0;
};
const char* parse_udp_echo_args(const char* s, UdpEchoArgs* out);

}  // namespace net
