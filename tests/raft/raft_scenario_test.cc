// The scenarios of MIT 6.824's Raft labs (2A-2D), run in the deterministic
// simulator with RaftKvNode: the same code the guest kernel runs, over the
// simulated network and disks. Each test runs a few seeds (SG_SEEDS=K for
// more, SG_SEED=N to replay one); every run also checks State Machine Safety
// on every apply (raft_cluster.h).
#include <gtest/gtest.h>

#include <algorithm>

#include "tests/raft/raft_cluster.h"

namespace raft_test {
namespace {

std::string val(sim::Rng& rng) { return "v" + std::to_string(rng.next() % 1000000000); }

// ---- 2A: leader election ------------------------------------------------------

TEST(RaftScenario, InitialElection) {
  SG_FOR_EACH_SEED(seed, 3) {
    Cluster c(seed, 3);
    auto l = c.one_leader();
    ASSERT_TRUE(l.has_value());
    sg::raft::Term t1 = c.term_of(*l);
    EXPECT_GE(t1, 1u);
    for (NodeId id : c.ids()) EXPECT_EQ(c.term_of(id), t1) << "all servers agree on the term";
    // With no failures the term does not change (no spurious elections).
    c.sim().run_for(2 * kSecond);
    EXPECT_EQ(c.term_of(*l), t1);
    EXPECT_EQ(c.one_leader(), l);
  }
}

TEST(RaftScenario, ReElection) {
  SG_FOR_EACH_SEED(seed, 3) {
    Cluster c(seed, 3);
    auto l1 = c.one_leader();
    ASSERT_TRUE(l1);
    // The leader disconnects: a new one must be elected.
    c.sim().isolate(*l1);
    auto l2 = c.effective_leader();
    ASSERT_TRUE(l2);
    EXPECT_NE(*l2, *l1);
    // The old leader rejoins: it must not disturb the new one.
    c.sim().heal();
    auto l3 = c.effective_leader();
    ASSERT_TRUE(l3);
    // No quorum: no leader.
    NodeId other = *l3 % 3 + 1;
    c.sim().isolate(*l3);
    c.sim().isolate(other);
    c.sim().run_for(2 * kSecond);
    EXPECT_FALSE(c.effective_leader(0).has_value());
    // A quorum again: a leader.
    c.sim().heal();
    c.sim().isolate(*l3);
    EXPECT_TRUE(c.effective_leader());
    c.sim().heal();
    EXPECT_TRUE(c.effective_leader());
  }
}

TEST(RaftScenario, ManyElections) {
  SG_FOR_EACH_SEED(seed, 2) {
    Cluster c(seed, 7);
    ASSERT_TRUE(c.one_leader());
    for (int it = 0; it < 10; ++it) {
      // Disconnect three random servers; the other four still elect.
      std::vector<NodeId> ids = c.ids();
      for (size_t i = ids.size() - 1; i > 0; --i)
        std::swap(ids[i], ids[c.sim().rng().below(i + 1)]);
      for (int k = 0; k < 3; ++k) c.sim().isolate(ids[k]);
      ASSERT_TRUE(c.effective_leader()) << "iteration " << it;
      c.sim().heal();
    }
    ASSERT_TRUE(c.effective_leader());
  }
}

// Figure 2's "respond after persisting", end to end through RaftKvNode and
// the simulated disk: with every sync taking exactly 1 s, an election needs
// the candidate's own term and vote durable (1 s) before it asks, and each
// voter's vote durable (1 s) before it answers -- so no leader exists
// before 2 s plus an election timeout, and its first entry commits a sync
// later still. (Timeouts scaled up 20x: Raft needs broadcast time, disk
// included, well below the election timeout, §5.6.)
TEST(RaftScenario, Fig2_RepliesWaitForDurableState) {
  SG_FOR_EACH_SEED(seed, 3) {
    sim::Config sc;
    sc.disk.min_sync_latency = sc.disk.max_sync_latency = kSecond;
    KvNodeConfig cfg;
    cfg.tick_interval = 200 * kMillisecond;
    Cluster c(seed, 3, cfg, sc);
    auto l = c.one_leader(60 * kSecond);
    ASSERT_TRUE(l);
    TimeNs min_timeout = TimeNs(c.base().election_ticks_min) * c.base().tick_interval;
    EXPECT_GE(c.sim().now(), 2 * kSecond + min_timeout);
    EXPECT_LT(c.sim().now(), 2 * kSecond + 4 * c.election_timeout()) << "and not much later";
    ASSERT_TRUE(c.one("x", 3, true, 60 * kSecond));
  }
}

// ---- 2B: log replication --------------------------------------------------------

TEST(RaftScenario, BasicAgree) {
  SG_FOR_EACH_SEED(seed, 3) {
    Cluster c(seed, 3);
    ASSERT_TRUE(c.one_leader());
    sg::raft::Index prev = 0;
    for (int i = 0; i < 3; ++i) {
      auto idx = c.one("x" + std::to_string(i), 3, false);
      ASSERT_TRUE(idx) << "command " << i;
      EXPECT_GT(*idx, prev);
      prev = *idx;
    }
  }
}

TEST(RaftScenario, FailAgree) {
  SG_FOR_EACH_SEED(seed, 3) {
    Cluster c(seed, 3);
    ASSERT_TRUE(c.one("101", 3, false));
    auto l = c.one_leader();
    NodeId f = *l % 3 + 1;
    c.sim().isolate(f);
    // The remaining two agree without it, across an election timeout.
    ASSERT_TRUE(c.one("102", 2, false));
    ASSERT_TRUE(c.one("103", 2, false));
    c.sim().run_for(c.election_timeout());
    ASSERT_TRUE(c.one("104", 2, false));
    ASSERT_TRUE(c.one("105", 2, false));
    // It rejoins and catches up.
    c.sim().heal();
    ASSERT_TRUE(c.one("106", 3, true));
    c.sim().run_for(c.election_timeout());
    ASSERT_TRUE(c.one("107", 3, true));
  }
}

TEST(RaftScenario, FailNoAgree) {
  SG_FOR_EACH_SEED(seed, 3) {
    Cluster c(seed, 5);
    ASSERT_TRUE(c.one("10", 5, false));
    auto l = c.one_leader();
    ASSERT_TRUE(l);
    // Three of five followers go away: nothing may commit.
    int gone = 0;
    for (NodeId id : c.ids())
      if (id != *l && gone < 3) {
        c.sim().isolate(id);
        ++gone;
      }
    auto idx = c.node(*l)->propose(c.command("20"));
    ASSERT_TRUE(idx);
    EXPECT_EQ(*idx, 3u) << "after the no-op and command 10";
    c.sim().run_for(2 * c.election_timeout());
    EXPECT_EQ(c.n_applied(*idx), 0u) << "committed without a majority";
    // Repair: a leader (old or new) commits again.
    c.sim().heal();
    ASSERT_TRUE(c.one("30", 5, true));
    ASSERT_TRUE(c.one("1000", 5, true));
  }
}

TEST(RaftScenario, ConcurrentStarts) {
  SG_FOR_EACH_SEED(seed, 3) {
    Cluster c(seed, 3);
    auto l = c.one_leader();
    ASSERT_TRUE(l);
    std::set<sg::raft::Index> idxs;
    std::vector<sg::Bytes> bodies;
    for (int i = 0; i < 5; ++i) {
      KvRequest q = c.command("c" + std::to_string(i));
      bodies.push_back(Cluster::body(q));
      auto idx = c.node(*l)->propose(q);
      ASSERT_TRUE(idx);
      idxs.insert(*idx);
    }
    EXPECT_EQ(idxs.size(), 5u) << "distinct indexes";
    ASSERT_TRUE(c.sim().run_until([&] {
      for (auto i : idxs)
        if (c.n_applied(i) < 3) return false;
      return true;
    }, 5 * kSecond));
    std::set<sg::Bytes> got;
    for (auto i : idxs) got.insert(c.log().at(i).data);
    EXPECT_EQ(got, std::set<sg::Bytes>(bodies.begin(), bodies.end()));
  }
}

TEST(RaftScenario, RejoinOfPartitionedLeader) {
  SG_FOR_EACH_SEED(seed, 3) {
    Cluster c(seed, 3);
    ASSERT_TRUE(c.one("101", 3, true));
    auto l1 = c.one_leader();
    c.sim().isolate(*l1);
    // The old leader takes commands it can never commit.
    c.node(*l1)->propose(c.command("102"));
    c.node(*l1)->propose(c.command("103"));
    c.node(*l1)->propose(c.command("104"));
    // The others elect and commit 103'.
    ASSERT_TRUE(c.one("103b", 2, true));
    auto l2 = c.effective_leader();
    ASSERT_TRUE(l2);
    // New leader partitioned; the old one returns to the third server,
    // whose log is newer: the old leader must lose and its entries go.
    c.sim().heal();
    c.sim().isolate(*l2);
    ASSERT_TRUE(c.one("104b", 2, true));
    c.sim().heal();
    ASSERT_TRUE(c.one("105", 3, true));
    c.expect_converged();
  }
}

// 6.824 TestBackup2B: leaders must back up quickly over long divergent
// logs (fast backtracking), in both directions.
TEST(RaftScenario, FastBackupOverDivergedLogs) {
  SG_FOR_EACH_SEED(seed, 2) {
    Cluster c(seed, 5);
    sim::Rng& rng = c.sim().rng();
    ASSERT_TRUE(c.one(val(rng), 5, true));
    auto l1 = c.one_leader();
    ASSERT_TRUE(l1);
    std::vector<NodeId> others;
    for (NodeId id : c.ids())
      if (id != *l1) others.push_back(id);
    // Leader and one follower in a minority; 50 commands that never commit.
    c.sim().partition({{*l1, others[0]}, {others[1], others[2], others[3]}});
    for (int i = 0; i < 50; ++i) c.node(*l1)->propose(c.command(val(rng)));
    c.sim().run_for(c.election_timeout() / 2);
    // The majority side commits 50 of its own.
    for (int i = 0; i < 50; ++i) ASSERT_TRUE(c.one(val(rng), 3, true)) << i;
    auto l2 = c.effective_leader();
    ASSERT_TRUE(l2);
    NodeId other = *l2 == others[1] ? others[2] : others[1];
    // Now the majority's leader and another go off with 50 more uncommitted.
    c.sim().heal();
    std::vector<NodeId> rest;
    for (NodeId id : c.ids())
      if (id != *l2 && id != other) rest.push_back(id);
    c.sim().partition({{*l2, other}, rest});
    for (int i = 0; i < 50; ++i) c.node(*l2)->propose(c.command(val(rng)));
    c.sim().run_for(c.election_timeout() / 2);
    // The old minority rejoins the third majority server; they must catch up
    // and commit 50 more.
    for (int i = 0; i < 50; ++i) ASSERT_TRUE(c.one(val(rng), 3, true)) << i;
    c.sim().heal();
    ASSERT_TRUE(c.one(val(rng), 5, true));
    c.expect_converged();
  }
}

// ---- 2C: persistence ---------------------------------------------------------------

TEST(RaftScenario, PersistenceAcrossCrashes) {
  SG_FOR_EACH_SEED(seed, 3) {
    Cluster c(seed, 3);
    ASSERT_TRUE(c.one("11", 3, true));
    // Everybody crashes and restarts: the log survives.
    for (NodeId id : c.ids()) c.sim().crash(id);
    for (NodeId id : c.ids()) c.sim().restart(id);
    ASSERT_TRUE(c.one("12", 3, true));
    auto l1 = c.one_leader();
    c.sim().crash(*l1);
    c.sim().restart(*l1);
    ASSERT_TRUE(c.one("13", 3, true));
    auto l2 = c.one_leader();
    c.sim().crash(*l2);
    ASSERT_TRUE(c.one("14", 2, true));
    c.sim().restart(*l2);
    ASSERT_TRUE(c.one("15", 3, true));
    auto l3 = c.one_leader();
    NodeId f = *l3 % 3 + 1;
    c.sim().crash(f);
    ASSERT_TRUE(c.one("16", 2, true));
    c.sim().restart(f);
    ASSERT_TRUE(c.one("17", 3, true));
    c.expect_converged();
  }
}

// 6.824 TestFigure82C: leaders crash right after proposing, so entries of
// old terms sit on various minorities and majorities; the Figure 8 rule
// must keep every commit safe.
TEST(RaftScenario, Figure8) {
  SG_FOR_EACH_SEED(seed, 2) {
    Cluster c(seed, 5);
    sim::Rng& rng = c.sim().rng();
    ASSERT_TRUE(c.one(val(rng), 1, true));
    int up = 5;
    for (int it = 0; it < 300; ++it) {
      std::optional<NodeId> leader;
      for (NodeId id : c.ids()) {
        RaftKvNode* n = c.node(id);
        if (n && n->propose(c.command(val(rng)))) leader = id;
      }
      c.sim().run_for(rng.chance(0.1) ? rng.below(c.election_timeout() / 2)
                                      : rng.below(13 * kMillisecond));
      if (leader && c.sim().is_up(*leader)) {
        c.sim().crash(*leader);
        --up;
      }
      if (up < 3) {
        NodeId s = c.ids()[rng.below(5)];
        if (!c.sim().is_up(s)) {
          c.sim().restart(s);
          ++up;
        }
      }
    }
    for (NodeId id : c.ids())
      if (!c.sim().is_up(id)) c.sim().restart(id);
    ASSERT_TRUE(c.one(val(rng), 5, true));
    c.expect_converged();
  }
}

// 6.824 TestFigure8Unreliable2C: the same with a lossy, reordering network
// and partitions instead of crashes.
TEST(RaftScenario, Figure8Unreliable) {
  SG_FOR_EACH_SEED(seed, 2) {
    Cluster c(seed, 5);
    sim::Rng& rng = c.sim().rng();
    c.sim().net().loss = 0.1;
    c.sim().net().reorder = 0.3;
    ASSERT_TRUE(c.one(val(rng), 1, true));
    std::set<NodeId> cut;
    for (int it = 0; it < 300; ++it) {
      if (it == 200) c.sim().net().max_reorder_delay = 500 * kMillisecond;  // long delays
      std::optional<NodeId> leader;
      for (NodeId id : c.ids()) {
        RaftKvNode* n = c.node(id);
        if (n && n->propose(c.command(val(rng)))) leader = id;
      }
      c.sim().run_for(rng.chance(0.1) ? rng.below(c.election_timeout() / 2)
                                      : rng.below(13 * kMillisecond));
      if (leader && rng.chance(0.5) && !cut.count(*leader)) {
        c.sim().isolate(*leader);
        cut.insert(*leader);
      }
      if (c.ids().size() - cut.size() < 3) {
        // Reconnect one at random: heal all, re-cut the others.
        NodeId back = *std::next(cut.begin(), rng.below(cut.size()));
        cut.erase(back);
        c.sim().heal();
        for (NodeId id : cut) c.sim().isolate(id);
      }
    }
    c.sim().heal();
    c.sim().net().loss = 0;
    c.sim().net().reorder = 0;
    ASSERT_TRUE(c.one(val(rng), 5, true, 30 * kSecond));
    c.expect_converged();
  }
}

// 6.824 TestUnreliableChurn2C: clients keep proposing while servers crash,
// restart and get cut off over a lossy network. Everything a client saw
// committed must be in the final, identical logs.
TEST(RaftScenario, UnreliableChurn) {
  SG_FOR_EACH_SEED(seed, 2) {
    Cluster c(seed, 5);
    sim::Rng& rng = c.sim().rng();
    c.sim().net().loss = 0.1;
    c.sim().net().reorder = 0.2;
    std::map<sg::raft::Index, sg::Bytes> proposed;  // by index, possibly overwritten
    std::vector<std::pair<sg::raft::Index, sg::Bytes>> seen_committed;
    TimeNs end = c.sim().now() + 8 * kSecond;
    while (c.sim().now() < end) {
      // A client round: propose on every server that thinks it leads.
      for (NodeId id : c.ids()) {
        RaftKvNode* n = c.node(id);
        if (!n || !n->is_leader()) continue;
        KvRequest q = c.command(val(rng));
        if (auto idx = n->propose(q)) proposed[*idx] = Cluster::body(q);
      }
      c.sim().run_for(rng.range(5, 50) * kMillisecond);
      for (auto it = proposed.begin(); it != proposed.end();) {
        sg::Bytes got;
        if (c.n_applied(it->first, &got) > 0) {
          if (got == it->second) seen_committed.push_back(*it);
          it = proposed.erase(it);
        } else {
          ++it;
        }
      }
      // Churn.
      if (rng.chance(0.1)) {
        NodeId s = c.ids()[rng.below(5)];
        if (c.sim().is_up(s)) {
          c.sim().crash(s);
        } else {
          c.sim().restart(s);
        }
      }
      if (rng.chance(0.1)) c.sim().isolate(c.ids()[rng.below(5)]);
      if (rng.chance(0.2)) c.sim().heal();
      size_t down = 0;
      for (NodeId id : c.ids()) down += !c.sim().is_up(id);
      if (down > 2) {
        for (NodeId id : c.ids())
          if (!c.sim().is_up(id)) {
            c.sim().restart(id);
            break;
          }
      }
    }
    c.sim().heal_all();
    c.sim().net().loss = 0;
    c.sim().net().reorder = 0;
    ASSERT_TRUE(c.one(val(rng), 5, true, 30 * kSecond));
    c.expect_converged();
    EXPECT_GT(seen_committed.size(), 20u) << "the cluster made progress under churn";
    for (auto& [idx, body] : seen_committed) EXPECT_EQ(c.log().at(idx).data, body);
  }
}

// ---- 2D: snapshots -------------------------------------------------------------------

// 6.824 TestSnapshotInstallCrash2D: a crashed follower misses more entries
// than the leader keeps; on restart it must be brought back by
// InstallSnapshot, not by replaying the log.
TEST(RaftScenario, SnapshotInstallUnderCrash) {
  SG_FOR_EACH_SEED(seed, 2) {
    KvNodeConfig cfg;
    cfg.snapshot_threshold = 10;
    Cluster c(seed, 3, cfg);
    sim::Rng& rng = c.sim().rng();
    ASSERT_TRUE(c.one(val(rng), 3, true));
    size_t installs = 0;
    for (int it = 0; it < 20; ++it) {
      auto l = c.one_leader();
      ASSERT_TRUE(l);
      NodeId victim = (it % 3 == 1) ? *l : *l % 3 + 1;
      c.sim().crash(victim);
      size_t n = it % 3 == 1 ? 1 : 2;
      for (int i = 0; i < 11; ++i) ASSERT_TRUE(c.one(val(rng), n, true)) << it << "/" << i;
      c.sim().restart(victim);
      ASSERT_TRUE(c.one(val(rng), 3, true)) << it;
      if (RaftKvNode* v = c.node(victim)) installs += v->snapshots_installed();
    }
    EXPECT_GT(installs, 0u) << "no follower ever needed InstallSnapshot";
    c.expect_converged();
    // Logs really are compacted.
    for (NodeId id : c.ids()) EXPECT_GT(c.node(id)->raft().log().snapshot().meta.index, 0u);
  }
}

// The same over a lossy network with partitions instead of crashes
// (6.824 TestSnapshotInstallUnreliable2D), with clients' sessions carried in
// the snapshots: retried writes stay exactly-once.
TEST(RaftScenario, SnapshotInstallUnreliable) {
  SG_FOR_EACH_SEED(seed, 2) {
    KvNodeConfig cfg;
    cfg.snapshot_threshold = 10;
    Cluster c(seed, 3, cfg);
    sim::Rng& rng = c.sim().rng();
    c.sim().net().loss = 0.1;
    c.sim().net().reorder = 0.2;
    ASSERT_TRUE(c.one(val(rng), 3, true, 30 * kSecond));
    for (int it = 0; it < 10; ++it) {
      auto l = c.one_leader();
      ASSERT_TRUE(l);
      NodeId victim = *l % 3 + 1;
      c.sim().isolate(victim);
      for (int i = 0; i < 11; ++i) ASSERT_TRUE(c.one(val(rng), 2, true, 30 * kSecond));
      c.sim().heal();
      ASSERT_TRUE(c.one(val(rng), 3, true, 30 * kSecond)) << it;
    }
    c.sim().net().loss = 0;
    c.expect_converged();
  }
}

}  // namespace
}  // namespace raft_test
