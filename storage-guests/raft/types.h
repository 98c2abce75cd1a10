// Plain data of the Raft core: log entries, persistent state, snapshots and
// the messages peers exchange. Freestanding-safe (DESIGN.md decision 4).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "storage-guests/common/env.h"

namespace sg::raft {

using Term = uint64_t;
using Index = uint64_t;

// Invariant checks that must hold in every build. There is no libc assert in
// the guest kernel, and an invariant violation in a consensus protocol means
// the replicated state can no longer be trusted, so stopping dead is the only
// safe reaction: __builtin_trap() does that on both sides (SIGILL on the host,
// #UD -> kernel panic in the guest).
#define RAFT_INVARIANT(cond)        \
  do {                              \
    if (!(cond)) __builtin_trap();  \
  } while (0)

struct Entry {
  Term term = 0;
  Index index = 0;
  // Opaque to the core. Empty data is the no-op a new leader appends to
  // commit entries of earlier terms (§5.4.2, §8); applications skip it.
  Bytes data;

  friend bool operator==(const Entry&, const Entry&) = default;
};

// Figure 2's "persistent state on all servers", plus the commit index (not
// required for safety, but persisting it lets a restarted node re-apply its
// committed prefix without waiting for a leader, as etcd does).
struct HardState {
  Term term = 0;
  NodeId vote = kNoNode;
  Index commit = 0;

  friend bool operator==(const HardState&, const HardState&) = default;
};

struct SnapshotMeta {
  Index index = 0;  // last entry the snapshot covers (lastIncludedIndex)
  Term term = 0;    // its term (lastIncludedTerm)
  std::vector<NodeId> voters;

  friend bool operator==(const SnapshotMeta&, const SnapshotMeta&) = default;
};

struct Snapshot {
  SnapshotMeta meta;
  Bytes data;  // the application's state machine image

  bool empty() const { return meta.index == 0; }
  friend bool operator==(const Snapshot&, const Snapshot&) = default;
};

enum class MsgType : uint8_t {
  kApp = 1,        // AppendEntries (entries may be empty: commit propagation)
  kAppResp,        // its reply; also the reply to kSnap
  kVote,           // RequestVote
  kVoteResp,
  kPreVote,        // §9.6 of the thesis: would you vote for me at term+1?
  kPreVoteResp,
  kHeartbeat,      // empty AppendEntries that never touches the log
  kHeartbeatResp,
  kSnap,           // InstallSnapshot (the whole snapshot in one message)
};
constexpr uint8_t kMaxMsgType = static_cast<uint8_t>(MsgType::kSnap);

const char* to_string(MsgType t);

// One struct for every message kind, as in etcd's raftpb.Message; each kind
// uses the fields documented here and leaves the others zero.
struct Message {
  MsgType type = MsgType::kApp;
  NodeId from = kNoNode;
  NodeId to = kNoNode;
  Term term = 0;
  // kApp: prevLogIndex / prevLogTerm. kVote, kPreVote: lastLogIndex /
  // lastLogTerm of the candidate. kAppResp: the highest index known to match
  // (accept) or the rejected prevLogIndex (reject).
  Term log_term = 0;
  Index index = 0;
  std::vector<Entry> entries;
  // kApp, kHeartbeat: leader's commit index (for heartbeats clamped to what
  // the follower is known to hold).
  Index commit = 0;
  // kAppResp, kVoteResp, kPreVoteResp.
  bool reject = false;
  // Fast backtracking (extended paper §5.3, 6.824's XTerm/XIndex/XLen) on a
  // rejected kApp: conflict_term is the follower's term at prevLogIndex (0:
  // the follower's log is too short), reject_hint is the first index the
  // follower holds with conflict_term, or its last index + 1 if too short.
  Term conflict_term = 0;
  Index reject_hint = 0;
  // kHeartbeat / kHeartbeatResp: the leader's heartbeat round, echoed back.
  // A quorum of echoes for round r confirms leadership as of the moment
  // round r was sent (ReadIndex, §6.4 of the thesis; leases).
  uint64_t round = 0;
  // kSnap.
  Snapshot snapshot;

  friend bool operator==(const Message&, const Message&) = default;
};

}  // namespace sg::raft
