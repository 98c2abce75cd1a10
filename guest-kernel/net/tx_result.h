// What became of a packet handed to the stack for sending.
#pragma once

#include <stdint.h>

namespace net {

enum class TxResult : uint8_t {
  kSent,        // handed to the NIC
  kQueued,      // waiting for ARP; dropped later if resolution fails
  kDeviceBusy,  // the NIC's transmit ring was full: dropped
  kNoRoute,     // no next hop: off-subnet without a gateway, our own
                // address (no loopback), 0.0.0.0 or multicast
  kTooBig,      // more than one IPv4 datagram holds (65535 bytes)
  kBadPort,     // UDP destination port 0
  kNoResources, // ARP cache full of unresolved addresses, or no ephemeral port
};

inline bool tx_ok(TxResult r) { return r == TxResult::kSent || r == TxResult::kQueued; }

inline const char* to_string(TxResult r) {
  switch (r) {
    case TxResult::kSent: return "sent";
    case TxResult::kQueued: return "queued for ARP";
    case TxResult::kDeviceBusy: return "device busy";
    case TxResult::kNoRoute: return "no route";
    case TxResult::kTooBig: return "too big";
    case TxResult::kBadPort: return "bad port";
    case TxResult::kNoResources: return "no resources";
  }
  return "unknown";
}

}  // namespace net
