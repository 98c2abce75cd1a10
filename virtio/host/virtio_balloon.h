// virtio-balloon (virtio 1.2 §5.5, the traditional memory balloon), host
// side: the VMM sets a target (num_pages); the guest's driver inflates the
// balloon by handing over the frame numbers of pages it no longer uses,
// and the device gives those pages back to the host (madvise
// MADV_DONTNEED, so they cost no host memory until the guest touches them
// again, when they come back as zeroes). Deflating returns pages to the
// guest; the host has nothing to do then but account for them.
//
// Queues (§5.5.2): inflateq 0, deflateq 1, and statsq 2 only when
// VIRTIO_BALLOON_F_STATS_VQ was negotiated (a buffer on queue 2 without it
// is a broken driver). Offered features: STATS_VQ and DEFLATE_ON_OOM (the
// guest may take pages back under memory pressure). MUST_TELL_HOST is not
// offered: this device needs no warning before the guest reuses a page,
// since a released page simply faults back in as a zero page.
//
// Statistics (§5.5.6.3): the device keeps the one buffer the driver posts
// on the stats queue; returning it (used, 0 bytes) is the request for
// fresh numbers, which the driver answers by posting it again. The device
// returns it every `stats_period_ns` and on request_stats().
//
// Hostile guests: every PFN is checked to name a 4 KiB page inside guest
// RAM before anything is released, PFN arrays must be whole 32-bit entries,
// stats buffers whole 10-byte entries, both device-readable only; the PFN
// array is copied out of guest memory once before it is checked (no double
// fetch). Anything malformed sets DEVICE_NEEDS_RESET with a one-line
// reason; the device never trusts a count the guest gives.
//
// Accounting is per page: a bitmap records which guest pages are in the
// balloon, so a page inflated twice is released once and counted once, and
// a deflate of a page that is not in the balloon changes nothing (both are
// counted as driver oddities). released_bytes() is the pages in the bitmap.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "virtio/balloon.h"
#include "virtio/host/virtio_pci.h"
#include "vmm/kvm.h"

namespace vmm {

// Releases guest RAM [gpa, gpa + len) mapped at `host` back to the host;
// returns 0 or an errno. The default is madvise(MADV_DONTNEED), right for
// anonymous private RAM (GuestMemory). Same-page merging (PageMerger) maps
// merged pages from a memfd pool, where MADV_DONTNEED would bring the pool
// page back instead of zeroes: once the merger is part of a Machine, it
// must supply this hook (an anonymous MAP_FIXED remap for pages it has
// mapped from the pool, and forgetting them).
using BalloonReleaseFn = std::function<int(uint64_t gpa, uint8_t* host, uint64_t len)>;

struct BalloonOptions {
  uint64_t target_bytes = 0;  // initial target (rounded down to 4 KiB pages)
  // How often the device asks the driver for fresh statistics; 0: only on
  // request_stats().
  uint64_t stats_period_ns = 2'000'000'000;
  BalloonReleaseFn release;  // empty: madvise(MADV_DONTNEED)
};

// The last statistics the driver sent.
struct BalloonGuestStats {
  uint64_t updates = 0;  // stats buffers parsed since the device was made
  std::chrono::steady_clock::time_point received{};  // when the last one came
  // The value of `tag` (virtio::VIRTIO_BALLOON_S_* or _S_PRIV_*) in the
  // last buffer, if it was there.
  std::optional<uint64_t> get(uint16_t tag) const;

  static constexpr size_t kSlots = virtio::VIRTIO_BALLOON_S_NR + 2;  // the spec's tags and ours
  std::optional<uint64_t> values[kSlots];
  static int slot(uint16_t tag);  // -1 for a tag we do not keep
};

struct VirtioBalloonStats {
  std::atomic<uint64_t> inflate_buffers{0}, deflate_buffers{0};
  std::atomic<uint64_t> pages_inflated{0};  // PFNs received on the inflate queue
  std::atomic<uint64_t> pages_deflated{0};  // PFNs received on the deflate queue
  std::atomic<uint64_t> pages_reinflated{0};     // inflated while already in the balloon
  std::atomic<uint64_t> pages_not_in_balloon{0}; // deflated while not in the balloon
  std::atomic<uint64_t> release_calls{0};        // madvise calls (one per contiguous run)
  std::atomic<uint64_t> stats_updates{0};
  std::atomic<uint64_t> stats_unknown_tags{0};   // entries skipped (tags we do not know)
};

class VirtioBalloonDevice final : public VirtioPciDevice {
 public:
  static constexpr uint16_t kQueueSize = 128;
  static constexpr uint64_t kPageSize = virtio::VIRTIO_BALLOON_PAGE_SIZE;
  // A stats buffer longer than this many entries is malformed (the spec
  // defines 10 tags; drivers send each once).
  static constexpr uint32_t kMaxStatEntries = 64;
  // Chains taken from one queue before the I/O thread looks at the others.
  static constexpr unsigned kChainsPerPass = 64;

  // Snapshots refuse a VM with a balloon: the inflated page list, targets
  // and statistics are not saved yet (vmm/snapshot/README.md).
  std::string snapshot_refusal() const override {
    return "virtio-balloon cannot be saved yet (its inflated pages and targets are not in the format)";
  }

  // Throws std::invalid_argument for a target larger than guest RAM,
  // std::runtime_error if the host's pages are not 4 KiB (madvise works in
  // host pages) or the stats timer cannot be made.
  VirtioBalloonDevice(GuestMemory& mem, GsiRouter& router, BalloonOptions options = {});
  ~VirtioBalloonDevice() override;

  // The target the driver is asked to reach (num_pages), rounded down to
  // whole 4 KiB pages; the driver is told by a configuration interrupt.
  // Throws std::invalid_argument if larger than guest RAM. Any thread.
  void set_target_bytes(uint64_t bytes);
  uint64_t target_bytes() const { return target_pages_.load() * kPageSize; }
  // What the driver last wrote to `actual`: pages it holds in the balloon.
  uint64_t actual_bytes() const { return actual_pages_.load() * kPageSize; }
  // Guest memory handed back to the host: pages released by inflating,
  // minus those deflated since.
  uint64_t released_bytes() const { return released_pages_.load() * kPageSize; }
  // The last statistics the driver sent (updates == 0: none yet).
  BalloonGuestStats guest_stats() const;
  // Asks the driver for fresh statistics now (returns the stats buffer if
  // the device holds it, otherwise as soon as the driver posts one). Any
  // thread; nothing happens without STATS_VQ.
  void request_stats();
  const VirtioBalloonStats& stats() const { return stats_; }

 protected:
  void read_device_config(uint32_t offset, uint8_t* data, uint32_t size) override;
  void write_device_config(uint32_t offset, const uint8_t* data, uint32_t size) override;
  void on_reset() override;
  void on_queue_reset(uint16_t q) override;
  void on_queue_kick(uint16_t q) override;
  std::string device_stats() const override;

 private:
  enum class Role { kInflate, kDeflate, kStats, kAbsent };
  // What queue `q` is under the negotiated features (§5.5.2).
  Role role(uint16_t q) const;
  void process_pfn_queue(uint16_t q, bool inflate);
  // Checks and applies one PFN array; false after device_error().
  bool handle_pfns(const VirtqChain& chain, bool inflate);
  // Releases the pages in pfns_ (already checked), contiguous runs at once.
  bool release_pages();
  void deflate_pages();
  void process_stats_queue(uint16_t q);
  bool parse_stats(const VirtqChain& chain);
  bool in_balloon(uint64_t pfn) const { return (bitmap_[pfn / 64] >> (pfn % 64)) & 1; }

  const BalloonOptions options_;
  BalloonReleaseFn release_;
  const uint64_t pfn_limit_;  // one past the highest RAM page frame

  // Guarded by mu_ (the transport's).
  virtio::virtio_balloon_config config_{};
  std::vector<uint64_t> bitmap_;  // bit per page frame: in the balloon
  VirtqChain chain_;
  std::vector<uint32_t> pfns_;    // the current chain's PFNs, copied once
  std::optional<uint16_t> held_stats_;  // head of the stats buffer we keep
  BalloonGuestStats guest_stats_;

  // Readable without the lock.
  std::atomic<uint64_t> target_pages_{0}, actual_pages_{0}, released_pages_{0};
  std::atomic<bool> stats_wanted_{false};
  Fd timer_;  // periodic stats requests (timerfd), if a period is set
  VirtioBalloonStats stats_;
};

}  // namespace vmm
