// A Raft-replicated key-value server: the Raft core (raft.h) and the
// KvStore state machine (kv.h) behind the sg::Node interface, so the same
// object runs in the guest kernel and in the simulator (DESIGN.md decision 5).
//
// What it does with each Ready (see raft.h for the contract):
//   persist   snapshot (a storage rewrite), entries, hard state, then sync;
//   after the sync completes (Env calls on_sync): send the messages, restore
//             the snapshot, apply committed entries, answer clients.
// Readys are pipelined: a new one may be persisted while older syncs are in
// flight, but each one's post-sync work runs strictly in order.
//
// Clients (storage-guests/raft/kv_client.h) talk to it with KvRequest /
// KvResponse datagrams. Writes go through the log; the leader answers once
// the entry is applied. Reads use ReadIndex (or a lease, if configured) and
// are answered from the local state once it has applied the read index.
// A node that is not the leader answers kNotLeader with its best guess, and
// answers nothing for a write it proposed but lost leadership before it
// committed: that write may yet commit, so only a timeout is honest.
//
// Freestanding-safe.
#pragma once

#include <deque>
#include <functional>
#include <map>
#include <optional>

#include "storage-guests/common/env.h"
#include "storage-guests/raft/kv.h"
#include "storage-guests/raft/raft.h"

namespace sg::raft {

struct KvNodeConfig {
  std::vector<NodeId> servers;  // the cluster, this node included

  // Timing: ticks of tick_interval on the local clock. Defaults follow the
  // paper's recommendation (§9.3): 150-300 ms election timeouts, heartbeats
  // a third of the minimum.
  TimeNs tick_interval = 10'000'000;  // 10 ms
  int election_ticks_min = 15;
  int election_ticks_max = 30;
  int heartbeat_ticks = 5;
  bool pre_vote = true;
  bool check_quorum = true;
  bool lease_reads = false;  // see Config::lease_reads for its clock assumption
  uint32_t max_clock_drift_ppm = 100'000;

  // Compact the log once this many applied entries follow the last
  // snapshot (§7). Small values exercise InstallSnapshot in tests.
  size_t snapshot_threshold = 1000;

  // Test hook: called for every committed entry applied, in order, with its
  // index and term (State Machine Safety checks across nodes).
  std::function<void(NodeId self, const Entry& e)> on_apply;
};

class RaftKvNode : public Node {
 public:
  RaftKvNode(Env& env, KvNodeConfig config);

  void start() override;
  void on_message(NodeId from, const Bytes& message) override;
  void on_timer(TimerId id) override;
  void on_sync(uint64_t token) override;

  // Proposes a request as if a client had sent it, with nobody to answer:
  // the equivalent of 6.824's Start(), for tests and embedders. Returns the
  // entry's index, or nullopt if this node is not the leader.
  std::optional<Index> propose(const KvRequest& q);

  // Introspection for tests and benchmarks.
  const Raft& raft() const { return *raft_; }
  const KvStore& store() const { return store_; }
  Index applied() const { return applied_; }
  bool is_leader() const { return raft_ && raft_->role() == Role::kLeader; }
  size_t messages_rejected() const { return rejected_; }
  size_t snapshots_installed() const { return snapshots_installed_; }

 private:
  struct InFlight {
    // The sync that must complete before finishing it: its own, or for a
    // Ready with nothing to persist the one of the Ready before it.
    std::optional<uint64_t> wait_for;
    Ready rd;
  };
  struct WaitingWrite {
    NodeId reply_to;
    Term term;  // proposed in this term; a later term proposes again
  };
  struct WaitingRead {
    KvRequest q;
    NodeId reply_to;
    std::optional<Index> index;  // set once confirmed (ReadState)
  };
  using Rid = std::pair<ClientId, uint64_t>;

  void pump();
  void persist(const Ready& rd);
  void drain_synced();
  void finish(Ready& rd);
  void apply_entry(const Entry& e);
  void serve_reads();
  void maybe_compact();
  void handle_client(NodeId from, const KvRequest& q);
  void reply(NodeId to, const KvResponse& p);
  void arm_tick();

  Env& env_;
  KvNodeConfig cfg_;
  std::optional<Raft> raft_;
  KvStore store_;
  Index applied_ = 0;

  std::deque<InFlight> inflight_;
  std::optional<uint64_t> synced_token_;  // highest completed sync
  TimerId tick_timer_ = 0;

  std::map<Rid, WaitingWrite> writes_;
  std::map<uint64_t, WaitingRead> reads_;  // by ReadIndex ctx
  uint64_t next_read_ctx_ = 0;
  size_t rejected_ = 0;  // malformed datagrams dropped
  size_t snapshots_installed_ = 0;
};

}  // namespace sg::raft
