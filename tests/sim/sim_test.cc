// Tests of the simulator itself, with two tiny protocols of their own: a
// Probe that records what it observes and lets the test act through its Env,
// and a replicated register whose client retries writes until a majority
// has them on disk.
#include "tests/sim/sim.h"

#include <gtest/gtest-spi.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "storage-guests/common/codec.h"
#include "storage-guests/common/ids.h"
#include "storage-guests/common/rpc.h"

namespace sim {
namespace {

using sg::TimerId;

Bytes msg(uint64_t v) {
  sg::Writer w;
  w.u64(v);
  return w.take();
}

uint64_t val(const Bytes& b) {
  sg::Reader r(b);
  const uint64_t v = r.u64();
  EXPECT_TRUE(r.finish());
  return v;
}

// Records everything; the test drives it through env.
class Probe : public sg::Node {
 public:
  struct Received {
    NodeId from;
    uint64_t value;
    TimeNs at;  // true time
  };

  Probe(sg::Env& env, const Simulator* sim) : env(env), sim_(sim) {}

  void start() override { recovered = env.storage().recover(); }
  void on_message(NodeId from, const Bytes& m) override {
    received.push_back({from, val(m), sim_->now()});
    if (echo) env.send(from, m);
  }
  void on_timer(TimerId id) override { fired.push_back({id, env.now()}); }
  void on_sync(uint64_t token) override { synced.push_back(token); }

  std::vector<uint64_t> values_from(NodeId from) const {
    std::vector<uint64_t> v;
    for (const auto& r : received)
      if (r.from == from) v.push_back(r.value);
    return v;
  }

  sg::Env& env;
  bool echo = false;
  std::vector<Bytes> recovered;
  std::vector<Received> received;
  std::vector<std::pair<TimerId, TimeNs>> fired;  // id, local time
  std::vector<uint64_t> synced;

 private:
  const Simulator* sim_;
};

NodeFactory probe(const Simulator& s) {
  return [&s](sg::Env& env) { return std::make_unique<Probe>(env, &s); };
}

// A cluster of probes with a quiet network, for the fault tests.
struct ProbeCluster {
  explicit ProbeCluster(uint64_t seed, int servers = 5, Config config = {}) : sim(seed, config) {
    for (int i = 1; i <= servers; ++i) sim.add_server(static_cast<NodeId>(i), probe(sim));
    sim.add_client(kClient, probe(sim));
  }
  Probe& p(NodeId id) { return *sim.as<Probe>(id); }

  // Who can reach whom right now: every node sends to every other, and the
  // answer is read off what arrived.
  std::set<std::pair<NodeId, NodeId>> reachable() {
    std::vector<NodeId> all = sim.servers();
    all.push_back(kClient);
    for (NodeId id : all) p(id).received.clear();
    for (NodeId a : all)
      for (NodeId b : all)
        if (a != b) p(a).env.send(b, msg(a));
    sim.run_for(kSecond);
    std::set<std::pair<NodeId, NodeId>> links;
    for (NodeId b : all)
      for (const auto& r : p(b).received) links.insert({r.from, b});
    return links;
  }
  bool talk(NodeId a, NodeId b, const std::set<std::pair<NodeId, NodeId>>& links) {
    return links.count({a, b}) && links.count({b, a});
  }

  static constexpr NodeId kClient = sg::kFirstClientId;
  Simulator sim;
};

// ---- Rng --------------------------------------------------------------------

TEST(Rng, SameSeedSameStreamAndBounds) {
  Rng a(7), b(7), c(8);
  bool differs = false;
  for (int i = 0; i < 100; ++i) {
    const uint64_t x = a.next();
    EXPECT_EQ(x, b.next());
    differs |= x != c.next();
  }
  EXPECT_TRUE(differs);
  std::vector<int> hist(6);
  for (int i = 0; i < 60000; ++i) {
    const uint64_t v = a.below(6);
    ASSERT_LT(v, 6u);
    ++hist[v];
  }
  for (int h : hist) EXPECT_NEAR(h, 10000, 600);
  for (int i = 0; i < 1000; ++i) {
    const uint64_t v = a.range(10, 12);
    EXPECT_GE(v, 10u);
    EXPECT_LE(v, 12u);
  }
  EXPECT_EQ(a.range(5, 5), 5u);
  EXPECT_EQ(a.below(0), 0u);
  EXPECT_FALSE(a.chance(0.0));
  EXPECT_TRUE(a.chance(1.0));
}

// The generator is part of the replay contract: pin its output so that a
// change of algorithm (which would silently re-map every recorded seed) is
// a visible decision.
TEST(Rng, OutputIsPinned) {
  EXPECT_EQ(mix64(0), 0xe220a8397b1dcdafull);  // splitmix64's first output for 0
  Rng r(0);
  EXPECT_EQ(r.next(), 0x422ea740d0977210ull);
  EXPECT_EQ(r.next(), 0xe062b061b42e2928ull);
  EXPECT_EQ(r.next(), 0x5a071fc5930841b6ull);
  Rng q(42);
  EXPECT_EQ(q.below(1000), 742u);
  EXPECT_EQ(q.range(5, 9), 8u);
}

// ---- network ------------------------------------------------------------------

TEST(Network, DeliversWithinDelayAndInOrderPerLink) {
  ProbeCluster c(1, 2);
  c.sim.net().min_delay = 2 * kMillisecond;
  c.sim.net().max_delay = 9 * kMillisecond;
  for (uint64_t i = 0; i < 200; ++i) c.p(1).env.send(2, msg(i));
  c.sim.run_for(kSecond);
  const auto& got = c.p(2).received;
  ASSERT_EQ(got.size(), 200u);
  for (uint64_t i = 0; i < 200; ++i) {
    EXPECT_EQ(got[i].value, i);
    EXPECT_GE(got[i].at, 2 * kMillisecond);
    EXPECT_LE(got[i].at, 9 * kMillisecond);
  }
  EXPECT_EQ(c.sim.stats().delivered, 200u);
}

TEST(Network, ReorderLetsLaterMessagesOvertake) {
  ProbeCluster c(2, 2);
  c.sim.net().reorder = 0.3;
  for (uint64_t i = 0; i < 200; ++i) c.p(1).env.send(2, msg(i));
  c.sim.run_for(kSecond);
  std::vector<uint64_t> got = c.p(2).values_from(1);
  ASSERT_EQ(got.size(), 200u);
  EXPECT_FALSE(std::is_sorted(got.begin(), got.end()));
  std::sort(got.begin(), got.end());
  for (uint64_t i = 0; i < 200; ++i) EXPECT_EQ(got[i], i);
  EXPECT_GT(c.sim.stats().reordered, 30u);
}

TEST(Network, LossDropsAboutTheConfiguredFraction) {
  ProbeCluster c(3, 2);
  c.sim.net().loss = 0.3;
  for (uint64_t i = 0; i < 2000; ++i) c.p(1).env.send(2, msg(i));
  c.sim.run_for(kSecond);
  const uint64_t got = c.p(2).received.size();
  EXPECT_NEAR(static_cast<double>(got), 1400.0, 100.0);
  EXPECT_EQ(got + c.sim.stats().lost, 2000u);
}

TEST(Network, DuplicationDeliversSomeMessagesTwice) {
  ProbeCluster c(4, 2);
  c.sim.net().duplicate = 0.25;
  for (uint64_t i = 0; i < 1000; ++i) c.p(1).env.send(2, msg(i));
  c.sim.run_for(kSecond);
  std::map<uint64_t, int> copies;
  for (uint64_t v : c.p(2).values_from(1)) ++copies[v];
  EXPECT_EQ(copies.size(), 1000u);
  int twice = 0;
  for (const auto& [v, n] : copies) {
    EXPECT_LE(n, 2);
    twice += n == 2;
  }
  EXPECT_EQ(static_cast<uint64_t>(twice), c.sim.stats().duplicated);
  EXPECT_NEAR(twice, 250, 60);
}

TEST(Network, ChangingFaultsMidRunTakesEffect) {
  ProbeCluster c(5, 2);
  for (uint64_t i = 0; i < 100; ++i) c.p(1).env.send(2, msg(i));
  c.sim.run_for(kSecond);
  c.sim.net().loss = 1.0;
  for (uint64_t i = 0; i < 100; ++i) c.p(1).env.send(2, msg(i));
  c.sim.run_for(kSecond);
  EXPECT_EQ(c.p(2).received.size(), 100u);
}

// ---- partitions -----------------------------------------------------------------

TEST(Partition, IsolateCutsOneNodeFromEveryone) {
  ProbeCluster c(10);
  c.sim.isolate(3);
  auto links = c.reachable();
  for (NodeId other : {1, 2, 4, 5}) EXPECT_FALSE(c.talk(3, other, links)) << other;
  EXPECT_FALSE(c.talk(3, ProbeCluster::kClient, links));
  EXPECT_TRUE(c.talk(1, 5, links));
  EXPECT_TRUE(c.talk(1, ProbeCluster::kClient, links));
  c.sim.heal();
  links = c.reachable();
  EXPECT_EQ(links.size(), 6u * 5u);
}

TEST(Partition, MajorityMinoritySplit) {
  ProbeCluster c(11);
  const std::vector<NodeId> majority = c.sim.partition_majority();
  ASSERT_EQ(majority.size(), 3u);
  const std::set<NodeId> big(majority.begin(), majority.end());
  auto links = c.reachable();
  for (NodeId a : c.sim.servers()) {
    for (NodeId b : c.sim.servers()) {
      if (a == b) continue;
      EXPECT_EQ(c.talk(a, b, links), big.count(a) == big.count(b)) << a << "-" << b;
    }
    // The client is in neither group: it reaches both sides.
    EXPECT_TRUE(c.talk(a, ProbeCluster::kClient, links));
  }
}

TEST(Partition, BridgeJoinsTwoHalvesThroughOneNode) {
  ProbeCluster c(12);
  const auto [a, b] = c.sim.partition_bridge(2);
  ASSERT_EQ(a.size() + b.size(), 4u);
  auto links = c.reachable();
  for (NodeId x : a) {
    EXPECT_TRUE(c.talk(x, 2, links));
    for (NodeId y : b) EXPECT_FALSE(c.talk(x, y, links)) << x << "-" << y;
    for (NodeId y : a) {
      if (x != y) {
        EXPECT_TRUE(c.talk(x, y, links));
      }
    }
  }
  for (NodeId y : b) EXPECT_TRUE(c.talk(y, 2, links));
}

TEST(Partition, RingTalksOnlyToNeighbours) {
  ProbeCluster c(13);
  const std::vector<NodeId> ring = c.sim.partition_ring();
  ASSERT_EQ(ring.size(), 5u);
  auto links = c.reachable();
  for (size_t i = 0; i < 5; ++i) {
    for (size_t j = 0; j < 5; ++j) {
      if (i == j) continue;
      const size_t d = (i + 5 - j) % 5;
      EXPECT_EQ(c.talk(ring[i], ring[j], links), d == 1 || d == 4) << ring[i] << "-" << ring[j];
    }
  }
}

TEST(Partition, ExplicitGroupsAndOneWayLinks) {
  ProbeCluster c(14);
  c.sim.partition({{1, 2}, {3, 4, 5, ProbeCluster::kClient}});
  auto links = c.reachable();
  EXPECT_FALSE(c.talk(1, ProbeCluster::kClient, links));
  EXPECT_TRUE(c.talk(3, ProbeCluster::kClient, links));
  c.sim.heal();
  c.sim.set_link(1, 2, false);
  links = c.reachable();
  EXPECT_FALSE(links.count({1, 2}));
  EXPECT_TRUE(links.count({2, 1}));
}

TEST(Partition, CutDropsMessagesAlreadyInFlight) {
  ProbeCluster c(15, 2);
  c.p(1).env.send(2, msg(1));
  c.sim.cut(1, 2);
  c.sim.run_for(kSecond);
  EXPECT_TRUE(c.p(2).received.empty());
  EXPECT_EQ(c.sim.stats().blocked, 1u);
}

// ---- crash and storage -----------------------------------------------------------

TEST(Crash, LosesUnsyncedWritesKeepsSyncedOnes) {
  ProbeCluster c(20, 1);
  sg::Storage& disk = c.p(1).env.storage();
  disk.append(msg(1));
  const uint64_t t1 = disk.sync();
  c.sim.run_for(kSecond);
  ASSERT_EQ(c.p(1).synced, std::vector<uint64_t>{t1});

  sg::Storage& disk2 = c.p(1).env.storage();
  disk2.append(msg(2));
  disk2.sync();          // in flight when the crash comes
  disk2.append(msg(3));  // never synced
  c.sim.crash(1);
  EXPECT_EQ(c.sim.node(1), nullptr);
  EXPECT_EQ(c.sim.durable_records(1), std::vector<Bytes>{msg(1)});
  c.sim.run_for(kSecond);  // the cancelled sync must not complete later
  EXPECT_EQ(c.sim.durable_records(1), std::vector<Bytes>{msg(1)});

  c.sim.restart(1);
  EXPECT_EQ(c.p(1).recovered, std::vector<Bytes>{msg(1)});
  EXPECT_EQ(c.sim.stats().crashes, 1u);
  EXPECT_EQ(c.sim.stats().restarts, 1u);
}

TEST(Crash, RewriteIsAtomic) {
  ProbeCluster c(21, 1);
  sg::Storage& disk = c.p(1).env.storage();
  disk.append(msg(1));
  disk.append(msg(2));
  disk.sync();
  c.sim.run_for(kSecond);
  c.p(1).env.storage().rewrite({msg(9)});
  c.sim.crash(1);
  EXPECT_EQ(c.sim.durable_records(1), (std::vector<Bytes>{msg(1), msg(2)}));
  c.sim.restart(1);
  sg::Storage& again = c.p(1).env.storage();
  again.rewrite({msg(9)});
  again.append(msg(10));
  again.sync();
  c.sim.run_for(kSecond);
  EXPECT_EQ(c.sim.durable_records(1), (std::vector<Bytes>{msg(9), msg(10)}));
}

TEST(Crash, SyncsCompleteInTokenOrder) {
  Config cfg;
  cfg.disk.min_sync_latency = 1 * kMicrosecond;
  cfg.disk.max_sync_latency = 10 * kMillisecond;
  ProbeCluster c(22, 1, cfg);
  std::vector<uint64_t> tokens;
  for (int i = 0; i < 50; ++i) {
    c.p(1).env.storage().append(msg(static_cast<uint64_t>(i)));
    tokens.push_back(c.p(1).env.storage().sync());
    c.sim.run_for(100 * kMicrosecond);
  }
  c.sim.run_for(kSecond);
  EXPECT_EQ(c.p(1).synced, tokens);
  EXPECT_EQ(c.sim.durable_records(1).size(), 50u);
}

TEST(Crash, DropsTimersAndMessagesAndRebuildsNode) {
  ProbeCluster c(23, 2);
  int built = 0;
  c.sim.add_server(9, [&](sg::Env& env) {
    ++built;
    return std::make_unique<Probe>(env, &c.sim);
  });
  EXPECT_EQ(built, 1);
  c.p(9).env.set_timer(10 * kMillisecond);
  c.p(1).env.send(9, msg(1));
  c.sim.crash(9);
  EXPECT_FALSE(c.sim.is_up(9));
  c.sim.run_for(kSecond);
  EXPECT_EQ(c.sim.stats().to_down_node, 1u);
  EXPECT_EQ(c.sim.stats().timers_fired, 0u);
  c.sim.restart(9);
  EXPECT_EQ(built, 2);
  EXPECT_TRUE(c.p(9).received.empty());
  c.p(1).env.send(9, msg(2));
  c.sim.run_for(kSecond);
  EXPECT_EQ(c.p(9).values_from(1), std::vector<uint64_t>{2});
}

// ---- pause ------------------------------------------------------------------

TEST(Pause, HoldsMessagesTimersAndSyncsUntilResume) {
  ProbeCluster c(30, 2);
  Probe& p = c.p(2);
  p.env.set_timer(5 * kMillisecond);
  p.env.storage().append(msg(7));
  const uint64_t token = p.env.storage().sync();
  c.sim.pause(2);
  for (uint64_t i = 0; i < 10; ++i) c.p(1).env.send(2, msg(i));
  c.sim.run_for(kSecond);
  EXPECT_TRUE(p.received.empty());
  EXPECT_TRUE(p.fired.empty());
  EXPECT_TRUE(p.synced.empty());
  // The disk kept working: the record is durable even though the node has
  // not been told yet.
  EXPECT_EQ(c.sim.durable_records(2), std::vector<Bytes>{msg(7)});

  c.sim.resume(2);
  c.sim.run_for(kMillisecond);
  ASSERT_EQ(p.received.size(), 10u);
  for (uint64_t i = 0; i < 10; ++i) EXPECT_EQ(p.received[i].value, i);
  EXPECT_EQ(p.fired.size(), 1u);
  EXPECT_EQ(p.synced, std::vector<uint64_t>{token});
}

TEST(Pause, CancelledHeldTimerDoesNotFire) {
  ProbeCluster c(31, 1);
  const TimerId t = c.p(1).env.set_timer(5 * kMillisecond);
  c.sim.pause(1);
  c.sim.run_for(kSecond);
  c.p(1).env.cancel_timer(t);
  c.sim.resume(1);
  c.sim.run_for(kSecond);
  EXPECT_TRUE(c.p(1).fired.empty());
}

TEST(Pause, CrashWhilePausedDropsHeldEvents) {
  ProbeCluster c(32, 2);
  c.sim.pause(2);
  c.p(1).env.send(2, msg(1));
  c.sim.run_for(kSecond);
  c.sim.crash(2);
  c.sim.restart(2);
  EXPECT_FALSE(c.sim.is_paused(2));
  c.sim.run_for(kSecond);
  EXPECT_TRUE(c.p(2).received.empty());
}

// ---- clocks -------------------------------------------------------------------

TEST(Clock, TimersFollowTheLocalClock) {
  ProbeCluster c(40, 2);
  c.sim.set_clock(2, ClockConfig{0, 100000, 0});  // 10% fast
  const TimeNs start_local = c.sim.local_now(2);
  c.p(2).env.set_timer(1100 * kMillisecond);
  c.p(1).env.set_timer(1100 * kMillisecond);
  EXPECT_TRUE(c.sim.run_until([&] { return !c.p(2).fired.empty(); }, 10 * kSecond));
  EXPECT_NEAR(static_cast<double>(c.sim.now()), 1.0 * kSecond, 1.0 * kMicrosecond);
  EXPECT_GE(c.p(2).fired[0].second, start_local + 1100 * kMillisecond);
  EXPECT_TRUE(c.p(1).fired.empty());
  EXPECT_TRUE(c.sim.run_until([&] { return !c.p(1).fired.empty(); }, 10 * kSecond));
  EXPECT_EQ(c.sim.now(), 1100 * kMillisecond);
}

TEST(Clock, OffsetIsVisibleAndClockNeverGoesBack) {
  ProbeCluster c(41, 1);
  c.sim.run_for(kSecond);
  c.sim.set_clock(1, ClockConfig{500 * static_cast<int64_t>(kMillisecond), 0, 0});
  EXPECT_EQ(c.sim.local_now(1), 1500 * kMillisecond);
  EXPECT_EQ(c.sim.clock_error(1), 500 * static_cast<int64_t>(kMillisecond));
  c.sim.set_clock(1, ClockConfig{-200 * static_cast<int64_t>(kMillisecond), 0, 7});
  EXPECT_EQ(c.p(1).env.clock_uncertainty(), 7u);
  // Set back by 700 ms: it stands still rather than run backwards.
  EXPECT_EQ(c.sim.local_now(1), 1500 * kMillisecond);
  c.sim.run_for(500 * kMillisecond);
  EXPECT_EQ(c.sim.local_now(1), 1500 * kMillisecond);
  c.sim.run_for(400 * kMillisecond);
  EXPECT_EQ(c.sim.local_now(1), 1700 * kMillisecond);
}

TEST(Clock, ChangingTheRateReaimsPendingTimers) {
  ProbeCluster c(42, 1);
  c.p(1).env.set_timer(kSecond);
  c.sim.run_for(500 * kMillisecond);
  c.sim.set_clock(1, ClockConfig{0, -500000, 0});  // half speed from now
  c.sim.run_for(999 * kMillisecond);
  EXPECT_TRUE(c.p(1).fired.empty());
  c.sim.run_for(1 * kMillisecond);
  EXPECT_EQ(c.p(1).fired.size(), 1u);
}

TEST(Clock, InitialOffsetsDiffer) {
  Config cfg;
  cfg.max_initial_offset = kSecond;
  ProbeCluster c(43, 5, cfg);
  std::set<TimeNs> clocks;
  for (NodeId id : c.sim.servers()) clocks.insert(c.sim.local_now(id));
  EXPECT_EQ(clocks.size(), 5u);
}

// ---- running ---------------------------------------------------------------------

TEST(Run, StepRunUntilAndCallbackOrder) {
  Simulator s(50);
  std::vector<int> order;
  s.at(10, [&] { order.push_back(1); });
  s.at(10, [&] { order.push_back(2); });
  s.at(5, [&] { order.push_back(0); });
  EXPECT_TRUE(s.step());
  EXPECT_EQ(s.now(), 5u);
  s.run_until_time(10);
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2}));
  EXPECT_FALSE(s.step());
  s.after(100, [&] { order.push_back(3); });
  EXPECT_FALSE(s.run_until([&] { return order.size() == 4; }, 50));
  EXPECT_EQ(s.now(), 60u);
  EXPECT_TRUE(s.run_until([&] { return order.size() == 4; }, 500));
  EXPECT_EQ(s.now(), 110u);
}

class CrashesItself : public sg::Node {
 public:
  CrashesItself(sg::Env& env, Simulator& sim) : env_(env), sim_(sim) {}
  void start() override { env_.set_timer(1); }
  void on_message(NodeId, const Bytes&) override {}
  void on_timer(TimerId) override { sim_.crash(env_.self()); }
  void on_sync(uint64_t) override {}

 private:
  sg::Env& env_;
  Simulator& sim_;
};

TEST(RunDeathTest, FaultFromInsideAHandlerIsRefused) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_DEATH(
      {
        Simulator s(51);
        s.add_server(1, [&s](sg::Env& env) { return std::make_unique<CrashesItself>(env, s); });
        s.run_for(kSecond);
      },
      "inside a node handler.*seed=51");
}

// ---- nemesis --------------------------------------------------------------------

TEST(Nemesis, AppliesEveryFaultKindAndHealAllUndoesThem) {
  ProbeCluster c(60);
  // Steady chatter, so that network faults have something to act on.
  std::function<void()> chatter = [&] {
    for (NodeId a : c.sim.servers()) {
      if (sg::Node* n = c.sim.node(a))
        for (NodeId b : c.sim.servers())
          if (b != a) static_cast<Probe*>(n)->env.send(b, msg(a));
    }
    c.sim.after(10 * kMillisecond, chatter);
  };
  chatter();
  NemesisConfig n;
  n.clocks = true;
  n.min_interval = 20 * kMillisecond;
  n.max_interval = 100 * kMillisecond;
  c.sim.start_nemesis(n);
  int max_down = 0;
  for (int i = 0; i < 2000; ++i) {
    c.sim.run_for(5 * kMillisecond);
    int down = 0;
    for (NodeId id : c.sim.servers()) down += !c.sim.is_up(id) || c.sim.is_paused(id);
    max_down = std::max(max_down, down);
  }
  const Stats& st = c.sim.stats();
  EXPECT_GT(st.partitions, 10u);
  EXPECT_GT(st.crashes, 5u);
  EXPECT_GT(st.pauses, 5u);
  EXPECT_GT(st.clock_changes, 5u);
  EXPECT_GT(st.lost, 0u);
  EXPECT_GT(st.duplicated, 0u);
  EXPECT_GT(st.reordered, 0u);
  EXPECT_GT(st.blocked, 0u);
  EXPECT_EQ(max_down, 2) << "the default keeps a majority of 5 alive";

  c.sim.heal_all();
  for (NodeId id : c.sim.servers()) {
    EXPECT_TRUE(c.sim.is_up(id));
    EXPECT_FALSE(c.sim.is_paused(id));
    EXPECT_EQ(c.sim.clock(id).drift_ppm, 0);
  }
  EXPECT_EQ(c.sim.net().loss, 0.0);
  const uint64_t crashes = st.crashes;
  c.sim.run_for(5 * kSecond);
  EXPECT_EQ(st.crashes, crashes) << "heal_all stops the nemesis";
  EXPECT_EQ(c.reachable().size(), 6u * 5u);
}

TEST(Network, SendToSelfAndToUnknownNode) {
  ProbeCluster c(61, 1);
  c.p(1).env.send(1, msg(5));
  c.p(1).env.send(12345, msg(6));
  c.sim.run_for(kSecond);
  EXPECT_EQ(c.p(1).values_from(1), std::vector<uint64_t>{5});
  EXPECT_EQ(c.sim.stats().to_down_node, 1u);
}

// ---- a replicated register ----------------------------------------------------------
//
// The client writes values 1..n in turn; each write goes to every server,
// which appends it to its log, syncs, and only then acknowledges. The client
// retries unacknowledged servers until a majority has acknowledged. Requests
// carry sg::RequestId and servers deduplicate with sg::DedupTable, rebuilt
// from disk on restart, so that no write is logged twice by one server
// however often it is retried or duplicated by the network.

enum : uint8_t { kWrite = 1, kAck = 2 };

class RegisterServer : public sg::Node {
 public:
  explicit RegisterServer(sg::Env& env) : env_(env) {}

  void start() override {
    for (const Bytes& rec : env_.storage().recover()) {
      sg::Reader r(rec);
      const sg::RequestId id = sg::read_request_id(r);
      r.u64();
      EXPECT_TRUE(r.finish()) << r.error_string();
      dedup_.record(id, ack(id));
      durable_.insert({id.client, id.seq});
    }
  }

  void on_message(NodeId from, const Bytes& m) override {
    sg::Reader r(m);
    if (sg::read_envelope(r, sg::Protocol::kTest, kWrite) != kWrite) return;
    const sg::RequestId id = sg::read_request_id(r);
    const uint64_t value = r.u64();
    if (!r.finish()) return;
    const auto lookup = dedup_.check(id);
    if (lookup.verdict == sg::DedupTable::Verdict::kDuplicate) {
      // Acknowledge only once it is on disk; a pending sync will do it.
      if (durable_.count({id.client, id.seq})) env_.send(from, *lookup.reply);
      return;
    }
    // This toy never expires sessions; a server that missed a client's
    // earlier writes first hears of it at seq > 1, which is not an expiry.
    if (lookup.verdict == sg::DedupTable::Verdict::kStale) return;
    dedup_.record(id, ack(id));
    sg::Writer w;
    sg::write_request_id(w, id);
    w.u64(value);
    env_.storage().append(w.data());
    waiting_[env_.storage().sync()] = {from, id};
  }

  void on_timer(TimerId) override {}

  void on_sync(uint64_t token) override {
    auto it = waiting_.find(token);
    if (it == waiting_.end()) return;
    const auto [client, id] = it->second;
    durable_.insert({id.client, id.seq});
    env_.send(client, ack(id));
    waiting_.erase(it);
  }

  static Bytes ack(const sg::RequestId& id) {
    sg::Writer w;
    sg::write_envelope(w, sg::Protocol::kTest, kAck);
    sg::write_request_id(w, id);
    return w.take();
  }

 private:
  sg::Env& env_;
  sg::DedupTable dedup_;
  std::set<std::pair<uint64_t, uint64_t>> durable_;
  std::map<uint64_t, std::pair<NodeId, sg::RequestId>> waiting_;
};

class RegisterClient : public sg::Node {
 public:
  RegisterClient(sg::Env& env, std::vector<NodeId> servers, uint64_t writes)
      : env_(env), servers_(std::move(servers)), writes_(writes), session_(env.self()) {}

  void start() override { next(); }

  void on_message(NodeId from, const Bytes& m) override {
    sg::Reader r(m);
    if (sg::read_envelope(r, sg::Protocol::kTest, kAck) != kAck) return;
    const sg::RequestId id = sg::read_request_id(r);
    if (!r.finish() || id != current_) return;  // a stale reply to a retry
    // Counting only first acks: duplicates must not commit a write twice.
    if (!acked_.insert(from).second) return;
    if (acked_.size() == sg::quorum(servers_.size())) {
      committed.push_back(value_);
      env_.cancel_timer(retry_);
      // Think time spreads the writes over the nemesis' whole run.
      think_ = env_.set_timer(10 * kMillisecond);
    }
  }

  void on_timer(TimerId id) override {
    if (id == think_) next();
    else send_unacked();
  }
  void on_sync(uint64_t) override {}

  bool done() const { return committed.size() == writes_; }
  std::vector<uint64_t> committed;

 private:
  void next() {
    if (done()) {
      current_ = sg::RequestId{};  // later acks match nothing
      return;
    }
    current_ = session_.next();
    value_ = current_.seq * 100;
    acked_.clear();
    send_unacked();
  }
  void send_unacked() {
    sg::Writer w;
    sg::write_envelope(w, sg::Protocol::kTest, kWrite);
    sg::write_request_id(w, current_);
    w.u64(value_);
    for (NodeId s : servers_)
      if (!acked_.count(s)) env_.send(s, w.data());
    retry_ = env_.set_timer(20 * kMillisecond + env_.random() % (20 * kMillisecond));
  }

  sg::Env& env_;
  std::vector<NodeId> servers_;
  uint64_t writes_;
  sg::ClientSession session_;
  sg::RequestId current_;
  uint64_t value_ = 0;
  std::set<NodeId> acked_;
  TimerId retry_ = 0;
  TimerId think_ = 0;
};

struct RegisterRun {
  uint64_t hash;
  Stats stats;
  bool done;
};

// One whole run under the nemesis; checks the register's promises and
// returns the fingerprint.
RegisterRun run_register(uint64_t seed, uint64_t writes = 100) {
  Config cfg;
  cfg.net.loss = 0.05;
  cfg.net.duplicate = 0.05;
  cfg.net.reorder = 0.1;
  cfg.max_initial_offset = 50 * kMillisecond;
  Simulator s(seed, cfg);
  const std::vector<NodeId> servers = {1, 2, 3, 4, 5};
  for (NodeId id : servers)
    s.add_server(id, [](sg::Env& env) { return std::make_unique<RegisterServer>(env); });
  const NodeId client = sg::kFirstClientId;
  s.add_client(client, [&](sg::Env& env) {
    return std::make_unique<RegisterClient>(env, servers, writes);
  });
  NemesisConfig nemesis;
  nemesis.clocks = true;
  nemesis.min_interval = 50 * kMillisecond;
  nemesis.max_interval = 300 * kMillisecond;
  s.start_nemesis(nemesis);
  s.run_for(3 * kSecond);
  s.heal_all();
  const bool done = s.run_until([&] { return s.as<RegisterClient>(client)->done(); }, 60 * kSecond);
  EXPECT_TRUE(done);

  // Every committed write is durable on a majority, and no server logged
  // a request twice.
  const std::vector<uint64_t>& committed = s.as<RegisterClient>(client)->committed;
  std::map<uint64_t, int> holders;
  for (NodeId id : servers) {
    std::set<uint64_t> seen;
    for (const Bytes& rec : s.durable_records(id)) {
      sg::Reader r(rec);
      sg::read_request_id(r);
      const uint64_t v = r.u64();
      EXPECT_TRUE(seen.insert(v).second) << "server " << id << " logged " << v << " twice";
      ++holders[v];
    }
  }
  for (uint64_t v : committed) EXPECT_GE(holders[v], 3) << "committed write " << v << " lost";
  return RegisterRun{s.trace_hash(), s.stats(), done};
}

TEST(Register, SurvivesTheNemesis) {
  Stats total;
  SG_FOR_EACH_SEED(seed, 20) {
    const RegisterRun run = run_register(seed);
    total.crashes += run.stats.crashes;
    total.lost += run.stats.lost;
    total.blocked += run.stats.blocked;
    total.duplicated += run.stats.duplicated;
  }
  if (!::testing::Test::HasFailure() && std::getenv("SG_SEED") == nullptr) {
    // The nemesis really did its job.
    EXPECT_GT(total.crashes, 0u);
    EXPECT_GT(total.lost, 0u);
    EXPECT_GT(total.blocked, 0u);
    EXPECT_GT(total.duplicated, 0u);
  }
}

// ---- determinism -----------------------------------------------------------------

TEST(Determinism, SameSeedSameRunDifferentSeedDifferentRun) {
  SG_FOR_EACH_SEED(seed, 5) {
    const RegisterRun a = run_register(seed, 15);
    const RegisterRun b = run_register(seed, 15);
    EXPECT_EQ(a.hash, b.hash);
    EXPECT_EQ(a.stats.events, b.stats.events);
    const RegisterRun other = run_register(seed + 1000003, 15);
    EXPECT_NE(a.hash, other.hash);
  }
}

// ---- seeds ---------------------------------------------------------------------

class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value) setenv(name, value, 1);
    else unsetenv(name);
  }
  ~ScopedEnv() {
    if (old_) setenv(name_, old_->c_str(), 1);
    else unsetenv(name_);
  }

 private:
  const char* name_;
  std::optional<std::string> old_;
};

TEST(Seeds, EnvironmentSelectsSeeds) {
  {
    ScopedEnv one("SG_SEED", nullptr), many("SG_SEEDS", nullptr);
    EXPECT_EQ(test_seeds(3, 7).size(), 3u);
  }
  {
    ScopedEnv one("SG_SEED", nullptr), many("SG_SEEDS", "11");
    const auto seeds = test_seeds(3, 7);
    EXPECT_EQ(seeds.size(), 11u);
    EXPECT_EQ(std::set<uint64_t>(seeds.begin(), seeds.end()).size(), 11u);
  }
  {
    ScopedEnv one("SG_SEED", "12345"), many("SG_SEEDS", "11");
    EXPECT_EQ(test_seeds(3, 7), std::vector<uint64_t>{12345});
  }
  EXPECT_EQ(seed_banner(42), "seed=42 (replay with SG_SEED=42)");
}

TEST(Seeds, FailureInsideTheLoopNamesItsSeed) {
  EXPECT_NONFATAL_FAILURE(
      {
        ScopedEnv one("SG_SEED", "777");
        SG_FOR_EACH_SEED(seed, 5) { EXPECT_NE(seed, 777u); }
      },
      "seed=777 (replay with SG_SEED=777)");
}

}  // namespace
}  // namespace sim
