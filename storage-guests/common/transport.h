// How service datagrams travel between VMs and to host clients: the
// address plan of a cluster and the transport header in front of every
// service message. Freestanding-safe: the guest runtime and the host
// clients (kvctl, the Jepsen driver) share it.
//
// Address plan (vmm/net/README.md has the switch's side of it):
//   VM i (0-based) runs server NodeId i + 1 at 10.0.0.(10 + i), UDP port
//   kServicePort; the switch's gateway is 10.0.0.1. A host client reaches
//   VM i by sending to 127.0.0.1:(gateway base + i); the gateway relays it
//   to the VM's service port and relays the answer back.
//
// Transport header: the sender's and the addressee's NodeIds, so a server
// knows who spoke without trusting source addresses to map onto ids
// (gateway clients all appear as 10.0.0.1), and can drop datagrams meant
// for an earlier incarnation at the same address. The service message
// (with its own envelope, codec.h) follows.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>

#include "storage-guests/common/codec.h"
#include "storage-guests/common/env.h"
#include "storage-guests/common/ids.h"

namespace sg {

constexpr uint16_t kServicePort = 7000;
constexpr uint32_t kClusterNet = 0x0a000000;     // 10.0.0.0/24
constexpr uint32_t kGatewayIp = 0x0a000001;      // 10.0.0.1
constexpr uint32_t kFirstServerHost = 10;         // VM i is 10.0.0.(10 + i)
constexpr size_t kMaxVms = 200;                   // stays inside the /24

// IPv4 addresses in host byte order.
constexpr uint32_t server_ip(NodeId id) { return kClusterNet | (kFirstServerHost + id - kFirstServerId); }
// The server whose address `ip` is, or kNoNode.
constexpr NodeId server_at(uint32_t ip) {
  return (ip & 0xffffff00u) == kClusterNet && (ip & 0xffu) >= kFirstServerHost &&
                 (ip & 0xffu) < kFirstServerHost + kMaxVms
             ? (ip & 0xffu) - kFirstServerHost + kFirstServerId
             : kNoNode;
}

constexpr uint32_t kTransportMagic = 0x53475450;  // "SGTP"
constexpr size_t kTransportHeaderSize = 12;

struct TransportHeader {
  NodeId from = kNoNode;
  NodeId to = kNoNode;
};

// Prepends the header to `message`.
Bytes frame_datagram(const TransportHeader& h, const Bytes& message);
// Splits a datagram: the header, and the message in `message`. Nothing if
// the datagram is too short, has the wrong magic, or names id 0 / kNoNode.
std::optional<TransportHeader> unframe_datagram(const uint8_t* data, size_t len, Bytes& message);

}  // namespace sg
