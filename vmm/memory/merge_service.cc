#include "vmm/memory/merge_service.h"

#include <sys/mman.h>
#include <sys/prctl.h>
#include <time.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <iostream>

#include "vmm/guest_memory.h"
#include "vmm/thread_name.h"

namespace vmm {
namespace {

std::optional<uint64_t> read_counter(const std::string& path) {
  std::ifstream f(path);
  uint64_t v = 0;
  if (!(f >> v)) return std::nullopt;
  return v;
}

uint64_t thread_cpu_ns() {
  timespec ts{};
  ::clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1'000'000'000ull + static_cast<uint64_t>(ts.tv_nsec);
}

}  // namespace

KsmReading read_ksm(const std::string& dir) {
  KsmReading k;
  const auto run = read_counter(dir + "/run");
  if (!run) {
    k.note = "KSM is not available on this host (no " + dir + "/run: a kernel without CONFIG_KSM?)";
    return k;
  }
  struct Field {
    const char* name;
    uint64_t* into;
  } fields[] = {{"pages_shared", &k.pages_shared},   {"pages_sharing", &k.pages_sharing},
                {"pages_unshared", &k.pages_unshared}, {"full_scans", &k.full_scans},
                {"pages_to_scan", &k.pages_to_scan}, {"sleep_millisecs", &k.sleep_millisecs}};
  for (const Field& f : fields) {
    const auto v = read_counter(dir + "/" + f.name);
    if (!v) {
      k.note = "KSM is not available on this host (cannot read " + dir + "/" + f.name + ")";
      return k;
    }
    *f.into = *v;
  }
  k.available = true;
  k.running = *run == 1;
  if (!k.running) k.note = "KSM is not running (echo 1 > " + dir + "/run as root to start ksmd)";
  return k;
}

MergeService::MergeService(const MergeConfig& config, std::chrono::milliseconds tick)
    : config_(config), tick_(tick) {
  if (config_.mode != MergeMode::kVmm) return;
  // Merging shares 4 KiB pages: a transparent huge page under guest RAM
  // must be split before any page of it can be shared, and THP also backs
  // a 2 MiB region of our own thread stacks and malloc arenas of which a
  // few KiB are used (the bench saw 4 MiB of that for the scanner thread
  // alone). So with --merge=vmm this process takes no new huge pages. It
  // is set before any VM's RAM is touched (the service is made first).
  if (::prctl(PR_SET_THP_DISABLE, 1, 0, 0, 0) != 0)
    std::cerr << "vmm: merge: cannot turn transparent huge pages off: " << std::strerror(errno) << "\n";
  merger_ = std::make_unique<PageMerger>([this](const std::function<void()>& work) { quiesce(work); });
  scanner_ = std::thread([this] { scanner_main(); });
}

MergeService::~MergeService() {
  {
    std::lock_guard lock(stop_mu_);
    stop_ = true;
  }
  stop_cv_.notify_all();
  if (scanner_.joinable()) scanner_.join();
}

void MergeService::add(MergeMember member) {
  std::lock_guard lock(members_mu_);
  if (config_.mode == MergeMode::kKsm) {
    // KSM scans only what is marked; the whole of guest RAM is.
    for (const MemoryRegion& r : member.memory->regions()) {
      if (::madvise(r.host, r.size, MADV_MERGEABLE) != 0) {
        if (ksm_error_.empty()) {
          ksm_error_ = std::string("madvise(MADV_MERGEABLE) failed: ") + std::strerror(errno) +
                       (errno == EINVAL ? " (a kernel without CONFIG_KSM)" : "");
          std::cerr << "vmm: merge (ksm): " + member.name + ": " + ksm_error_ + "; guest RAM is not merged\n";
        }
      } else {
        mergeable_bytes_ += r.size;
      }
    }
  }
  if (merger_) merger_->add(*member.memory, member.name);
  members_.push_back(std::move(member));
}

void MergeService::remove(const GuestMemory& memory) {
  // Waits for a tick in progress (members_mu_), so the VM is not being
  // stopped or merged when its owner goes on to free it.
  std::lock_guard lock(members_mu_);
  if (merger_) merger_->remove(memory);
  std::erase_if(members_, [&](const MergeMember& m) { return m.memory == &memory; });
}

std::function<int(uint64_t, uint8_t*, uint64_t)> MergeService::balloon_release() {
  if (!merger_) return {};
  PageMerger* m = merger_.get();
  return [m](uint64_t, uint8_t* host, uint64_t len) { return m->release(host, len); };
}

void MergeService::quiesce(const std::function<void()>& work) {
  // Every VM stopped before any page is compared: a page of VM a may be
  // merged onto content first seen in VM b, and both must hold still.
  size_t stopped = 0;
  for (; stopped < members_.size(); ++stopped) {
    if (!members_[stopped].stop_writers()) break;
  }
  const bool all = stopped == members_.size();
  if (all) work();
  else quiesce_failures_.fetch_add(1, std::memory_order_relaxed);
  // Resumed in reverse, the order of a stack of locks.
  while (stopped > 0) members_[--stopped].resume_writers();
}

void MergeService::scan_once(uint64_t budget) {
  std::lock_guard lock(members_mu_);
  if (merger_) merger_->scan(budget);
}

void MergeService::scanner_main() {
  set_thread_name("merge-scanner");
  // The budget per tick keeps the configured rate on average; at least one
  // page, so the lowest rates still make progress.
  const uint64_t budget =
      std::max<uint64_t>(1, config_.pages_per_second * static_cast<uint64_t>(tick_.count()) / 1000);
  auto next = std::chrono::steady_clock::now();
  std::unique_lock stop_lock(stop_mu_);
  for (;;) {
    next += tick_;
    if (stop_cv_.wait_until(stop_lock, next, [this] { return stop_; })) return;
    stop_lock.unlock();
    try {
      scan_once(budget);
    } catch (const std::exception& e) {
      // A host failure (the pool cannot grow): merging stops, the VMs go on.
      std::cerr << std::string("vmm: merge (vmm): scanner stopped: ") + e.what() + "\n";
      return;
    }
    ticks_.fetch_add(1, std::memory_order_relaxed);
    scanner_cpu_ns_.store(thread_cpu_ns(), std::memory_order_relaxed);
    stop_lock.lock();
    // A tick that overran (a slow quiesce) does not make the next ones
    // burst to catch up: the rate is an upper bound.
    const auto now = std::chrono::steady_clock::now();
    if (next < now) next = now;
  }
}

MergeReport MergeService::report() const {
  MergeReport r;
  r.mode = config_.mode;
  {
    std::lock_guard lock(members_mu_);
    r.vms = members_.size();
    r.ksm_error = ksm_error_;
  }
  if (merger_) {
    r.merger = merger_->stats();
    r.pages_sharing = merger_->pages_sharing();
    r.pages_zero = merger_->pages_zero();
    r.bytes_saved = merger_->bytes_saved();
    r.scanner_cpu_seconds = scanner_cpu_ns_.load() / 1e9;
    r.ticks = ticks_.load();
    r.quiesce_failures = quiesce_failures_.load();
    r.pages_per_second = config_.pages_per_second;
  }
  if (config_.mode == MergeMode::kKsm) {
    r.ksm = read_ksm();
    r.mergeable_bytes = mergeable_bytes_.load();
  }
  return r;
}

std::string MergeService::summary() const {
  const MergeReport r = report();
  char line[512];
  switch (r.mode) {
    case MergeMode::kOff: return "merge: off\n";
    case MergeMode::kVmm:
      std::snprintf(line, sizeof line,
                    "merge (vmm): %zu VMs, %llu pages scanned (%llu full scans), %llu merges, %llu pool pages, "
                    "%llu pages sharing, %llu zero pages, %.1f MiB saved, scanner CPU %.2f s, %llu raced, "
                    "%llu refused at the mapping limit, "
                    "%llu quiesce failures, %llu pages released by the balloon (%llu merged)\n",
                    r.vms, (unsigned long long)r.merger.pages_scanned, (unsigned long long)r.merger.full_scans,
                    (unsigned long long)r.merger.merges, (unsigned long long)r.merger.pool_pages,
                    (unsigned long long)r.pages_sharing, (unsigned long long)r.pages_zero, r.bytes_saved / 1048576.0,
                    r.scanner_cpu_seconds, (unsigned long long)r.merger.raced, (unsigned long long)r.merger.limit_hits,
                    (unsigned long long)r.quiesce_failures, (unsigned long long)r.merger.pages_released,
                    (unsigned long long)r.merger.pages_released_pooled);
      return line;
    case MergeMode::kKsm:
      if (!r.ksm_error.empty()) return "merge (ksm): " + r.ksm_error + "\n";
      if (!r.ksm.available || !r.ksm.running) return "merge (ksm): " + r.ksm.note + "\n";
      std::snprintf(line, sizeof line,
                    "merge (ksm): %.1f MiB marked mergeable; host-wide: %llu pages shared, %llu pages sharing, "
                    "%llu full scans\n",
                    r.mergeable_bytes / 1048576.0, (unsigned long long)r.ksm.pages_shared,
                    (unsigned long long)r.ksm.pages_sharing, (unsigned long long)r.ksm.full_scans);
      return line;
  }
  return "";
}

}  // namespace vmm
