#include "tests/jepsen/nemesis.h"

#include <algorithm>
#include <cstdio>
#include <numeric>

namespace jepsen {

bool parse_nemesis(const std::string& name, NemesisKind* out) {
  for (NemesisKind k : {NemesisKind::kNone, NemesisKind::kPartition, NemesisKind::kKill, NemesisKind::kPause,
                        NemesisKind::kClock, NemesisKind::kNet, NemesisKind::kAll}) {
    if (name == to_string(k)) {
      *out = k;
      return true;
    }
  }
  return false;
}

const char* to_string(NemesisKind k) {
  switch (k) {
    case NemesisKind::kNone: return "none";
    case NemesisKind::kPartition: return "partition";
    case NemesisKind::kKill: return "kill";
    case NemesisKind::kPause: return "pause";
    case NemesisKind::kClock: return "clock";
    case NemesisKind::kNet: return "net";
    case NemesisKind::kAll: return "all";
  }
  return "?";
}

NemesisSchedule::NemesisSchedule(NemesisKind kind, int nodes, uint64_t seed)
    : kind_(kind), nodes_(nodes), rng_(seed) {}

Fault NemesisSchedule::next() {
  NemesisKind k = kind_;
  if (k == NemesisKind::kAll) {
    const NemesisKind kinds[] = {NemesisKind::kPartition, NemesisKind::kKill, NemesisKind::kPause,
                                 NemesisKind::kClock, NemesisKind::kNet};
    k = kinds[rng_() % 5];
  }
  switch (k) {
    case NemesisKind::kPartition: return partition();
    case NemesisKind::kKill: return kill();
    case NemesisKind::kPause: return pause();
    case NemesisKind::kClock: return clock();
    case NemesisKind::kNet: return net();
    default: return Fault{"none", {}, {}};
  }
}

Fault NemesisSchedule::partition() {
  std::vector<int> vms(static_cast<size_t>(nodes_));
  std::iota(vms.begin(), vms.end(), 0);
  std::shuffle(vms.begin(), vms.end(), rng_);
  std::vector<std::vector<int>> groups;
  std::string what;
  switch (rng_() % 3) {
    case 0: {  // one node alone
      groups = {{vms[0]}, {vms.begin() + 1, vms.end()}};
      what = "isolate one node";
      break;
    }
    case 1: {  // a minority and a majority
      const size_t minority = static_cast<size_t>(nodes_ - 1) / 2;
      groups = {{vms.begin(), vms.begin() + static_cast<long>(minority)},
                {vms.begin() + static_cast<long>(minority), vms.end()}};
      what = "majority/minority";
      break;
    }
    default: {  // a bridge: two halves that both see one node in the middle
      const size_t half = static_cast<size_t>(nodes_ - 1) / 2;
      std::vector<int> left(vms.begin() + 1, vms.begin() + 1 + static_cast<long>(half));
      std::vector<int> right(vms.begin() + 1 + static_cast<long>(half), vms.end());
      left.push_back(vms[0]);
      right.push_back(vms[0]);
      groups = {left, right};
      what = "bridge through node " + std::to_string(vms[0]);
      break;
    }
  }
  for (auto& g : groups) std::sort(g.begin(), g.end());
  Json inject{{"cmd", "partition"}, {"groups", groups}};
  return Fault{"partition (" + what + ") " + Json(groups).dump(), {inject}, {Json{{"cmd", "heal"}}}};
}

Fault NemesisSchedule::kill() {
  const int vm = static_cast<int>(rng_() % static_cast<uint64_t>(nodes_));
  return Fault{"kill VM " + std::to_string(vm), {Json{{"cmd", "kill"}, {"vm", vm}}},
               {Json{{"cmd", "restart"}, {"vm", vm}}}};
}

Fault NemesisSchedule::pause() {
  const int vm = static_cast<int>(rng_() % static_cast<uint64_t>(nodes_));
  return Fault{"pause VM " + std::to_string(vm), {Json{{"cmd", "pause"}, {"vm", vm}}},
               {Json{{"cmd", "resume"}, {"vm", vm}}}};
}

Fault NemesisSchedule::clock() {
  const int vm = static_cast<int>(rng_() % static_cast<uint64_t>(nodes_));
  // Up to +-2 s: far beyond Raft's election timeouts, which a correct Raft
  // (without lease reads) must not care about.
  const int64_t offset_ms = static_cast<int64_t>(rng_() % 4001) - 2000;
  return Fault{"skew VM " + std::to_string(vm) + "'s clock by " + std::to_string(offset_ms) + " ms",
               {Json{{"cmd", "clock"}, {"vm", vm}, {"offset_ms", offset_ms}}},
               {Json{{"cmd", "clock"}, {"vm", vm}, {"offset_ms", 0}}}};
}

Fault NemesisSchedule::net() {
  // The same faults on every directed link, drawn anew each time.
  const double drop = 0.05 + (rng_() % 20) / 100.0;  // 5-24 %
  const double dup = (rng_() % 15) / 100.0;
  const double reorder = (rng_() % 15) / 100.0;
  const uint64_t delay_ms = rng_() % 20, jitter_ms = rng_() % 20;
  std::vector<Json> inject;
  for (int from = 0; from < nodes_; ++from) {
    for (int to = 0; to < nodes_; ++to) {
      if (from == to) continue;
      inject.push_back(Json{{"cmd", "link"}, {"from", from}, {"to", to}, {"drop", drop}, {"dup", dup},
                            {"reorder", reorder}, {"delay_ms", delay_ms}, {"jitter_ms", jitter_ms}});
    }
  }
  char what[160];
  std::snprintf(what, sizeof what, "lossy links: drop %.0f%%, duplicate %.0f%%, reorder %.0f%%, delay %lu+%lu ms",
                drop * 100, dup * 100, reorder * 100, static_cast<unsigned long>(delay_ms),
                static_cast<unsigned long>(jitter_ms));
  return Fault{what, inject, {Json{{"cmd", "heal"}}}};
}

std::vector<Json> NemesisSchedule::heal_all() const {
  std::vector<Json> out;
  if (kind_ == NemesisKind::kNone) return out;
  out.push_back(Json{{"cmd", "heal"}});
  for (int vm = 0; vm < nodes_; ++vm) {
    out.push_back(Json{{"cmd", "resume"}, {"vm", vm}});
    out.push_back(Json{{"cmd", "restart"}, {"vm", vm}, {"if_stopped", true}});
    out.push_back(Json{{"cmd", "clock"}, {"vm", vm}, {"offset_ms", 0}});
  }
  return out;
}

}  // namespace jepsen
