// A linearizability checker for key-value histories, in the manner of
// Porcupine (Athalye) and Knossos (Kingsbury):
//
//  * P-compositionality (Horn & Kroening): linearizability is local, so a
//    history is linearizable iff each key's sub-history is. Each key is
//    checked alone, which turns one search exponential in the whole
//    history's concurrency into many small ones.
//  * Per key, the Wing & Gong search with Lowe's memoization: call and return
//    entries in one linked list in real-time order; an operation whose call
//    precedes the first return may be linearized next (it is lifted out of
//    the list); reaching a return entry means the operation it closes was not
//    linearized in time, so backtrack. A cache of (set of linearized
//    operations, model state) already explored prunes equivalent paths.
//
// Three exact prunings on top, each argued where it is implemented, keep
// the search near linear where plain Wing & Gong goes exponential (one key,
// twenty clients):
//  * a legal read is linearized at once and never second-guessed;
//  * a value some unlinearized read needs but nothing unlinearized writes
//    ("starved") must be the current value, or the configuration is dead;
//  * an indeterminate write whose value nothing observes is dropped.
// To explain a failure, the checker bisects for the first return at which
// the key's history stops being linearizable (linearizability is
// prefix-closed) and reports the window around that operation.
//
// Indeterminate (info) operations return at +infinity, as in Porcupine and
// Knossos: they may be linearized anywhere after their invoke, and one that
// never took effect is linearized at the very end, after every determinate
// operation, where it cannot be observed. A `fail` never happened and is
// dropped.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "tests/checker/history.h"

namespace checker {

// An invoke paired with its completion. `fail` operations are not here.
struct Operation {
  std::size_t id = 0;  // position among the history's operations, in invoke order
  ClientId client = 0;
  OpKind f = OpKind::kGet;
  std::string key;
  // put, cas: the value written. get: the value read (nullopt: absent), which
  // is meaningless when the get is indeterminate.
  std::optional<std::string> value;
  std::optional<std::string> expected;  // cas: the value required (nullopt: absent)
  // info, or never completed: may or may not have taken effect.
  bool indeterminate = false;
  // Real time: indices of the invoke and completion events in the history.
  // An indeterminate operation has no completion (it returns at +infinity).
  std::size_t invoke_index = 0;
  std::optional<std::size_t> return_index;
  // The same, as 1-based lines of the JSON-lines form (return_line 0: none).
  std::size_t invoke_line = 0;
  std::size_t return_line = 0;
};

// Pairs each invoke with its completion; drops failed operations; an invoke
// never completed becomes indeterminate. In invoke order.
std::vector<Operation> pair_operations(const History& h);

// One line: `client 3  cas "k1" "v1" -> "v2"  -> ok`.
std::string describe(const Operation& op);

enum class Verdict { kLinearizable, kNotLinearizable, kUnknown };
std::string_view to_string(Verdict v);

struct CheckOptions {
  // Search steps (attempts to linearize one operation) allowed for each key;
  // 0: no limit. A key that runs out is `unknown` rather than running on.
  // Deterministic: the same history and budget give the same verdict.
  std::uint64_t max_steps_per_key = 0;
  // Wall-clock bound on the whole check; zero: none. Past it, keys not yet
  // decided are unknown. (Steps are the reproducible bound; use this one
  // only where a deadline matters more than reproducibility.)
  std::chrono::milliseconds time_limit{0};
  // Drop indeterminate writes whose value nothing ever observed (no ok read
  // returned it, no cas expected it). Exact, not a heuristic: such a write
  // can always be moved to the end of a linearization, so it never decides
  // the verdict; dropping it keeps every timed-out write from multiplying
  // the search. Off only to exercise the search itself in tests.
  bool prune_unobserved_indeterminate = true;
};

// Why a key is not linearizable, Knossos-style. Cut the key's history at
// the earliest return after which it is not linearizable (operations still
// open there have unknown outcomes); `stuck` starts with the operation
// returning there, the first that cannot be linearized. `prefix` is the
// longest linearizable prefix the search found on the way to it, `state`
// the value after it; the rest of `stuck` are the other operations still
// unlinearized that were invoked before the first one returned. Operations
// concurrent with the first one are among the last of `prefix` or in
// `stuck`. (Should the explaining search run out of its bound, the window
// comes from the plain search instead, as Porcupine would give it.)
struct IllegalWindow {
  std::string key;
  std::size_t key_operations = 0;    // operations on the key that were searched
  std::vector<Operation> prefix;     // in linearization order
  std::optional<std::string> state;  // the key's value after the prefix
  // First: the unlinearized operation that returns first (the search could
  // not get past its return). Then every other unlinearized operation
  // invoked before that return, in invoke order. As a rule none can be
  // applied to `state`; format_window() gives the reason for each.
  std::vector<Operation> stuck;
};

struct CheckResult {
  Verdict verdict = Verdict::kLinearizable;
  std::optional<IllegalWindow> counterexample;  // when not linearizable
  std::vector<std::string> unknown_keys;        // keys whose search ran out
  std::size_t operations = 0;                   // operations searched
  std::size_t keys = 0;
  std::size_t pruned = 0;   // indeterminate operations dropped before the search
  std::uint64_t steps = 0;  // search steps, all keys
};

// Checks the history against a map of independent registers: get, put, del,
// cas. Every key starts absent. Stops at the first key that is not
// linearizable.
CheckResult check_kv(const History& h, const CheckOptions& options = {});
CheckResult check_kv(const std::vector<Operation>& ops, const CheckOptions& options = {});

// The counterexample as printed by check-history: the prefix (its last
// `max_prefix` operations; those concurrent with the stuck operation are
// marked *), the state after it, and the stuck operations with the reason
// each is illegal there. One operation per line.
std::string format_window(const IllegalWindow& w, std::size_t max_prefix = 20);

}  // namespace checker
