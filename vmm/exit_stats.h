// Counts VM exits per reason and the host time spent handling each kind.
// One instance per vCPU thread (no sharing on the hot path); merged when
// the VM ends. record() runs on every exit: a flat array indexed by the
// exit reason, no allocation or lookup.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <string>

namespace vmm {

class ExitStats {
 public:
  struct Entry {
    uint64_t count = 0;
    uint64_t handling_ns = 0;
  };
  // Only the owning vCPU thread records; snapshot() may run on any thread
  // at any time (the benchmark's mark port): both go through relaxed
  // atomic accesses, which on x86 are plain loads and stores.
  void record(uint32_t exit_reason, uint64_t handling_ns);
  ExitStats snapshot() const;
  void merge(const ExitStats& other);
  uint64_t total() const;
  // Reasons with at least one exit, in reason order.
  std::map<uint32_t, Entry> entries() const;
  // A table: reason, count, share, mean handling time, exits/s over
  // `wall_seconds` of VM run time.
  std::string format(double wall_seconds) const;

 private:
  static constexpr uint32_t kReasons = 64;  // KVM_EXIT_* are small; larger ones share the last slot
  std::array<Entry, kReasons> entries_{};
};

// KVM_EXIT_* as text ("io", "mmio", "shutdown", ...).
const char* exit_reason_name(uint32_t reason);

}  // namespace vmm
