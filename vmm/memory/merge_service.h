// Same-page merging for every VM of one VMM process (`--merge`), the part
// the lone VM and the cluster share: one PageMerger over the RAM of all VMs
// (sharing across VMs is the point), a scanner thread that feeds it at the
// configured rate, and the quiesce that stops every writer of guest RAM
// while pages are compared and remapped. With `--merge=ksm` there is no
// scanner: every VM's RAM is marked MADV_MERGEABLE and Linux's ksmd does
// the work, so the two can be compared on the same guests.
//
// VMs register themselves (Machine's constructor calls add(), its
// destructor remove(), before their RAM goes away), so a VM that a
// cluster restarts leaves the merger with its old RAM and joins again
// with the new.
//
// Threads and locks. members_mu_ is held by the scanner for a whole tick
// (scan and quiesce) and by add()/remove(); so a VM can never leave while
// it is being stopped or merged. The quiesce stops each member in turn
// (MergeMember::stop_writers: its vCPUs park, then its devices' locks are
// taken) and only then lets PageMerger work; see page_merger.h for why the
// merger's own lock comes last. Lock order: members_mu_ -> a VM's vCPU
// pause and device locks -> PageMerger's lock.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "vmm/cli.h"
#include "vmm/memory/page_merger.h"

namespace vmm {

class GuestMemory;

// One VM as the merger sees it.
struct MergeMember {
  GuestMemory* memory = nullptr;
  std::string name;
  // Stops everything that writes this VM's RAM (vCPUs, device threads,
  // asynchronous disk reads) and returns true; or returns false with
  // nothing left stopped. resume_writers() undoes a successful stop.
  std::function<bool()> stop_writers;
  std::function<void()> resume_writers;
};

// Linux KSM's counters (/sys/kernel/mm/ksm), for --merge=ksm.
struct KsmReading {
  bool available = false;  // the directory and its counters exist
  bool running = false;    // run == 1
  uint64_t pages_shared = 0, pages_sharing = 0, pages_unshared = 0, full_scans = 0;
  uint64_t pages_to_scan = 0, sleep_millisecs = 0;
  std::string note;  // why not available, or not running
};
// Reads the counters from `dir` (a parameter so tests can use a fake tree).
KsmReading read_ksm(const std::string& dir = "/sys/kernel/mm/ksm");

struct MergeReport {
  MergeMode mode = MergeMode::kOff;
  size_t vms = 0;             // VMs registered
  // --merge=vmm
  MergerStats merger;
  uint64_t pages_sharing = 0;  // guest pages still backed by a pool page
  uint64_t pages_zero = 0;     // guest pages dropped to the zero page, still zero
  uint64_t bytes_saved = 0;
  double scanner_cpu_seconds = 0;  // the scanner thread's CPU time
  uint64_t ticks = 0;              // scanner wake-ups
  uint64_t quiesce_failures = 0;   // batches dropped because a VM could not be stopped
  uint64_t pages_per_second = 0;
  // --merge=ksm
  KsmReading ksm;
  uint64_t mergeable_bytes = 0;    // RAM marked MADV_MERGEABLE
  std::string ksm_error;           // why madvise(MADV_MERGEABLE) failed, if it did
};

class MergeService {
 public:
  // kVmm starts the scanner thread; kKsm only marks RAM as it is added.
  // Scans every `tick` with a budget of pages_per_second * tick.
  explicit MergeService(const MergeConfig& config, std::chrono::milliseconds tick = std::chrono::milliseconds(50));
  ~MergeService();
  MergeService(const MergeService&) = delete;
  MergeService& operator=(const MergeService&) = delete;

  MergeMode mode() const { return config_.mode; }
  void add(MergeMember member);
  void remove(const GuestMemory& memory);

  // The balloon's release hook (BalloonOptions::release) for pages of a
  // merged VM; empty unless the mode is vmm (plain MADV_DONTNEED is right
  // for KSM's pages and unmerged RAM).
  std::function<int(uint64_t gpa, uint8_t* host, uint64_t len)> balloon_release();

  // One scanner tick, on the calling thread (tests; the thread does this).
  void scan_once(uint64_t budget);

  MergeReport report() const;
  // "merge (vmm): ..." in one line, for --stats.
  std::string summary() const;

 private:
  void scanner_main();
  // PageMerger's quiesce; members_mu_ is held by the caller (the tick).
  void quiesce(const std::function<void()>& work);

  const MergeConfig config_;
  const std::chrono::milliseconds tick_;
  mutable std::mutex members_mu_;
  std::vector<MergeMember> members_;
  std::unique_ptr<PageMerger> merger_;  // kVmm only
  std::atomic<uint64_t> quiesce_failures_{0};
  std::atomic<uint64_t> ticks_{0};
  std::atomic<uint64_t> scanner_cpu_ns_{0};
  std::atomic<uint64_t> mergeable_bytes_{0};
  std::string ksm_error_;  // members_mu_

  std::mutex stop_mu_;
  std::condition_variable stop_cv_;
  bool stop_ = false;
  std::thread scanner_;
};

}  // namespace vmm
