#include "vmm/net/switch.h"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <cstdio>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <stdexcept>
#include <thread>
#include <unordered_map>

#include "vmm/thread_name.h"

namespace vmm::net {
namespace {

uint64_t steady_ns() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

// SplitMix64: 8 bytes of state per link, good enough statistics for fault
// injection, and the same sequence on every platform (unlike std's
// distributions, whose algorithms are implementation-defined).
class Rng {
 public:
  explicit Rng(uint64_t seed) : state_(seed) {}
  uint64_t next() {
    uint64_t z = (state_ += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  }
  double uniform() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }  // [0, 1)
  uint64_t upto(uint64_t max) { return max == UINT64_MAX ? next() : next() % (max + 1); }  // [0, max]

 private:
  uint64_t state_;
};

// FNV-1a over the names: a link's seed must not depend on std::hash.
uint64_t link_seed(uint64_t seed, const std::string& from, const std::string& to) {
  uint64_t h = 0xcbf29ce484222325ull ^ seed;
  auto mix = [&h](const std::string& s) {
    for (unsigned char c : s) h = (h ^ c) * 0x100000001b3ull;
    h = (h ^ 0xff) * 0x100000001b3ull;  // separator: ("ab","c") != ("a","bc")
  };
  mix(from);
  mix(to);
  return h;
}

uint64_t mac_key(const uint8_t* p) {
  uint64_t k = 0;
  for (int i = 0; i < 6; ++i) k = (k << 8) | p[i];
  return k;
}

bool is_group(const uint8_t* mac) { return mac[0] & 1; }  // broadcast or multicast

void check_probability(double p, const char* what) {
  if (!(p >= 0 && p <= 1)) throw std::invalid_argument(std::string(what) + " must lie in [0, 1]");
}

}  // namespace

std::string format_mac(const MacAddress& mac) {
  char b[18];
  snprintf(b, sizeof b, "%02x:%02x:%02x:%02x:%02x:%02x", mac[0], mac[1], mac[2], mac[3], mac[4], mac[5]);
  return b;
}

class Switch::Core {
 public:
  explicit Core(SwitchOptions options) : opt_(std::move(options)) {
    if (!opt_.clock) opt_.clock = steady_ns;
    scheduler_ = std::thread([this] { schedule_loop(); });
  }

  void close() {
    {
      std::lock_guard lock(mu_);
      closed_ = true;
      // Dropping the sinks breaks the cycle NIC -> port -> switch -> sink.
      for (Port& p : ports_) p.sink.reset(), p.attached = false;
      events_.clear();
      for (auto& [key, link] : links_) link.held.reset();
    }
    cv_.notify_all();
    if (scheduler_.joinable()) scheduler_.join();
  }

  // Returns the port's id and generation; a stale port object (detached by
  // name, then re-attached) carries an old generation and is inert.
  std::pair<int, uint64_t> attach(std::string name, std::shared_ptr<FrameSink> sink) {
    if (name.empty()) throw std::invalid_argument("a switch port needs a name");
    if (!sink) throw std::invalid_argument("switch port '" + name + "' has no sink");
    std::lock_guard lock(mu_);
    if (closed_) throw std::invalid_argument("the switch is shut down");
    auto [it, fresh] = ids_.try_emplace(name, static_cast<int>(ports_.size()));
    if (fresh) {
      ports_.emplace_back();
      ports_.back().name = name;
    }
    Port& p = ports_[it->second];
    if (p.attached) throw std::invalid_argument("switch port '" + name + "' is already attached");
    p.attached = true;
    p.sink = std::move(sink);
    ++p.generation;
    return {it->second, p.generation};
  }

  void detach(int id, uint64_t generation) {
    std::lock_guard lock(mu_);
    if (id < 0 || id >= static_cast<int>(ports_.size())) return;
    Port& p = ports_[id];
    if (!p.attached || p.generation != generation) return;
    detach_locked(id);
  }

  void detach(const std::string& name) {
    std::lock_guard lock(mu_);
    auto it = ids_.find(name);
    if (it == ids_.end() || !ports_[it->second].attached)
      throw std::invalid_argument("no attached switch port '" + name + "'");
    detach_locked(it->second);
  }

  bool transmit(int id, uint64_t generation, std::span<const uint8_t> frame) {
    Deliveries out;
    {
      std::lock_guard lock(mu_);
      if (closed_ || ports_[id].generation != generation || !ports_[id].attached) return false;
      Port& src = ports_[id];
      if (frame.size() < kEthHeaderLen) {
        ++src.stats.drop_runt;
        return false;
      }
      if (frame.size() > kMaxFrameLen) {
        ++src.stats.drop_oversize;
        return false;
      }
      ++src.stats.in_frames;
      src.stats.in_bytes += frame.size();
      const uint8_t* dst_mac = frame.data();
      const uint8_t* src_mac = frame.data() + 6;
      const uint64_t src_key = mac_key(src_mac);
      if (is_group(src_mac) || src_key == 0) {
        ++src.stats.drop_bad_source;
        return true;
      }
      const uint64_t now = opt_.clock();
      learn(src_key, id, now);
      const uint64_t real_now = steady_ns();
      int dest = -1;
      if (!is_group(dst_mac)) dest = lookup(mac_key(dst_mac), now);
      if (dest == id) {
        ++src.stats.drop_hairpin;
        return true;
      }
      if (dest >= 0) {
        ++counters_.unicast;
        forward(id, dest, frame, real_now, out);
      } else {
        ++counters_.flooded;
        for (int to = 0; to < static_cast<int>(ports_.size()); ++to)
          if (to != id && ports_[to].attached) forward(id, to, frame, real_now, out);
      }
    }
    deliver(out);
    return true;
  }

  void set_link(const std::string& from, const std::string& to, const LinkFaults& f) {
    check_probability(f.drop_prob, "drop probability");
    check_probability(f.dup_prob, "duplication probability");
    check_probability(f.reorder_prob, "reorder probability");
    Deliveries out;
    {
      std::lock_guard lock(mu_);
      const int a = known(from), b = known(to);
      if (a == b) throw std::invalid_argument("a link joins two different ports, not '" + from + "' to itself");
      Link& l = link(a, b);
      l.faults = f;
      // A held frame must not wait for a successor that may never come once
      // reordering is off.
      if (f.reorder_prob == 0) release_held(a, b, l, out);
    }
    deliver(out);
  }

  LinkFaults get_link(const std::string& from, const std::string& to) {
    std::lock_guard lock(mu_);
    const int a = known(from), b = known(to);
    auto it = links_.find({a, b});
    return it == links_.end() ? LinkFaults{} : it->second.faults;
  }

  void isolate(const std::string& name) {
    std::lock_guard lock(mu_);
    const int p = known(name);
    for (int q = 0; q < static_cast<int>(ports_.size()); ++q)
      if (q != p) link(p, q).faults.cut = true, link(q, p).faults.cut = true;
  }

  void partition(const std::vector<std::vector<std::string>>& groups) {
    std::lock_guard lock(mu_);
    // Which groups name each port: a port may stand in several (a bridge).
    std::map<int, std::set<size_t>> groups_of;
    for (size_t g = 0; g < groups.size(); ++g)
      for (const std::string& name : groups[g]) groups_of[known(name)].insert(g);
    auto share_a_group = [](const std::set<size_t>& x, const std::set<size_t>& y) {
      for (size_t g : x)
        if (y.count(g)) return true;
      return false;
    };
    for (auto& [a, ga] : groups_of)
      for (auto& [b, gb] : groups_of)
        if (a != b && !share_a_group(ga, gb)) link(a, b).faults.cut = true;
  }

  void heal_all() {
    Deliveries out;
    {
      std::lock_guard lock(mu_);
      for (auto& [key, l] : links_) {
        l.faults = {};
        release_held(key.first, key.second, l, out);
      }
    }
    deliver(out);
  }

  std::vector<std::string> ports() {
    std::lock_guard lock(mu_);
    std::vector<std::string> names;
    for (const Port& p : ports_) names.push_back(p.name);
    return names;
  }

  bool attached(const std::string& name) {
    std::lock_guard lock(mu_);
    auto it = ids_.find(name);
    return it != ids_.end() && ports_[it->second].attached;
  }

  PortStats port_stats(const std::string& name) {
    std::lock_guard lock(mu_);
    return ports_[known(name)].stats;
  }

  LinkStats link_stats(const std::string& from, const std::string& to) {
    std::lock_guard lock(mu_);
    auto it = links_.find({known(from), known(to)});
    return it == links_.end() ? LinkStats{} : it->second.stats;
  }

  SwitchStats stats() {
    std::lock_guard lock(mu_);
    SwitchStats s = counters_;
    s.macs_learned = macs_.size();
    return s;
  }

  size_t pending() {
    std::lock_guard lock(mu_);
    size_t n = 0;
    for (const Event& e : events_) n += e.hold_id == 0;
    for (const auto& [key, l] : links_) n += l.held.has_value();
    return n;
  }

  std::string format_stats() {
    std::lock_guard lock(mu_);
    std::string s;
    char b[256];
    snprintf(b, sizeof b, "%-10s %10s %12s %10s %12s %6s %6s %6s %6s %6s %6s %6s %6s %6s %6s\n", "port", "in frames",
             "in bytes", "out frames", "out bytes", "runt", "big", "badsrc", "hairpn", "cut", "loss", "gone", "dup",
             "delay", "reord");
    s += b;
    for (const Port& p : ports_) {
      const PortStats& t = p.stats;
      snprintf(b, sizeof b, "%-10s %10llu %12llu %10llu %12llu %6llu %6llu %6llu %6llu %6llu %6llu %6llu %6llu %6llu %6llu\n",
               p.name.c_str(), ull(t.in_frames), ull(t.in_bytes), ull(t.out_frames), ull(t.out_bytes), ull(t.drop_runt),
               ull(t.drop_oversize), ull(t.drop_bad_source), ull(t.drop_hairpin), ull(t.drop_cut), ull(t.drop_loss),
               ull(t.drop_detached), ull(t.duplicated), ull(t.delayed), ull(t.reordered));
      s += b;
    }
    snprintf(b, sizeof b, "switch: %llu flooded, %llu unicast, %zu MACs learned, %llu moves, %llu not learned (table full)\n",
             ull(counters_.flooded), ull(counters_.unicast), macs_.size(), ull(counters_.mac_moves),
             ull(counters_.learn_table_full));
    s += b;
    return s;
  }

 private:
  static unsigned long long ull(uint64_t v) { return v; }

  struct Port {
    std::string name;
    std::shared_ptr<FrameSink> sink;
    uint64_t generation = 0;
    bool attached = false;
    PortStats stats;
  };
  struct Held {
    Frame frame;
    int copies;
    uint64_t id;
  };
  struct Link {
    explicit Link(uint64_t seed) : rng(seed) {}
    LinkFaults faults;
    Rng rng;
    LinkStats stats;
    std::optional<Held> held;
  };
  // A delayed frame (hold_id 0) or the deadline of a held frame.
  struct Event {
    uint64_t due;
    uint64_t seq;  // ties keep the order frames were scheduled in
    int from, to;
    Frame frame;
    uint64_t hold_id;
  };
  struct Later {
    bool operator()(const Event& a, const Event& b) const { return a.due != b.due ? a.due > b.due : a.seq > b.seq; }
  };
  struct MacEntry {
    int port;
    uint64_t last_seen;
  };
  using Deliveries = std::vector<std::pair<std::shared_ptr<FrameSink>, Frame>>;

  static void deliver(Deliveries& out) {
    for (auto& [sink, frame] : out) sink->deliver(std::move(frame));
  }

  int known(const std::string& name) const {
    auto it = ids_.find(name);
    if (it == ids_.end()) throw std::invalid_argument("no switch port named '" + name + "'");
    return it->second;
  }

  Link& link(int from, int to) {
    auto it = links_.find({from, to});
    if (it == links_.end())
      it = links_.emplace(std::pair{from, to}, Link(link_seed(opt_.seed, ports_[from].name, ports_[to].name))).first;
    return it->second;
  }

  void detach_locked(int id) {
    Port& p = ports_[id];
    p.attached = false;
    p.sink.reset();
    std::erase_if(macs_, [id](const auto& e) { return e.second.port == id; });
  }

  void learn(uint64_t key, int port, uint64_t now) {
    auto it = macs_.find(key);
    if (it != macs_.end()) {
      if (it->second.port != port) ++counters_.mac_moves;
      it->second = {port, now};
      return;
    }
    if (macs_.size() >= opt_.max_macs) {
      std::erase_if(macs_, [&](const auto& e) { return now - e.second.last_seen > opt_.aging_ns; });
      if (macs_.size() >= opt_.max_macs) {
        ++counters_.learn_table_full;
        return;
      }
    }
    macs_.emplace(key, MacEntry{port, now});
  }

  // The learned port of a MAC, or -1 (unknown, aged out or detached).
  int lookup(uint64_t key, uint64_t now) {
    auto it = macs_.find(key);
    if (it == macs_.end()) return -1;
    if (now - it->second.last_seen > opt_.aging_ns || !ports_[it->second.port].attached) {
      macs_.erase(it);
      return -1;
    }
    return it->second.port;
  }

  // Applies the link's faults to one frame and emits or schedules it.
  void forward(int from, int to, std::span<const uint8_t> frame, uint64_t now, Deliveries& out) {
    Link& l = link(from, to);
    const LinkFaults& f = l.faults;
    if (f.healthy() && !l.held) {
      emit(from, to, l, Frame(frame.begin(), frame.end()), out);
      return;
    }
    PortStats& ps = ports_[from].stats;
    if (f.cut) {
      ++l.stats.drop_cut, ++ps.drop_cut;
      return;
    }
    if (f.drop_prob > 0 && l.rng.uniform() < f.drop_prob) {
      ++l.stats.drop_loss, ++ps.drop_loss;
      return;
    }
    int copies = 1;
    if (f.dup_prob > 0 && l.rng.uniform() < f.dup_prob) {
      copies = 2;
      ++l.stats.duplicated, ++ps.duplicated;
    }
    const uint64_t delay = f.delay_ns + (f.jitter_ns ? l.rng.upto(f.jitter_ns) : 0);
    if (f.reorder_prob > 0 && !l.held && l.rng.uniform() < f.reorder_prob) {
      ++l.stats.reordered, ++ps.reordered;
      l.held = Held{Frame(frame.begin(), frame.end()), copies, ++next_hold_id_};
      push(Event{now + delay + opt_.reorder_hold_ns, 0, from, to, {}, l.held->id});
      return;
    }
    send(from, to, l, Frame(frame.begin(), frame.end()), copies, now, delay, out);
    // The held frame goes right after its successor: same due time, later
    // sequence number.
    if (l.held) {
      Held h = std::move(*l.held);
      l.held.reset();
      send(from, to, l, std::move(h.frame), h.copies, now, delay, out);
    }
  }

  void send(int from, int to, Link& l, Frame frame, int copies, uint64_t now, uint64_t delay, Deliveries& out) {
    if (delay == 0) {
      if (copies == 2) emit(from, to, l, frame, out);
      emit(from, to, l, std::move(frame), out);
      return;
    }
    ++l.stats.delayed, ++ports_[from].stats.delayed;
    if (copies == 2) push(Event{now + delay, 0, from, to, frame, 0});
    push(Event{now + delay, 0, from, to, std::move(frame), 0});
  }

  void release_held(int from, int to, Link& l, Deliveries& out) {
    if (!l.held) return;
    Held h = std::move(*l.held);
    l.held.reset();
    for (int i = 1; i < h.copies; ++i) emit(from, to, l, h.frame, out);
    emit(from, to, l, std::move(h.frame), out);
  }

  void emit(int from, int to, Link& l, Frame frame, Deliveries& out) {
    Port& dst = ports_[to];
    if (!dst.attached) {
      ++l.stats.drop_detached, ++ports_[from].stats.drop_detached;
      return;
    }
    ++l.stats.forwarded;
    ++dst.stats.out_frames;
    dst.stats.out_bytes += frame.size();
    out.emplace_back(dst.sink, std::move(frame));
  }

  void push(Event e) {
    e.seq = next_seq_++;
    events_.push_back(std::move(e));
    std::push_heap(events_.begin(), events_.end(), Later{});
    cv_.notify_one();
  }

  void schedule_loop() {
    set_thread_name("switch-delay");
    std::unique_lock lock(mu_);
    while (!closed_) {
      if (events_.empty()) {
        cv_.wait(lock);
        continue;
      }
      const uint64_t now = steady_ns();
      if (events_.front().due > now) {
        cv_.wait_for(lock, std::chrono::nanoseconds(events_.front().due - now));
        continue;
      }
      Deliveries out;
      while (!events_.empty() && events_.front().due <= now) {
        std::pop_heap(events_.begin(), events_.end(), Later{});
        Event e = std::move(events_.back());
        events_.pop_back();
        Link& l = link(e.from, e.to);
        if (e.hold_id == 0) emit(e.from, e.to, l, std::move(e.frame), out);
        else if (l.held && l.held->id == e.hold_id) release_held(e.from, e.to, l, out);  // no successor came
      }
      lock.unlock();
      deliver(out);
      out.clear();  // the sinks' references go before the lock is retaken
      lock.lock();
    }
  }

  SwitchOptions opt_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool closed_ = false;
  std::vector<Port> ports_;  // indexed by id; ids are never reused
  std::unordered_map<std::string, int> ids_;
  std::map<std::pair<int, int>, Link> links_;
  std::unordered_map<uint64_t, MacEntry> macs_;
  std::vector<Event> events_;  // a heap ordered by Later
  uint64_t next_seq_ = 0;
  uint64_t next_hold_id_ = 0;
  SwitchStats counters_;
  std::thread scheduler_;  // last: started once everything above exists
};

namespace {

class SwitchPort final : public FramePort {
 public:
  SwitchPort(std::weak_ptr<Switch::Core> core, int id, uint64_t generation)
      : core_(std::move(core)), id_(id), generation_(generation) {}
  ~SwitchPort() override {
    if (auto core = core_.lock()) core->detach(id_, generation_);
  }
  bool transmit(std::span<const uint8_t> frame) override {
    auto core = core_.lock();
    return core && core->transmit(id_, generation_, frame);
  }

 private:
  std::weak_ptr<Switch::Core> core_;
  int id_;
  uint64_t generation_;
};

}  // namespace

Switch::Switch(SwitchOptions options) : core_(std::make_shared<Core>(std::move(options))) {}
Switch::~Switch() { core_->close(); }

std::shared_ptr<FramePort> Switch::attach(std::string name, std::shared_ptr<FrameSink> sink) {
  auto [id, generation] = core_->attach(std::move(name), std::move(sink));
  return std::make_shared<SwitchPort>(core_, id, generation);
}
void Switch::detach(const std::string& name) { core_->detach(name); }
void Switch::set_link(const std::string& from, const std::string& to, const LinkFaults& faults) {
  core_->set_link(from, to, faults);
}
LinkFaults Switch::link(const std::string& from, const std::string& to) const { return core_->get_link(from, to); }
void Switch::isolate(const std::string& port) { core_->isolate(port); }
void Switch::partition(const std::vector<std::vector<std::string>>& groups) { core_->partition(groups); }
void Switch::heal_all() { core_->heal_all(); }
std::vector<std::string> Switch::ports() const { return core_->ports(); }
bool Switch::attached(const std::string& name) const { return core_->attached(name); }
PortStats Switch::port_stats(const std::string& name) const { return core_->port_stats(name); }
LinkStats Switch::link_stats(const std::string& from, const std::string& to) const {
  return core_->link_stats(from, to);
}
SwitchStats Switch::stats() const { return core_->stats(); }
std::string Switch::format_stats() const { return core_->format_stats(); }
size_t Switch::pending() const { return core_->pending(); }

}  // namespace vmm::net
