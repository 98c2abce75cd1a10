#include "tests/checker/linearizability.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <map>
#include <unordered_map>
#include <utility>

namespace checker {

std::string_view to_string(Verdict v) {
  switch (v) {
    case Verdict::kLinearizable:
      return "linearizable";
    case Verdict::kNotLinearizable:
      return "not linearizable";
    case Verdict::kUnknown:
      return "unknown";
  }
  return "?";
}

std::vector<Operation> pair_operations(const History& h) {
  const std::vector<Event> events = h.events();
  std::vector<Operation> ops;
  std::vector<bool> failed;
  std::map<ClientId, std::size_t> pending;  // client -> index in ops
  for (std::size_t i = 0; i < events.size(); ++i) {
    const Event& e = events[i];
    if (e.type == EventType::kInvoke) {
      Operation op;
      op.client = e.client;
      op.f = e.f;
      op.key = e.key;
      op.value = e.f == OpKind::kGet ? std::nullopt : e.value;
      op.expected = e.expected;
      op.invoke_index = i;
      op.invoke_line = h.line_of(i);
      pending[e.client] = ops.size();
      ops.push_back(std::move(op));
      failed.push_back(false);
      continue;
    }
    // History guarantees a pending invoke for every completion.
    auto it = pending.find(e.client);
    if (it == pending.end()) continue;
    Operation& op = ops[it->second];
    switch (e.type) {
      case EventType::kOk:
        op.return_index = i;
        op.return_line = h.line_of(i);
        if (op.f == OpKind::kGet) op.value = e.value;
        break;
      case EventType::kFail:
        failed[it->second] = true;
        break;
      case EventType::kInfo:
        op.indeterminate = true;
        break;
      case EventType::kInvoke:
        break;
    }
    pending.erase(it);
  }
  // The client crashed before learning the outcome: indeterminate.
  for (const auto& [client, index] : pending) ops[index].indeterminate = true;

  std::vector<Operation> out;
  out.reserve(ops.size());
  for (std::size_t i = 0; i < ops.size(); ++i) {
    if (failed[i]) continue;
    ops[i].id = out.size();
    out.push_back(std::move(ops[i]));
  }
  return out;
}

std::string describe(const Operation& op) {
  std::string s = "client " + std::to_string(op.client) + "  " + std::string(to_string(op.f)) +
                  "(" + quote(op.key);
  switch (op.f) {
    case OpKind::kGet:
    case OpKind::kDel:
      break;
    case OpKind::kPut:
      s += ", " + quote_or_null(op.value);
      break;
    case OpKind::kCas:
      s += ", " + quote_or_null(op.expected) + ", " + quote_or_null(op.value);
      break;
  }
  s += ") -> ";
  if (op.indeterminate) {
    s += op.f == OpKind::kGet ? "? (info)" : "info";
  } else {
    s += op.f == OpKind::kGet ? quote_or_null(op.value) : std::string("ok");
  }
  return s;
}

namespace {

// ---- the model: one register per key, values interned -----------------------

// Values are interned per key so that a model state is one integer and a step
// is a comparison; 0 is "absent".
using Value = std::int32_t;
constexpr Value kAbsent = 0;

struct KeyOp {
  OpKind f;
  bool indeterminate;
  Value value;     // put/cas: written; get: read
  Value expected;  // cas
  std::uint64_t call;
  std::uint64_t ret;  // +infinity for indeterminate operations
  const Operation* src;
};

constexpr std::uint64_t kInfinity = std::numeric_limits<std::uint64_t>::max();

// Applies op to state s. Returns whether that is legal, and the next state.
// An indeterminate cas is legal in every state: where it does not match it
// is the cas that failed (and the client was never told).
inline bool step(Value s, const KeyOp& op, Value* next) {
  *next = s;
  switch (op.f) {
    case OpKind::kGet:
      return op.value == s;
    case OpKind::kPut:
      *next = op.value;
      return true;
    case OpKind::kDel:
      *next = kAbsent;
      return true;
    case OpKind::kCas:
      if (s == op.expected) {
        *next = op.value;
        return true;
      }
      return op.indeterminate;
  }
  return false;
}

std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

// ---- the set of linearized operations -------------------------------------------

// A bitset over the key's operations (numbered in invoke order) with two
// things kept up to date in O(1) amortized as operations are linearized and
// undone: a Zobrist hash (XOR of a random word per member), and the span of
// words that are neither all ones nor all zeros. Operations are linearized
// roughly in invoke order, so below the span everything is in the set and
// above it nothing is: the span is about as wide as the concurrency, and it
// is all a cache entry needs to store. (Porcupine stores the whole bitset
// per entry, which makes a long single-key history quadratic in memory.)
class LinearizedSet {
 public:
  explicit LinearizedSet(std::size_t n) : words_((n + 63) / 64, 0), zobrist_(n) {
    for (std::size_t i = 0; i < n; ++i) zobrist_[i] = splitmix64(i);
  }

  void insert(std::size_t i) {
    const std::size_t w = i / 64;
    words_[w] |= std::uint64_t{1} << (i % 64);
    hash_ ^= zobrist_[i];
    hi_ = std::max(hi_, w + 1);
    while (lo_ < hi_ && words_[lo_] == ~std::uint64_t{0}) ++lo_;
  }

  void erase(std::size_t i) {
    const std::size_t w = i / 64;
    words_[w] &= ~(std::uint64_t{1} << (i % 64));
    hash_ ^= zobrist_[i];
    lo_ = std::min(lo_, w);
    while (hi_ > lo_ && words_[hi_ - 1] == 0) --hi_;
  }

  std::uint64_t hash() const { return hash_; }
  // Words [lo, hi) hold the mixed part; below lo all ones, from hi all zeros.
  std::size_t lo() const { return lo_; }
  std::size_t hi() const { return std::max(lo_, hi_); }
  const std::uint64_t* word(std::size_t w) const { return &words_[w]; }

 private:
  std::vector<std::uint64_t> words_;
  std::vector<std::uint64_t> zobrist_;
  std::uint64_t hash_ = 0;
  std::size_t lo_ = 0;
  std::size_t hi_ = 0;
};

// ---- Lowe's cache: (linearized set, state) pairs already explored ------------

class Cache {
 public:
  // Inserts (set, state); false if it was already there.
  bool insert(const LinearizedSet& set, Value state) {
    const std::uint64_t hash =
        set.hash() ^ splitmix64(static_cast<std::uint64_t>(state) + 0x5bd1e995);
    const std::size_t lo = set.lo();
    const std::size_t len = set.hi() - lo;
    auto [first, last] = index_.equal_range(hash);
    for (auto it = first; it != last; ++it) {
      const Entry& e = entries_[it->second];
      if (e.state == state && e.lo == lo && e.len == len &&
          std::memcmp(&arena_[e.offset], set.word(lo), len * sizeof(std::uint64_t)) == 0) {
        return false;
      }
    }
    index_.emplace(hash, entries_.size());
    entries_.push_back({arena_.size(), lo, len, state});
    arena_.insert(arena_.end(), set.word(lo), set.word(lo) + len);
    return true;
  }

 private:
  struct Entry {
    std::size_t offset;  // into arena_
    std::size_t lo;
    std::size_t len;
    Value state;
  };
  std::vector<Entry> entries_;
  std::vector<std::uint64_t> arena_;
  std::unordered_multimap<std::uint64_t, std::size_t> index_;
};

// ---- values that can no longer be read ------------------------------------------

// Counts, per value, the unlinearized operations that must find it in the key
// (an ok get that read it, an ok cas that expected it) and those that can
// write it. A value with readers left but no writers left is starved: the
// key must already hold it, and keep holding it, until its readers are
// linearized, since nothing could bring it back. Two starved values, or one
// the key does not hold, make the configuration a dead end, however the
// rest is ordered. With unique written values (the usual test workload) a
// wrong order of writes is caught the moment the write that was to be read
// is overwritten, rather than when the search reaches the read's return.
class Starvation {
 public:
  // `exempt`, if any, is not counted as a reader (see explain()).
  Starvation(const std::vector<KeyOp>& ops, std::size_t values, const KeyOp* exempt)
      : readers_(values, 0), writers_(values, 0), exempt_(exempt) {
    for (const KeyOp& op : ops) add(op, +1);
  }
  void linearize(const KeyOp& op) { add(op, -1); }
  void unlinearize(const KeyOp& op) { add(op, +1); }
  bool dead(Value state) const { return starved_ >= 2 || (starved_ == 1 && starved_xor_ != state); }

 private:
  void add(const KeyOp& op, int d) {
    const bool reader = !op.indeterminate && &op != exempt_;
    if (reader && op.f == OpKind::kGet) adjust(op.value, d, 0);
    if (reader && op.f == OpKind::kCas) adjust(op.expected, d, 0);
    if (op.f == OpKind::kPut || op.f == OpKind::kCas) adjust(op.value, 0, d);
    if (op.f == OpKind::kDel) adjust(kAbsent, 0, d);
  }
  void adjust(Value v, int readers, int writers) {
    const bool before = readers_[v] > 0 && writers_[v] == 0;
    readers_[v] += readers;
    writers_[v] += writers;
    const bool after = readers_[v] > 0 && writers_[v] == 0;
    if (before != after) {
      starved_ += after ? 1 : -1;
      starved_xor_ ^= v;  // with one value starved, this is that value
    }
  }
  std::vector<std::int32_t> readers_;
  std::vector<std::int32_t> writers_;
  int starved_ = 0;
  Value starved_xor_ = 0;
  const KeyOp* exempt_;
};

// ---- the search for one key ---------------------------------------------------

using Clock = std::chrono::steady_clock;

enum class KeyVerdict { kLinearizable, kNotLinearizable, kOutOfBudget };

class KeySearch {
 public:
  KeySearch(std::vector<KeyOp> ops, std::vector<std::string> names)
      : ops_(std::move(ops)), names_(std::move(names)) {}

  // With `prune` off, only Lowe's cache prunes, as in Porcupine: slower, but
  // its deepest prefix is the classic counterexample, one after which no
  // candidate is legal. Used to explain a failure found with pruning on.
  KeyVerdict run(std::uint64_t max_steps, std::optional<Clock::time_point> deadline,
                 bool prune = true);

  std::uint64_t steps() const { return steps_; }
  IllegalWindow window(const std::string& key) const;

  struct Prefix {
    std::vector<std::int32_t> ops;
    Value state = kAbsent;
  };
  const std::vector<KeyOp>& ops() const { return ops_; }
  const std::vector<std::string>& names() const { return names_; }
  const Prefix& best() const { return best_; }
  void set_best(Prefix p) { best_ = std::move(p); }
  // Exempts one operation from the prunings that look ahead to its return
  // (the starved values and the stranded first operation).
  void exempt(std::int32_t op) { exempt_ = op; }

 private:
  // One entry of the doubly linked list (Dancing Links style: a lifted node
  // keeps its own pointers so that it can be put back in O(1)).
  struct Node {
    std::int32_t op;
    bool is_call;
    std::int32_t match;  // the call's return entry, and back
    std::int32_t prev;
    std::int32_t next;  // -1: end
  };

  void build_list();
  void lift(std::int32_t call);
  void unlift(std::int32_t call);
  bool first_is_stranded(Value state) const;

  std::vector<KeyOp> ops_;
  std::vector<std::string> names_;  // Value -> string (index 0 unused)
  std::vector<Node> nodes_;         // nodes_[0] is the head sentinel
  std::uint64_t steps_ = 0;

  // The deepest linearization the search reached, and the state after it.
  Prefix best_;
  std::int32_t exempt_ = -1;
};

void KeySearch::build_list() {
  struct Entry {
    std::uint64_t time;
    std::int32_t op;
    bool is_call;
  };
  std::vector<Entry> entries;
  entries.reserve(ops_.size() * 2);
  for (std::size_t i = 0; i < ops_.size(); ++i) {
    entries.push_back({ops_[i].call, static_cast<std::int32_t>(i), true});
    entries.push_back({ops_[i].ret, static_cast<std::int32_t>(i), false});
  }
  // Finite times are distinct event indices. The returns at +infinity tie;
  // order them by operation so the search is deterministic.
  std::sort(entries.begin(), entries.end(), [](const Entry& a, const Entry& b) {
    if (a.time != b.time) return a.time < b.time;
    return a.op < b.op;
  });
  nodes_.assign(entries.size() + 1, Node{-1, false, -1, -1, -1});
  std::vector<std::int32_t> call_node(ops_.size(), -1);
  for (std::size_t i = 0; i < entries.size(); ++i) {
    const auto n = static_cast<std::int32_t>(i + 1);
    Node& node = nodes_[n];
    node.op = entries[i].op;
    node.is_call = entries[i].is_call;
    node.prev = n - 1;
    node.next = i + 1 < entries.size() ? n + 1 : -1;
    nodes_[n - 1].next = n;
    if (node.is_call) {
      call_node[node.op] = n;
    } else {
      node.match = call_node[node.op];
      nodes_[call_node[node.op]].match = n;
    }
  }
}

void KeySearch::lift(std::int32_t call) {
  for (std::int32_t n : {call, nodes_[call].match}) {
    const Node& node = nodes_[n];
    nodes_[node.prev].next = node.next;
    if (node.next >= 0) nodes_[node.next].prev = node.prev;
  }
}

void KeySearch::unlift(std::int32_t call) {
  // The reverse of lift, in the reverse order.
  for (std::int32_t n : {nodes_[call].match, call}) {
    const Node& node = nodes_[n];
    nodes_[node.prev].next = n;
    if (node.next >= 0) nodes_[node.next].prev = n;
  }
}

// The value op leaves in the key, if it writes one (a cas: if it applies).
std::optional<Value> written(const KeyOp& op) {
  switch (op.f) {
    case OpKind::kGet:
      return std::nullopt;
    case OpKind::kPut:
    case OpKind::kCas:
      return op.value;
    case OpKind::kDel:
      return kAbsent;
  }
  return std::nullopt;
}

// The first return entry closes the operation that must be linearized
// soonest. If it is a determinate read (a get, or a cas's comparison) of a
// value the key does not hold, only a write of that value can rescue it, and
// every operation that can be linearized before that return is a candidate
// now (its call precedes the return). No candidate writes it: a dead end.
bool KeySearch::first_is_stranded(Value state) const {
  std::int32_t n = nodes_[0].next;
  while (n != -1 && nodes_[n].is_call) n = nodes_[n].next;
  if (n == -1 || nodes_[n].op == exempt_) return false;
  const KeyOp& first = ops_[nodes_[n].op];
  if (first.indeterminate || (first.f != OpKind::kGet && first.f != OpKind::kCas)) return false;
  const Value need = first.f == OpKind::kGet ? first.value : first.expected;
  if (state == need) return false;
  for (std::int32_t c = nodes_[0].next; c != n; c = nodes_[c].next) {
    if (written(ops_[nodes_[c].op]) == need) return false;
  }
  return true;
}

KeyVerdict KeySearch::run(std::uint64_t max_steps, std::optional<Clock::time_point> deadline,
                          bool prune) {
  build_list();
  steps_ = 0;
  best_ = {};
  LinearizedSet linearized(ops_.size());
  Cache cache;
  std::optional<Starvation> starvation;
  if (prune) starvation.emplace(ops_, names_.size(), exempt_ >= 0 ? &ops_[exempt_] : nullptr);

  struct Frame {
    std::int32_t call;
    Value state_before;
    bool forced;  // a read taken without alternatives (see below)
  };
  std::vector<Frame> stack;
  stack.reserve(ops_.size());
  Value state = kAbsent;

  std::int32_t entry = nodes_[0].next;
  while (nodes_[0].next != -1) {
    const Node& node = nodes_[entry];
    bool dead_end = !node.is_call;
    if (node.is_call) {
      ++steps_;
      if (max_steps != 0 && steps_ > max_steps) return KeyVerdict::kOutOfBudget;
      if (deadline && (steps_ & 4095) == 0 && Clock::now() > *deadline) {
        return KeyVerdict::kOutOfBudget;
      }
      const std::int32_t op = node.op;
      Value next;
      if (step(state, ops_[op], &next)) {
        linearized.insert(op);
        if (cache.insert(linearized, next)) {
          // A configuration not seen before: linearize op here and restart
          // from the head, since lifting it may have made others eligible.
          //
          // A read that is legal now may as well go now: it changes nothing,
          // and nothing still unlinearized had to precede it (its call comes
          // before every remaining return), so any linearization from here
          // can be rearranged to begin with it. If this choice fails, every
          // choice here fails: backtracking skips the alternatives.
          stack.push_back({entry, state, ops_[op].f == OpKind::kGet});
          state = next;
          lift(entry);
          entry = nodes_[0].next;
          if (starvation) {
            starvation->linearize(ops_[op]);
            dead_end = starvation->dead(state) || first_is_stranded(state);
          }
          if (!dead_end) continue;
        } else {
          // Explored already, by another order of the same operations: it
          // led nowhere then and will lead nowhere now.
          linearized.erase(op);
        }
      }
      if (!dead_end) {
        entry = node.next;
        continue;
      }
    }

    // A dead end: a return entry (the operation it closes was not linearized
    // in time) or a configuration proven hopeless. The last choice was wrong.
    if (stack.empty()) return KeyVerdict::kNotLinearizable;
    // Every dead end comes here, so this sees each local maximum of depth.
    if (stack.size() > best_.ops.size()) {
      best_.ops.clear();
      for (const Frame& f : stack) best_.ops.push_back(nodes_[f.call].op);
      best_.state = state;
    }
    for (;;) {
      const Frame top = stack.back();
      stack.pop_back();
      const std::int32_t op = nodes_[top.call].op;
      linearized.erase(op);
      if (starvation) starvation->unlinearize(ops_[op]);
      state = top.state_before;
      unlift(top.call);
      entry = nodes_[top.call].next;
      if (!top.forced) break;
      // The configuration the forced read left from is dead too.
      if (stack.empty()) return KeyVerdict::kNotLinearizable;
    }
  }
  return KeyVerdict::kLinearizable;
}

IllegalWindow KeySearch::window(const std::string& key) const {
  IllegalWindow w;
  w.key = key;
  w.key_operations = ops_.size();
  std::vector<bool> in_prefix(ops_.size(), false);
  Value state = kAbsent;
  for (std::int32_t op : best_.ops) {
    in_prefix[op] = true;
    // An indeterminate cas that did not match did nothing: as good as not
    // there, and listing it as linearized would only confuse.
    const KeyOp& k = ops_[op];
    const bool no_op = k.f == OpKind::kCas && k.indeterminate && k.expected != state;
    Value next;
    step(state, k, &next);
    state = next;
    if (!no_op) w.prefix.push_back(*k.src);
  }
  if (best_.state != kAbsent) w.state = names_[best_.state];

  // The search could not get past the earliest return among the operations
  // left; the candidates there were the operations invoked before it. (That
  // operation returns at a finite time: were only indeterminate operations
  // left, the search would have succeeded, since they are legal anywhere.)
  std::int32_t first = -1;
  for (std::size_t i = 0; i < ops_.size(); ++i) {
    if (in_prefix[i]) continue;
    if (first < 0 || ops_[i].ret < ops_[first].ret) first = static_cast<std::int32_t>(i);
  }
  if (first < 0) return w;  // not reached for a failed search
  w.stuck.push_back(*ops_[first].src);
  for (std::size_t i = 0; i < ops_.size(); ++i) {
    if (in_prefix[i] || static_cast<std::int32_t>(i) == first) continue;
    if (ops_[i].call < ops_[first].ret) w.stuck.push_back(*ops_[i].src);
  }
  return w;
}

// ---- preparing one key --------------------------------------------------------

struct PreparedKey {
  std::vector<KeyOp> ops;
  std::vector<std::string> names;
  std::size_t pruned = 0;
};

// Drops from `*ops` the indeterminate writes nothing observes; returns how
// many. `values` is the number of interned values.
std::size_t drop_unobserved_writes(std::vector<KeyOp>* all, std::size_t values) {
  std::vector<KeyOp>& ops = *all;
  std::vector<bool> drop(ops.size(), false);
  std::size_t dropped = 0;
  // An indeterminate write of v that no ok get read and no cas expected
  // can be moved to the end of any linearization: between it and the next
  // put/del, no determinate operation can observe v (an ok get would read
  // it, an ok cas would need it), and the indeterminate cas operations
  // there, which might now match the older value, can move to the end
  // too. So drop it. Dropping an indeterminate cas removes its
  // expectation, which may free more writes: iterate to a fixed point.
  std::vector<std::size_t> observers(values, 0);
  std::vector<std::vector<std::size_t>> writers(values);
  for (std::size_t i = 0; i < ops.size(); ++i) {
    const KeyOp& k = ops[i];
    if (k.f == OpKind::kGet) ++observers[k.value];
    if (k.f == OpKind::kCas) ++observers[k.expected];
    if (k.indeterminate) writers[k.value].push_back(i);  // del writes kAbsent
  }
  std::vector<std::size_t> work;
  for (std::size_t i = 0; i < ops.size(); ++i) {
    if (ops[i].indeterminate) work.push_back(i);
  }
  while (!work.empty()) {
    const std::size_t i = work.back();
    work.pop_back();
    if (drop[i] || observers[ops[i].value] != 0) continue;
    drop[i] = true;
    ++dropped;
    if (ops[i].f == OpKind::kCas && --observers[ops[i].expected] == 0) {
      for (std::size_t j : writers[ops[i].expected]) work.push_back(j);
    }
  }
  std::size_t kept = 0;
  for (std::size_t i = 0; i < ops.size(); ++i) {
    if (!drop[i]) ops[kept++] = ops[i];
  }
  ops.resize(kept);
  return dropped;
}

// `ops` are the key's operations in invoke order.
PreparedKey prepare(const std::vector<const Operation*>& ops, bool prune) {
  PreparedKey p;
  p.names.emplace_back();  // Value 0: absent
  std::unordered_map<std::string, Value> ids;
  auto intern = [&](const std::optional<std::string>& v) -> Value {
    if (!v) return kAbsent;
    auto [it, fresh] = ids.emplace(*v, static_cast<Value>(p.names.size()));
    if (fresh) p.names.push_back(*v);
    return it->second;
  };

  std::vector<KeyOp> all;
  for (const Operation* op : ops) {
    // An indeterminate get has no result and no effect: nothing to check.
    if (op->f == OpKind::kGet && op->indeterminate) {
      ++p.pruned;
      continue;
    }
    KeyOp k;
    k.f = op->f;
    k.indeterminate = op->indeterminate;
    k.value = op->f == OpKind::kDel ? kAbsent : intern(op->value);
    k.expected = op->f == OpKind::kCas ? intern(op->expected) : kAbsent;
    k.call = op->invoke_index;
    k.ret = op->indeterminate || !op->return_index ? kInfinity : *op->return_index;
    k.src = op;
    all.push_back(k);
  }

  if (prune) p.pruned += drop_unobserved_writes(&all, p.names.size());
  p.ops = std::move(all);
  return p;
}

}  // namespace

CheckResult check_kv(const History& h, const CheckOptions& options) {
  return check_kv(pair_operations(h), options);
}

// Steps allowed to each search that explains a failure.
constexpr std::uint64_t kReportSteps = 1'000'000;

// The window for a key found not linearizable. The pruned search proves
// that quickly, but its deepest prefix is where it first saw a dead end
// coming (a stale read is seen as soon as the value it read is overwritten),
// not where the history goes wrong. So find that point first:
// linearizability is prefix-closed, so bisect for the earliest return R at
// which the history cut off at R (later returns unknown: operations pending
// then become indeterminate) is no longer linearizable. The operation
// returning at R is the first that cannot be linearized. Then search the cut
// history with that operation exempt from the look-ahead prunings, so that
// the search runs into its return the way Wing & Gong's does: the deepest
// prefix ends where it cannot go, and the operations still open are the ones
// concurrent with it. Nullopt when the bisection runs out of `budget`.
std::optional<IllegalWindow> explain(const std::vector<KeyOp>& ops,
                                     const std::vector<std::string>& names, const std::string& key,
                                     std::uint64_t budget,
                                     std::optional<Clock::time_point> deadline) {
  auto cut = [&](std::uint64_t t) {
    std::vector<KeyOp> out;
    for (KeyOp k : ops) {
      if (k.call > t) continue;
      if (k.ret > t) {
        if (k.f == OpKind::kGet) continue;  // a read with no result yet
        k.indeterminate = true;
        k.ret = kInfinity;
      }
      out.push_back(k);
    }
    // Writes pending at the cut whose readers come after it are observed
    // by nothing left: drop them, or they multiply the search.
    drop_unobserved_writes(&out, names.size());
    return out;
  };
  std::vector<std::uint64_t> returns;
  for (const KeyOp& k : ops) {
    if (k.ret != kInfinity) returns.push_back(k.ret);
  }
  if (returns.empty()) return std::nullopt;
  std::sort(returns.begin(), returns.end());
  // Invariant: the history cut at returns[hi] is not linearizable (at the
  // last return it is the whole history, less indeterminate operations
  // invoked after it, which can always go last).
  std::size_t lo = 0;
  std::size_t hi = returns.size() - 1;
  while (lo < hi) {
    const std::size_t mid = lo + (hi - lo) / 2;
    KeySearch s(cut(returns[mid]), names);
    const KeyVerdict v = s.run(budget, deadline);
    if (v == KeyVerdict::kOutOfBudget) return std::nullopt;
    if (v == KeyVerdict::kNotLinearizable) {
      hi = mid;
    } else {
      lo = mid + 1;
    }
  }
  std::vector<KeyOp> cut_ops = cut(returns[lo]);
  std::int32_t culprit = -1;
  for (std::size_t i = 0; i < cut_ops.size(); ++i) {
    if (cut_ops[i].ret == returns[lo]) culprit = static_cast<std::int32_t>(i);
  }
  KeySearch s(std::move(cut_ops), names);
  s.exempt(culprit);
  // Refuting every order of the operations around the culprit can take
  // long where many overlap, but the deepest prefix is normally found by
  // the first descent; so a search cut short still explains.
  if (s.run(budget, deadline) == KeyVerdict::kLinearizable) return std::nullopt;
  return s.window(key);
}

CheckResult check_kv(const std::vector<Operation>& ops, const CheckOptions& options) {
  CheckResult result;
  std::optional<Clock::time_point> deadline;
  if (options.time_limit.count() > 0) deadline = Clock::now() + options.time_limit;

  // P-compositionality: one independent search per key.
  std::map<std::string, std::vector<const Operation*>> by_key;
  for (const Operation& op : ops) by_key[op.key].push_back(&op);
  result.keys = by_key.size();

  for (const auto& [key, key_ops] : by_key) {
    if (deadline && Clock::now() > *deadline) {
      result.unknown_keys.push_back(key);
      continue;
    }
    PreparedKey p = prepare(key_ops, options.prune_unobserved_indeterminate);
    result.pruned += p.pruned;
    result.operations += p.ops.size();
    KeySearch search(std::move(p.ops), std::move(p.names));
    const KeyVerdict v = search.run(options.max_steps_per_key, deadline);
    result.steps += search.steps();
    if (v == KeyVerdict::kOutOfBudget) {
      result.unknown_keys.push_back(key);
    } else if (v == KeyVerdict::kNotLinearizable) {
      result.verdict = Verdict::kNotLinearizable;
      std::uint64_t budget = std::max<std::uint64_t>(kReportSteps, 10 * search.steps());
      if (options.max_steps_per_key != 0) budget = std::min(budget, options.max_steps_per_key);
      if (auto w = explain(search.ops(), search.names(), key, budget, deadline)) {
        w->key_operations = search.ops().size();
        result.counterexample = std::move(*w);
        return result;
      }
      // Out of budget explaining: fall back to Porcupine's plain search,
      // whose every recorded prefix is one after which no candidate is
      // legal, even when cut short; or, should the pruned search have got
      // further, to the pruned search's.
      const KeySearch::Prefix pruned_best = search.best();
      if (search.run(budget, deadline, /*prune=*/false) == KeyVerdict::kLinearizable ||
          search.best().ops.size() < pruned_best.ops.size()) {
        search.set_best(pruned_best);
      }
      result.counterexample = search.window(key);
      return result;
    }
  }
  result.verdict = result.unknown_keys.empty() ? Verdict::kLinearizable : Verdict::kUnknown;
  return result;
}

// ---- the report -----------------------------------------------------------------

namespace {

std::string lines(const Operation& op) {
  std::string s = "invoke line " + std::to_string(op.invoke_line);
  if (op.return_index) {
    s += ", return line " + std::to_string(op.return_line);
  } else {
    s += ", no return (info)";
  }
  return s;
}

bool concurrent(const Operation& a, const Operation& b) {
  const auto ret = [](const Operation& o) { return o.return_index.value_or(kInfinity); };
  return a.invoke_index < ret(b) && b.invoke_index < ret(a);
}

std::string why_illegal(const Operation& op, const std::optional<std::string>& state) {
  const std::string holds = state ? "the key holds " + quote(*state) : "the key is absent";
  switch (op.f) {
    case OpKind::kGet:
      return "read " + quote_or_null(op.value) + ", but " + holds;
    case OpKind::kCas:
      if (op.expected != state) return "expected " + quote_or_null(op.expected) + ", but " + holds;
      break;
    case OpKind::kPut:
    case OpKind::kDel:
      break;
  }
  // Only in a window from a search cut short by its bound (IllegalWindow).
  return "legal here, but no order of the rest works after it";
}

}  // namespace

std::string format_window(const IllegalWindow& w, std::size_t max_prefix) {
  std::string out;
  out += "key " + quote(w.key) + ": " + std::to_string(w.key_operations) +
         " operations; the longest linearizable prefix has " + std::to_string(w.prefix.size()) +
         ".\n";
  const Operation* stuck = w.stuck.empty() ? nullptr : &w.stuck.front();

  std::size_t width = 0;
  for (const Operation& op : w.prefix) width = std::max(width, describe(op).size());
  for (const Operation& op : w.stuck) width = std::max(width, describe(op).size());
  auto row = [&](const std::string& mark, const Operation& op) {
    std::string d = describe(op);
    d.resize(width, ' ');
    return mark + d + "   " + lines(op);
  };

  bool marks = false;
  for (const Operation& op : w.prefix) marks = marks || (stuck && concurrent(op, *stuck));
  if (w.prefix.empty()) {
    out += "No operation can be linearized first.\n";
  } else {
    out += marks ? "Linearized prefix, in order (* = concurrent with the first stuck operation):\n"
                 : "Linearized prefix, in order:\n";
    std::size_t from = 0;
    if (w.prefix.size() > max_prefix) {
      from = w.prefix.size() - max_prefix;
      out += "    ... " + std::to_string(from) + " earlier operations\n";
    }
    for (std::size_t i = from; i < w.prefix.size(); ++i) {
      const bool c = stuck && concurrent(w.prefix[i], *stuck);
      out += row(c ? "  * " : "    ", w.prefix[i]) + "\n";
    }
  }
  out += "After it " + (w.state ? "the key holds " + quote(*w.state) : "the key is absent") +
         ", and none of these can be linearized next:\n";
  for (const Operation& op : w.stuck) {
    out += row("    ", op) + "   " + why_illegal(op, w.state) + "\n";
  }
  return out;
}

}  // namespace checker
