// A Raft key-value cluster in the deterministic simulator, with the checks
// of MIT 6.824's test harness (config.go): one leader per term, State
// Machine Safety across servers and restarts (every applied index holds the
// same entry everywhere), and one(): propose a command and wait until enough
// servers applied it.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <algorithm>
#include <csignal>
#include <cstdio>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "storage-guests/raft/kv_client.h"
#include "storage-guests/raft/kv_node.h"
#include "tests/sim/sim.h"

namespace raft_test {

using sg::NodeId;
using sg::TimeNs;
using namespace sg::raft;
using sim::kMillisecond;
using sim::kSecond;

// __builtin_trap() (a broken Raft invariant) bypasses gtest and the
// sanitizers; print the seed being run before dying, so it can be replayed.
inline uint64_t& current_seed() {
  static uint64_t s = 0;
  return s;
}
inline void on_fatal_signal(int sig) {
  char buf[96];
  int n = std::snprintf(buf, sizeof buf, "\nfatal signal %d: seed=%llu (replay with SG_SEED=%llu)\n",
                        sig, (unsigned long long)current_seed(),
                        (unsigned long long)current_seed());
  if (n > 0) (void)!write(2, buf, size_t(n));
  std::signal(sig, SIG_DFL);
  std::raise(sig);
}
inline void watch_seed(uint64_t seed) {
  current_seed() = seed;
  static bool installed = [] {
    std::signal(SIGILL, on_fatal_signal);
    std::signal(SIGTRAP, on_fatal_signal);
    return true;
  }();
  (void)installed;
}

// An entry's identity for safety checks: its term and bytes.
struct Applied {
  sg::raft::Term term;
  sg::Bytes data;
};

class Cluster {
 public:
  Cluster(uint64_t seed, int servers, KvNodeConfig base = {}, sim::Config sc = {})
      : sim_(seed, sc) {
    watch_seed(seed);
    for (int i = 1; i <= servers; ++i) ids_.push_back(NodeId(i));
    base.servers = ids_;
    base_ = base;
    for (NodeId id : ids_) {
      sim_.add_server(id, [this](sg::Env& env) {
        KvNodeConfig c = base_;
        c.on_apply = [this](NodeId self, const Entry& e) { on_apply(self, e); };
        return std::make_unique<RaftKvNode>(env, c);
      });
    }
  }

  sim::Simulator& sim() { return sim_; }
  const std::vector<NodeId>& ids() const { return ids_; }
  RaftKvNode* node(NodeId id) { return sim_.as<RaftKvNode>(id); }
  const KvNodeConfig& base() const { return base_; }

  // One election timeout at most, in virtual time.
  TimeNs election_timeout() const {
    return TimeNs(base_.election_ticks_max) * base_.tick_interval;
  }

  // Servers that are up, not paused, and connected to `id` both ways.
  bool connected(NodeId a, NodeId b) {
    return sim_.link_up(a, b) && sim_.link_up(b, a);
  }

  // 6.824's checkOneLeader: among live servers, exactly one leader in the
  // newest term that has one. Waits up to `timeout` for it.
  std::optional<NodeId> one_leader(TimeNs timeout = 5 * kSecond) {
    std::optional<NodeId> found;
    sim_.run_until([&] { return (found = leader_now()).has_value(); }, timeout);
    return found;
  }
  std::optional<NodeId> leader_now(const std::set<NodeId>& among = {}) {
    std::map<sg::raft::Term, std::vector<NodeId>> leaders;
    for (NodeId id : ids_) {
      if (!among.empty() && !among.count(id)) continue;
      RaftKvNode* n = node(id);
      if (n && !sim_.is_paused(id) && n->is_leader()) leaders[n->raft().term()].push_back(id);
    }
    for (auto& [t, ls] : leaders) EXPECT_LE(ls.size(), 1u) << "two leaders in term " << t;
    if (leaders.empty()) return std::nullopt;
    return leaders.rbegin()->second.front();
  }
  // A leader that a majority of servers follows (its group can commit).
  std::optional<NodeId> effective_leader(TimeNs timeout = 5 * kSecond) {
    std::optional<NodeId> found;
    sim_.run_until([&] {
      found.reset();
      for (NodeId id : ids_) {
        RaftKvNode* n = node(id);
        if (!n || sim_.is_paused(id) || !n->is_leader()) continue;
        size_t followers = 1;
        for (NodeId o : ids_) {
          RaftKvNode* f = node(o);
          if (o != id && f && connected(id, o) && f->raft().leader() == id &&
              f->raft().term() == n->raft().term())
            ++followers;
        }
        if (followers >= ids_.size() / 2 + 1) found = id;
      }
      return found.has_value();
    }, timeout);
    return found;
  }

  sg::raft::Term term_of(NodeId id) { return node(id) ? node(id)->raft().term() : 0; }

  // How many servers applied index i, and the entry (6.824's nCommitted).
  size_t n_applied(sg::raft::Index i, sg::Bytes* data = nullptr) {
    size_t n = 0;
    for (NodeId id : ids_) {
      auto it = applied_by_.find(id);
      RaftKvNode* node_ = node(id);
      // A server that installed a snapshot covering i has it without
      // having applied it entry by entry.
      if ((it != applied_by_.end() && it->second.count(i)) ||
          (node_ && node_->applied() >= i && log_.count(i)))
        ++n;
    }
    auto g = log_.find(i);
    if (data && g != log_.end()) *data = g->second.data;
    return n;
  }

  // A put request for the cluster's own "client 1", as 6.824's one(cmd):
  // unique values, proposed straight to a leader.
  KvRequest command(const std::string& value) {
    KvRequest q;
    q.id = sg::RequestId{1, ++seq_};
    q.op = KvOp::kPut;
    q.key = "k";
    q.value = value;
    return q;
  }
  static sg::Bytes body(const KvRequest& q) {
    sg::Writer w;
    write_request_body(w, q);
    return w.take();
  }

  // 6.824's one(): keep proposing `value` to whichever server is leader
  // until `expected` servers have applied it; returns its index, or nullopt
  // after `timeout`. With retry = false, a proposal accepted by a leader
  // that then fails to commit it within 2 s is a failure.
  std::optional<sg::raft::Index> one(const std::string& value, size_t expected,
                                     bool retry = true, TimeNs timeout = 10 * kSecond) {
    KvRequest q = command(value);
    sg::Bytes want = body(q);
    TimeNs deadline = sim_.now() + timeout;
    while (sim_.now() < deadline) {
      std::optional<sg::raft::Index> idx;
      for (NodeId id : ids_) {
        RaftKvNode* n = node(id);
        if (n && !sim_.is_paused(id) && n->is_leader()) {
          idx = n->propose(q);
          if (idx) break;
        }
      }
      if (idx) {
        sg::raft::Index i = *idx;
        // 6.824 waits 2 s; a cluster configured with slower timing gets
        // proportionally longer.
        TimeNs wait = std::max<TimeNs>(2 * kSecond, 4 * election_timeout());
        bool ok = sim_.run_until([&] {
          sg::Bytes got;
          return n_applied(i, &got) >= expected && got == want;
        }, wait);
        if (ok) return i;
        sg::Bytes got;
        if (n_applied(i, &got) > 0 && got != want && !retry) return std::nullopt;
        if (!retry) return std::nullopt;
      } else {
        sim_.run_for(50 * kMillisecond);
      }
    }
    return std::nullopt;
  }

  // Every server applied the same entries, so far (checked continuously,
  // this returns the count of entries compared).
  size_t safety_checks() const { return checks_; }
  const std::map<sg::raft::Index, Applied>& log() const { return log_; }

  // Servers agree on the state machine once they applied the same index.
  void expect_converged(TimeNs timeout = 10 * kSecond) {
    bool ok = sim_.run_until([&] {
      std::optional<sg::raft::Index> a;
      for (NodeId id : ids_) {
        RaftKvNode* n = node(id);
        if (!n) return false;
        if (a && *a != n->applied()) return false;
        a = n->applied();
      }
      return true;
    }, timeout);
    ASSERT_TRUE(ok) << "servers did not converge on one applied index";
    const auto& ref = node(ids_[0])->store().data();
    for (NodeId id : ids_) EXPECT_EQ(node(id)->store().data(), ref) << "server " << id;
  }

 private:
  void on_apply(NodeId self, const Entry& e) {
    ++checks_;
    auto [it, fresh] = log_.emplace(e.index, Applied{e.term, e.data});
    if (!fresh) {
      // State Machine Safety (Figure 3): no two servers ever apply
      // different entries at one index -- nor one server before and after
      // a crash.
      EXPECT_EQ(it->second.term, e.term) << "server " << self << " index " << e.index;
      EXPECT_EQ(it->second.data, e.data) << "server " << self << " index " << e.index;
    }
    applied_by_[self].insert(e.index);
  }

  sim::Simulator sim_;
  std::vector<NodeId> ids_;
  KvNodeConfig base_;
  std::map<sg::raft::Index, Applied> log_;
  std::map<NodeId, std::set<sg::raft::Index>> applied_by_;
  size_t checks_ = 0;
  uint64_t seq_ = 0;
};

}  // namespace raft_test
