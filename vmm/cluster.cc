#include "vmm/cluster.h"

#include "vmm/cluster_control.h"
#include "vmm/control/control_server.h"
#include "vmm/thread_name.h"

#include <cstdio>
#include <iostream>
#include <mutex>
#include <sstream>
#include <stdexcept>
#include <thread>

namespace vmm {
namespace {


// A word of the command line starting with `key` ("ip=").
bool has_word(const std::string& cmdline, const std::string& key) {
  std::istringstream words(cmdline);
  std::string w;
  while (words >> w)
    if (w.rfind(key, 0) == 0) return true;
  return false;
}

net::SwitchOptions switch_options(const ClusterConfig& cc) {
  net::SwitchOptions o;
  o.seed = cc.switch_seed;
  return o;
}

}  // namespace

net::Ipv4 cluster_vm_ip(int index) { return net::ipv4(10, 0, 0, static_cast<uint8_t>(10 + index)); }
net::MacAddress cluster_vm_mac(int index) { return {0x52, 0x54, 0x00, 0x00, 0x00, static_cast<uint8_t>(10 + index)}; }
std::string cluster_port_name(int index) { return "vm" + std::to_string(index); }

std::string substitute_vm_index(std::string_view text, int index) {
  std::string out;
  for (size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '%' && i + 1 < text.size() && text[i + 1] == 'i') {
      out += std::to_string(index);
      ++i;
    } else if (text[i] == '%' && i + 1 < text.size() && text[i + 1] == '%') {
      out += '%';
      ++i;
    } else {
      out += text[i];
    }
  }
  return out;
}

VmConfig cluster_vm_config(const VmConfig& base, int index, const std::string& extra_cmdline) {
  static_assert(kMaxVms + 10 <= 254, "the address plan gives VM i the host number 10+i of a /24");
  VmConfig c = base;
  c.cmdline = substitute_vm_index(base.cmdline, index);
  if (!extra_cmdline.empty()) c.cmdline += (c.cmdline.empty() ? "" : " ") + extra_cmdline;
  c.console = substitute_vm_index(base.console, index);
  for (DiskConfig& d : c.disks) d.path = substitute_vm_index(d.path, index);
  // Every VM of a cluster is on the switch, with the address plan's MAC.
  c.net = true;
  c.mac = cluster_vm_mac(index);
  std::string extra;
  if (!has_word(c.cmdline, "ip=")) extra += " ip=" + net::format_ipv4(cluster_vm_ip(index));
  if (!has_word(c.cmdline, "gw=")) extra += " gw=" + net::format_ipv4(net::kGatewayIp);
  c.cmdline = c.cmdline.empty() ? extra.substr(1) : c.cmdline + extra;
  return c;
}

// Console lines of every VM on one stdout, each prefixed "[vm i] ". Bytes
// are gathered per VM and written a whole line at a time under one lock,
// so lines of different VMs never mix. A guest that never ends its line
// is cut every kMaxLine bytes, so it cannot grow our memory.
class Cluster::ConsoleLines {
 public:
  explicit ConsoleLines(size_t vms) : pending_(vms) {}
  // One lock for every VM: console traffic is light, and it keeps the
  // buffers and stdout consistent whatever thread a byte comes from.
  void byte(size_t vm, uint8_t b) {
    std::lock_guard lock(mu_);
    std::string& line = pending_[vm];
    if (b != '\n') line += static_cast<char>(b);
    if (b == '\n' || line.size() >= kMaxLine) emit(vm);
  }
  // At a VM's end: its unfinished line, if any.
  void finish(size_t vm) {
    std::lock_guard lock(mu_);
    if (!pending_[vm].empty()) emit(vm);
  }

 private:
  static constexpr size_t kMaxLine = 4096;
  void emit(size_t vm) {  // mu_ held
    std::fprintf(stdout, "[vm %zu] %s\n", vm, pending_[vm].c_str());
    std::fflush(stdout);
    pending_[vm].clear();
  }
  std::mutex mu_;
  std::vector<std::string> pending_;
};

Cluster::Cluster(const VmConfig& base, const ClusterConfig& cc, const MergeConfig& merge, MachineFactory first_boot)
    : base_(base), cc_(cc), switch_(switch_options(cc)) {
  if (cc_.vms < 1 || cc_.vms > kMaxVms) throw std::invalid_argument("a cluster has 1 to 64 VMs");
  if (merge.mode != MergeMode::kOff) merge_ = std::make_unique<MergeService>(merge);
  if (cc_.gateway_base != 0) {
    net::GatewayConfig g;
    for (int i = 0; i < cc_.vms; ++i) g.vm_ips.push_back(cluster_vm_ip(i));
    g.host_base_port = cc_.gateway_base;
    g.service_port = cc_.gateway_service_port;
    gateway_ = std::make_unique<net::Gateway>(switch_, g);
  }
  const bool shared_stdout = base_.console.empty() && cc_.vms > 1;
  if (shared_stdout) console_ = std::make_unique<ConsoleLines>(cc_.vms);
  slots_.resize(static_cast<size_t>(cc_.vms));
  for (int i = 0; i < cc_.vms; ++i) {
    auto extra = cc_.vm_cmdline.find(i);
    slots_[i].config = cluster_vm_config(base_, i, extra == cc_.vm_cmdline.end() ? "" : extra->second);
    try {
      slots_[i].machine = make_machine(i, first_boot);
    } catch (const std::exception& e) {
      throw std::runtime_error("vm " + std::to_string(i) + ": " + e.what());
    }
  }
}

Cluster::~Cluster() {
  shutdown();
  for (Slot& s : slots_) {
    if (s.thread.joinable()) s.thread.join();
  }
}

std::unique_ptr<Machine> Cluster::make_machine(int i, const MachineFactory& factory) {
  MachineIo io;
  if (cc_.vms > 1) io.name = "vm " + std::to_string(i);
  if (console_) io.console = [this, i](uint8_t b) { console_->byte(i, b); };
  io.merge = merge_.get();
  const std::string port = cluster_port_name(i);
  NetConnector connect = [this, port](std::shared_ptr<net::FrameSink> sink) {
    return switch_.attach(port, std::move(sink));
  };
  if (factory) return factory(i, std::move(io), std::move(connect));
  return std::make_unique<Machine>(slots_[i].config, std::move(io), std::move(connect));
}

void Cluster::start_locked(int i) {
  Slot& s = slots_[i];
  s.running = true;
  s.killed = false;
  s.restart_due = false;
  ++s.boots;
  s.thread = std::thread([this, i] {
    // Named, or it would inherit its starter's name ("control" after a
    // restart from the control socket).
    set_thread_name("vm" + std::to_string(i));
    Machine* m;
    {
      std::lock_guard lock(mu_);
      m = slots_[i].machine.get();
    }
    int status;
    // A VM's failure is its own: it is logged, and the others go on.
    try {
      status = m->run();
    } catch (const std::exception& e) {
      std::cerr << "vmm: vm " + std::to_string(i) + ": " + e.what() + "\n";
      status = kExitVmmError;
    }
    if (console_) console_->finish(i);
    std::lock_guard lock(mu_);
    Slot& s = slots_[i];
    if (shutting_down_ && status == kKilledStatus) status = 0;
    s.exit_status = status;
    if (cc_.vms > 1 || s.killed) {
      const char* why = s.killed ? " (killed)"
                        : status == kExitGuestCrash ? " (guest crashed)"
                        : status == kExitVmmError   ? " (VMM error)"
                                                    : "";
      std::cerr << "vmm: vm " + std::to_string(i) + " exited with status " + std::to_string(status) + why + "\n";
    }
    if (status == kExitGuestCrash && !s.killed) note_crash_locked(i);
    // Last: restart() joins this thread once it sees the VM stopped.
    s.running = false;
    changed_.notify_all();
  });
}

int Cluster::run() {
  // Each message in one write: the VMs' threads share stderr.
  std::string banner = "vmm: cluster of " + std::to_string(cc_.vms) + " VM" + (cc_.vms > 1 ? "s" : "") + " on 10.0.0.0/24";
  if (gateway_)
    banner += "; gateway 10.0.0.1 relays 127.0.0.1:" + std::to_string(cc_.gateway_base) + "-" +
              std::to_string(cc_.gateway_base + cc_.vms - 1) + " to UDP port " + std::to_string(cc_.gateway_service_port);
  std::cerr << banner + "\n";

  // The control socket first: a path that cannot be bound is a setup
  // error, reported before any VM boots.
  control::CommandTable commands;
  std::unique_ptr<control::ControlServer> server;
  if (!cc_.control.empty()) {
    add_cluster_commands(*this, commands);
    server = std::make_unique<control::ControlServer>(cc_.control, commands);
    std::cerr << "vmm: control socket " + cc_.control + "\n";
  }
  {
    std::lock_guard lock(mu_);
    for (int i = 0; i < cc_.vms; ++i) start_locked(i);
  }
  {
    // Until every VM has stopped; restarts after crashes (--on-crash
    // restart) are done here, where no VM thread needs joining itself.
    std::unique_lock lock(mu_);
    for (;;) {
      changed_.wait(lock, [this] {
        for (const Slot& s : slots_)
          if (s.restart_due) return true;
        return !any_running_locked();
      });
      for (int i = 0; i < cc_.vms; ++i) {
        Slot& s = slots_[static_cast<size_t>(i)];
        if (!s.restart_due) continue;
        s.restart_due = false;
        if (shutting_down_) continue;
        std::cerr << "vmm: vm " + std::to_string(i) + " crashed; booting it again (--on-crash restart, crash " +
                         std::to_string(s.crashes) + ")\n";
        try {
          restart_locked(i, /*if_stopped=*/true);
        } catch (const std::exception& e) {
          std::cerr << "vmm: vm " + std::to_string(i) + " could not boot again: " + e.what() + "\n";
        }
      }
      if (!any_running_locked()) break;
    }
  }
  server.reset();
  for (Slot& s : slots_) {
    if (s.thread.joinable()) s.thread.join();
  }
  std::fflush(stdout);

  if (base_.stats) std::cerr << format_stats() + (merge_ ? "vmm: " + merge_->summary() : "");
  for (const Slot& s : slots_)
    if (s.exit_status != 0) return s.exit_status;
  return 0;
}

std::string Cluster::format_stats() {
  std::string out = "vmm: switch ports\n" + switch_.format_stats();
  if (gateway_) out += "vmm: " + gateway_->format_stats();
  return out;
}

Cluster::Slot& Cluster::slot_locked(int vm) {
  if (vm < 0 || vm >= cc_.vms) {
    throw std::invalid_argument("no VM " + std::to_string(vm) + " (the cluster has VMs 0 to " +
                                std::to_string(cc_.vms - 1) + ")");
  }
  return slots_[static_cast<size_t>(vm)];
}

Cluster::VmStatus Cluster::status(int vm) {
  std::lock_guard lock(mu_);
  Slot& s = slot_locked(vm);
  const VmState state = !s.running ? VmState::kStopped : s.machine->paused() ? VmState::kPaused : VmState::kRunning;
  return {state, s.exit_status, s.killed, s.boots, s.crashes, s.machine->clock_offset()};
}

void Cluster::pause(int vm) {
  std::lock_guard lock(mu_);
  Slot& s = slot_locked(vm);
  if (!s.running) throw std::runtime_error("VM " + std::to_string(vm) + " is not running");
  if (!s.machine->pause()) throw std::runtime_error("VM " + std::to_string(vm) + "'s vCPUs did not stop within 2 s");
}

std::vector<VcpuProbe> Cluster::probe_vcpus(int vm) {
  std::lock_guard lock(mu_);
  Slot& s = slot_locked(vm);
  if (!s.running) throw std::runtime_error("VM " + std::to_string(vm) + " is not running");
  return s.machine->probe_vcpus();
}

void Cluster::resume(int vm) {
  std::lock_guard lock(mu_);
  Slot& s = slot_locked(vm);
  if (!s.running) throw std::runtime_error("VM " + std::to_string(vm) + " is not running");
  s.machine->resume();
}

void Cluster::kill(int vm) {
  std::lock_guard lock(mu_);
  Slot& s = slot_locked(vm);
  if (!s.running) throw std::runtime_error("VM " + std::to_string(vm) + " is not running");
  s.killed = true;
  s.machine->kill(kKilledStatus);
}

bool Cluster::any_running_locked() const {
  for (const Slot& s : slots_)
    if (s.running) return true;
  return false;
}

void Cluster::note_crash_locked(int vm) {
  Slot& s = slots_[static_cast<size_t>(vm)];
  ++s.crashes;
  if (cc_.crash_restarts == 0 || shutting_down_) return;
  const auto now = std::chrono::steady_clock::now();
  while (!s.recent_crashes.empty() && now - s.recent_crashes.front() > kCrashWindow) s.recent_crashes.pop_front();
  s.recent_crashes.push_back(now);
  if (s.recent_crashes.size() > static_cast<size_t>(cc_.crash_restarts)) {
    std::cerr << "vmm: vm " + std::to_string(vm) + " crashed " + std::to_string(s.recent_crashes.size()) +
                     " times within " + std::to_string(kCrashWindow.count()) + " s; left stopped\n";
    return;
  }
  s.restart_due = true;
}

void Cluster::restart(int vm, bool if_stopped) {
  std::lock_guard lock(mu_);
  restart_locked(vm, if_stopped);
}

void Cluster::restart_locked(int vm, bool if_stopped) {
  Slot& s = slot_locked(vm);
  if (shutting_down_) throw std::runtime_error("the cluster is shutting down");
  if (s.running) {
    if (if_stopped) return;
    throw std::runtime_error("VM " + std::to_string(vm) + " is running (kill it first)");
  }
  // Its thread has finished (it marks the VM stopped last); the old machine
  // goes first, so its NIC leaves the switch port the new one takes.
  if (s.thread.joinable()) s.thread.join();
  const int64_t offset = s.machine->clock_offset();
  s.machine.reset();
  s.machine = make_machine(vm);
  s.machine->set_clock_offset(offset);  // a skew outlives a reboot, like a bad RTC
  start_locked(vm);
}

void Cluster::set_clock_offset(int vm, int64_t offset_ns) {
  std::lock_guard lock(mu_);
  slot_locked(vm).machine->set_clock_offset(offset_ns);
}

void Cluster::with_machine(int vm, const std::function<void(Machine&)>& fn) {
  std::lock_guard lock(mu_);
  fn(*slot_locked(vm).machine);
}

void Cluster::shutdown() {
  std::lock_guard lock(mu_);
  shutting_down_ = true;
  for (Slot& s : slots_) {
    if (s.running) s.machine->kill(kKilledStatus);
  }
}

}  // namespace vmm
