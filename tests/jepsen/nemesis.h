// The nemesis of the Jepsen-style driver: a schedule of faults, each one a
// control-socket request to the VMM that hosts the cluster (the hypervisor
// is the nemesis, DESIGN.md decision 7). The schedule is pure and seeded,
// so a failing run is replayed with the same --seed.
//
// Faults alternate with quiet periods: inject for `interval`, heal, stay
// healthy for `interval`, pick the next fault. Every fault has its undo, and
// heal_all() lists the requests that undo every kind at once (the final
// phase sends them before the reads that check nothing acknowledged was lost).
#pragma once

#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

namespace jepsen {

using Json = nlohmann::json;

// kNet: lossy links (drop, duplicate, delay with jitter, reorder) between
// every pair of VMs, the frame-level faults of the switch.
enum class NemesisKind { kNone, kPartition, kKill, kPause, kClock, kNet, kAll };
// "none", "partition", ...; false for an unknown name.
bool parse_nemesis(const std::string& name, NemesisKind* out);
const char* to_string(NemesisKind k);

struct Fault {
  std::string description;   // for the log: "partition {0,1} | {2}"
  std::vector<Json> inject;  // control requests, in order
  std::vector<Json> heal;    // their undo
};

class NemesisSchedule {
 public:
  NemesisSchedule(NemesisKind kind, int nodes, uint64_t seed);
  // The next fault to inject (kind kAll draws one of the five each time).
  Fault next();
  // Requests that undo every fault this nemesis can inject.
  std::vector<Json> heal_all() const;

 private:
  Fault partition();
  Fault kill();
  Fault pause();
  Fault clock();
  Fault net();
  NemesisKind kind_;
  int nodes_;
  std::mt19937_64 rng_;
};

}  // namespace jepsen
