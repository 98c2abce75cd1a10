// A VM's counters over a guest-marked measurement window, for `--stats`
// and scripts/bench-net.
//
// Three sources, because none alone gives "VM exits per packet":
//   kvm        KVM's own per-vCPU counters (vmm/kvm_stats.h), summed over
//              the VM's vCPUs: every exit, including those KVM handles
//              without us (an ioeventfd kick, a LAPIC access, a HLT);
//   userspace  the exits that reached the VMM, by reason (vmm/exit_stats.h);
//   nic        the NIC model's counters (MMIO exits by register, kicks,
//              interrupts, frames).
// The guest opens and closes the window through the mark port
// (vmm/devices/bench_mark.h); each mark takes a CounterSnapshot, and the
// report is the difference. Both marks are themselves one port-I/O exit
// each, and the window holds exactly one of them (KVM counts an exit
// before we see it; the VMM's own count after we handled it).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "virtio/host/virtio_net.h"
#include "vmm/devices/e1000/e1000.h"
#include "vmm/exit_stats.h"
#include "vmm/kvm_stats.h"

namespace vmm {

using Counters = std::map<std::string, uint64_t>;

struct CounterSnapshot {
  uint64_t t_ns = 0;  // steady clock
  Counters kvm;
  Counters userspace;
  Counters nic;
};

// after - before by name, nonzero differences only. A name absent before
// counts from 0; a counter that went backwards (a device reset between the
// snapshots) is left out rather than wrapped.
Counters counter_delta(const Counters& after, const Counters& before);
// "name=value name=value ..." in name order; "(none)" when empty.
std::string format_counters(const Counters& c);
// Exits by reason name ("io", "mmio", ...), from the VMM's own counts.
Counters userspace_exit_counters(const ExitStats& stats);

// The NIC models' counters under common names where they mean the same:
// mmio_exits, interrupts, tx_frames/tx_bytes, rx_frames/rx_bytes, rx_drops;
// e1000 adds MMIO exits by register (mmio_tdt, mmio_icr, ...), virtio its
// kicks (queue notifications, which reach KVM's ioeventfd, not us).
Counters nic_counters(const E1000::Stats& s);
Counters nic_counters(const VirtioTransportStats& t, const VirtioNetStats& n, uint64_t rx_dropped);

// Where a Machine's snapshots come from. kvm: one per vCPU that has
// binary statistics (empty when KVM offers none).
struct CounterSources {
  std::vector<KvmStats> kvm;
  std::function<ExitStats()> userspace;  // merged over vCPUs
  std::function<Counters()> nic;         // empty without a NIC
};
// Throws std::runtime_error if KVM's statistics cannot be read.
CounterSnapshot take_snapshot(const CounterSources& sources);

// The window: start and end marks from the guest, thread-safe. A start
// opens a window (a start while one is open restarts it; one after a
// completed window replaces it); an end closes the open window; an end
// with no open window is ignored and counted.
class MeasurementWindow {
 public:
  void start(CounterSnapshot s);
  void end(CounterSnapshot s);
  bool complete() const;
  // For --stats: nothing if the guest never marked; else one line per
  // source, each prefixed with `who` ("vmm: vm 0: "), "window kvm: ...".
  std::string report(const std::string& who) const;

 private:
  mutable std::mutex mu_;
  std::optional<CounterSnapshot> start_, end_;
  uint64_t windows_ = 0;      // completed
  uint64_t stray_ends_ = 0;   // ends with no open window
};

}  // namespace vmm
