// Cluster mode (`vmm run --vms N`): N Machines in one process, each its own
// KVM VM with its own threads, joined by one virtual switch
// (vmm/net/switch.h), with an optional gateway port relaying UDP to
// 127.0.0.1 (vmm/net/gateway.h). DESIGN.md decision 7: the hypervisor is the
// nemesis, so every VM of a cluster lives here.
//
// Address plan (docs/architecture.md): the network is 10.0.0.0/24; the
// gateway is 10.0.0.1 with MAC 52:54:00:00:00:01; VM i is 10.0.0.(10+i)
// with MAC 52:54:00:00:00:(10+i), and its command line gets
// "ip=10.0.0.(10+i) gw=10.0.0.1" appended unless it already sets them.
//
// A VM that crashes or exits does not stop the others. The cluster runs
// until no VM is running; its exit status: 0 if every VM exited 0, else the
// first nonzero status in VM order.
//
// With --control PATH the cluster also serves the control socket
// (vmm/control/, commands in cluster_control.cc): the nemesis pauses,
// resumes, kills and restarts VMs (a restarted VM boots again from the
// same configuration and disk), cuts and heals links and skews clocks.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "vmm/cli.h"
#include "vmm/machine.h"
#include "vmm/memory/merge_service.h"
#include "vmm/net/frame_port.h"
#include "vmm/net/gateway.h"
#include "vmm/net/packet.h"
#include "vmm/net/switch.h"

namespace vmm {

net::Ipv4 cluster_vm_ip(int index);          // 10.0.0.(10+i)
net::MacAddress cluster_vm_mac(int index);   // 52:54:00:00:00:(10+i)
std::string cluster_port_name(int index);    // "vm<i>", the VM's switch port

// "%i" becomes the VM's index and "%%" a single '%'; any other '%' stays.
std::string substitute_vm_index(std::string_view text, int index);
// VM i's configuration: %i substituted in the command line, console file
// and disk paths, `extra_cmdline` (from --vm i:ARGS) appended, then the
// address plan (ip=, gw=) unless given, and a NIC with the plan's MAC.
VmConfig cluster_vm_config(const VmConfig& base, int index, const std::string& extra_cmdline = "");

class Cluster {
 public:
  // Builds VM i the first time instead of booting its kernel (`vmm
  // restore`); a later restart boots the kernel as usual.
  using MachineFactory = std::function<std::unique_ptr<Machine>(int vm, MachineIo io, NetConnector connect)>;
  // Builds every VM (in order; the first failure throws, naming the VM),
  // the switch and the gateway (when cc.gateway_base is set).
  // `merge`: same-page merging across all its VMs (--merge).
  Cluster(const VmConfig& base, const ClusterConfig& cc, const MergeConfig& merge = {},
          MachineFactory first_boot = {});
  ~Cluster();

  // Runs every VM to its end; returns the cluster's exit status.
  int run();

  net::Switch& network() { return switch_; }
  // The merger of all VMs (--merge), null when merging is off.
  MergeService* merge() { return merge_.get(); }
  int vms() const { return cc_.vms; }

  // ---- Control: any thread; each throws std::invalid_argument (bad VM
  // index) or std::runtime_error (the VM is not in a state for it) ----------
  enum class VmState { kRunning, kPaused, kStopped };
  struct VmStatus {
    VmState state;
    int exit_status;  // when stopped
    bool killed;      // stopped by kill(), not by the guest
    int boots;        // 1 + restarts
    int crashes;      // guest crashes, over all boots
    int64_t clock_offset_ns;
  };
  VmStatus status(int vm);
  void pause(int vm);
  // The running VM's vCPUs, registers and LAPIC (Machine::probe_vcpus).
  std::vector<VcpuProbe> probe_vcpus(int vm);
  void resume(int vm);
  void kill(int vm);
  // Boots a stopped VM again (same configuration, same disk). With
  // `if_stopped`, a running VM is left alone instead of being an error.
  void restart(int vm, bool if_stopped = false);
  void set_clock_offset(int vm, int64_t offset_ns);
  // Runs `fn` with VM vm's Machine while it cannot be replaced by a restart.
  void with_machine(int vm, const std::function<void(Machine&)>& fn);
  // Stops every VM; run() then returns 0 unless a VM had failed before.
  void shutdown();
  std::string format_stats();

 private:
  class ConsoleLines;
  struct Slot {
    VmConfig config;
    std::unique_ptr<Machine> machine;
    std::thread thread;
    bool running = false;
    int exit_status = 0;
    bool killed = false;
    int boots = 0;
    int crashes = 0;
    // --on-crash restart: crash times within kCrashWindow; run()
    // restarts a VM whose restart_due is set.
    std::deque<std::chrono::steady_clock::time_point> recent_crashes;
    bool restart_due = false;
  };
  static constexpr int kKilledStatus = 137;  // as a shell reports SIGKILL
  // --on-crash restart:N counts restarts within this window.
  static constexpr std::chrono::seconds kCrashWindow{60};

  std::unique_ptr<Machine> make_machine(int vm, const MachineFactory& factory = {});
  void start_locked(int vm);  // mu_ held
  void restart_locked(int vm, bool if_stopped);  // mu_ held
  bool any_running_locked() const;               // mu_ held
  // The VM thread's end, mu_ held: a crash under --on-crash restart marks
  // the VM for run() to restart, unless its restarts are used up.
  void note_crash_locked(int vm);
  Slot& slot_locked(int vm);  // mu_ held; throws for a bad index

  VmConfig base_;
  ClusterConfig cc_;
  net::Switch switch_;
  std::unique_ptr<net::Gateway> gateway_;
  std::unique_ptr<ConsoleLines> console_;  // null when each VM has its own console file
  // Before slots_: the machines leave it as they are destroyed.
  std::unique_ptr<MergeService> merge_;
  std::mutex mu_;
  std::condition_variable changed_;  // a VM stopped
  std::vector<Slot> slots_;
  bool shutting_down_ = false;
};

}  // namespace vmm
