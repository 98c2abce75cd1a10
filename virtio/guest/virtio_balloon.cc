#include "virtio/guest/virtio_balloon.h"

#include "guest-kernel/arch/x86/cpu.h"
#include "guest-kernel/kernel/exit.h"
#include "guest-kernel/lib/print.h"
#include "guest-kernel/mm/page_alloc.h"
#include "guest-kernel/time/clock.h"
#include "virtio/features.h"
#include "virtio/pci.h"

namespace virtio::guest {
namespace {

constexpr uint16_t kPfnQueueSize = 16;  // one buffer in flight at a time
constexpr uint16_t kStatsQueueSize = 4;
constexpr uint32_t kStatsOffset = 2048;  // the stats buffer's place in the batch page
constexpr uint32_t kMaxStats = 8;
static_assert(VirtioBalloon::kBatchPfns * sizeof(uint32_t) <= kStatsOffset);
static_assert(kStatsOffset + kMaxStats * sizeof(virtio_balloon_stat) <= mm::kPageSize);

VirtioBalloon* g_balloon = nullptr;

struct Registrar {
  Registrar() {
    pci::register_driver({"virtio-balloon", VIRTIO_PCI_VENDOR_ID,
                          static_cast<uint16_t>(VIRTIO_PCI_DEVICE_ID_BASE + VIRTIO_ID_BALLOON), &VirtioBalloon::probe});
  }
} registrar;

// Queues work for the event loop from task context (the low-memory
// handler runs inside any allocation), as interrupt handlers do.
void raise_from_task(IrqWork* work) {
  const bool was_on = x86::interrupts_enabled();
  x86::cli();
  EventLoop::instance().raise(work);
  if (was_on) x86::sti();
}

}  // namespace

VirtioBalloon* VirtioBalloon::instance() { return g_balloon; }

bool VirtioBalloon::probe(const pci::Device& dev) {
  if (g_balloon) {
    kprintf("virtio-balloon: a second balloon device is ignored\n");
    return false;
  }
  // Never freed: its interrupt vectors and the allocator's hook point at it.
  auto* b = new VirtioBalloon;
  if (!b->init(dev)) return false;
  g_balloon = b;
  return true;
}

bool VirtioBalloon::init(const pci::Device& dev) {
  if (!transport_.init(dev, "virtio-balloon")) return false;
  if (!transport_.negotiate(feature_bit(VIRTIO_BALLOON_F_STATS_VQ) | feature_bit(VIRTIO_BALLOON_F_DEFLATE_ON_OOM)))
    return false;
  const bool stats = transport_.has(VIRTIO_BALLOON_F_STATS_VQ);
  if (transport_.num_queues() < (stats ? 3 : 2)) {
    transport_.fail("too few queues");
    return false;
  }
  if (transport_.device_config_length() < sizeof(virtio_balloon_config)) {
    transport_.fail("device configuration too small");
    return false;
  }

  // The page list, for every page the allocator manages: the most the
  // balloon could ever hold.
  capacity_ = mm::total_page_count();
  pfns_ = reinterpret_cast<uint32_t*>(mm::alloc_pages((capacity_ * sizeof(uint32_t) + mm::kPageSize - 1) / mm::kPageSize));
  const uint64_t page = mm::alloc_page();
  if (!pfns_ || !page) {
    transport_.fail("no memory for the page list");
    return false;
  }
  batch_ = reinterpret_cast<uint32_t*>(page);
  stats_buf_ = reinterpret_cast<virtio_balloon_stat*>(page + kStatsOffset);

  auto pfn_used = [](void* c) { static_cast<VirtioBalloon*>(c)->on_pfns_used(); };
  if (!transport_.setup_queue(VIRTIO_BALLOON_INFLATE_QUEUE, kPfnQueueSize, &inflate_q_, pfn_used, this) ||
      !transport_.setup_queue(VIRTIO_BALLOON_DEFLATE_QUEUE, kPfnQueueSize, &deflate_q_, pfn_used, this))
    return false;
  if (stats && !transport_.setup_queue(VIRTIO_BALLOON_STATS_QUEUE, kStatsQueueSize, &stats_q_,
                                       [](void* c) { static_cast<VirtioBalloon*>(c)->on_stats_used(); }, this))
    return false;
  transport_.set_config_callback([](void* c) { static_cast<VirtioBalloon*>(c)->on_config(); }, this);
  work_.fn = [](void* c) { static_cast<VirtioBalloon*>(c)->step(); };
  work_.context = this;
  if (!transport_.driver_ok()) return false;

  if (transport_.has(VIRTIO_BALLOON_F_DEFLATE_ON_OOM)) mm::set_low_memory_handler(on_low_memory, this);
  if (stats) {
    // §5.5.6.3: the first buffer goes out at once; the device returns it
    // whenever it wants fresh numbers.
    fill_stats();
    post_stats();
  }
  report_actual();
  uint32_t num_pages = 0;
  if (!transport_.read_config(offsetof(virtio_balloon_config, num_pages), &num_pages, sizeof num_pages)) {
    fail("cannot read num_pages");
    return false;
  }
  target_ = num_pages;

  char where[16];
  format_pci_address(dev, where, sizeof where);
  kprintf("virtio-balloon: %s target %u pages, %zu pages managed%s%s\n", where, target_, capacity_,
          stats ? ", stats" : "", transport_.has(VIRTIO_BALLOON_F_DEFLATE_ON_OOM) ? ", deflate-on-oom" : "");
  // Inflating waits for the event loop: the probe itself stays short, and
  // the kernel's own start-up allocations come first.
  if (target_) raise_from_task(&work_);
  return true;
}

bool VirtioBalloon::settled() const {
  return in_flight_ == Op::kNone && untold_ == 0 && (held_ == target_ || broken());
}

void VirtioBalloon::fail(const char* why) {
  if (!failed_) transport_.fail(why);
  failed_ = true;
}

void VirtioBalloon::notify_observer() {
  if (observer_) observer_(observer_context_);
}

void VirtioBalloon::report_actual() {
  const uint32_t actual = static_cast<uint32_t>(held_);
  if (!transport_.write_config(offsetof(virtio_balloon_config, actual), &actual, sizeof actual))
    fail("cannot write actual");
}

void VirtioBalloon::on_config() {
  // The transport has already looked for DEVICE_NEEDS_RESET.
  if (broken()) return;
  uint32_t num_pages = 0;
  if (!transport_.read_config(offsetof(virtio_balloon_config, num_pages), &num_pages, sizeof num_pages)) {
    fail("cannot read num_pages");
    return;
  }
  if (num_pages != target_) {
    target_ = num_pages;
    // A new target from the host overrides the back-off of an earlier
    // OOM: the host may well have raised it because the guest was short.
    no_inflate_before_ns_ = 0;
    notify_observer();
  }
  step();
}

// ---- Operations ------------------------------------------------------------------

void VirtioBalloon::step() {
  if (in_flight_ != Op::kNone || broken()) return;
  // Pages given back on OOM are reported first: until the device knows,
  // no page may go into the balloon again (one of them could be it).
  if (start_tell() || start_deflate()) return;
  start_inflate();
}

bool VirtioBalloon::start_tell() {
  if (untold_ == 0) return false;
  const uint32_t n = static_cast<uint32_t>(untold_ < kBatchPfns ? untold_ : kBatchPfns);
  // The newest entries, at the low end of the region.
  for (uint32_t i = 0; i < n; ++i) batch_[i] = pfns_[capacity_ - untold_ + i];
  untold_ -= n;
  if (!send(Op::kTell, deflate_q_, n)) {
    untold_ += n;  // the same entries are still in place
    return false;
  }
  return true;
}

bool VirtioBalloon::start_deflate() {
  if (held_ <= target_) return false;
  const size_t want = held_ - target_;
  const uint32_t n = static_cast<uint32_t>(want < kBatchPfns ? want : kBatchPfns);
  // Out of the list now (the low-memory handler must not free them too),
  // freed when the device has used the buffer.
  for (uint32_t i = 0; i < n; ++i) batch_[i] = pfns_[held_ - n + i];
  held_ -= n;
  if (!send(Op::kDeflate, deflate_q_, n)) {
    held_ += n;
    return false;
  }
  return true;
}

bool VirtioBalloon::start_inflate() {
  if (held_ >= target_) return false;
  if (timekeeping::monotonic_ns() < no_inflate_before_ns_) {
    schedule_retry();
    return false;
  }
  const size_t want = target_ - held_;
  const uint32_t limit = static_cast<uint32_t>(want < kBatchPfns ? want : kBatchPfns);
  uint32_t n = 0;
  while (n < limit && mm::free_page_count() > kReservePages) {
    // Unzeroed (the host discards the contents) and never through the
    // low-memory handler (which would only deflate this very balloon).
    const uint64_t p = mm::alloc_page(mm::kAllocNoZero | mm::kAllocNoReclaim);
    if (!p) break;
    batch_[n++] = static_cast<uint32_t>(p / mm::kPageSize);
  }
  if (n == 0) {
    // Memory is short: try again later rather than spin.
    no_inflate_before_ns_ = timekeeping::monotonic_ns() + kRetryNs;
    schedule_retry();
    return false;
  }
  if (!send(Op::kInflate, inflate_q_, n)) {
    for (uint32_t i = 0; i < n; ++i) mm::free_page(uint64_t(batch_[i]) * mm::kPageSize);
    return false;
  }
  return true;
}

bool VirtioBalloon::send(Op op, Virtqueue& q, uint32_t count) {
  const Buffer b{reinterpret_cast<uint64_t>(batch_), static_cast<uint32_t>(count * sizeof(uint32_t))};
  // One buffer in flight on the two queues together, so there is always
  // room; a failure means the ring is broken.
  if (!q.add(&b, 1, nullptr, 0, batch_)) {
    fail("cannot queue a PFN array");
    return false;
  }
  in_flight_ = op;
  batch_count_ = count;
  q.kick();
  return true;
}

void VirtioBalloon::on_pfns_used() {
  Virtqueue* queues[2] = {&inflate_q_, &deflate_q_};
  for (Virtqueue* q : queues) {
    uint32_t written;
    while (void* token = q->get_used(&written)) {
      const bool expected = token == batch_ && in_flight_ != Op::kNone &&
                            (q == &inflate_q_) == (in_flight_ == Op::kInflate);
      if (!expected) {
        fail("the device returned a buffer that was not in flight");
        return;
      }
      complete();
    }
    if (q->broken()) {
      fail(q->broken_reason());
      return;
    }
  }
  step();
}

void VirtioBalloon::complete() {
  const uint32_t n = batch_count_;
  switch (in_flight_) {
    case Op::kInflate:
      if (held_ + n + untold_ > capacity_) panic("virtio-balloon: page list overflow (%zu + %u + %zu > %zu)", held_, n, untold_, capacity_);
      for (uint32_t i = 0; i < n; ++i) pfns_[held_ + i] = batch_[i];
      held_ += n;
      inflated_ += n;
      break;
    case Op::kDeflate:
      // §5.5.6.1 (as if MUST_TELL_HOST): the pages are the guest's again
      // only now that the device has seen the array.
      for (uint32_t i = 0; i < n; ++i) mm::free_page(uint64_t(batch_[i]) * mm::kPageSize);
      deflated_ += n;
      break;
    case Op::kTell:  // freed and counted by the low-memory handler already
    case Op::kNone:
      break;
  }
  in_flight_ = Op::kNone;
  batch_count_ = 0;
  report_actual();
  notify_observer();
}

void VirtioBalloon::schedule_retry() {
  if (retry_timer_) return;
  retry_timer_ = EventLoop::instance().add_timer(kRetryNs, [this] {
    retry_timer_ = 0;
    step();
  });
}

// ---- Deflate on OOM ------------------------------------------------------------------

size_t VirtioBalloon::on_low_memory(size_t pages_wanted, void* context) {
  // Inside an allocation: no allocating, no waiting. Pages go straight back
  // to the allocator; the device hears of them later (start_tell).
  auto* b = static_cast<VirtioBalloon*>(context);
  size_t n = pages_wanted > kOomChunk ? pages_wanted : kOomChunk;
  if (n > b->held_) n = b->held_;
  for (size_t i = 0; i < n; ++i) {
    const uint32_t pfn = b->pfns_[--b->held_];
    mm::free_page(uint64_t(pfn) * mm::kPageSize);
    b->pfns_[b->capacity_ - ++b->untold_] = pfn;
  }
  if (n) {
    b->oom_pages_ += n;
    b->deflated_ += n;
    // Do not take the memory straight back from whoever needed it.
    b->no_inflate_before_ns_ = timekeeping::monotonic_ns() + kRetryNs;
    raise_from_task(&b->work_);
  }
  return n;
}

// ---- Statistics ----------------------------------------------------------------------

void VirtioBalloon::fill_stats() {
  const uint64_t free_bytes = uint64_t(mm::free_page_count()) * mm::kPageSize;
  const virtio_balloon_stat entries[] = {
      {VIRTIO_BALLOON_S_MEMFREE, free_bytes},
      {VIRTIO_BALLOON_S_MEMTOT, uint64_t(mm::total_page_count()) * mm::kPageSize},
      // No caches, no swap: what is free is what is available.
      {VIRTIO_BALLOON_S_AVAIL, free_bytes},
      {VIRTIO_BALLOON_S_PRIV_INFLATED, inflated_},
      {VIRTIO_BALLOON_S_PRIV_DEFLATED, deflated_},
  };
  static_assert(sizeof entries / sizeof entries[0] <= kMaxStats);
  stats_entries_ = sizeof entries / sizeof entries[0];
  for (uint32_t i = 0; i < stats_entries_; ++i) stats_buf_[i] = entries[i];
}

void VirtioBalloon::post_stats() {
  const Buffer b{reinterpret_cast<uint64_t>(stats_buf_), stats_entries_ * uint32_t(sizeof(virtio_balloon_stat))};
  if (!stats_q_.add(&b, 1, nullptr, 0, stats_buf_)) {
    fail("cannot queue the stats buffer");
    return;
  }
  stats_q_.kick();
}

void VirtioBalloon::on_stats_used() {
  uint32_t written;
  // The device returning the buffer is its request for fresh numbers.
  while (void* token = stats_q_.get_used(&written)) {
    if (token != stats_buf_) {
      fail("the device returned a stats buffer that was not in flight");
      return;
    }
    ++stats_reports_;
    if (broken()) return;
    fill_stats();
    post_stats();
  }
  if (stats_q_.broken()) fail(stats_q_.broken_reason());
}

}  // namespace virtio::guest
