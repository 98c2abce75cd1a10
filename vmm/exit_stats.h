// Counts VM exits per reason and the host time spent handling each kind.
// One instance per vCPU thread (no sharing on the hot path); merged when
// the VM ends.
#pragma once

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
  void record(uint32_t exit_reason, uint64_t handling_ns);
  void merge(const ExitStats& other);
  uint64_t total() const;
  const std::map<uint32_t, Entry>& entries() const { return entries_; }
  // A table: reason, count, share, mean handling time, exits/s over
  // `wall_seconds` of VM run time.
  std::string format(double wall_seconds) const;

 private:
  std::map<uint32_t, Entry> entries_;
};

// KVM_EXIT_* as text ("io", "mmio", "shutdown", ...).
const char* exit_reason_name(uint32_t reason);

}  // namespace vmm
