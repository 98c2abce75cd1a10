// The VMM's command line, in kvmtool's style:
//   vmm run -k KERNEL [-m SIZE] [-c N] [--cmdline STR] [--stats] [--console FILE]
//           [--disk PATH[,ro][,serial=S]]... [--net] [--mac XX:XX:XX:XX:XX:XX]
//           [--balloon] [--balloon-target SIZE] [--merge off|vmm|ksm] [--merge-rate N]
//   vmm run --vms N [--gateway BASE[:PORT]] [--switch-seed S] -k KERNEL ...
//   vmm --help | --version
// Parsing is pure (no I/O) so every bad input is testable; errors are
// UsageError with a one-line message.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace vmm {

class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Walks a command line's words: each option's name, and its value taken
// as the next word or after '=' ("--mem 64M" or "--mem=64M").
class OptionReader {
 public:
  explicit OptionReader(const std::vector<std::string>& args, size_t first = 0) : args_(args), i_(first) {}
  // Moves to the next word; false at the end.
  bool next();
  const std::string& word() const { return args_[i_]; }  // as written
  const std::string& name() const { return name_; }      // without "=VALUE"
  bool has_inline_value() const { return inline_value_; }
  // The option's value; UsageError if the command line ends first.
  std::string value();

 private:
  const std::vector<std::string>& args_;
  size_t i_;
  bool started_ = false;
  std::string name_, inline_;
  bool inline_value_ = false;
};

// One virtio-blk disk (`--disk PATH[,ro][,serial=S]`).
struct DiskConfig {
  std::string path;
  bool read_only = false;
  std::string serial;  // the GET_ID string, at most 20 printable ASCII bytes
  bool operator==(const DiskConfig&) const = default;
};

// QEMU's default MAC (locally administered 52:54:00 prefix): used when
// `--net` is given without `--mac`.
inline constexpr std::array<uint8_t, 6> kDefaultMac = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};

enum class NicModel { kVirtio, kE1000 };
const char* to_string(NicModel m);

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
  std::vector<DiskConfig> disks;          // one virtio-blk device each
  bool net = false;                       // a NIC (--net, --mac or --nic)
  NicModel nic = NicModel::kVirtio;       // which NIC model (--nic)
  std::array<uint8_t, 6> mac = kDefaultMac;
  bool balloon = false;                   // a virtio-balloon device (--balloon)
  uint64_t balloon_target = 0;            // its initial target in bytes (--balloon-target)
};

// Cluster mode (vmm/cluster.h): several VMs in one process, one switch.
constexpr int kDefaultCrashRestarts = 5;  // --on-crash restart: within kCrashWindow
struct ClusterConfig {
  int vms = 0;                         // 0: a lone VM, as without --vms
  uint16_t gateway_base = 0;           // --gateway BASE[:PORT]; 0: no gateway
  uint16_t gateway_service_port = 7000;
  uint64_t switch_seed = 1;            // seeds the switch's fault decisions
  // --vm I:ARGS, appended to VM I's command line (a role, a node id...).
  std::map<int, std::string> vm_cmdline;
  std::string control;  // --control PATH: the control socket (vmm/cluster_control.h)
  // --on-crash restart[:N]: a VM whose guest crashed boots again (same
  // configuration, same disk), as a machine with a watchdog would, at most
  // N times within 60 s (default 5); 0 (--on-crash stop) leaves it stopped.
  int crash_restarts = 0;
};

// Same-page merging across every VM of the process (vmm/memory/merge_service.h).
enum class MergeMode { kOff, kVmm, kKsm };
const char* to_string(MergeMode m);
constexpr uint64_t kDefaultMergeRate = 25600;  // pages per second: 100 MiB/s
constexpr uint64_t kMaxMergeRate = 1u << 20;   // 4 GiB/s: beyond it the scanner is a busy loop
struct MergeConfig {
  MergeMode mode = MergeMode::kOff;               // --merge
  uint64_t pages_per_second = kDefaultMergeRate;  // --merge-rate (vmm only)
  bool operator==(const MergeConfig&) const = default;
};

enum class CliCommand { kRun, kHelp, kVersion };

struct CliResult {
  CliCommand command;
  VmConfig config;
  ClusterConfig cluster;
  MergeConfig merge;  // process-wide: one merger for the lone VM or all VMs of a cluster
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
// A balloon target: like a memory size ("64M", "1G", "512K", plain MiB),
// but 0 and sizes below 16M are fine; a whole number of 4 KiB pages.
uint64_t parse_balloon_size(std::string_view text);
// "PATH[,ro][,serial=S]".
DiskConfig parse_disk(std::string_view text);
// "52:54:00:12:34:56": six hex pairs; multicast and all-zero refused.
std::array<uint8_t, 6> parse_mac(std::string_view text);
const char* usage_text();

}  // namespace vmm
