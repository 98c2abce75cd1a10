#include "tests/sim/sim.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstdlib>
#include <deque>
#include <optional>
#include <utility>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/common_interface_defs.h>
#endif

namespace sim {

// ---- Rng ----------------------------------------------------------------------

uint64_t mix64(uint64_t x) {
  x += 0x9e3779b97f4a7c15ull;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ull;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebull;
  return x ^ (x >> 31);
}

Rng::Rng(uint64_t seed) {
  // Consecutive splitmix64 outputs never make the all-zero state that
  // xoshiro cannot leave.
  for (int i = 0; i < 4; ++i) {
    seed += 0x9e3779b97f4a7c15ull;
    s_[i] = mix64(seed);
  }
}

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t Rng::next() {
  const uint64_t result = rotl(s_[1] * 5, 7) * 9;
  const uint64_t t = s_[1] << 17;
  s_[2] ^= s_[0];
  s_[3] ^= s_[1];
  s_[1] ^= s_[2];
  s_[0] ^= s_[3];
  s_[2] ^= t;
  s_[3] = rotl(s_[3], 45);
  return result;
}

uint64_t Rng::below(uint64_t n) {
  if (n == 0) return 0;
  // Lemire, "Fast random integer generation in an interval" (2019).
  unsigned __int128 m = static_cast<unsigned __int128>(next()) * n;
  uint64_t low = static_cast<uint64_t>(m);
  if (low < n) {
    const uint64_t threshold = -n % n;
    while (low < threshold) {
      m = static_cast<unsigned __int128>(next()) * n;
      low = static_cast<uint64_t>(m);
    }
  }
  return static_cast<uint64_t>(m >> 64);
}

uint64_t Rng::range(uint64_t lo, uint64_t hi) {
  if (hi <= lo) return lo;
  if (hi - lo == UINT64_MAX) return next();
  return lo + below(hi - lo + 1);
}

double Rng::unit() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

bool Rng::chance(double p) {
  if (p <= 0.0) return false;
  if (p >= 1.0) return true;
  return unit() < p;
}

// ---- internals ------------------------------------------------------------------

namespace {

template <typename T>
std::vector<T> shuffled(std::vector<T> v, Rng& rng) {
  for (size_t i = v.size(); i > 1; --i) std::swap(v[i - 1], v[rng.below(i)]);
  return v;
}

uint64_t fnv1a(const Bytes& b) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (uint8_t c : b) h = (h ^ c) * 0x100000001b3ull;
  return h;
}

constexpr int64_t kPpm = 1000000;
// Later than any run; far enough from 2^64 that clock arithmetic cannot wrap.
constexpr TimeNs kFarFuture = UINT64_MAX / 4;

}  // namespace

enum class EventKind : uint8_t {
  kMessage = 1,
  kTimer = 2,
  kDiskDone = 3,    // a sync reached the disk: records become durable
  kSyncNotify = 4,  // the node learns of it (held while paused)
  kCallback = 5,
};

struct Simulator::Event {
  EventKind kind;
  NodeId from = sg::kNoNode;
  NodeId to = sg::kNoNode;
  uint64_t id = 0;  // timer id or sync token
  // For timers and sync notices: the life of the node they belong to, so
  // that nothing of a crashed incarnation reaches its successor.
  uint64_t incarnation = 0;
  // A message held by a pause and replayed on resume: it already arrived,
  // so links cut since then do not drop it again.
  bool replayed = false;
  Bytes payload;
  std::function<void()> fn;
};

namespace {

struct StorageOp {
  bool rewrite = false;
  std::vector<Bytes> records;  // one record for an append
};

struct InflightSync {
  uint64_t token;
  uint64_t upto;  // ops [.., upto) become durable
  std::pair<TimeNs, uint64_t> key;
};

struct Timer {
  TimeNs local_deadline;
  // Where its event sits in the queue; nullopt while held by a pause.
  std::optional<std::pair<TimeNs, uint64_t>> key;
};

}  // namespace

class Simulator::SimStorage final : public sg::Storage {
 public:
  SimStorage(Simulator& sim, NodeId id) : sim_(sim), id_(id) {}

  void append(const Bytes& record) override {
    pending_.push_back(StorageOp{false, {record}});
  }
  void rewrite(const std::vector<Bytes>& records) override {
    pending_.push_back(StorageOp{true, records});
  }
  uint64_t sync() override;
  std::vector<Bytes> recover() override { return durable_; }

  // Applies every op covered by a finished sync.
  void make_durable(uint64_t upto) {
    while (pending_base_ < upto && !pending_.empty()) {
      StorageOp& op = pending_.front();
      if (op.rewrite) durable_ = std::move(op.records);
      else durable_.push_back(std::move(op.records.front()));
      pending_.pop_front();
      ++pending_base_;
    }
  }
  void crash() {
    pending_base_ += pending_.size();
    pending_.clear();
    inflight_.clear();
  }

  const std::vector<Bytes>& durable() const { return durable_; }
  std::deque<InflightSync>& inflight() { return inflight_; }

 private:
  Simulator& sim_;
  NodeId id_;
  std::vector<Bytes> durable_;
  std::deque<StorageOp> pending_;
  uint64_t pending_base_ = 0;  // index of pending_.front() among all ops
  uint64_t next_token_ = 1;
  TimeNs last_completion_ = 0;
  std::deque<InflightSync> inflight_;
};

struct Simulator::Slot {
  NodeId id;
  bool server;
  NodeFactory factory;
  std::unique_ptr<NodeEnv> env;
  std::unique_ptr<SimStorage> storage;
  std::unique_ptr<sg::Node> node;  // declared last: destroyed before its Env
  bool up = false;
  bool paused = false;
  uint64_t incarnation = 0;
  Rng rng{0};
  uint64_t next_timer_id = 1;
  std::map<sg::TimerId, Timer> timers;
  std::vector<std::unique_ptr<Event>> held;  // in arrival order, while paused

  // Clock: local(t) = max(floor, base_local + (t - base_true) * rate / 1e6).
  ClockConfig clock;
  TimeNs base_true = 0;
  int64_t base_local = 0;
  int64_t rate = kPpm;
  TimeNs floor = 0;

  TimeNs local(TimeNs t) const {
    __int128 v = base_local + static_cast<__int128>(t - base_true) * rate / kPpm;
    if (v < static_cast<__int128>(floor)) return floor;
    return static_cast<TimeNs>(v);
  }
};

class Simulator::NodeEnv final : public sg::Env {
 public:
  NodeEnv(Simulator& sim, Slot& slot) : sim_(sim), slot_(slot) {}

  NodeId self() const override { return slot_.id; }
  void send(NodeId to, const Bytes& message) override { sim_.send_from(slot_, to, message); }
  TimeNs now() const override { return slot_.local(sim_.now_); }
  TimeNs clock_uncertainty() const override { return slot_.clock.uncertainty; }

  sg::TimerId set_timer(TimeNs delay) override {
    const sg::TimerId id = slot_.next_timer_id++;
    // Saturate, so that a "never" delay does not wrap into the past.
    const TimeNs local = now();
    const TimeNs deadline = delay > kFarFuture - local ? kFarFuture : local + delay;
    auto e = std::make_unique<Event>();
    e->kind = EventKind::kTimer;
    e->to = slot_.id;
    e->id = id;
    e->incarnation = slot_.incarnation;
    const TimeNs at = sim_.true_time_for_local(slot_, deadline);
    slot_.timers[id] = Timer{deadline, sim_.schedule_at(at, std::move(e))};
    return id;
  }

  void cancel_timer(sg::TimerId id) override {
    auto it = slot_.timers.find(id);
    if (it == slot_.timers.end()) return;
    if (it->second.key) sim_.queue_.erase(*it->second.key);
    slot_.timers.erase(it);
  }

  sg::Storage& storage() override { return *slot_.storage; }
  uint64_t random() override { return slot_.rng.next(); }

 private:
  Simulator& sim_;
  Slot& slot_;
};

uint64_t Simulator::SimStorage::sync() {
  const uint64_t token = next_token_++;
  // Completions arrive in token order, as the Storage contract promises.
  TimeNs done = sim_.now_ + sim_.rng_.range(sim_.config_.disk.min_sync_latency,
                                            sim_.config_.disk.max_sync_latency);
  done = std::max(done, last_completion_);
  last_completion_ = done;
  auto e = std::make_unique<Event>();
  e->kind = EventKind::kDiskDone;
  e->to = id_;
  e->id = token;
  e->incarnation = sim_.slot(id_).incarnation;
  const uint64_t upto = pending_base_ + pending_.size();
  inflight_.push_back(InflightSync{token, upto, sim_.schedule_at(done, std::move(e))});
  return token;
}

// ---- Simulator ------------------------------------------------------------------

Simulator::Simulator(uint64_t seed, Config config)
    : seed_(seed), config_(config), base_net_(config.net), rng_(mix64(seed)) {
  const char* trace = std::getenv("SG_TRACE");
  verbose_ = trace != nullptr && trace[0] != '\0' && trace[0] != '0';
  // The seed itself stays out of trace_hash_: equal hashes must mean equal
  // histories, and different seeds must differ by what happened.
}

Simulator::~Simulator() {
  // Nodes may hold timers and storage of their Env; destroy them first.
  for (auto& [id, s] : slots_) s->node.reset();
}

void Simulator::die(const char* what) const {
  std::fprintf(stderr, "sim: %s at t=%" PRIu64 "ns, %s\n", what, now_, seed_banner(seed_).c_str());
  std::abort();
}

void Simulator::check_not_in_handler(const char* what) const {
  if (in_handler_) {
    std::fprintf(stderr, "sim: %s called from inside a node handler; "
                         "schedule it with after(0, ...) instead\n", what);
    die("misuse");
  }
}

void Simulator::mix(uint64_t v) {
  // FNV-1a over the 8 bytes of v: cheap, order-sensitive, platform-free.
  for (int i = 0; i < 8; ++i) {
    trace_hash_ = (trace_hash_ ^ ((v >> (8 * i)) & 0xff)) * 0x100000001b3ull;
  }
}

// Callers test verbose_ first, so that quiet runs build no strings.
void Simulator::log(const std::string& line) const {
  std::fprintf(stderr, "[%10.6f] %s\n", static_cast<double>(now_) / kSecond, line.c_str());
}

Simulator::Slot& Simulator::slot(NodeId id) {
  auto it = slots_.find(id);
  if (it == slots_.end()) die("unknown node id");
  return *it->second;
}

const Simulator::Slot& Simulator::slot(NodeId id) const {
  auto it = slots_.find(id);
  if (it == slots_.end()) die("unknown node id");
  return *it->second;
}

Simulator::EventKey Simulator::schedule_at(TimeNs t, std::unique_ptr<Event> e) {
  const EventKey key{std::max(t, now_), next_seq_++};
  queue_.emplace(key, std::move(e));
  return key;
}

void Simulator::at(TimeNs t, std::function<void()> fn) {
  auto e = std::make_unique<Event>();
  e->kind = EventKind::kCallback;
  e->fn = std::move(fn);
  schedule_at(t, std::move(e));
}

// ---- membership ------------------------------------------------------------------

void Simulator::add_server(NodeId id, NodeFactory factory) { add(id, std::move(factory), true); }
void Simulator::add_client(NodeId id, NodeFactory factory) { add(id, std::move(factory), false); }

void Simulator::add(NodeId id, NodeFactory factory, bool server) {
  check_not_in_handler("add_server/add_client");
  if (id == sg::kNoNode) die("sg::kNoNode is not a valid node id");
  if (slots_.count(id) != 0) die("node id added twice");
  auto s = std::make_unique<Slot>();
  s->id = id;
  s->server = server;
  s->factory = std::move(factory);
  s->env = std::make_unique<NodeEnv>(*this, *s);
  s->storage = std::make_unique<SimStorage>(*this, id);
  s->clock.uncertainty = config_.clock_uncertainty;
  s->clock.offset = static_cast<int64_t>(rng_.range(0, config_.max_initial_offset));
  s->base_true = now_;
  s->base_local = static_cast<int64_t>(now_) + s->clock.offset;
  s->floor = 0;
  Slot& ref = *s;
  slots_.emplace(id, std::move(s));
  (server ? servers_ : clients_).push_back(id);
  start_node(ref);
}

void Simulator::start_node(Slot& s) {
  ++s.incarnation;
  s.rng = Rng(mix64(seed_ ^ mix64((static_cast<uint64_t>(s.id) << 32) ^ s.incarnation)));
  s.up = true;
  s.paused = false;
  mix(0x5157a47);
  mix(s.id);
  if (verbose_) log("start " + std::to_string(s.id) + " incarnation " + std::to_string(s.incarnation));
  in_handler_ = true;
  s.node = s.factory(*s.env);
  if (!s.node) die("node factory returned null");
  s.node->start();
  in_handler_ = false;
}

sg::Node* Simulator::node(NodeId id) {
  Slot& s = slot(id);
  return s.up ? s.node.get() : nullptr;
}

bool Simulator::is_up(NodeId id) const { return slot(id).up; }
bool Simulator::is_paused(NodeId id) const { return slot(id).paused; }
TimeNs Simulator::local_now(NodeId id) const { return slot(id).local(now_); }
int64_t Simulator::clock_error(NodeId id) const {
  return static_cast<int64_t>(local_now(id)) - static_cast<int64_t>(now_);
}

// ---- the event loop ----------------------------------------------------------------

bool Simulator::step() {
  check_not_in_handler("step");
  if (queue_.empty()) return false;
  auto it = queue_.begin();
  now_ = it->first.first;
  std::unique_ptr<Event> e = std::move(it->second);
  queue_.erase(it);
  ++stats_.events;
  dispatch(std::move(e));
  return true;
}

void Simulator::run_until_time(TimeNs t) {
  while (!queue_.empty() && queue_.begin()->first.first <= t) step();
  if (t > now_) now_ = t;
}

bool Simulator::run_until(const std::function<bool()>& pred, TimeNs timeout) {
  const TimeNs deadline = now_ + timeout;
  if (pred()) return true;
  while (!queue_.empty() && queue_.begin()->first.first <= deadline) {
    step();
    if (pred()) return true;
  }
  if (deadline > now_) now_ = deadline;
  return pred();
}

void Simulator::dispatch(std::unique_ptr<Event> e) {
  mix(static_cast<uint64_t>(e->kind));
  mix(now_);
  switch (e->kind) {
    case EventKind::kCallback: {
      e->fn();
      return;
    }
    case EventKind::kDiskDone: {
      Slot& s = slot(e->to);
      auto& inflight = s.storage->inflight();
      // Only a crash removes in-flight syncs, and it removes their events
      // too, so the front is always this sync.
      if (inflight.empty() || inflight.front().token != e->id) die("sync out of order");
      s.storage->make_durable(inflight.front().upto);
      inflight.pop_front();
      mix(e->to);
      mix(e->id);
      e->kind = EventKind::kSyncNotify;
      deliver(s, std::move(e));
      return;
    }
    case EventKind::kMessage: {
      mix(e->from);
      mix(e->to);
      mix(fnv1a(e->payload));
      auto it = slots_.find(e->to);
      if (it == slots_.end()) {
        ++stats_.to_down_node;  // no such node: as good as down
        return;
      }
      Slot& s = *it->second;
      if (!e->replayed && !link_up(e->from, e->to)) {
        ++stats_.blocked;
        if (verbose_) log("drop (cut) " + std::to_string(e->from) + "->" + std::to_string(e->to));
        return;
      }
      if (!s.up) {
        ++stats_.to_down_node;
        return;
      }
      deliver(s, std::move(e));
      return;
    }
    case EventKind::kTimer:
    case EventKind::kSyncNotify: {
      Slot& s = slot(e->to);
      if (!s.up || s.incarnation != e->incarnation) return;
      deliver(s, std::move(e));
      return;
    }
  }
}

// Hands an event to a live node, or holds it while the node is paused.
void Simulator::deliver(Slot& s, std::unique_ptr<Event> e) {
  if (s.paused) {
    if (e->kind == EventKind::kTimer) {
      auto it = s.timers.find(e->id);
      if (it == s.timers.end()) return;
      it->second.key.reset();
    }
    s.held.push_back(std::move(e));
    return;
  }
  in_handler_ = true;
  switch (e->kind) {
    case EventKind::kMessage:
      ++stats_.delivered;
      if (verbose_) log("deliver " + std::to_string(e->from) + "->" + std::to_string(e->to) + " " +
          std::to_string(e->payload.size()) + "B");
      s.node->on_message(e->from, e->payload);
      break;
    case EventKind::kTimer: {
      // A held timer may have been cancelled before it was replayed.
      if (s.timers.erase(e->id) == 0) break;
      ++stats_.timers_fired;
      if (verbose_) log("timer " + std::to_string(s.id) + " #" + std::to_string(e->id));
      mix(s.id);
      mix(e->id);
      s.node->on_timer(e->id);
      break;
    }
    case EventKind::kSyncNotify:
      ++stats_.syncs_completed;
      if (verbose_) log("synced " + std::to_string(s.id) + " token " + std::to_string(e->id));
      s.node->on_sync(e->id);
      break;
    default:
      die("bad event kind for delivery");
  }
  in_handler_ = false;
}

void Simulator::send_from(Slot& from, NodeId to, const Bytes& message) {
  ++stats_.sent;
  const NetConfig& net = config_.net;
  if (rng_.chance(net.loss)) {
    ++stats_.lost;
    if (verbose_) log("lose " + std::to_string(from.id) + "->" + std::to_string(to));
    return;
  }
  const int copies = rng_.chance(net.duplicate) ? 2 : 1;
  if (copies == 2) ++stats_.duplicated;
  for (int i = 0; i < copies; ++i) {
    TimeNs arrival = now_ + rng_.range(net.min_delay, net.max_delay);
    if (rng_.chance(net.reorder)) {
      ++stats_.reordered;
      arrival += rng_.range(0, net.max_reorder_delay);
    } else {
      // FIFO per link unless picked for reordering above.
      TimeNs& last = link_last_arrival_[{from.id, to}];
      arrival = std::max(arrival, last);
      last = arrival;
    }
    auto e = std::make_unique<Event>();
    e->kind = EventKind::kMessage;
    e->from = from.id;
    e->to = to;
    e->payload = message;
    schedule_at(arrival, std::move(e));
  }
}

// ---- clocks ------------------------------------------------------------------

TimeNs Simulator::true_time_for_local(const Slot& s, TimeNs local) const {
  if (s.local(now_) >= local) return now_;
  // Smallest t with base_local + (t - base_true) * rate / 1e6 >= local.
  const __int128 need = static_cast<__int128>(local) - s.base_local;
  const __int128 dt = (need * kPpm + s.rate - 1) / s.rate;
  const __int128 t = static_cast<__int128>(s.base_true) + dt;
  if (t > static_cast<__int128>(kFarFuture)) return kFarFuture;
  return std::max(now_, static_cast<TimeNs>(t));
}

void Simulator::set_clock(NodeId id, const ClockConfig& clock) {
  check_not_in_handler("set_clock");
  if (clock.drift_ppm <= -kPpm) die("clock drift must exceed -1e6 ppm");
  Slot& s = slot(id);
  const TimeNs before = s.local(now_);
  s.clock = clock;
  s.base_true = now_;
  s.base_local = static_cast<int64_t>(now_) + clock.offset;
  s.rate = kPpm + clock.drift_ppm;
  s.floor = before;  // never backwards
  ++stats_.clock_changes;
  mix(0xc10c);
  mix(id);
  if (verbose_) log("clock " + std::to_string(id) + " offset " + std::to_string(clock.offset) + " drift " +
      std::to_string(clock.drift_ppm) + "ppm");
  retarget_timers(s);
}

const ClockConfig& Simulator::clock(NodeId id) const { return slot(id).clock; }

void Simulator::retarget_timers(Slot& s) {
  for (auto& [tid, timer] : s.timers) {
    if (!timer.key) continue;  // held by a pause: fires on resume anyway
    auto node = queue_.extract(*timer.key);
    if (node.empty()) die("timer lost from the queue");
    timer.key = schedule_at(true_time_for_local(s, timer.local_deadline), std::move(node.mapped()));
  }
}

// ---- network faults ------------------------------------------------------------

void Simulator::set_link(NodeId from, NodeId to, bool up) {
  mix(up ? 0x11 : 0x10);
  mix(from);
  mix(to);
  if (up) cut_links_.erase({from, to});
  else cut_links_.insert({from, to});
}

bool Simulator::link_up(NodeId from, NodeId to) const {
  return cut_links_.count({from, to}) == 0;
}

void Simulator::partition(const std::vector<std::vector<NodeId>>& groups) {
  ++stats_.partitions;
  if (verbose_) {
    std::string desc = "partition";
    for (const auto& group : groups) {
      desc += " {";
      for (NodeId id : group) desc += " " + std::to_string(id);
      desc += " }";
    }
    log(desc);
  }
  for (size_t g = 0; g < groups.size(); ++g) {
    for (size_t h = 0; h < groups.size(); ++h) {
      if (g == h) continue;
      for (NodeId a : groups[g])
        for (NodeId b : groups[h]) set_link(a, b, false);
    }
  }
}

void Simulator::isolate(NodeId id) {
  ++stats_.partitions;
  if (verbose_) log("isolate " + std::to_string(id));
  for (const auto& [other, s] : slots_) {
    if (other != id) cut(id, other);
  }
}

std::vector<NodeId> Simulator::partition_majority() {
  std::vector<NodeId> order = shuffled(servers_, rng_);
  const size_t majority = order.size() / 2 + 1;
  std::vector<NodeId> big(order.begin(), order.begin() + std::min(majority, order.size()));
  std::vector<NodeId> small(order.begin() + big.size(), order.end());
  std::sort(big.begin(), big.end());
  std::sort(small.begin(), small.end());
  partition({big, small});
  return big;
}

std::pair<std::vector<NodeId>, std::vector<NodeId>> Simulator::partition_bridge(NodeId bridge) {
  std::vector<NodeId> others;
  for (NodeId id : servers_)
    if (id != bridge) others.push_back(id);
  others = shuffled(others, rng_);
  const size_t half = others.size() / 2;
  std::vector<NodeId> a(others.begin(), others.begin() + half);
  std::vector<NodeId> b(others.begin() + half, others.end());
  std::sort(a.begin(), a.end());
  std::sort(b.begin(), b.end());
  if (verbose_) log("bridge through " + std::to_string(bridge));
  partition({a, b});  // the bridge is in neither group, so it reaches both
  return {a, b};
}

std::vector<NodeId> Simulator::partition_ring() {
  std::vector<NodeId> ring = shuffled(servers_, rng_);
  const size_t n = ring.size();
  ++stats_.partitions;
  if (verbose_) {
    std::string desc = "ring";
    for (NodeId id : ring) desc += " " + std::to_string(id);
    log(desc);
  }
  for (size_t i = 0; i < n; ++i) {
    for (size_t j = 0; j < n; ++j) {
      const size_t d = (i + n - j) % n;
      if (d == 0 || d == 1 || d == n - 1) continue;
      set_link(ring[i], ring[j], false);
    }
  }
  return ring;
}

void Simulator::heal() {
  if (verbose_) log("heal");
  mix(0x4ea1);
  cut_links_.clear();
}

// ---- node faults ---------------------------------------------------------------

void Simulator::crash(NodeId id) {
  check_not_in_handler("crash");
  Slot& s = slot(id);
  if (!s.up) return;
  if (verbose_) log("crash " + std::to_string(id));
  mix(0xc4a5);
  mix(id);
  ++stats_.crashes;
  s.node.reset();
  s.up = false;
  s.paused = false;
  for (auto& [tid, timer] : s.timers)
    if (timer.key) queue_.erase(*timer.key);
  s.timers.clear();
  for (const InflightSync& sync : s.storage->inflight()) queue_.erase(sync.key);
  s.storage->crash();
  s.held.clear();
}

void Simulator::restart(NodeId id) {
  check_not_in_handler("restart");
  Slot& s = slot(id);
  if (s.up) crash(id);
  ++stats_.restarts;
  start_node(s);
}

void Simulator::pause(NodeId id) {
  check_not_in_handler("pause");
  Slot& s = slot(id);
  if (!s.up || s.paused) return;
  if (verbose_) log("pause " + std::to_string(id));
  mix(0xa05e);
  mix(id);
  s.paused = true;
  ++stats_.pauses;
}

void Simulator::resume(NodeId id) {
  check_not_in_handler("resume");
  Slot& s = slot(id);
  if (!s.paused) return;
  if (verbose_) log("resume " + std::to_string(id) + " with " + std::to_string(s.held.size()) + " held events");
  mix(0x4e5e);
  mix(id);
  s.paused = false;
  // Replayed now, in the order they arrived, ahead of anything scheduled
  // later at this same instant.
  for (auto& e : s.held) {
    e->replayed = true;
    const bool timer = e->kind == EventKind::kTimer;
    const sg::TimerId tid = e->id;
    const EventKey key = schedule_at(now_, std::move(e));
    if (timer) {
      auto it = s.timers.find(tid);
      if (it != s.timers.end()) it->second.key = key;
      else queue_.erase(key);
    }
  }
  s.held.clear();
}

void Simulator::heal_all() {
  check_not_in_handler("heal_all");
  stop_nemesis();
  heal();
  config_.net = base_net_;
  for (auto& [id, s] : slots_) {
    if (s->paused) resume(id);
    if (!s->up) restart(id);
    if (s->clock.drift_ppm != 0) {
      ClockConfig c = s->clock;
      c.offset = static_cast<int64_t>(s->local(now_)) - static_cast<int64_t>(now_);
      c.drift_ppm = 0;
      set_clock(id, c);
    }
  }
}

std::vector<Bytes> Simulator::durable_records(NodeId id) const {
  return slot(id).storage->durable();
}

// ---- nemesis ------------------------------------------------------------------

struct Simulator::NemesisState {
  NemesisConfig config;
  uint64_t generation = 0;  // bumps on stop, so stale rounds do nothing
  bool active = false;
  std::vector<NodeId> crashed;
  std::vector<NodeId> paused;
  bool partitioned = false;
  bool net_burst = false;
  std::vector<NodeId> skewed;
};

void Simulator::start_nemesis(const NemesisConfig& config) {
  check_not_in_handler("start_nemesis");
  if (!nemesis_) nemesis_ = std::make_unique<NemesisState>();
  nemesis_->config = config;
  nemesis_->active = true;
  const uint64_t gen = ++nemesis_->generation;
  after(rng_.range(config.min_interval, config.max_interval), [this, gen] {
    if (nemesis_ && nemesis_->active && nemesis_->generation == gen) nemesis_round();
  });
}

void Simulator::stop_nemesis() {
  if (!nemesis_) return;
  nemesis_->active = false;
  ++nemesis_->generation;
}

void Simulator::nemesis_undo() {
  NemesisState& n = *nemesis_;
  if (n.partitioned) heal();
  n.partitioned = false;
  if (n.net_burst) config_.net = base_net_;
  n.net_burst = false;
  // The test may have restarted or resumed some of them meanwhile.
  for (NodeId id : n.crashed)
    if (!is_up(id)) restart(id);
  n.crashed.clear();
  for (NodeId id : n.paused) resume(id);
  n.paused.clear();
  for (NodeId id : n.skewed) {
    Slot& s = slot(id);
    ClockConfig c = s.clock;
    c.offset = static_cast<int64_t>(s.local(now_)) - static_cast<int64_t>(now_);
    c.drift_ppm = 0;
    set_clock(id, c);
  }
  n.skewed.clear();
}

void Simulator::nemesis_round() {
  NemesisState& n = *nemesis_;
  const NemesisConfig& c = n.config;
  nemesis_undo();

  const int servers = static_cast<int>(servers_.size());
  const int max_down = c.max_down < 0 ? (servers - 1) / 2 : std::min(c.max_down, servers);
  // Victims are chosen among the live servers; ones the test took down
  // itself count against max_down and are left alone.
  std::vector<NodeId> live;
  for (NodeId id : servers_)
    if (is_up(id) && !is_paused(id)) live.push_back(id);

  enum Kind { kPartition, kCrash, kPause, kClock, kNet };
  std::vector<Kind> kinds;
  if (c.partitions && servers > 1) kinds.push_back(kPartition);
  if (c.crashes && max_down > 0) kinds.push_back(kCrash);
  if (c.pauses && max_down > 0) kinds.push_back(kPause);
  if (c.clocks) kinds.push_back(kClock);
  if (c.net_faults) kinds.push_back(kNet);

  // One round in five is quiet, so that progress can happen between faults;
  // otherwise one or two different faults together.
  if (!kinds.empty() && !rng_.chance(0.2)) {
    kinds = shuffled(kinds, rng_);
    const size_t count = std::min<size_t>(kinds.size(), rng_.range(1, 2));
    int down = servers - static_cast<int>(live.size());
    live = shuffled(live, rng_);
    for (size_t k = 0; k < count; ++k) {
      switch (kinds[k]) {
        case kPartition: {
          switch (rng_.below(5)) {
            case 0: isolate(servers_[rng_.below(servers_.size())]); break;
            case 1: partition_majority(); break;
            case 2: partition_bridge(servers_[rng_.below(servers_.size())]); break;
            case 3: partition_ring(); break;
            default: {
              // Arbitrary groups: every server picks one of up to 3 sides.
              std::vector<std::vector<NodeId>> groups(3);
              for (NodeId id : servers_) groups[rng_.below(3)].push_back(id);
              partition(groups);
            }
          }
          n.partitioned = true;
          break;
        }
        case kCrash:
        case kPause: {
          if (down >= max_down) break;
          const int victims = static_cast<int>(rng_.range(1, static_cast<uint64_t>(max_down - down)));
          for (int i = 0; i < victims && !live.empty(); ++i) {
            const NodeId id = live.back();
            live.pop_back();
            if (kinds[k] == kCrash) {
              crash(id);
              n.crashed.push_back(id);
            } else {
              pause(id);
              n.paused.push_back(id);
            }
          }
          down += victims;
          break;
        }
        case kClock: {
          const NodeId id = servers_[rng_.below(servers_.size())];
          ClockConfig cc = slot(id).clock;
          cc.offset = static_cast<int64_t>(rng_.range(0, 2 * c.max_clock_offset)) -
                      static_cast<int64_t>(c.max_clock_offset);
          cc.drift_ppm = static_cast<int64_t>(rng_.range(0, 2 * static_cast<uint64_t>(c.max_drift_ppm))) -
                         c.max_drift_ppm;
          set_clock(id, cc);
          n.skewed.push_back(id);
          break;
        }
        case kNet: {
          config_.net.loss = rng_.unit() * c.burst_loss;
          config_.net.duplicate = rng_.unit() * c.burst_duplicate;
          config_.net.reorder = rng_.unit() * c.burst_reorder;
          if (verbose_) log("net burst");
          n.net_burst = true;
          break;
        }
      }
    }
  }

  const uint64_t gen = n.generation;
  after(rng_.range(c.min_interval, c.max_interval), [this, gen] {
    if (nemesis_ && nemesis_->active && nemesis_->generation == gen) nemesis_round();
  });
}

// ---- seeds ------------------------------------------------------------------

namespace {

uint64_t g_current_seed = 0;
bool g_have_seed = false;

std::optional<uint64_t> env_u64(const char* name) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return std::nullopt;
  char* end = nullptr;
  const unsigned long long n = std::strtoull(v, &end, 0);
  if (end == v || *end != '\0') {
    std::fprintf(stderr, "sim: ignoring malformed %s=%s\n", name, v);
    return std::nullopt;
  }
  return static_cast<uint64_t>(n);
}

#if defined(__SANITIZE_ADDRESS__)
void print_seed_on_death() {
  if (g_have_seed) std::fprintf(stderr, "%s\n", seed_banner(g_current_seed).c_str());
}
#endif

}  // namespace

std::vector<uint64_t> test_seeds(uint64_t default_count, uint64_t base) {
  if (auto one = env_u64("SG_SEED")) return {*one};
  const uint64_t count = env_u64("SG_SEEDS").value_or(default_count);
  std::vector<uint64_t> seeds;
  seeds.reserve(count);
  for (uint64_t i = 0; i < count; ++i) seeds.push_back(base * 100000 + i);
  return seeds;
}

uint64_t seed_base(const char* suite, const char* name) {
  uint64_t h = 0xcbf29ce484222325ull;
  for (const char* p : {suite, ".", name})
    for (; *p != '\0'; ++p) h = (h ^ static_cast<uint8_t>(*p)) * 0x100000001b3ull;
  return h % 100000;
}

std::string seed_banner(uint64_t seed) {
  return "seed=" + std::to_string(seed) + " (replay with SG_SEED=" + std::to_string(seed) + ")";
}

void set_current_seed(uint64_t seed) {
#if defined(__SANITIZE_ADDRESS__)
  static const bool registered = [] {
    __sanitizer_set_death_callback(print_seed_on_death);
    return true;
  }();
  (void)registered;
#endif
  g_current_seed = seed;
  g_have_seed = true;
}

}  // namespace sim
