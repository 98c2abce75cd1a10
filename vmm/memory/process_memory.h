// How much host memory this process holds, from /proc/self/status: the
// resident set now (VmRSS) and its peak (VmHWM). The balloon's effect is
// measured with it: pages the guest gives back leave VmRSS.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace vmm {

struct ProcessMemory {
  uint64_t rss_bytes = 0;       // VmRSS
  uint64_t peak_rss_bytes = 0;  // VmHWM
};

// Nullopt if /proc/self/status is missing or lacks either field.
std::optional<ProcessMemory> read_process_memory();
// Parses the text of a /proc/PID/status file (for tests).
std::optional<ProcessMemory> parse_process_memory(std::string_view status);

}  // namespace vmm
