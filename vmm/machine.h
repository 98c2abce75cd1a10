// One virtual machine: KVM objects, guest RAM with the kernel loaded by
// PVH, the platform devices on the I/O buses, and one thread per vCPU
// running the exit dispatcher. run() returns the VMM's exit status.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdio>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "vmm/bench_window.h"
#include "vmm/cli.h"
#include "vmm/exit_stats.h"
#include "vmm/guest_memory.h"
#include "vmm/io_bus.h"
#include "vmm/irq/gsi_router.h"
#include "vmm/irq/irq_backend.h"
#include "vmm/kvm.h"
#include "vmm/net/frame_port.h"
#include "vmm/pci/pci_bus.h"
#include "vmm/post_mortem.h"
#include "vmm/snapshot/kvm_dirty_log.h"
#include "vmm/time_page.h"
#include "vmm/vcpu_probe.h"

namespace vmm {

class VirtioPciDevice;
class VirtioNetDevice;
class VirtioBalloonDevice;
class E1000;
class Uart16550;
class MergeService;
namespace net {
class DiscardPort;
}

// Connects a VM's NIC to a network: gets the NIC's receive side, returns
// the port the NIC transmits into (e.g. a switch's attach()).
using NetConnector = std::function<std::shared_ptr<net::FramePort>(std::shared_ptr<net::FrameSink>)>;

// Exit statuses beyond the guest's own (see usage_text()).
constexpr int kExitUsage = 2;
constexpr int kExitGuestCrash = 120;
constexpr int kExitVmmError = 125;

// How a Machine talks to the outside when it is one VM of several
// (vmm/cluster.h). Left empty, it behaves as a lone VM.
struct MachineIo {
  std::string name;                      // "vm 1": names the VM in the VMM's own messages
  std::function<void(uint8_t)> console;  // takes the serial console's bytes instead of --console or stdout
  // Same-page merging (--merge): the VM registers its RAM here once built
  // and leaves before it is freed; null: no merging. Must outlive the VM.
  MergeService* merge = nullptr;
};

class Machine {
 public:
  // Builds the whole VM; throws (KvmError, LoadError, std::runtime_error)
  // with a one-line reason if anything is missing or malformed. `io` names
  // the VM and takes its console (cluster mode). With config.net, the
  // virtio-net NIC is connected through `connect_net`, or, when that is
  // empty (a lone VM), to a port that drops everything.
  // kSnapshot (Machine::restore): the kernel is not loaded; RAM and every
  // state come from a snapshot instead.
  enum class Boot { kKernel, kSnapshot };
  explicit Machine(const VmConfig& config, MachineIo io = {}, NetConnector connect_net = {},
                   Boot boot = Boot::kKernel);
  ~Machine();

  int run();

  // ---- Control (the nemesis and the control socket); any thread ----------
  // Stops every vCPU at its next exit (kicked out of KVM_RUN) and waits up
  // to 2 s until all are parked; false if they did not park in time. Device
  // I/O threads keep running: frames for a paused VM queue up or drop, as
  // for a real stopped machine. Idempotent.
  bool pause();
  void resume();
  bool paused() const { return paused_.load(); }
  // Every vCPU's registers and LAPIC (vmm/vcpu_probe.h), read with the
  // vCPUs parked; the VM runs on afterwards (a paused VM stays paused).
  // Throws std::runtime_error if they did not park within 2 s.
  std::vector<VcpuProbe> probe_vcpus();
  // Ends the VM now, as a power cut would: run() returns `status`.
  void kill(int status);
  // Skews this VM's clock (the time page's offset, boot/platform.h).
  void set_clock_offset(int64_t offset_ns);
  int64_t clock_offset() const { return time_page_.offset_ns(); }

  // The virtio-balloon device (--balloon), nullptr without one. Its
  // set_target_bytes(), request_stats() and readings may be used from any
  // thread while the VM runs (the control socket's balloon commands).
  VirtioBalloonDevice* balloon() const { return balloon_.get(); }

  // ---- Snapshots (vmm/snapshot/README.md; defined in vmm/snapshot/) -------
  struct SnapshotResult {
    uint64_t bytes = 0;   // the file's size
    uint64_t pages = 0;   // RAM pages written
    double pause_ms = 0;  // how long the vCPUs were stopped
    bool incremental = false;
  };
  // Saves the VM to `file`: everything (full), or with `base` naming this
  // machine's last snapshot, only the pages dirtied since (incremental).
  // The vCPUs are paused and the devices quiesced while the state is
  // read; the VM runs on afterwards (a VM paused before stays paused).
  // Throws std::runtime_error with a one-line reason (bad file or base, a
  // device that cannot be saved, a KVM failure); the VM keeps running.
  SnapshotResult snapshot(const std::string& file, const std::string& base = "");
  // Builds the VM saved in `file` (following its chain of bases) in this
  // process, ready to run(): RAM, vCPUs, interrupt controllers, clock and
  // devices as they were. `console` and `stats` are the new VMM's own.
  // Throws snapshot::SnapshotError or std::runtime_error.
  static std::unique_ptr<Machine> restore(const std::string& file, const std::string& console, bool stats,
                                          MachineIo io = {}, NetConnector connect_net = {});
  // ---- Same-page merging (vmm/machine_merge.cc); the merger's thread ------
  // Stops every writer of guest RAM: the vCPUs park (as for pause(), but
  // apart from it, so the nemesis's pause and resume are left alone), then
  // each device's lock is taken (virtio I/O threads, virtio-blk's in-flight
  // reads finished; the e1000; the time page). False, with nothing held,
  // if the vCPUs did not park within 2 s.
  bool stop_guest_writes();
  void resume_guest_writes();

 private:
  // The vCPUs parked while the VM's state is read (snapshot, probe_vcpus),
  // and let run again when this ends or at release(); a VM paused before
  // stays paused. Throws std::runtime_error if they do not park in 2 s.
  class ParkedVcpus {
   public:
    explicit ParkedVcpus(Machine& m);
    ~ParkedVcpus() { release(); }
    ParkedVcpus(const ParkedVcpus&) = delete;
    ParkedVcpus& operator=(const ParkedVcpus&) = delete;
    void release();

   private:
    Machine& m_;
    const bool was_paused_;
    bool released_ = false;
  };

  // Where the vCPU starts: the kernel's PVH entry and %ebx.
  struct BootEntry {
    uint32_t entry;
    uint64_t start_info;
  };
  static BootEntry load_kernel(const VmConfig& config, GuestMemory& mem);
  void setup_devices();
  // The devices of config_ on the PCI bus: virtio disks, and the NIC
  // (virtio-net or e1000), I/O threads started.
  void setup_virtio(const NetConnector& connect_net);
  void setup_vcpus(const BootEntry& boot);
  // Joins io_.merge / leaves it (machine_merge.cc).
  void register_with_merger();
  void unregister_from_merger();
  std::function<int(uint64_t, uint8_t*, uint64_t)> merge_balloon_release();
  void vcpu_loop(int index);
  // Dispatches one exit; returns false when the vCPU must stop.
  bool handle_exit(Vcpu& vcpu, kvm_run* run);
  void handle_pio(kvm_run* run);
  void handle_mmio(kvm_run* run);
  void report_crash(Vcpu& vcpu, const std::string& what);
  // First caller's status wins; every vCPU is kicked out of KVM_RUN.
  void request_stop(int status);
  void console_byte(uint8_t b);
  // The guest's benchmark marks (boot/platform.h): snapshot the counters.
  void bench_mark(uint32_t what);
  // --stats: KVM's exit counters over the whole run and the marked window.
  std::string kvm_and_window_report(const CounterSnapshot& end) const;

  VmConfig config_;
  MachineIo io_;
  std::string who_;  // "vmm: " or "vmm: vm 1: ", before every message
  // Guest RAM and the kernel come first: a bad image or size is reported
  // before KVM is asked for anything, so bad input never creates a VM.
  GuestMemory mem_;
  BootEntry boot_;
  Kvm kvm_;
  Vm vm_;
  // Interrupt routing (vmm/irq); made in setup_devices(). Declared before
  // the buses: PCI devices live as long as the buses that map them, and
  // their MSI-X vectors and ioeventfds must be released while the router
  // and the backend still exist.
  IrqCapabilities irq_caps_;
  std::unique_ptr<KvmIrqBackend> irq_backend_;
  std::unique_ptr<GsiRouter> gsi_router_;
  IoBus pio_;
  IoBus mmio_;
  // PCI (vmm/pci) and the virtio devices on it, with their slots.
  std::shared_ptr<PciBus> pci_;
  std::vector<std::pair<uint32_t, std::shared_ptr<VirtioPciDevice>>> virtio_;
  std::shared_ptr<net::DiscardPort> discard_port_;  // the lone VM's NIC sends here
  std::shared_ptr<VirtioBalloonDevice> balloon_;    // with --balloon (also in virtio_)
  std::shared_ptr<E1000> e1000_;                    // with --nic e1000
  std::shared_ptr<VirtioNetDevice> virtio_net_;     // with --nic virtio (also in virtio_)
  uint32_t e1000_slot_ = 0;
  TimePage time_page_;
  // What the guest told us about its delivery structures, for the crash
  // report of a triple fault (vmm/post_mortem.h).
  PostMortem post_mortem_{mem_};
  std::vector<std::unique_ptr<Vcpu>> vcpus_;
  std::vector<std::thread> threads_;
  std::vector<ExitStats> stats_;
  // Counters for --stats beyond the exit table (vmm/bench_window.h): KVM's
  // per-vCPU statistics, snapshotted at run() start and end and at the
  // guest's marks. kvm_stats_note_ says why KVM's are missing, if they are.
  CounterSources counter_sources_;
  CounterSnapshot run_start_;
  MeasurementWindow window_;
  std::string kvm_stats_note_;
  int run_area_size_ = 0;
  bool has_pit_ = false;

  // Snapshots (vmm/snapshot/machine_snapshot.cc).
  std::shared_ptr<Uart16550> uart_;
  std::mutex snapshot_mu_;                          // one snapshot at a time
  std::unique_ptr<snapshot::KvmDirtyLog> dirty_log_;  // since the first snapshot
  std::string last_snapshot_;                       // absolute path; base for the next incremental
  uint64_t last_snapshot_id_ = 0;
  // Loads RAM and state from the chain (oldest first) into this machine,
  // built with Boot::kSnapshot and not yet running.
  void load_snapshot(const std::vector<std::string>& chain);

  std::atomic<bool> stopping_{false};
  // Pausing: vCPUs park on pause_cv_ while paused_; parked_ counts them.
  // control_mu_ also orders kicks against run() starting the threads.
  std::atomic<bool> paused_{false};
  // The merger holds the vCPUs (stop_guest_writes); parked like paused_.
  std::atomic<bool> held_{false};
  // The device locks taken by stop_guest_writes(), in order.
  std::vector<std::unique_lock<std::mutex>> write_holds_;
  std::mutex control_mu_;
  std::condition_variable pause_cv_;
  int parked_ = 0;
  int exited_ = 0;  // vCPU threads that have left vcpu_loop (control_mu_)
  // Kicks every started vCPU out of KVM_RUN; control_mu_ held.
  void kick_all_locked();
  std::atomic<int> status_{0};
  std::mutex report_mu_;

  FILE* console_ = nullptr;
  bool own_console_ = false;
};

}  // namespace vmm
