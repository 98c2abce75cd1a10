// The virtio-balloon driver (virtio 1.2 §5.5, the traditional balloon,
// PCI 1af4:1045). The device sets a target (num_pages); the driver
// inflates by taking pages from the page allocator and sending their
// frame numbers on the inflate queue, deflates by sending frame numbers on
// the deflate queue and freeing the pages once the device has used the
// buffer, and reports the pages it holds in `actual`.
//
// One operation is in flight at a time (at most 256 PFNs per buffer, as
// Linux): a page's inflate and deflate can then never race each other on
// two queues, and the accounting stays exact on both sides.
//
// Features taken: STATS_VQ (the stats queue reports free and total
// memory and our inflate/deflate counts whenever the device returns the
// stats buffer) and DEFLATE_ON_OOM: the driver registers the page
// allocator's low-memory handler and, when an allocation would fail, frees
// pages from the balloon on the spot (MUST_TELL_HOST is not negotiated, so
// §5.5.6.1 lets it reuse them before the device hears of it) and tells the
// device on the deflate queue afterwards. It then waits a while before
// inflating again, so the balloon does not fight the allocation that just
// needed the memory.
//
// The balloon never takes the last kReservePages free pages: without
// DEFLATE_ON_OOM nothing could give them back, and the kernel needs some
// to allocate the very buffers that deflate the balloon.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "guest-kernel/kernel/event_loop.h"
#include "guest-kernel/pci/pci.h"
#include "virtio/balloon.h"
#include "virtio/guest/virtio_pci.h"
#include "virtio/guest/virtqueue.h"

namespace virtio::guest {

class VirtioBalloon {
 public:
  static constexpr uint32_t kBatchPfns = 256;     // PFNs per buffer
  static constexpr size_t kReservePages = 512;    // 2 MiB the balloon leaves free
  static constexpr size_t kOomChunk = 256;        // pages given back per low-memory call, at least
  static constexpr uint64_t kRetryNs = 1'000'000'000;  // after an allocation failure or an OOM deflate

  // The PCI registry's probe: brings the device up.
  static bool probe(const pci::Device& dev);
  // The balloon found at boot, nullptr if none.
  static VirtioBalloon* instance();

  uint32_t target_pages() const { return target_; }
  uint32_t actual_pages() const { return static_cast<uint32_t>(held_); }
  // Nothing in flight or waiting, and actual == target (or the balloon
  // cannot reach it: the device is broken).
  bool settled() const;
  bool broken() const { return failed_ || transport_.broken(); }
  bool has_feature(unsigned bit) const { return transport_.has(bit); }

  uint64_t pages_inflated() const { return inflated_; }   // acknowledged by the device
  uint64_t pages_deflated() const { return deflated_; }   // by target and by OOM
  uint64_t pages_given_back_on_oom() const { return oom_pages_; }
  uint64_t stats_reports() const { return stats_reports_; }

  // Called on the event loop after the target changed or an operation
  // completed (the balloon-demo command prints from it).
  using Observer = void (*)(void* context);
  void set_observer(Observer fn, void* context) {
    observer_ = fn;
    observer_context_ = context;
  }

 private:
  enum class Op { kNone, kInflate, kDeflate, kTell };

  bool init(const pci::Device& dev);
  void on_config();          // the target may have changed
  void step();               // starts the next operation if none is in flight
  bool start_tell();         // report pages given back on OOM
  bool start_deflate();      // towards a lower target
  bool start_inflate();      // towards a higher target
  bool send(Op op, Virtqueue& q, uint32_t count);
  void on_pfns_used();       // either PFN queue's interrupt
  void complete();           // the device used the in-flight buffer
  void report_actual();
  void schedule_retry();
  void fill_stats();
  void post_stats();
  void on_stats_used();
  void notify_observer();
  void fail(const char* why);
  static size_t on_low_memory(size_t pages_wanted, void* context);

  PciTransport transport_;
  Virtqueue inflate_q_, deflate_q_, stats_q_;
  bool failed_ = false;
  uint32_t target_ = 0;

  // Every page frame the balloon knows of, in one array of
  // mm::total_page_count() entries (allocated at probe, so the low-memory
  // handler never allocates): pages in the balloon grow up from the start
  // ([0, held_)), pages given back on OOM and not yet reported to the
  // device grow down from the end ([capacity_ - untold_, capacity_)). A
  // page is in at most one place, so they never meet.
  uint32_t* pfns_ = nullptr;
  size_t capacity_ = 0, held_ = 0, untold_ = 0;

  // The buffer in flight: device-visible PFN array, its operation and size.
  uint32_t* batch_ = nullptr;
  Op in_flight_ = Op::kNone;
  uint32_t batch_count_ = 0;

  virtio_balloon_stat* stats_buf_ = nullptr;  // device-visible
  uint32_t stats_entries_ = 0;

  IrqWork work_;                  // runs step() on the loop (raised from task context)
  EventLoop::TimerId retry_timer_ = 0;
  uint64_t no_inflate_before_ns_ = 0;  // back-off after OOM or a failed allocation

  uint64_t inflated_ = 0, deflated_ = 0, oom_pages_ = 0, stats_reports_ = 0;
  Observer observer_ = nullptr;
  void* observer_context_ = nullptr;
};

}  // namespace virtio::guest
