// The deterministic simulator: N protocol nodes and their clients in one
// process, on virtual time, driven by one seeded PRNG (DESIGN.md decision 5).
//
// Everything a node observes -- message arrival order, delays, losses, timer
// firings, disk latencies, its clock and its random() stream -- is derived
// from the seed given to the Simulator, so the same seed replays the same run
// exactly, on any platform. trace_hash() fingerprints a run to prove it.
//
// Quick start:
//
//   sim::Simulator s(seed);
//   for (sg::NodeId id : {1, 2, 3})
//     s.add_server(id, [](sg::Env& env) { return std::make_unique<MyNode>(env); });
//   s.add_client(100, [](sg::Env& env) { return std::make_unique<MyClient>(env); });
//   s.net().loss = 0.1;                      // any fault, at any time
//   s.partition_majority();
//   s.run_for(sim::kSecond);
//   s.heal();
//   ASSERT_TRUE(s.run_until([&] { return done(); }, 10 * sim::kSecond));
//
// Servers and clients are both sg::Node. The difference: partition helpers
// and the nemesis act on servers only; clients stay connected to every
// server unless a test cuts their links explicitly (set_link / partition
// with the client listed in a group).
//
// Fault injection and node access are allowed at any time from test code and
// from callbacks scheduled with at()/after(), but not from inside a node's
// own handler (a node must never crash itself mid-call).
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <utility>
#include <vector>

#include "storage-guests/common/env.h"

namespace sim {

using sg::Bytes;
using sg::NodeId;
using sg::TimeNs;

constexpr TimeNs kMicrosecond = 1000;
constexpr TimeNs kMillisecond = 1000 * kMicrosecond;
constexpr TimeNs kSecond = 1000 * kMillisecond;

// xoshiro256** seeded through splitmix64: fixed, documented algorithms, so a
// seed means the same run under every compiler and standard library (unlike
// std::uniform_int_distribution, whose output is implementation-defined).
class Rng {
 public:
  explicit Rng(uint64_t seed);
  uint64_t next();
  // Uniform in [0, n); n == 0 yields 0. Unbiased (Lemire's method).
  uint64_t below(uint64_t n);
  // Uniform in [lo, hi]; requires lo <= hi.
  uint64_t range(uint64_t lo, uint64_t hi);
  // True with probability p (p <= 0: never, p >= 1: always).
  bool chance(double p);
  // Uniform in [0, 1), 53 bits.
  double unit();

 private:
  uint64_t s_[4];
};

// splitmix64 finaliser: derives independent sub-seeds (per node, per
// incarnation) from the master seed.
uint64_t mix64(uint64_t x);

// Network behaviour for every message, changeable at any time through
// Simulator::net(). Messages on one directed link arrive in send order
// unless `reorder` picks them for an extra delay, which lets later messages
// overtake them.
struct NetConfig {
  double loss = 0.0;       // probability a message is dropped
  double duplicate = 0.0;  // probability a message is delivered twice
  double reorder = 0.0;    // probability a message gets an extra delay
  TimeNs min_delay = 1 * kMillisecond;
  TimeNs max_delay = 3 * kMillisecond;
  TimeNs max_reorder_delay = 20 * kMillisecond;  // extra delay, uniform
};

// Latency of Storage::sync(), uniform in [min, max]; completions of one
// node's syncs are delivered in token order.
struct DiskConfig {
  TimeNs min_sync_latency = 200 * kMicrosecond;
  TimeNs max_sync_latency = 2 * kMillisecond;
};

// A node's clock, set at true time T by Simulator::set_clock():
//   local(t) = T + offset + (t - T) * (1 + drift_ppm / 1e6)
// clamped so that it never runs backwards (setting it back makes it stand
// still until it catches up, as a monotonic clock would). Pending timers are
// re-aimed when the clock changes, so they always fire when the *local*
// clock reaches their deadline.
struct ClockConfig {
  int64_t offset = 0;      // local minus true time at the moment it is set
  int64_t drift_ppm = 0;   // rate error in parts per million, > -1e6
  TimeNs uncertainty = 0;  // what Env::clock_uncertainty() reports; the
                           // simulator does not enforce it against offset
};

struct Config {
  NetConfig net;
  DiskConfig disk;
  // Initial clock of every node; the per-node offset is drawn uniformly
  // from [0, max_initial_offset] so that nodes never share a clock origin.
  TimeNs max_initial_offset = 0;
  TimeNs clock_uncertainty = 0;
};

// Counters for assertions in tests ("the loss fault really dropped some").
struct Stats {
  uint64_t sent = 0;
  uint64_t delivered = 0;
  uint64_t lost = 0;          // dropped by NetConfig::loss
  uint64_t duplicated = 0;    // extra copies created
  uint64_t reordered = 0;     // given an extra delay
  uint64_t blocked = 0;       // dropped by a partition / cut link
  uint64_t to_down_node = 0;  // arrived at a crashed (or unknown) node
  uint64_t timers_fired = 0;
  uint64_t syncs_completed = 0;
  uint64_t crashes = 0;
  uint64_t restarts = 0;
  uint64_t partitions = 0;    // calls of partition() and its helpers
  uint64_t pauses = 0;
  uint64_t clock_changes = 0;
  uint64_t events = 0;        // every event processed by step()
};

using NodeFactory = std::function<std::unique_ptr<sg::Node>(sg::Env&)>;

// Randomized fault injection (Jepsen's nemesis). Every `min_interval` to
// `max_interval` it undoes what it did last round (heals its partitions,
// restarts the servers it crashed, resumes the ones it paused, stops clock
// drift, ends a network burst) and then, four rounds in five, applies one or
// two faults of different enabled kinds. All choices come from the
// simulator's seed.
struct NemesisConfig {
  TimeNs min_interval = 200 * kMillisecond;
  TimeNs max_interval = 1 * kSecond;
  bool partitions = true;  // isolate / majority / bridge / ring / random groups
  bool crashes = true;     // crash servers (within max_down)
  bool pauses = true;      // pause servers (within max_down)
  bool clocks = false;     // random offset and drift on one server
  bool net_faults = true;  // bursts of loss, duplication, reordering
  // Upper bound on servers down (crashed or paused) at once; the default
  // keeps a majority alive so that liveness can be asserted afterwards.
  // -1: minority, i.e. (servers - 1) / 2.
  int max_down = -1;
  double burst_loss = 0.2;
  double burst_duplicate = 0.2;
  double burst_reorder = 0.3;
  TimeNs max_clock_offset = 100 * kMillisecond;
  int64_t max_drift_ppm = 1000;
};

class Simulator {
 public:
  explicit Simulator(uint64_t seed, Config config = {});
  ~Simulator();
  Simulator(const Simulator&) = delete;
  Simulator& operator=(const Simulator&) = delete;

  uint64_t seed() const { return seed_; }

  // ---- membership ---------------------------------------------------------
  // Builds the node with `factory` (called again on every restart) and calls
  // its start() at the current virtual time. Ids must be unique and not
  // sg::kNoNode.
  void add_server(NodeId id, NodeFactory factory);
  void add_client(NodeId id, NodeFactory factory);
  const std::vector<NodeId>& servers() const { return servers_; }
  const std::vector<NodeId>& clients() const { return clients_; }

  // The live node, or nullptr while it is crashed. as<T>() downcasts
  // (nullptr if crashed or not a T). Pointers die with crash().
  sg::Node* node(NodeId id);
  template <typename T>
  T* as(NodeId id) { return dynamic_cast<T*>(node(id)); }

  bool is_up(NodeId id) const;      // not crashed
  bool is_paused(NodeId id) const;

  // ---- time and running ---------------------------------------------------
  // True virtual time (ns since the simulation began); nodes see their own
  // skewed clocks, see local_now().
  TimeNs now() const { return now_; }
  TimeNs local_now(NodeId id) const;
  // local_now(id) - now(): how far the node's clock is off true time, to
  // check a protocol's clock assumption (Env::clock_uncertainty()).
  int64_t clock_error(NodeId id) const;

  // Processes the next event. False when no event is pending.
  bool step();
  // Processes every event due at or before `t`, then advances now() to t.
  void run_until_time(TimeNs t);
  void run_for(TimeNs d) { run_until_time(now_ + d); }
  // Runs until pred() holds (checked before the first and after every
  // event) or `timeout` of virtual time has passed. Returns whether pred()
  // held; now() is left at the moment it became true.
  bool run_until(const std::function<bool()>& pred, TimeNs timeout);

  // Test callbacks on the virtual timeline (client operations, fault
  // schedules). Ties with node events are broken by scheduling order; a
  // time in the past means now.
  void at(TimeNs t, std::function<void()> fn);
  void after(TimeNs d, std::function<void()> fn) { at(now_ + d, std::move(fn)); }

  // ---- network faults -----------------------------------------------------
  NetConfig& net() { return config_.net; }
  DiskConfig& disk() { return config_.disk; }

  // Directed link state; partitions are sets of cut links. Checked when a
  // message is delivered, so a cut also drops what is already in flight.
  void set_link(NodeId from, NodeId to, bool up);
  void cut(NodeId a, NodeId b) { set_link(a, b, false); set_link(b, a, false); }
  bool link_up(NodeId from, NodeId to) const;
  // Nodes in different groups cannot talk; nodes in no group (typically
  // clients) keep all their links. Adds to the cuts already in place.
  void partition(const std::vector<std::vector<NodeId>>& groups);
  // Cuts `id` from every other node, clients included.
  void isolate(NodeId id);
  // Random majority / minority split of the servers; returns the majority.
  std::vector<NodeId> partition_majority();
  // Servers other than `bridge` split into two halves that can talk only
  // through `bridge`. Returns the two halves.
  std::pair<std::vector<NodeId>, std::vector<NodeId>> partition_bridge(NodeId bridge);
  // Each server talks only to its neighbours in a random cyclic order.
  // Returns that order.
  std::vector<NodeId> partition_ring();
  // Restores every link. Does not touch NetConfig.
  void heal();

  // ---- node faults --------------------------------------------------------
  // Destroys the node. Its unsynced appends and rewrites, in-flight syncs,
  // timers and undelivered messages are lost; durable records survive.
  void crash(NodeId id);
  // Builds a new node with the factory; it recovers from storage in start().
  // On a live node: crash, then restart (a reboot).
  void restart(NodeId id);
  // A paused node receives nothing and fires no timers; its events are held
  // (its disk keeps working) and delivered in order on resume().
  void pause(NodeId id);
  void resume(NodeId id);
  // Clock skew: replaces the node's offset and drift at the current time.
  void set_clock(NodeId id, const ClockConfig& clock);
  const ClockConfig& clock(NodeId id) const;

  // Heals links, resumes paused nodes, restarts crashed ones (also those
  // the test crashed itself), resets every
  // clock to drift 0 (offsets stay, clocks never go back) and restores the
  // NetConfig given at construction. Stops the nemesis.
  void heal_all();

  // ---- nemesis ------------------------------------------------------------
  void start_nemesis(const NemesisConfig& config = {});
  void stop_nemesis();  // leaves the current fault in place; see heal_all()

  // ---- inspection ---------------------------------------------------------
  // Durable records of a node's storage (what a restart would recover).
  std::vector<Bytes> durable_records(NodeId id) const;
  const Stats& stats() const { return stats_; }
  size_t pending_events() const { return queue_.size(); }
  // Fingerprint of every event processed so far (kind, time, nodes,
  // payload) and every fault applied. Equal seeds give equal hashes.
  uint64_t trace_hash() const { return trace_hash_; }
  // Events logged to stderr as they happen, for replaying a failing seed.
  // Also enabled by the environment variable SG_TRACE=1.
  void set_verbose(bool on) { verbose_ = on; }
  // The simulator's own stream, for test code that needs seeded choices
  // (which key to write, which node to ask).
  Rng& rng() { return rng_; }

 private:
  struct Event;
  using EventKey = std::pair<TimeNs, uint64_t>;  // (time, scheduling order)
  struct Slot;
  class NodeEnv;
  class SimStorage;
  friend class NodeEnv;
  friend class SimStorage;

  void add(NodeId id, NodeFactory factory, bool server);
  Slot& slot(NodeId id);
  const Slot& slot(NodeId id) const;
  EventKey schedule_at(TimeNs t, std::unique_ptr<Event> e);
  void dispatch(std::unique_ptr<Event> e);
  void deliver(Slot& s, std::unique_ptr<Event> e);
  void send_from(Slot& from, NodeId to, const Bytes& message);
  void start_node(Slot& s);
  void retarget_timers(Slot& s);
  TimeNs true_time_for_local(const Slot& s, TimeNs local) const;
  void check_not_in_handler(const char* what) const;
  [[noreturn]] void die(const char* what) const;
  void mix(uint64_t v);
  void log(const std::string& line) const;
  void nemesis_round();
  void nemesis_undo();

  uint64_t seed_;
  Config config_;
  NetConfig base_net_;
  Rng rng_;
  TimeNs now_ = 0;
  uint64_t next_seq_ = 0;
  std::map<EventKey, std::unique_ptr<Event>> queue_;
  std::map<NodeId, std::unique_ptr<Slot>> slots_;
  std::vector<NodeId> servers_;
  std::vector<NodeId> clients_;
  std::set<std::pair<NodeId, NodeId>> cut_links_;
  std::map<std::pair<NodeId, NodeId>, TimeNs> link_last_arrival_;
  Stats stats_;
  uint64_t trace_hash_ = 0xcbf29ce484222325ull;
  bool verbose_ = false;
  bool in_handler_ = false;

  struct NemesisState;
  std::unique_ptr<NemesisState> nemesis_;
};

// ---- seeds for gtest suites ---------------------------------------------
//
// SG_SEED=N    run only seed N (replay a failure)
// SG_SEEDS=K   run K seeds (make test keeps K small, make soak makes it big)
//
// Seeds a test should run: {SG_SEED} if set, otherwise SG_SEEDS (or
// `default_count`) seeds derived from `base`, so that different tests
// explore different seeds: base * 100000 + 0, 1, 2, ...
std::vector<uint64_t> test_seeds(uint64_t default_count, uint64_t base = 1);
// A stable base for test_seeds() from a test's name (below 100000), so that
// a test keeps its seeds when the file around it changes.
uint64_t seed_base(const char* suite, const char* name);
// "seed=N (replay with SG_SEED=N)"
std::string seed_banner(uint64_t seed);
// Remembers the seed being run so that a sanitizer abort or a crash, which
// bypass gtest's failure reports, still prints the banner on stderr.
void set_current_seed(uint64_t seed);

}  // namespace sim

// Runs the following statement once per seed, with the seed banner attached
// to every gtest failure inside it:
//
//   TEST(Raft, Churn) {
//     SG_FOR_EACH_SEED(seed, 20) {
//       sim::Simulator s(seed);
//       ...
//     }
//   }
//
// Needs <gtest/gtest.h> included before use. After a failing seed the loop
// stops, so that the first failure's seed is the one printed last.
#define SG_FOR_EACH_SEED(var, default_count)                                  \
  for (uint64_t var : ::sim::test_seeds(                                      \
           (default_count),                                                   \
           ::sim::seed_base(                                                  \
               ::testing::UnitTest::GetInstance()->current_test_info()->test_suite_name(), \
               ::testing::UnitTest::GetInstance()->current_test_info()->name()))) \
    if (::testing::Test::HasFailure()) break; else                            \
    if (::testing::ScopedTrace sg_seed_trace_##var{__FILE__, __LINE__,        \
                                                 ::sim::seed_banner(var)};    \
        ::sim::set_current_seed(var), false) {} else
