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
    case Verdict::kLinearizable: return "linearizable";
    case Verdict::kNotLinearizable: return "not linearizable";
    case Verdict::kUnknown: return "unknown";
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
  switch (op.f) {
    case OpKind::kGet:
      *next = s;
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
      *next = s;
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

// ---- Lowe's cache: (linearized set, state) pairs already explored ------------

// The sets live back to back in one arena; the index maps a hash to entries.
// The set's hash is Zobrist-style (XOR of a random word per operation), kept
// up to date in O(1) as operations are linearized and undone.
class Cache {
 public:
  explicit Cache(std::size_t words) : words_(words) {}

  // Inserts (bits, state); false if it was already there.
  bool insert(std::uint64_t hash, Value state, const std::vector<std::uint64_t>& bits) {
    auto [lo, hi] = index_.equal_range(hash);
    for (auto it = lo; it != hi; ++it) {
      const std::size_t e = it->second;
      if (states_[e] == state &&
          std::memcmp(&arena_[e * words_], bits.data(), words_ * sizeof(std::uint64_t)) == 0) {
        return false;
      }
    }
    const std::size_t e = states_.size();
    states_.push_back(state);
    arena_.insert(arena_.end(), bits.begin(), bits.end());
    index_.emplace(hash, e);
    return true;
  }

 private:
  std::size_t words_;
  std::vector<Value> states_;
  std::vector<std::uint64_t> arena_;
  std::unordered_multimap<std::uint64_t, std::size_t> index_;
};

// ---- the search for one key ---------------------------------------------------

using Clock = std::chrono::steady_clock;

enum class KeyVerdict { kLinearizable, kNotLinearizable, kOutOfBudget };

class KeySearch {
 public:
  KeySearch(std::vector<KeyOp> ops, std::vector<std::string> names)
      : ops_(std::move(ops)), names_(std::move(names)) {}

  KeyVerdict run(std::uint64_t max_steps, std::optional<Clock::time_point> deadline);

  std::uint64_t steps() const { return steps_; }
  IllegalWindow window(const std::string& key) const;

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

  std::vector<KeyOp> ops_;
  std::vector<std::string> names_;  // Value -> string (index 0 unused)
  std::vector<Node> nodes_;         // nodes_[0] is the head sentinel
  std::uint64_t steps_ = 0;

  // The deepest linearization the search reached, and the state after it.
  std::vector<std::int32_t> best_;
  Value best_state_ = kAbsent;
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

KeyVerdict KeySearch::run(std::uint64_t max_steps, std::optional<Clock::time_point> deadline) {
  build_list();
  const std::size_t words = (ops_.size() + 63) / 64;
  std::vector<std::uint64_t> linearized(words, 0);
  std::vector<std::uint64_t> zobrist(ops_.size());
  for (std::size_t i = 0; i < ops_.size(); ++i) zobrist[i] = splitmix64(i);
  std::uint64_t set_hash = 0;
  Cache cache(words);

  struct Frame {
    std::int32_t call;
    Value state_before;
  };
  std::vector<Frame> stack;
  stack.reserve(ops_.size());
  Value state = kAbsent;

  std::int32_t entry = nodes_[0].next;
  while (nodes_[0].next != -1) {
    const Node& node = nodes_[entry];
    if (node.is_call) {
      ++steps_;
      if (max_steps != 0 && steps_ > max_steps) return KeyVerdict::kOutOfBudget;
      if (deadline && (steps_ & 4095) == 0 && Clock::now() > *deadline) {
        return KeyVerdict::kOutOfBudget;
      }
      const std::int32_t op = node.op;
      Value next;
      if (step(state, ops_[op], &next)) {
        linearized[op / 64] |= std::uint64_t{1} << (op % 64);
        set_hash ^= zobrist[op];
        if (cache.insert(set_hash ^ splitmix64(static_cast<std::uint64_t>(next) + 0x5bd1e995),
                         next, linearized)) {
          // A configuration not seen before: linearize op here and restart
          // from the head, since lifting it may have made others eligible.
          stack.push_back({entry, state});
          state = next;
          lift(entry);
          entry = nodes_[0].next;
          continue;
        }
        // Explored already (by another order of the same operations): it led
        // nowhere then and will lead nowhere now.
        linearized[op / 64] &= ~(std::uint64_t{1} << (op % 64));
        set_hash ^= zobrist[op];
      }
      entry = node.next;
    } else {
      // A return entry: the operation it closes was not linearized before it
      // returned, so the last choice was wrong.
      if (stack.empty()) return KeyVerdict::kNotLinearizable;
      // Every dead end ends here, so this sees each local maximum of depth.
      if (stack.size() > best_.size()) {
        best_.clear();
        for (const Frame& f : stack) best_.push_back(nodes_[f.call].op);
        best_state_ = state;
      }
      const Frame top = stack.back();
      stack.pop_back();
      const std::int32_t op = nodes_[top.call].op;
      linearized[op / 64] &= ~(std::uint64_t{1} << (op % 64));
      set_hash ^= zobrist[op];
      state = top.state_before;
      unlift(top.call);
      entry = nodes_[top.call].next;
    }
  }
  return KeyVerdict::kLinearizable;
}

IllegalWindow KeySearch::window(const std::string& key) const {
  IllegalWindow w;
  w.key = key;
  w.key_operations = ops_.size();
  std::vector<bool> in_prefix(ops_.size(), false);
  for (std::int32_t op : best_) {
    w.prefix.push_back(*ops_[op].src);
    in_prefix[op] = true;
  }
  if (best_state_ != kAbsent) w.state = names_[best_state_];

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

  std::vector<bool> drop(all.size(), false);
  if (prune) {
    // An indeterminate write of v that no ok get read and no cas expected
    // can be moved to the end of any linearization: between it and the next
    // put/del, no determinate operation can observe v (an ok get would read
    // it, an ok cas would need it), and indeterminate cases that would now
    // see the older value can move to the end too. So drop it. Dropping an
    // indeterminate cas removes its expectation, which may free more writes:
    // iterate to a fixed point.
    std::vector<std::size_t> observers(p.names.size(), 0);
    std::vector<std::vector<std::size_t>> writers(p.names.size());
    for (std::size_t i = 0; i < all.size(); ++i) {
      const KeyOp& k = all[i];
      if (k.f == OpKind::kGet) ++observers[k.value];
      if (k.f == OpKind::kCas) ++observers[k.expected];
      if (k.indeterminate) writers[k.value].push_back(i);  // del writes kAbsent
    }
    std::vector<std::size_t> work;
    for (std::size_t i = 0; i < all.size(); ++i) {
      if (all[i].indeterminate) work.push_back(i);
    }
    while (!work.empty()) {
      const std::size_t i = work.back();
      work.pop_back();
      if (drop[i] || observers[all[i].value] != 0) continue;
      drop[i] = true;
      ++p.pruned;
      if (all[i].f == OpKind::kCas && --observers[all[i].expected] == 0) {
        for (std::size_t j : writers[all[i].expected]) work.push_back(j);
      }
    }
  }
  for (std::size_t i = 0; i < all.size(); ++i) {
    if (!drop[i]) p.ops.push_back(all[i]);
  }
  return p;
}

}  // namespace

CheckResult check_kv(const History& h, const CheckOptions& options) {
  return check_kv(pair_operations(h), options);
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
    s += ", no return";
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
  // Not reached for the deepest prefix (see KeySearch::run); kept honest.
  return "legal here, but every order after it fails";
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

  if (w.prefix.empty()) {
    out += "No operation can be linearized first.\n";
  } else {
    out += "Linearized prefix, in order (* = concurrent with the first stuck operation):\n";
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
