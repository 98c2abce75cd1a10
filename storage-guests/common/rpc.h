// The client request/response convention, and the table that turns
// at-least-once delivery into exactly-once execution.
//
// A client session has a ClientId, unique for the cluster's lifetime (a
// restarted client starts a new session rather than reusing its id), and
// numbers its requests 1, 2, 3, ... It keeps at most one request
// outstanding and retries it, with the same RequestId, until it gets a
// reply; only then does it move on to seq + 1. Replies carry the RequestId
// they answer, so a client can drop stale replies to earlier retries.
//
// Under that rule the server needs only the last seq of each client and the
// reply it produced (Raft thesis, section 6.3): a repeat of the last seq is
// answered from the table without running it again; anything older has
// already been answered and is ignored. In a replicated service the table is
// part of the replicated state (updated when an entry is applied, carried in
// snapshots), so that a new leader answers retries the same way.
//
// Freestanding-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <map>

#include "storage-guests/common/codec.h"
#include "storage-guests/common/env.h"

namespace sg {

using ClientId = uint64_t;

struct RequestId {
  ClientId client = 0;  // 0 is never a valid client
  uint64_t seq = 0;     // starts at 1
  bool operator==(const RequestId&) const = default;
};

void write_request_id(Writer& w, const RequestId& id);
// Zero client or seq are kBadValue.
RequestId read_request_id(Reader& r);

// The client half: hands out sequence numbers for one session.
class ClientSession {
 public:
  explicit ClientSession(ClientId id) : id_(id) {}
  ClientId id() const { return id_; }
  // The id for the next new request (not for a retry, which reuses its id).
  RequestId next() { return RequestId{id_, ++last_}; }

 private:
  ClientId id_;
  uint64_t last_ = 0;
};

class DedupTable {
 public:
  enum class Verdict : uint8_t {
    kNew,        // run it, then record() the reply
    kDuplicate,  // already run: answer with *reply
    kStale,      // older than the client's last request: already answered,
                 // the client has moved on; drop it
    kExpired,    // the client's session was expired (or never existed, yet
                 // seq > 1): running it could run it twice; the service
                 // should reply with a session error
  };
  struct Lookup {
    Verdict verdict;
    const Bytes* reply;  // set only for kDuplicate; valid until the next change
  };

  Lookup check(const RequestId& id) const;

  // Records the reply to the client's request `id.seq`, which must be newer
  // than the one recorded. `stamp` is a logical time every replica agrees
  // on (the Raft log index of the request, say); expire() uses it.
  void record(const RequestId& id, Bytes reply, uint64_t stamp = 0);

  // Forgets sessions whose last request was recorded before `stamp`, so the
  // table stays bounded. Replicas that call it at the same point of the log
  // keep identical tables. Returns how many were dropped.
  size_t expire_before(uint64_t stamp);

  size_t size() const { return entries_.size(); }
  void clear() { entries_.clear(); }

  // For snapshots: sessions in ascending client order, so equal tables
  // encode to equal bytes.
  void encode(Writer& w) const;
  // Replaces the table; on error the table is left empty and r is in error.
  void decode(Reader& r, size_t max_sessions = 1u << 20);

  bool operator==(const DedupTable&) const = default;

 private:
  struct Entry {
    uint64_t seq = 0;
    uint64_t stamp = 0;
    Bytes reply;
    bool operator==(const Entry&) const = default;
  };
  std::map<ClientId, Entry> entries_;
};

}  // namespace sg
