// The replicated key-value state machine that runs on top of the Raft log:
// put, get, delete and compare-and-swap over string keys and values, with
// client sessions for exactly-once writes (thesis §6.3).
//
// The session table (last request id and reply per client) lives *inside*
// the replicated state: it changes only when a log entry is applied and is
// carried in snapshots, so every replica -- and in particular any future
// leader -- agrees on which requests already ran. A client retrying a write
// that committed under an old leader gets the recorded reply instead of a
// second execution. Freestanding-safe.
#pragma once

#include <map>
#include <optional>
#include <string>

#include "storage-guests/common/rpc.h"
#include "storage-guests/raft/wire.h"

namespace sg::raft {

class KvStore {
 public:
  // Applies a committed request at log index `index`. Returns the reply to
  // send, or nullopt for a stale retry whose client has already moved on
  // (its answer went out long ago; nobody is waiting for this one).
  std::optional<KvResponse> apply(const KvRequest& q, Index index);
  // A read from the current state (ReadIndex / lease reads: the caller has
  // made sure the state is recent enough). Sessions are not touched: reads
  // are idempotent, so retrying one is harmless.
  KvResponse read(const KvRequest& q) const;

  // The whole state, sessions included. Deterministic: equal states encode
  // to equal bytes.
  Bytes snapshot() const;
  // Replaces the state; false (and the state unchanged) if `data` is
  // malformed.
  bool restore(const Bytes& data);

  const std::map<std::string, std::string>& data() const { return data_; }
  const DedupTable& sessions() const { return sessions_; }

 private:
  KvResponse execute(const KvRequest& q);

  std::map<std::string, std::string> data_;
  DedupTable sessions_;
};

}  // namespace sg::raft
