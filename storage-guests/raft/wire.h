// Raft's bytes: peer messages and client requests on the wire (in the shared
// envelope of storage-guests/common/codec.h, protocol kRaft), and the records
// a RaftKvNode keeps in its Env::storage() log.
//
// Decoders never trust their input: a datagram from the network or a record
// from a disk that may hold a torn write is length-checked field by field,
// and anything malformed is rejected (nullopt), never half-applied.
// Freestanding-safe.
#pragma once

#include <optional>
#include <string>

#include "storage-guests/common/codec.h"
#include "storage-guests/common/rpc.h"
#include "storage-guests/raft/types.h"

namespace sg::raft {

// Envelope message types of Protocol::kRaft: the peer messages keep their
// MsgType values (1..kMaxMsgType); client traffic follows.
constexpr uint8_t kWireClientRequest = 16;
constexpr uint8_t kWireClientResponse = 17;
constexpr uint8_t kWireMaxType = kWireClientResponse;

// Bounds on decoded sizes: far above anything a correct peer sends, far
// below what would let a corrupt length exhaust guest memory.
constexpr size_t kMaxEntriesPerMessage = 4096;
constexpr size_t kMaxKeyBytes = 4096;
constexpr size_t kMaxValueBytes = 1u << 20;

Bytes encode_message(const Message& m);
// `from` is the datagram's sender as the transport saw it: a message whose
// claimed sender differs is rejected (a node cannot speak for another).
std::optional<Message> decode_message(const Bytes& b, NodeId from);

// ---- client protocol ---------------------------------------------------------

enum class KvOp : uint8_t { kGet = 1, kPut, kDel, kCas };
constexpr uint8_t kMaxKvOp = static_cast<uint8_t>(KvOp::kCas);
const char* to_string(KvOp op);

struct KvRequest {
  RequestId id;  // exactly-once: retries reuse it (storage-guests/common/rpc.h)
  KvOp op = KvOp::kGet;
  std::string key;
  std::optional<std::string> value;     // put, cas: the value to store
  std::optional<std::string> expected;  // cas: required current value; nullopt = absent
  friend bool operator==(const KvRequest&, const KvRequest&) = default;
};

enum class KvStatus : uint8_t {
  kOk = 1,      // done; value: get -> value read, others -> nothing
  kFail,        // definitely not applied: cas mismatch, or refused before acting
  kNotLeader,   // not applied here; try leader_hint (kNoNode: unknown)
};
constexpr uint8_t kMaxKvStatus = static_cast<uint8_t>(KvStatus::kNotLeader);

struct KvResponse {
  RequestId id;
  KvStatus status = KvStatus::kOk;
  std::optional<std::string> value;
  NodeId leader_hint = kNoNode;
  friend bool operator==(const KvResponse&, const KvResponse&) = default;
};

Bytes encode_request(const KvRequest& r);
std::optional<KvRequest> decode_request(const Bytes& b);
Bytes encode_response(const KvResponse& r);
std::optional<KvResponse> decode_response(const Bytes& b);
// The envelope type of a datagram of ours, or 0 if it is not one.
uint8_t peek_type(const Bytes& b);

// The body of a log entry: the client request it carries. (The no-op a new
// leader appends has empty data and is not decoded.)
void write_request_body(Writer& w, const KvRequest& r);
void read_request_body(Reader& r, KvRequest& out);

// ---- storage records -----------------------------------------------------------
//
// The node's storage log is a sequence of records; replaying them in order
// rebuilds (snapshot, hard state, entries):
//   kHardState  term, vote, commit: the latest one wins;
//   kEntries    a run of entries: first truncate the log at the first one's
//               index, then append (the shape of a Ready's entries);
//   kSnapshot   replaces everything before it (written by a compaction
//               rewrite or an installed snapshot).

enum class RecordKind : uint8_t { kHardState = 1, kEntries = 2, kSnapshot = 3 };

Bytes encode_hard_state(const HardState& hs);
Bytes encode_entries(const std::vector<Entry>& entries);
Bytes encode_snapshot(const Snapshot& s);

struct RecoveredState {
  HardState hard_state;
  Snapshot snapshot;
  std::vector<Entry> entries;  // contiguous, after snapshot.meta.index
};
// nullopt if a record is malformed or the records are inconsistent (an
// entries record that leaves a gap). The simulator's storage never tears a
// record, and the guest's block log checksums them, so this means a bug.
std::optional<RecoveredState> recover_records(const std::vector<Bytes>& records);

}  // namespace sg::raft
