// The linearizability checker: hand-written legal and illegal histories, a
// cross-check against a brute-force search on thousands of small random
// histories, and large histories from a simulated linearizable store.
#include "tests/checker/linearizability.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <optional>
#include <random>
#include <set>
#include <sstream>
#include <string>
#include <vector>

namespace checker {
namespace {

using std::nullopt;

Verdict verdict(const History& h, const CheckOptions& options = {}) {
  return check_kv(h, options).verdict;
}

constexpr Verdict kOk = Verdict::kLinearizable;
constexpr Verdict kBad = Verdict::kNotLinearizable;

// ---- hand-written histories ---------------------------------------------------

TEST(Linearizability, EmptyHistory) {
  History h;
  const CheckResult r = check_kv(h);
  EXPECT_EQ(r.verdict, kOk);
  EXPECT_EQ(r.keys, 0u);
}

TEST(Linearizability, SequentialPutGetDelCas) {
  History h;
  h.invoke_get(1, "k");
  h.ok_get(1, nullopt);  // every key starts absent
  h.invoke_put(1, "k", "a");
  h.ok(1);
  h.invoke_get(2, "k");
  h.ok_get(2, "a");
  h.invoke_cas(2, "k", "a", "b");
  h.ok(2);
  h.invoke_get(1, "k");
  h.ok_get(1, "b");
  h.invoke_del(1, "k");
  h.ok(1);
  h.invoke_get(2, "k");
  h.ok_get(2, nullopt);
  h.invoke_cas(2, "k", nullopt, "c");  // create-if-absent
  h.ok(2);
  h.invoke_get(1, "k");
  h.ok_get(1, "c");
  EXPECT_EQ(verdict(h), kOk);
}

TEST(Linearizability, StaleReadIsIllegal) {
  // b was written after a, and the write completed before the read began:
  // the read must not return a.
  History h;
  h.invoke_put(1, "k", "a");
  h.ok(1);
  h.invoke_put(1, "k", "b");
  h.ok(1);
  h.invoke_get(2, "k");
  h.ok_get(2, "a");
  const CheckResult r = check_kv(h);
  ASSERT_EQ(r.verdict, kBad);
  const IllegalWindow& w = *r.counterexample;
  EXPECT_EQ(w.key, "k");
  ASSERT_EQ(w.prefix.size(), 2u);
  EXPECT_EQ(w.state, "b");
  ASSERT_EQ(w.stuck.size(), 1u);
  EXPECT_EQ(w.stuck[0].f, OpKind::kGet);
  EXPECT_EQ(w.stuck[0].value, "a");
  EXPECT_EQ(w.stuck[0].invoke_line, 5u);
  EXPECT_EQ(w.stuck[0].return_line, 6u);
}

TEST(Linearizability, ReadConcurrentWithAWriteMaySeeEitherValue) {
  // The same order of events, but now the read overlaps the write of b, so
  // it may be linearized before it: the history is legal.
  for (const char* seen : {"a", "b"}) {
    History h;
    h.invoke_put(1, "k", "a");
    h.ok(1);
    h.invoke_put(1, "k", "b");
    h.invoke_get(2, "k");
    h.ok(1);
    h.ok_get(2, seen);
    EXPECT_EQ(verdict(h), kOk) << seen;
  }
}

TEST(Linearizability, ReadMaySeeAWriteThatHasNotReturnedYet) {
  History h;
  h.invoke_put(1, "k", "a");
  h.invoke_get(2, "k");
  h.ok_get(2, "a");  // the write took effect; its ack is still in flight
  h.ok(1);
  EXPECT_EQ(verdict(h), kOk);
}

TEST(Linearizability, LostWriteIsIllegal) {
  // An acknowledged put that a later read does not see.
  History h;
  h.invoke_put(1, "k", "a");
  h.ok(1);
  h.invoke_get(2, "k");
  h.ok_get(2, nullopt);
  const CheckResult r = check_kv(h);
  ASSERT_EQ(r.verdict, kBad);
  EXPECT_EQ(r.counterexample->state, "a");
  EXPECT_EQ(r.counterexample->stuck.at(0).value, nullopt);
}

TEST(Linearizability, LostWriteUnderConcurrentWritersIsIllegal) {
  // Two acknowledged concurrent puts: one of them is last, and every later
  // read must agree on which. Reads of b then a, after both returned, would
  // need a write in between.
  History h;
  h.invoke_put(1, "k", "a");
  h.invoke_put(2, "k", "b");
  h.ok(2);
  h.ok(1);
  h.invoke_get(3, "k");
  h.ok_get(3, "b");
  h.invoke_get(3, "k");
  h.ok_get(3, "a");
  EXPECT_EQ(verdict(h), kBad);
}

TEST(Linearizability, ConcurrencyMakesAnOtherwiseIllegalOrderLegal) {
  // Reads that overlap both writes may see b and then a: the writes are
  // linearized b, then a, with the reads in between.
  History h;
  h.invoke_put(1, "k", "a");
  h.invoke_put(2, "k", "b");
  h.invoke_get(3, "k");
  h.ok_get(3, "b");
  h.invoke_get(3, "k");
  h.ok_get(3, "a");
  h.ok(2);
  h.ok(1);
  h.invoke_get(3, "k");
  h.ok_get(3, "a");
  EXPECT_EQ(verdict(h), kOk);
}

TEST(Linearizability, DeleteMakesTheKeyAbsent) {
  History h;
  h.invoke_put(1, "k", "a");
  h.ok(1);
  h.invoke_del(1, "k");
  h.ok(1);
  h.invoke_get(2, "k");
  h.ok_get(2, "a");
  EXPECT_EQ(verdict(h), kBad);
}

TEST(Linearizability, CasSucceedsOnlyWhenTheValueMatches) {
  History legal;
  legal.invoke_put(1, "k", "a");
  legal.ok(1);
  legal.invoke_cas(2, "k", "a", "b");
  legal.ok(2);
  legal.invoke_get(1, "k");
  legal.ok_get(1, "b");
  EXPECT_EQ(verdict(legal), kOk);

  History wrong_expected;  // the key held a, not x
  wrong_expected.invoke_put(1, "k", "a");
  wrong_expected.ok(1);
  wrong_expected.invoke_cas(2, "k", "x", "b");
  wrong_expected.ok(2);
  const CheckResult r = check_kv(wrong_expected);
  ASSERT_EQ(r.verdict, kBad);
  EXPECT_NE(format_window(*r.counterexample).find("expected \"x\", but the key holds \"a\""),
            std::string::npos)
      << format_window(*r.counterexample);

  History absent;  // create-if-absent on a key that exists
  absent.invoke_put(1, "k", "a");
  absent.ok(1);
  absent.invoke_cas(2, "k", nullopt, "b");
  absent.ok(2);
  EXPECT_EQ(verdict(absent), kBad);

  History two_winners;  // two cas from a: only one can win
  two_winners.invoke_put(1, "k", "a");
  two_winners.ok(1);
  two_winners.invoke_cas(1, "k", "a", "b");
  two_winners.invoke_cas(2, "k", "a", "c");
  two_winners.ok(1);
  two_winners.ok(2);
  EXPECT_EQ(verdict(two_winners), kBad);
}

TEST(Linearizability, FailedOperationsAreDropped) {
  History h;
  h.invoke_put(1, "k", "a");
  h.fail(1);
  h.invoke_get(2, "k");
  h.ok_get(2, nullopt);
  EXPECT_EQ(verdict(h), kOk);

  History seen;  // a failed put must not be visible
  seen.invoke_put(1, "k", "a");
  seen.fail(1);
  seen.invoke_get(2, "k");
  seen.ok_get(2, "a");
  EXPECT_EQ(verdict(seen), kBad);

  History cas;  // a cas that did not match changes nothing
  cas.invoke_put(1, "k", "a");
  cas.ok(1);
  cas.invoke_cas(2, "k", "x", "b");
  cas.fail(2);
  cas.invoke_get(1, "k");
  cas.ok_get(1, "a");
  EXPECT_EQ(verdict(cas), kOk);
}

TEST(Linearizability, InfoWriteMayOrMayNotTakeEffect) {
  for (std::optional<std::string> seen :
       {std::optional<std::string>("a"), std::optional<std::string>()}) {
    History h;
    h.invoke_put(1, "k", "a");
    h.info(1);
    h.invoke_get(2, "k");
    h.ok_get(2, seen);
    EXPECT_EQ(verdict(h), kOk) << quote_or_null(seen);
    CheckOptions exhaustive;
    exhaustive.prune_unobserved_indeterminate = false;
    EXPECT_EQ(verdict(h, exhaustive), kOk) << quote_or_null(seen);
  }
}

TEST(Linearizability, InfoWriteTakesEffectAtMostOnce) {
  History h;
  h.invoke_put(1, "k", "a");
  h.info(1);
  h.invoke_get(2, "k");
  h.ok_get(2, "a");
  h.invoke_get(2, "k");
  h.ok_get(2, nullopt);  // nothing deleted it
  EXPECT_EQ(verdict(h), kBad);
}

TEST(Linearizability, InfoWriteMayTakeEffectLongAfterItsInvoke) {
  // The timed-out put of a was still in flight and landed after b.
  History h;
  h.invoke_put(1, "k", "a");
  h.info(1);
  h.invoke_put(2, "k", "b");
  h.ok(2);
  h.invoke_get(2, "k");
  h.ok_get(2, "b");
  h.invoke_get(2, "k");
  h.ok_get(2, "a");
  EXPECT_EQ(verdict(h), kOk);
}

TEST(Linearizability, InfoWriteCannotTakeEffectBeforeItsInvoke) {
  History h;
  h.invoke_get(2, "k");
  h.ok_get(2, "a");
  h.invoke_put(1, "k", "a");
  h.info(1);
  EXPECT_EQ(verdict(h), kBad);
}

TEST(Linearizability, InvokeWithoutCompletionIsIndeterminate) {
  History h;
  h.invoke_put(1, "k", "a");  // the client crashed
  h.invoke_get(2, "k");
  h.ok_get(2, "a");
  h.invoke_get(2, "k");
  h.ok_get(2, "a");
  EXPECT_EQ(verdict(h), kOk);
}

TEST(Linearizability, InfoCasAppliesOnlyWhereItMatches) {
  History h;
  h.invoke_put(1, "k", "a");
  h.ok(1);
  h.invoke_cas(1, "k", "a", "b");
  h.info(1);
  h.invoke_get(2, "k");
  h.ok_get(2, "b");
  EXPECT_EQ(verdict(h), kOk);

  History never;  // the key never held x, so the cas cannot have applied
  never.invoke_put(1, "k", "a");
  never.ok(1);
  never.invoke_cas(1, "k", "x", "b");
  never.info(1);
  never.invoke_get(2, "k");
  never.ok_get(2, "b");
  EXPECT_EQ(verdict(never), kBad);
}

TEST(Linearizability, InfoGetConstrainsNothing) {
  History h;
  h.invoke_get(1, "k");
  h.info(1);
  h.invoke_put(2, "k", "a");
  h.ok(2);
  const CheckResult r = check_kv(h);
  EXPECT_EQ(r.verdict, kOk);
  EXPECT_EQ(r.pruned, 1u);
}

TEST(Linearizability, KeysAreIndependent) {
  // As one register this would be a stale read of 1; as two keys, fine.
  History h;
  h.invoke_put(1, "x", "1");
  h.ok(1);
  h.invoke_put(2, "y", "2");
  h.ok(2);
  h.invoke_get(3, "x");
  h.ok_get(3, "1");
  h.invoke_get(3, "y");
  h.ok_get(3, "2");
  EXPECT_EQ(verdict(h), kOk);

  // A violation on y is reported on y, whatever x does around it.
  h.invoke_put(1, "y", "3");
  h.invoke_put(2, "x", "4");
  h.ok(1);
  h.ok(2);
  h.invoke_get(3, "y");
  h.ok_get(3, "2");
  h.invoke_get(3, "x");
  h.ok_get(3, "4");
  const CheckResult r = check_kv(h);
  ASSERT_EQ(r.verdict, kBad);
  EXPECT_EQ(r.counterexample->key, "y");
  EXPECT_EQ(r.counterexample->key_operations, 4u);
}

TEST(Linearizability, WindowReadsLikeKnossos) {
  History h;
  h.invoke_put(1, "k", "a");
  h.ok(1);
  h.invoke_put(1, "k", "b");
  h.invoke_get(3, "k");
  h.invoke_get(2, "k");
  h.ok(1);
  h.ok_get(2, "x");
  h.ok_get(3, "y");
  const CheckResult r = check_kv(h);
  ASSERT_EQ(r.verdict, kBad);
  const std::string text = format_window(*r.counterexample);
  // The history goes wrong at line 7, where the read of x returns; the read
  // of y returns later, so it plays no part.
  EXPECT_EQ(text,
            "key \"k\": 4 operations; the longest linearizable prefix has 2.\n"
            "Linearized prefix, in order (* = concurrent with the first stuck operation):\n"
            "    client 1  put(\"k\", \"a\") -> ok   invoke line 1, return line 2\n"
            "  * client 1  put(\"k\", \"b\") -> ok   invoke line 3, return line 6\n"
            "After it the key holds \"b\", and none of these can be linearized next:\n"
            "    client 2  get(\"k\") -> \"x\"       invoke line 5, return line 7   read \"x\", "
            "but the key holds \"b\"\n")
      << text;
}

TEST(Linearizability, WindowIsWhereTheHistoryFirstGoesWrong) {
  // A stale read deep in a long history: the window ends at that read,
  // though the search can tell the history is doomed much earlier (as soon
  // as the value read is overwritten).
  History h;
  for (int i = 0; i < 50; ++i) {
    h.invoke_put(1, "k", "v" + std::to_string(i));
    h.ok(1);
    h.invoke_get(2, "k");
    h.ok_get(2, i == 40 ? std::string("v3") : "v" + std::to_string(i));
  }
  const CheckResult r = check_kv(h);
  ASSERT_EQ(r.verdict, kBad);
  const IllegalWindow& w = *r.counterexample;
  EXPECT_EQ(w.prefix.size(), 81u);
  EXPECT_EQ(w.state, "v40");
  ASSERT_EQ(w.stuck.size(), 1u);
  EXPECT_EQ(w.stuck[0].value, "v3");
  EXPECT_EQ(w.stuck[0].return_line, 164u);
}

TEST(Linearizability, BudgetGivesUnknownRatherThanRunningForever) {
  // 24 concurrent puts, then two reads, one after the other, of the values
  // of two of them: illegal (nothing writes between the reads), but proving
  // it means trying the puts' subsets (about 2^24 configurations).
  History h;
  for (int c = 0; c < 24; ++c) h.invoke_put(c, "hard", "v" + std::to_string(c));
  for (int c = 0; c < 24; ++c) h.ok(c);
  h.invoke_get(100, "hard");
  h.ok_get(100, "v0");
  h.invoke_get(100, "hard");
  h.ok_get(100, "v1");
  CheckOptions budget;
  budget.max_steps_per_key = 20000;
  CheckResult r = check_kv(h, budget);
  EXPECT_EQ(r.verdict, Verdict::kUnknown);
  EXPECT_EQ(r.unknown_keys, std::vector<std::string>{"hard"});
  EXPECT_LE(r.steps, 20001u);

  // A key proven illegal outweighs one left unknown.
  h.invoke_put(1, "simple", "a");
  h.ok(1);
  h.invoke_get(1, "simple");
  h.ok_get(1, "b");
  r = check_kv(h, budget);
  EXPECT_EQ(r.verdict, kBad);
  EXPECT_EQ(r.counterexample->key, "simple");
}

// ---- a brute-force oracle on small random histories -------------------------

// Linearizability by definition: some order of all determinate operations
// and some of the indeterminate ones, consistent with real time, that the
// sequential map accepts. Over the whole history (all keys at once), so it
// also checks the per-key split.
class BruteForce {
 public:
  explicit BruteForce(const std::vector<Operation>& ops) : ops_(ops) {}
  bool linearizable() { return search((1u << ops_.size()) - 1, {}); }

 private:
  using State = std::map<std::string, std::optional<std::string>>;

  static std::uint64_t ret(const Operation& o) {
    return o.indeterminate ? UINT64_MAX : *o.return_index;
  }

  bool search(std::uint32_t left, const State& state) {
    if (left == 0) return true;
    if (failed_.count({left, state})) return false;
    for (std::size_t i = 0; i < ops_.size(); ++i) {
      if (!(left >> i & 1)) continue;
      bool minimal = true;  // nothing left had to happen before it
      for (std::size_t j = 0; j < ops_.size(); ++j) {
        if ((left >> j & 1) && j != i && ret(ops_[j]) < ops_[i].invoke_index) minimal = false;
      }
      if (!minimal) continue;
      const Operation& op = ops_[i];
      const std::uint32_t rest = left & ~(1u << i);
      if (op.indeterminate && search(rest, state)) return true;  // never took effect
      State next = state;
      std::optional<std::string>& v = next[op.key];
      bool legal = true;
      switch (op.f) {
        case OpKind::kGet:
          legal = op.indeterminate || v == op.value;
          break;
        case OpKind::kPut:
          v = op.value;
          break;
        case OpKind::kDel:
          v.reset();
          break;
        case OpKind::kCas:
          if (v == op.expected) {
            v = op.value;
          } else {
            legal = false;
          }
          break;
      }
      if (legal && search(rest, next)) return true;
    }
    failed_.insert({left, state});
    return false;
  }

  const std::vector<Operation>& ops_;
  std::set<std::pair<std::uint32_t, State>> failed_;
};

History random_small_history(std::mt19937_64& rng) {
  auto pick = [&](int n) { return static_cast<int>(rng() % n); };
  const char* values[] = {"a", "b"};
  auto value = [&]() -> std::optional<std::string> {
    int v = pick(3);
    return v == 2 ? std::nullopt : std::optional<std::string>(values[v]);
  };
  History h;
  const int total = 2 + pick(6);
  int started = 0;
  std::vector<bool> busy(3, false), crashed(3, false);
  std::vector<OpKind> kind(3);
  auto active = [&] {
    for (int c = 0; c < 3; ++c) {
      if (busy[c] && !crashed[c]) return true;
    }
    return false;
  };
  auto alive = [&] { return std::count(crashed.begin(), crashed.end(), false) > 0; };
  while ((started < total && alive()) || active()) {
    const int c = pick(3);
    if (crashed[c]) continue;
    const std::string key = pick(3) == 0 ? "y" : "x";
    if (!busy[c]) {
      if (started == total) continue;
      ++started;
      busy[c] = true;
      switch (kind[c] = static_cast<OpKind>(pick(4))) {
        case OpKind::kGet:
          h.invoke_get(c, key);
          break;
        case OpKind::kPut:
          h.invoke_put(c, key, values[pick(2)]);
          break;
        case OpKind::kDel:
          h.invoke_del(c, key);
          break;
        case OpKind::kCas:
          h.invoke_cas(c, key, value(), values[pick(2)]);
          break;
      }
      continue;
    }
    switch (pick(10)) {
      case 0:
        h.fail(c);
        break;
      case 1:
        h.info(c);
        break;
      case 2:
        crashed[c] = true;
        continue;  // never completes
      default:
        if (kind[c] == OpKind::kGet) {
          h.ok_get(c, value());
        } else {
          h.ok(c);
        }
    }
    busy[c] = false;
  }
  return h;
}

// What a counterexample promises: its prefix is a legal sequential run that
// respects real time, and no operation of the window can follow it.
void expect_window_is_sound(const std::vector<Operation>& ops, const IllegalWindow& w) {
  auto ret = [](const Operation& o) { return o.indeterminate ? UINT64_MAX : *o.return_index; };
  std::optional<std::string> state;
  std::set<std::size_t> in_prefix;
  for (const Operation& op : w.prefix) {
    EXPECT_EQ(op.key, w.key);
    switch (op.f) {
      case OpKind::kGet:
        EXPECT_EQ(op.value, state);
        break;
      case OpKind::kPut:
        state = op.value;
        break;
      case OpKind::kDel:
        state.reset();
        break;
      case OpKind::kCas:
        if (state == op.expected) {
          state = op.value;
        } else {
          EXPECT_TRUE(op.indeterminate);
        }
        break;
    }
    in_prefix.insert(op.id);
  }
  EXPECT_EQ(state, w.state);
  for (std::size_t i = 0; i < w.prefix.size(); ++i) {
    for (std::size_t j = i + 1; j < w.prefix.size(); ++j) {
      EXPECT_FALSE(ret(w.prefix[j]) < w.prefix[i].invoke_index) << "real-time order broken";
    }
  }
  for (const Operation& op : ops) {
    if (op.key != w.key || in_prefix.count(op.id)) continue;
    for (const Operation& p : w.prefix) {
      EXPECT_FALSE(ret(op) < p.invoke_index) << describe(op) << " had to precede " << describe(p);
    }
  }
  ASSERT_FALSE(w.stuck.empty());
  for (const Operation& op : w.stuck) {
    EXPECT_FALSE(op.indeterminate) << describe(op);
    EXPECT_TRUE(op.f == OpKind::kGet || op.f == OpKind::kCas) << describe(op);
    EXPECT_TRUE(op.f == OpKind::kGet ? op.value != state : op.expected != state) << describe(op);
    EXPECT_LT(op.invoke_index, *w.stuck[0].return_index);
    EXPECT_LE(*w.stuck[0].return_index, *op.return_index);
  }
}

TEST(Linearizability, AgreesWithBruteForceOnSmallRandomHistories) {
  std::mt19937_64 rng(7);
  int legal = 0;
  int illegal = 0;
  for (int i = 0; i < 4000; ++i) {
    const History h = random_small_history(rng);
    const std::vector<Operation> ops = pair_operations(h);
    const bool expected = BruteForce(ops).linearizable();
    for (bool prune : {true, false}) {
      CheckOptions options;
      options.prune_unobserved_indeterminate = prune;
      const CheckResult r = check_kv(ops, options);
      std::ostringstream text;
      write_jsonl(text, h);
      ASSERT_EQ(r.verdict, expected ? kOk : kBad) << "prune " << prune << ", history:\n"
                                                  << text.str();
      if (!expected) expect_window_is_sound(ops, *r.counterexample);
    }
    (expected ? legal : illegal)++;
  }
  // The generator must exercise both outcomes.
  EXPECT_GT(legal, 1000);
  EXPECT_GT(illegal, 1000);
}

// ---- large histories from a simulated linearizable store -------------------------

struct SimConfig {
  std::uint64_t seed = 1;
  int clients = 10;
  int keys = 100;
  int operations = 10000;
  int info_per_mille = 0;  // requests that time out
};

// Clients drive a map that applies each request atomically at some moment
// between its invoke and its reply: linearizable by construction. A request
// that times out (info) stays in flight and may be applied later, or never.
History simulate(const SimConfig& cfg) {
  std::mt19937_64 rng(cfg.seed);
  auto pick = [&](int n) { return static_cast<int>(rng() % static_cast<std::uint64_t>(n)); };
  struct Request {
    OpKind f;
    std::string key;
    std::optional<std::string> value, expected;
    bool applied = false;
    bool matched = false;               // cas
    std::optional<std::string> result;  // get
  };
  std::map<std::string, std::optional<std::string>> store;
  std::map<std::string, std::vector<std::string>> written;  // for cas that miss
  auto apply = [&](Request& r) {
    std::optional<std::string>& v = store[r.key];
    switch (r.f) {
      case OpKind::kGet:
        r.result = v;
        break;
      case OpKind::kPut:
        v = r.value;
        break;
      case OpKind::kDel:
        v.reset();
        break;
      case OpKind::kCas:
        r.matched = v == r.expected;
        if (r.matched) v = r.value;
        break;
    }
    r.applied = true;
  };

  History h;
  std::vector<std::optional<Request>> client(cfg.clients);
  std::vector<Request> in_flight;  // timed out, not yet applied
  int started = 0;
  int busy = 0;
  int serial = 0;
  while (started < cfg.operations || busy > 0) {
    if (!in_flight.empty() && pick(100) < 2) {
      const int i = pick(static_cast<int>(in_flight.size()));
      if (pick(2)) apply(in_flight[i]);  // late, or lost for good
      in_flight.erase(in_flight.begin() + i);
      continue;
    }
    const int c = pick(cfg.clients);
    std::optional<Request>& slot = client[c];
    if (!slot) {
      if (started == cfg.operations) continue;
      ++started;
      ++busy;
      Request r;
      // Half the traffic on five hot keys, to make real contention.
      r.key = "k" + std::to_string(pick(2) ? pick(std::min(5, cfg.keys)) : pick(cfg.keys));
      const int f = pick(10);
      r.f = f < 4 ? OpKind::kGet : f < 7 ? OpKind::kPut : f < 8 ? OpKind::kDel : OpKind::kCas;
      if (r.f == OpKind::kPut || r.f == OpKind::kCas) {
        r.value = "c" + std::to_string(c) + "-" + std::to_string(++serial);
      }
      switch (r.f) {
        case OpKind::kGet:
          h.invoke_get(c, r.key);
          break;
        case OpKind::kPut:
          h.invoke_put(c, r.key, *r.value);
          break;
        case OpKind::kDel:
          h.invoke_del(c, r.key);
          break;
        case OpKind::kCas: {
          // Usually what the client last knew; sometimes an older value.
          const auto& old = written[r.key];
          r.expected =
              pick(4) || old.empty() ? store[r.key] : old[pick(static_cast<int>(old.size()))];
          h.invoke_cas(c, r.key, r.expected, *r.value);
          break;
        }
      }
      if (r.value) written[r.key].push_back(*r.value);
      slot = std::move(r);
      continue;
    }
    if (!slot->applied) {
      if (pick(1000) < cfg.info_per_mille) {  // times out before the store saw it
        h.info(c);
        in_flight.push_back(std::move(*slot));
        slot.reset();
        --busy;
      } else {
        apply(*slot);
      }
      continue;
    }
    if (pick(1000) < cfg.info_per_mille) {
      h.info(c);  // applied, but the reply was lost
    } else if (slot->f == OpKind::kGet) {
      h.ok_get(c, slot->result);
    } else if (slot->f == OpKind::kCas && !slot->matched) {
      h.fail(c);
    } else {
      h.ok(c);
    }
    slot.reset();
    --busy;
  }
  return h;
}

TEST(Linearizability, TenThousandOperationsOverAHundredKeys) {
  for (const SimConfig cfg : {SimConfig{1, 5, 100, 10000, 0}, SimConfig{2, 12, 100, 10000, 20},
                              SimConfig{3, 20, 100, 10000, 50}}) {
    const History h = simulate(cfg);
    const CheckResult r = check_kv(h);
    EXPECT_EQ(r.verdict, kOk) << "seed " << cfg.seed << "\n"
                              << (r.counterexample ? format_window(*r.counterexample) : "");
    EXPECT_EQ(r.keys, 100u);
    EXPECT_GT(r.operations, 8000u);
    // How fast, without a clock: the search is near linear on such a
    // history (about one step per operation; a step is one attempt to
    // linearize an operation). A regression to exponential search shows
    // here long before it shows as a slow test.
    EXPECT_LT(r.steps, 5 * r.operations) << "seed " << cfg.seed;
  }
}

TEST(Linearizability, OneKeyUnderTwentyClients) {
  // Every operation overlaps about twenty others: the hard case for a
  // Wing & Gong search, which the starvation rule keeps near linear.
  const History h = simulate({4, 20, 1, 5000, 10});
  const CheckResult r = check_kv(h);
  EXPECT_EQ(r.verdict, kOk);
  EXPECT_EQ(r.keys, 1u);
  EXPECT_LT(r.steps, 30 * r.operations);
}

TEST(Linearizability, SearchWithoutPruningHandlesManyInfoOperations) {
  const History h = simulate({5, 10, 100, 3000, 50});
  CheckOptions exhaustive;
  exhaustive.prune_unobserved_indeterminate = false;
  const CheckResult r = check_kv(h, exhaustive);
  EXPECT_EQ(r.verdict, kOk);
  // With pruning, most of the timed-out writes never reach the search.
  EXPECT_GT(check_kv(h).pruned, r.pruned);
}

TEST(Linearizability, CorruptedReadInALargeHistoryIsFound) {
  const History h = simulate({6, 15, 100, 10000, 20});
  std::vector<Event> events = h.events();
  // Corrupt the 100th successful read that saw a value.
  std::size_t seen = 0;
  std::string key;
  for (Event& e : events) {
    if (e.type == EventType::kOk && e.f == OpKind::kGet && e.value && ++seen == 100) {
      e.value = "never written";
      key = e.key;
      break;
    }
  }
  ASSERT_FALSE(key.empty());
  History corrupted;
  for (const Event& e : events) corrupted.append(e);
  const CheckResult r = check_kv(corrupted);
  ASSERT_EQ(r.verdict, kBad);
  EXPECT_EQ(r.counterexample->key, key);
  expect_window_is_sound(pair_operations(corrupted), *r.counterexample);
}

}  // namespace
}  // namespace checker
