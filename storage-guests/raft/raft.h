// Raft (Ongaro & Ousterhout, ATC'14; Ongaro's thesis) as a pure state
// machine in the manner of etcd's raft: no I/O, no clock, no threads.
//
// The application drives it with three inputs
//
//   tick()         one unit of logical time has passed
//   step(m)        a message from a peer arrived
//   propose(d) / read_index(ctx)   client work, on the leader
//
// and collects its output with ready() / advance():
//
//   while (raft.has_ready()) {
//     Ready rd = raft.ready();
//     1. persist rd.snapshot (if any), rd.entries (truncating the stored log
//        at rd.entries[0].index first) and rd.hard_state (if any); sync;
//     2. only then send rd.messages: a vote, an append acknowledgement or a
//        leader's commit announcement is a promise about durable state;
//     3. apply rd.snapshot, then rd.committed_entries, in order;
//        serve rd.read_states once applied >= their index;
//     raft.advance(rd);
//   }
//
// ready() already counts what it hands out as persisted and applied, so the
// application may take the next Ready before the previous one's sync has
// completed (pipelining), provided it performs the steps of successive Readys
// in order: Ready n+1's messages go out after Ready n's sync, and so on.
// RaftKvNode does exactly that with the asynchronous Env::storage().
//
// The features, with the paper's sections:
//   elections with randomized timeouts (§5.2), the randomness injected;
//   optional PreVote (thesis §9.6) and CheckQuorum (thesis §6.2);
//   log replication with the consistency check (§5.3) and fast backtracking
//     by conflict term / index (extended paper §5.3, 6.824's XTerm/XIndex);
//   the election restriction (§5.4.1) and the commit rule that counts
//     replicas only for entries of the current term (§5.4.2, Figure 8);
//   snapshots and InstallSnapshot (§7);
//   linearizable reads by ReadIndex (thesis §6.4) and, as an option, by
//     leader lease (thesis §6.4.1) -- see Config::lease_reads for the clock
//     assumption that makes leases safe.
//
// Cluster membership is fixed at construction (no joint consensus).
#pragma once

#include <functional>
#include <map>
#include <optional>
#include <vector>

#include "storage-guests/raft/log.h"
#include "storage-guests/raft/types.h"

namespace sg::raft {

enum class Role : uint8_t { kFollower, kPreCandidate, kCandidate, kLeader };
const char* to_string(Role r);

struct Config {
  NodeId id = kNoNode;
  std::vector<NodeId> voters;  // every member, including id

  // Election timeout, in ticks: each time a node resets its election timer
  // it draws a fresh timeout uniformly from [min, max] (§5.2; §9.3 of the
  // thesis measures why the spread matters). min == max disables the
  // randomization, which Figure 16 shows can split votes for a long time.
  int election_ticks_min = 10;
  int election_ticks_max = 20;
  // The leader's heartbeat interval; must be well below election_ticks_min.
  int heartbeat_ticks = 2;

  // Uniform 64-bit random numbers (Env::random in a node): the only source
  // of nondeterminism, injected so the core stays replayable.
  std::function<uint64_t()> random;

  // Thesis §9.6: a node that timed out first asks whether it could win
  // (without bumping its term), so a partitioned node rejoining cannot
  // depose a healthy leader by its inflated term.
  bool pre_vote = true;
  // Thesis §6.2: a leader that has not heard from a quorum within an
  // election timeout steps down, and followers that heard from a leader
  // within the minimum election timeout ignore vote requests (leader
  // stickiness). Required by lease_reads.
  bool check_quorum = false;

  // Leader leases (thesis §6.4.1): serve reads without a heartbeat round
  // while a quorum acknowledged a heartbeat sent less than lease_ticks() ago.
  //
  // CLOCK ASSUMPTION. A lease is safe only if no other leader can exist
  // before it expires. Followers refuse to vote for election_ticks_min ticks
  // of *their* clock after hearing from the leader (and for as long again
  // after a restart, since they forget whom they heard from), and a lease
  // counts from when the leader *sent* the heartbeat. So the lease holds if
  // every pair of clocks ticks at rates within a factor (1 + rho) / (1 - rho)
  // of each other, rho = max_clock_drift_ppm / 1e6. Offsets do not matter
  // (only intervals are compared), rates do: a follower clock running more
  // than that much faster than the leader's breaks linearizability of lease
  // reads. ReadIndex (the default) makes no timing assumption at all.
  bool lease_reads = false;
  uint32_t max_clock_drift_ppm = 100'000;  // 10%: generous for real quartz

  // Flow control: entries per AppendEntries, unacknowledged appends per
  // follower in the pipelined (replicate) state.
  size_t max_entries_per_msg = 64;
  size_t max_inflight_msgs = 64;
  // Upper bound on committed entries handed out in one Ready.
  size_t max_committed_per_ready = 1024;

  int lease_ticks() const;
};

// What changed in the volatile state; for the application's bookkeeping
// (who to redirect clients to, when to give up pending reads).
struct SoftState {
  NodeId leader = kNoNode;
  Role role = Role::kFollower;
  friend bool operator==(const SoftState&, const SoftState&) = default;
};

// A confirmed read: once the state machine has applied `index`, a read
// issued with `ctx` may be served from it.
struct ReadState {
  Index index = 0;
  uint64_t ctx = 0;
  friend bool operator==(const ReadState&, const ReadState&) = default;
};

struct Ready {
  std::optional<SoftState> soft_state;
  std::optional<HardState> hard_state;
  Snapshot snapshot;  // non-empty: persist, then restore the state machine
  std::vector<Entry> entries;
  std::vector<Message> messages;
  std::vector<Entry> committed_entries;
  std::vector<ReadState> read_states;
  // Whether the persistence step must sync before messages may go out.
  bool must_sync() const {
    return hard_state.has_value() || !snapshot.empty() || !entries.empty();
  }
  bool empty() const {
    return !soft_state && !hard_state && snapshot.empty() && entries.empty() &&
           messages.empty() && committed_entries.empty() && read_states.empty();
  }
};

// Replication state of one follower as seen by the leader (etcd's
// Progress): probing for the match point one message at a time, pipelining
// appends once found, or waiting for a snapshot to land.
struct Progress {
  enum class State : uint8_t { kProbe, kReplicate, kSnapshot };
  Index match = 0;
  Index next = 1;
  State state = State::kProbe;
  bool probe_sent = false;      // kProbe: an append is out, wait for reply
  Index pending_snapshot = 0;   // kSnapshot: the index being installed
  int snapshot_ticks = 0;       // kSnapshot: ticks since it was sent
  bool recent_active = false;   // heard from since the last CheckQuorum
  uint64_t acked_round = 0;     // highest heartbeat round echoed
  std::vector<Index> inflight;  // kReplicate: last index of each append out

  bool paused(size_t max_inflight) const;
};

class Raft {
 public:
  // `hard_state`, `snapshot` and `entries` are what the node recovered from
  // its storage (all empty on first boot); the application restores its
  // state machine from `snapshot` before applying anything else.
  Raft(Config config, HardState hard_state = {}, Snapshot snapshot = {},
       std::vector<Entry> entries = {});

  void tick();
  void step(const Message& m);

  // Leader only: append `data` to the log. Returns its index, or nullopt if
  // this node is not the leader (the client should be redirected).
  std::optional<Index> propose(Bytes data);
  // Leader only: ask for a linearizable read point. The answer comes later
  // as a ReadState carrying `ctx`, or never if leadership is lost (watch
  // SoftState). Returns false when not the leader.
  bool read_index(uint64_t ctx);
  // Start an election now (tests, and the "hup" of a fresh single node).
  void campaign();

  bool has_ready() const;
  Ready ready();
  void advance(const Ready& rd);

  // Log compaction: the application's state machine, serialized as `data`,
  // reflects every entry up to `index`, which it has applied.
  void compact(Index index, Bytes data);

  // Introspection.
  NodeId id() const { return cfg_.id; }
  Role role() const { return role_; }
  Term term() const { return term_; }
  NodeId vote() const { return vote_; }
  NodeId leader() const { return lead_; }
  HardState hard_state() const { return HardState{term_, vote_, log_.committed()}; }
  const RaftLog& log() const { return log_; }
  const Config& config() const { return cfg_; }
  const std::map<NodeId, Progress>& progress() const { return prs_; }
  int randomized_election_timeout() const { return randomized_timeout_; }
  int election_elapsed() const { return election_elapsed_; }
  // Leader: whether a lease covers reads right now (lease_reads only).
  bool lease_valid() const;

 private:
  using ProgState = Progress::State;

  void become_follower(Term term, NodeId leader);
  void become_pre_candidate();
  void become_candidate();
  void become_leader();
  void reset(Term term);
  void reset_randomized_timeout();
  void start_election(bool pre);

  void tick_election();
  void tick_heartbeat();

  void step_leader(const Message& m);
  void step_candidate(const Message& m);
  void step_follower(const Message& m);
  void handle_append(const Message& m);
  void handle_heartbeat(const Message& m);
  void handle_snapshot(const Message& m);
  void handle_vote_request(const Message& m);
  void handle_append_response(const Message& m, Progress& pr);
  void handle_heartbeat_response(const Message& m, Progress& pr);

  void send(Message m);
  bool send_append(NodeId to, bool send_if_empty);
  void bcast_append();
  void bcast_heartbeat();
  bool maybe_commit();
  void on_committed_in_term();
  void release_reads();
  void append_entry(Bytes data);

  bool is_voter(NodeId id) const;
  size_t quorum() const { return cfg_.voters.size() / 2 + 1; }
  // Ignore vote requests: we heard from a live leader less than a minimum
  // election timeout ago (or just booted, with leases on).
  bool in_lease() const;

  Config cfg_;
  RaftLog log_;
  Term term_ = 0;
  NodeId vote_ = kNoNode;
  NodeId lead_ = kNoNode;
  Role role_ = Role::kFollower;

  int election_elapsed_ = 0;
  int heartbeat_elapsed_ = 0;
  int randomized_timeout_ = 0;
  // Leases: after a boot, refuse votes for a minimum election timeout, since
  // we may have promised a leader (before the crash) not to.
  bool boot_guard_ = false;

  std::map<NodeId, bool> votes_;  // candidate: who answered, and how
  std::map<NodeId, Progress> prs_;

  // ReadIndex. Heartbeat rounds are numbered; a read registered before round
  // r was sent is confirmed once a quorum echoed r.
  struct PendingRead {
    uint64_t ctx;
    Index index;
    uint64_t round;
  };
  std::vector<PendingRead> pending_reads_;
  std::vector<uint64_t> reads_before_commit_;  // until the term's no-op commits
  bool committed_in_term_ = false;
  uint64_t round_ = 0;
  uint64_t ticks_ = 0;                          // leader's tick counter
  std::map<uint64_t, uint64_t> round_sent_tick_;  // round -> ticks_ when sent
  uint64_t lease_start_tick_ = 0;
  bool lease_held_ = false;

  std::vector<Message> msgs_;
  std::vector<ReadState> read_states_;
  SoftState prev_soft_;
  HardState prev_hard_;
};

}  // namespace sg::raft
