#include "vmm/cli.h"

#include <algorithm>
#include <charconv>

namespace vmm {

const char* usage_text() {
  return "usage: vmm run -k KERNEL [options]\n"
         "       vmm restore FILE [--console PATH] [--control PATH] [--stats]   (a snapshot, see vmctl snapshot)\n"
         "       vmm --help | --version\n"
         "\n"
         "Boots a PVH kernel (an ELF with a XEN_ELFNOTE_PHYS32_ENTRY note) in a KVM virtual machine.\n"
         "\n"
         "options for run:\n"
         "  -k, --kernel FILE     the kernel ELF to boot (required)\n"
         "  -m, --mem SIZE        guest RAM: 64M, 1G, or MiB (default 64M; 16M to 3G)\n"
         "  -c, --cpus N          number of vCPUs, one thread each (default 1; at most 64)\n"
         "      --cmdline STR     the kernel command line\n"
         "      --console FILE    write the serial console to FILE instead of stdout\n"
         "      --stats           print VM exit statistics when the VM ends\n"
         "      --clock-offset T  skew the guest's clock by T (e.g. 250ms, -2s; default 0)\n"
         "      --clock-uncertainty T  the clock error bound the guest sees (e.g. 4ms)\n"
         "      --halt-poll T     how long KVM polls a halted vCPU before sleeping (default 0)\n"
         "      --disk PATH[,ro][,serial=S]  a virtio-blk disk backed by PATH (repeatable; ro: read-only;\n"
         "                        S: the disk's serial, up to 20 characters, no commas)\n"
         "      --net             a virtio-net NIC (not connected to anything in a single VM)\n"
         "      --mac MAC         the NIC's address, e.g. 52:54:00:12:34:56 (implies --net)\n"
         "      --nic virtio|e1000  the NIC model (default virtio; implies --net)\n"
         "      --balloon         a virtio-balloon device: the guest returns memory the VMM asks for\n"
         "      --balloon-target SIZE  the balloon's target at boot, e.g. 64M (implies --balloon;\n"
         "                        at most the guest's RAM)\n"
         "      --merge off|vmm|ksm  same-page merging across all VMs of this process (default off):\n"
         "                        vmm: our scanner maps identical guest pages onto one copy-on-write page;\n"
         "                        ksm: guest RAM is marked MADV_MERGEABLE for Linux KSM (enable it in\n"
         "                        /sys/kernel/mm/ksm/run). Merging leaks between tenants: see docs\n"
         "      --merge-rate N    pages the vmm scanner visits per second (default 25600 = 100 MiB/s;\n"
         "                        1 to 1048576; only with --merge vmm)\n"
         "\n"
         "cluster mode (several VMs in this process, joined by one virtual switch):\n"
         "      --vms N           run N VMs (1 to 64); VM i is 10.0.0.(10+i), MAC 52:54:00:00:00:(10+i),\n"
         "                        and 'ip=10.0.0.(10+i) gw=10.0.0.1' is appended to its command line;\n"
         "                        %i in --cmdline and --console becomes the VM's index (%% is a %)\n"
         "      --gateway BASE[:PORT]  relay UDP from 127.0.0.1:(BASE+i) to VM i's PORT (default 7000);\n"
         "                        implies --vms 1 when --vms is not given\n"
         "      --switch-seed S   seed of the switch's random link faults (default 1)\n"
         "      --vm I:ARGS       append ARGS to VM I's command line only (repeatable)\n"
         "      --control PATH    serve the control socket at PATH (pause, kill, restart, partition,\n"
         "                        link faults, clock skew: see vmctl --sock PATH help); implies --vms 1\n"
         "      --on-crash stop|restart[:N]  what happens to a VM whose guest crashed (default stop);\n"
         "                        restart boots it again from its disk, at most N times within 60 s\n"
         "                        (default 5); implies --vms 1\n"
         "\n"
         "exit status: the guest's debug-exit status (a cluster: 0 if every VM exited 0, else the\n"
         "first nonzero status in VM order); 120 if the guest crashed (triple fault,\n"
         "KVM internal error, failed entry); 125 if the VMM could not run it; 2 on bad usage.\n";
}

const char* to_string(NicModel m) { return m == NicModel::kE1000 ? "e1000" : "virtio-net"; }

const char* to_string(MergeMode m) {
  switch (m) {
    case MergeMode::kOff: return "off";
    case MergeMode::kVmm: return "vmm";
    case MergeMode::kKsm: return "ksm";
  }
  return "?";
}

uint64_t parse_mem_size(std::string_view text) {
  if (text.empty()) throw UsageError("memory size is empty");
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end == text.data())
    throw UsageError("malformed memory size '" + std::string(text) + "' (try 64M or 1G)");
  std::string_view suffix(end, text.data() + text.size() - end);
  unsigned shift;
  if (suffix.empty() || suffix == "M" || suffix == "m" || suffix == "MiB") shift = 20;
  else if (suffix == "G" || suffix == "g" || suffix == "GiB") shift = 30;
  else if (suffix == "K" || suffix == "k" || suffix == "KiB") shift = 10;
  else throw UsageError("malformed memory size '" + std::string(text) + "' (unknown suffix '" + std::string(suffix) + "')");
  if (value > (kMaxGuestMem >> shift)) throw UsageError("memory size " + std::string(text) + " is larger than 3G");
  const uint64_t bytes = value << shift;
  if (bytes < kMinGuestMem) throw UsageError("memory size " + std::string(text) + " is smaller than 16M");
  if (bytes % (1u << 20)) throw UsageError("memory size " + std::string(text) + " is not a whole number of MiB");
  return bytes;
}

int64_t parse_duration_ns(std::string_view text) {
  bool negative = false;
  std::string_view t = text;
  if (!t.empty() && (t[0] == '-' || t[0] == '+')) negative = t[0] == '-', t.remove_prefix(1);
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(t.data(), t.data() + t.size(), value);
  if (ec != std::errc() || end == t.data()) throw UsageError("malformed duration '" + std::string(text) + "' (try 250ms)");
  std::string_view unit(end, t.data() + t.size() - end);
  uint64_t scale;
  if (unit.empty() || unit == "ns") scale = 1;
  else if (unit == "us") scale = 1000;
  else if (unit == "ms") scale = 1000000;
  else if (unit == "s") scale = 1000000000;
  else throw UsageError("malformed duration '" + std::string(text) + "' (unit ns, us, ms or s)");
  constexpr uint64_t kLimit = 1000000000ull * 3600 * 24 * 365;  // a year is plenty
  if (value > kLimit / scale) throw UsageError("duration '" + std::string(text) + "' is too large");
  const int64_t ns = static_cast<int64_t>(value * scale);
  return negative ? -ns : ns;
}

uint64_t parse_balloon_size(std::string_view text) {
  const auto bad = [&](const std::string& why) {
    return UsageError("malformed balloon target '" + std::string(text) + "' (" + why + ")");
  };
  uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end == text.data()) throw bad("try 64M or 1G");
  std::string_view suffix(end, text.data() + text.size() - end);
  unsigned shift;
  if (suffix.empty() || suffix == "M" || suffix == "m" || suffix == "MiB") shift = 20;
  else if (suffix == "G" || suffix == "g" || suffix == "GiB") shift = 30;
  else if (suffix == "K" || suffix == "k" || suffix == "KiB") shift = 10;
  else throw bad("unknown suffix '" + std::string(suffix) + "'");
  if (value > (kMaxGuestMem >> shift)) throw UsageError("balloon target " + std::string(text) + " is larger than 3G");
  const uint64_t bytes = value << shift;
  if (bytes % 4096) throw UsageError("balloon target " + std::string(text) + " is not a whole number of 4 KiB pages");
  return bytes;
}

DiskConfig parse_disk(std::string_view text) {
  DiskConfig d;
  size_t start = 0;
  bool first = true;
  for (;;) {
    const size_t comma = text.find(',', start);
    const std::string_view part = text.substr(start, comma == std::string_view::npos ? text.npos : comma - start);
    if (first) {
      if (part.empty()) throw UsageError("--disk needs a file name (--disk PATH[,ro][,serial=S])");
      d.path = std::string(part);
      first = false;
    } else if (part == "ro") {
      d.read_only = true;
    } else if (part.rfind("serial=", 0) == 0) {
      const std::string_view serial = part.substr(7);
      if (serial.size() > 20) throw UsageError("disk serial '" + std::string(serial) + "' is longer than 20 characters");
      for (char c : serial)
        if (c < 0x20 || c > 0x7e) throw UsageError("disk serial must be printable ASCII");
      d.serial = std::string(serial);
    } else {
      throw UsageError("unknown disk option '" + std::string(part) + "' (ro, serial=S)");
    }
    if (comma == std::string_view::npos) break;
    start = comma + 1;
  }
  return d;
}

std::array<uint8_t, 6> parse_mac(std::string_view text) {
  std::array<uint8_t, 6> mac{};
  const auto bad = [&] { return UsageError("malformed MAC address '" + std::string(text) + "' (try 52:54:00:12:34:56)"); };
  if (text.size() != 17) throw bad();
  for (size_t i = 0; i < 6; ++i) {
    if (i > 0 && text[3 * i - 1] != ':') throw bad();
    const char* p = text.data() + 3 * i;
    auto [end, ec] = std::from_chars(p, p + 2, mac[i], 16);
    if (ec != std::errc() || end != p + 2) throw bad();
  }
  if (mac[0] & 1) throw UsageError("MAC address '" + std::string(text) + "' is multicast (first byte odd)");
  if (mac == std::array<uint8_t, 6>{}) throw UsageError("MAC address cannot be all zeroes");
  return mac;
}

namespace {

int parse_cpus(const std::string& text) {
  int n = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (ec != std::errc() || end != text.data() + text.size() || n < 1 || n > kMaxVcpus)
    throw UsageError("vCPU count must be a number from 1 to " + std::to_string(kMaxVcpus) + ", not '" + text + "'");
  return n;
}

int parse_vms(const std::string& text) {
  int n = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), n);
  if (ec != std::errc() || end != text.data() + text.size() || n < 1 || n > kMaxVms)
    throw UsageError("--vms must be a number from 1 to " + std::to_string(kMaxVms) + ", not '" + text + "'");
  return n;
}

uint16_t parse_port(std::string_view text, const std::string& what) {
  unsigned v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || v < 1 || v > 65535)
    throw UsageError(what + " must be a UDP port from 1 to 65535, not '" + std::string(text) + "'");
  return static_cast<uint16_t>(v);
}

// BASE[:PORT]
// stop, restart (5 restarts within 60 s) or restart:N (N from 1 to 100).
int parse_on_crash(const std::string& text) {
  if (text == "stop") return 0;
  if (text == "restart") return kDefaultCrashRestarts;
  const std::string prefix = "restart:";
  if (text.rfind(prefix, 0) == 0) {
    const std::string n = text.substr(prefix.size());
    if (!n.empty() && n.size() <= 3 && std::all_of(n.begin(), n.end(), [](char c) { return c >= '0' && c <= '9'; })) {
      const int v = std::stoi(n);
      if (v >= 1 && v <= 100) return v;
    }
  }
  throw UsageError("--on-crash must be stop, restart or restart:N (N from 1 to 100), not '" + text + "'");
}

void parse_gateway(const std::string& text, ClusterConfig& c) {
  const size_t colon = text.find(':');
  c.gateway_base = parse_port(std::string_view(text).substr(0, colon), "--gateway BASE");
  if (colon != std::string::npos)
    c.gateway_service_port = parse_port(std::string_view(text).substr(colon + 1), "--gateway's service PORT");
}

// "I:ARGS": VM index I (0-63), then words for its command line.
void parse_vm_cmdline(const std::string& text, ClusterConfig& c) {
  const auto colon = text.find(':');
  if (colon == std::string::npos || colon == 0)
    throw UsageError("--vm needs I:ARGS (a VM index, a colon, command-line words), not '" + text + "'");
  int vm = 0;
  const std::string index = text.substr(0, colon);
  auto [end, ec] = std::from_chars(index.data(), index.data() + index.size(), vm);
  if (ec != std::errc() || end != index.data() + index.size() || vm < 0 || vm >= kMaxVms)
    throw UsageError("--vm: '" + index + "' is not a VM index (0 to " + std::to_string(kMaxVms - 1) + ")");
  std::string& args = c.vm_cmdline[vm];
  args += (args.empty() ? "" : " ") + text.substr(colon + 1);
}

MergeMode parse_merge_mode(const std::string& text) {
  if (text == "off") return MergeMode::kOff;
  if (text == "vmm") return MergeMode::kVmm;
  if (text == "ksm") return MergeMode::kKsm;
  throw UsageError("--merge must be off, vmm or ksm, not '" + text + "'");
}

uint64_t parse_merge_rate(const std::string& text) {
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty() || v < 1 || v > kMaxMergeRate)
    throw UsageError("--merge-rate must be a number of pages per second from 1 to " + std::to_string(kMaxMergeRate) +
                     ", not '" + text + "'");
  return v;
}

uint64_t parse_seed(const std::string& text) {
  uint64_t v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (ec != std::errc() || end != text.data() + text.size() || text.empty())
    throw UsageError("--switch-seed must be a number from 0 to 2^64-1, not '" + text + "'");
  return v;
}

}  // namespace

bool OptionReader::next() {
  if (started_) ++i_;
  started_ = true;
  if (i_ >= args_.size()) return false;
  const std::string& a = args_[i_];
  const size_t eq = a.find('=');
  inline_value_ = a.rfind("--", 0) == 0 && eq != std::string::npos;
  name_ = inline_value_ ? a.substr(0, eq) : a;
  inline_ = inline_value_ ? a.substr(eq + 1) : std::string();
  return true;
}

std::string OptionReader::value() {
  if (inline_value_) return inline_;
  if (i_ + 1 >= args_.size()) throw UsageError("option " + name_ + " needs a value");
  return args_[++i_];
}

CliResult parse_cli(const std::vector<std::string>& args) {
  CliResult r{CliCommand::kHelp, {}, {}, {}};
  if (args.empty()) throw UsageError("no command given (try 'vmm --help')");
  const std::string& cmd = args[0];
  if (cmd == "--help" || cmd == "-h" || cmd == "help") return r;
  if (cmd == "--version" || cmd == "-V" || cmd == "version") {
    r.command = CliCommand::kVersion;
    return r;
  }
  if (cmd != "run") throw UsageError("unknown command '" + cmd + "' (try 'vmm --help')");
  r.command = CliCommand::kRun;

  bool merge_rate_given = false, on_crash_given = false;
  for (OptionReader opt(args, 1); opt.next();) {
    const std::string& a = opt.word();
    const std::string& name = opt.name();
    if (name == "-k" || name == "--kernel") r.config.kernel = opt.value();
    else if (name == "-m" || name == "--mem") r.config.mem_bytes = parse_mem_size(opt.value());
    else if (name == "-c" || name == "--cpus") r.config.vcpus = parse_cpus(opt.value());
    else if (name == "--cmdline") r.config.cmdline = opt.value();
    else if (name == "--console") r.config.console = opt.value();
    else if (name == "--stats" && !opt.has_inline_value()) r.config.stats = true;
    else if (name == "--disk") r.config.disks.push_back(parse_disk(opt.value()));
    else if (name == "--net" && !opt.has_inline_value()) r.config.net = true;
    else if (name == "--mac") {
      r.config.mac = parse_mac(opt.value());
      r.config.net = true;
    }
    else if (name == "--nic") {
      const std::string v = opt.value();
      if (v == "virtio") r.config.nic = NicModel::kVirtio;
      else if (v == "e1000") r.config.nic = NicModel::kE1000;
      else throw UsageError("--nic must be virtio or e1000, not '" + v + "'");
      r.config.net = true;
    }
    else if (name == "--balloon" && !opt.has_inline_value()) r.config.balloon = true;
    else if (name == "--balloon-target") {
      r.config.balloon_target = parse_balloon_size(opt.value());
      r.config.balloon = true;
    }
    else if (name == "--merge") r.merge.mode = parse_merge_mode(opt.value());
    else if (name == "--merge-rate") {
      r.merge.pages_per_second = parse_merge_rate(opt.value());
      merge_rate_given = true;
    }
    else if (name == "--clock-offset") r.config.clock_offset_ns = parse_duration_ns(opt.value());
    else if (name == "--halt-poll") {
      const int64_t t = parse_duration_ns(opt.value());
      if (t < 0) throw UsageError("--halt-poll cannot be negative");
      r.config.halt_poll_ns = static_cast<uint64_t>(t);
    } else if (name == "--clock-uncertainty") {
      const int64_t u = parse_duration_ns(opt.value());
      if (u < 0) throw UsageError("--clock-uncertainty cannot be negative");
      r.config.clock_uncertainty_ns = static_cast<uint64_t>(u);
    }
    else if (name == "--vms") r.cluster.vms = parse_vms(opt.value());
    else if (name == "--gateway") parse_gateway(opt.value(), r.cluster);
    else if (name == "--switch-seed") r.cluster.switch_seed = parse_seed(opt.value());
    else if (name == "--vm") parse_vm_cmdline(opt.value(), r.cluster);
    else if (name == "--on-crash") {
      r.cluster.crash_restarts = parse_on_crash(opt.value());
      on_crash_given = true;
    }
    else if (name == "--control") {
      r.cluster.control = opt.value();
      if (r.cluster.control.empty()) throw UsageError("--control needs a socket path");
    }
    else if (name == "-h" || name == "--help") {
      r.command = CliCommand::kHelp;
      return r;
    } else throw UsageError("unknown option '" + a + "' (try 'vmm --help')");
  }
  if (r.config.kernel.empty()) throw UsageError("no kernel given (use -k FILE)");
  // KSM's rate is the host's (/sys/kernel/mm/ksm/pages_to_scan), not ours.
  if (merge_rate_given && r.merge.mode != MergeMode::kVmm)
    throw UsageError("--merge-rate applies only to --merge vmm (KSM's rate is set in /sys/kernel/mm/ksm)");
  if (r.config.balloon_target > r.config.mem_bytes)
    throw UsageError("--balloon-target " + std::to_string(r.config.balloon_target >> 20) +
                     " MiB is larger than the guest's " + std::to_string(r.config.mem_bytes >> 20) + " MiB");
  ClusterConfig& c = r.cluster;
  if ((c.gateway_base != 0 || !c.control.empty() || on_crash_given) && c.vms == 0) c.vms = 1;
  if (c.gateway_base != 0 && c.gateway_base + c.vms - 1 > 65535)
    throw UsageError("--gateway " + std::to_string(c.gateway_base) + " leaves no host port for VM " +
                     std::to_string(65535 - c.gateway_base + 1) + " (ports BASE to BASE+N-1 must exist)");
  for (const auto& [vm, args] : c.vm_cmdline) {
    if (vm >= std::max(c.vms, 1))
      throw UsageError("--vm " + std::to_string(vm) + ":... names a VM that does not exist (there are " +
                       std::to_string(std::max(c.vms, 1)) + ")");
  }
  // VMs sharing one console file would interleave; each needs its own.
  if (c.vms > 1 && !r.config.console.empty() && r.config.console.find("%i") == std::string::npos)
    throw UsageError("--console with --vms " + std::to_string(c.vms) + " must contain %i so each VM gets its own file");
  return r;
}

}  // namespace vmm
