// The VMM's command line, in kvmtool's style:
//   vmm run -k KERNEL [-m SIZE] [-c N] [--cmdline STR] [--stats] [--console FILE]
//   vmm run --vms N [--gateway BASE[:PORT]] [--switch-seed S] -k KERNEL ...
//   vmm --help | --version
// Parsing is pure (no I/O) so every bad input is testable; errors are
// UsageError with a one-line message.
#pragma once

#include <cstdint>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace vmm {

class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct VmConfig {
  std::string kernel;
  uint64_t mem_bytes = 64ull << 20;
  int vcpus = 1;
  std::string cmdline;
  bool stats = false;
  std::string console;  // empty: stdout
  int64_t clock_offset_ns = 0;       // written to the guest's time page
  uint64_t clock_uncertainty_ns = 0;
  // How long KVM polls before putting a halted vCPU to sleep. 0 (the
  // default) keeps idle guests cheap; polling trades CPU for wake-up latency.
  uint64_t halt_poll_ns = 0;
};

// Cluster mode (vmm/cluster.h): several VMs in one process, one switch.
struct ClusterConfig {
  int vms = 0;                         // 0: a lone VM, as without --vms
  uint16_t gateway_base = 0;           // --gateway BASE[:PORT]; 0: no gateway
  uint16_t gateway_service_port = 7000;
  uint64_t switch_seed = 1;            // seeds the switch's fault decisions
};

enum class CliCommand { kRun, kHelp, kVersion };

struct CliResult {
  CliCommand command;
  VmConfig config;
  ClusterConfig cluster;
};

constexpr uint64_t kMinGuestMem = 16ull << 20;
constexpr uint64_t kMaxGuestMem = 3ull << 30;  // RAM stays below the 32-bit hole
constexpr int kMaxVcpus = 64;
constexpr int kMaxVms = 64;

CliResult parse_cli(const std::vector<std::string>& args);  // args exclude argv[0]
// "64M", "1G", "512K", or a plain number of MiB (kvmtool's convention).
uint64_t parse_mem_size(std::string_view text);
// "250ms", "-3s", "1500us", "42ns" or a plain number of ns.
int64_t parse_duration_ns(std::string_view text);
const char* usage_text();

}  // namespace vmm
