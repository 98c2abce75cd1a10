// Node identity conventions shared by services, clients and the simulator.
//
// Servers of a cluster are numbered 1..N: small, dense and stable across
// restarts, so that they can index arrays and appear in configurations.
// Clients take ids from kFirstClientId upwards, which lets a server tell a
// client's datagram from a peer's without a lookup. Freestanding-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "storage-guests/common/codec.h"
#include "storage-guests/common/env.h"

namespace sg {

constexpr NodeId kFirstServerId = 1;
constexpr NodeId kFirstClientId = 1u << 20;
// A cluster is small; this bounds every decoded membership list.
constexpr size_t kMaxClusterSize = 64;

constexpr bool is_server_id(NodeId id) { return id >= kFirstServerId && id < kFirstClientId; }
constexpr bool is_client_id(NodeId id) { return id >= kFirstClientId && id != kNoNode; }

// Votes or acknowledgements needed out of n voters.
constexpr size_t quorum(size_t n) { return n / 2 + 1; }

inline void write_node_ids(Writer& w, const std::vector<NodeId>& ids) {
  w.varint(ids.size());
  for (NodeId id : ids) w.varint(id);
}

// A membership list: at most kMaxClusterSize distinct ids, none of them 0
// or kNoNode (kBadValue otherwise). On error `out` is left empty.
inline void read_node_ids(Reader& r, std::vector<NodeId>& out) {
  out.clear();
  const size_t n = r.count(kMaxClusterSize);
  out.reserve(n);
  for (size_t i = 0; i < n && r.ok(); ++i) {
    const NodeId id = static_cast<NodeId>(r.varint_max(kNoNode - 1));
    if (!r.ok()) break;
    bool repeated = false;
    for (NodeId seen : out) repeated |= seen == id;
    if (id == 0 || repeated) r.fail(DecodeError::kBadValue);
    out.push_back(id);
  }
  if (!r.ok()) out.clear();
}

}  // namespace sg
