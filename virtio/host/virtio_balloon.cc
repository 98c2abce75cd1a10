#include "virtio/host/virtio_balloon.h"

#include <sys/mman.h>
#include <sys/timerfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>

namespace vmm {

using namespace virtio;

namespace {

VirtioPciDevice::Params balloon_params() {
  VirtioPciDevice::Params p;
  p.name = "virtio-balloon";
  p.device_type = VIRTIO_ID_BALLOON;
  p.class_code = 0xff0000;  // unclassified device, as QEMU's virtio-balloon-pci
  p.num_queues = 3;         // the stats queue is there, used only with STATS_VQ
  p.max_queue_size = VirtioBalloonDevice::kQueueSize;
  p.device_features = feature_bit(VIRTIO_BALLOON_F_STATS_VQ) | feature_bit(VIRTIO_BALLOON_F_DEFLATE_ON_OOM);
  p.config_size = sizeof(virtio_balloon_config);
  return p;
}

uint64_t pfn_limit_of(const GuestMemory& mem) {
  uint64_t end = 0;
  for (const MemoryRegion& r : mem.regions()) end = std::max(end, r.gpa + r.size);
  return end / VirtioBalloonDevice::kPageSize;
}

uint64_t pages_of(uint64_t bytes, const GuestMemory& mem) {
  if (bytes > mem.size())
    throw std::invalid_argument("balloon target of " + std::to_string(bytes >> 20) + " MiB is larger than the guest's " +
                                std::to_string(mem.size() >> 20) + " MiB of RAM");
  return bytes / VirtioBalloonDevice::kPageSize;
}

std::string hex(uint64_t v) {
  char b[24];
  std::snprintf(b, sizeof b, "0x%llx", static_cast<unsigned long long>(v));
  return b;
}

std::string mib(uint64_t bytes) {
  char b[32];
  std::snprintf(b, sizeof b, "%.1f MiB", bytes / 1048576.0);
  return b;
}

int madvise_dontneed(uint64_t, uint8_t* host, uint64_t len) {
  return ::madvise(host, len, MADV_DONTNEED) == 0 ? 0 : errno;
}

}  // namespace

int BalloonGuestStats::slot(uint16_t tag) {
  if (tag < VIRTIO_BALLOON_S_NR) return tag;
  if (tag == VIRTIO_BALLOON_S_PRIV_INFLATED) return VIRTIO_BALLOON_S_NR;
  if (tag == VIRTIO_BALLOON_S_PRIV_DEFLATED) return VIRTIO_BALLOON_S_NR + 1;
  return -1;
}

std::optional<uint64_t> BalloonGuestStats::get(uint16_t tag) const {
  const int s = slot(tag);
  return s < 0 ? std::nullopt : values[s];
}

VirtioBalloonDevice::VirtioBalloonDevice(GuestMemory& mem, GsiRouter& router, BalloonOptions options)
    : VirtioPciDevice(mem, router, balloon_params()),
      options_(std::move(options)),
      release_(options_.release ? options_.release : BalloonReleaseFn(madvise_dontneed)),
      pfn_limit_(pfn_limit_of(mem)) {
  // madvise() works on host pages; a PFN names a 4 KiB page (§5.5.6), so
  // anything else would release more (or less) than the guest gave.
  const long host_page = ::sysconf(_SC_PAGESIZE);
  if (host_page != static_cast<long>(kPageSize))
    throw std::runtime_error("virtio-balloon needs 4 KiB host pages (this host has " + std::to_string(host_page) +
                             "-byte pages)");
  const uint64_t target = pages_of(options_.target_bytes, mem);
  config_.num_pages = static_cast<uint32_t>(target);
  target_pages_ = target;
  bitmap_.assign((pfn_limit_ + 63) / 64, 0);

  if (options_.stats_period_ns) {
    const int fd = ::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (fd < 0) throw std::runtime_error("virtio-balloon: timerfd_create: " + std::string(std::strerror(errno)));
    timer_ = Fd(fd);
    itimerspec its{};
    its.it_interval.tv_sec = static_cast<time_t>(options_.stats_period_ns / 1'000'000'000);
    its.it_interval.tv_nsec = static_cast<long>(options_.stats_period_ns % 1'000'000'000);
    its.it_value = its.it_interval;
    if (::timerfd_settime(fd, 0, &its, nullptr) < 0)
      throw std::runtime_error("virtio-balloon: timerfd_settime: " + std::string(std::strerror(errno)));
    add_io_fd(fd, [this] {
      uint64_t expirations;
      // Non-blocking: EAGAIN just means a wake-up raced with the read.
      if (::read(timer_.get(), &expirations, sizeof expirations) != sizeof expirations) return;
      stats_wanted_ = true;
      if (live_locked() && role(VIRTIO_BALLOON_STATS_QUEUE) == Role::kStats &&
          queue(VIRTIO_BALLOON_STATS_QUEUE).enabled())
        process_stats_queue(VIRTIO_BALLOON_STATS_QUEUE);
    });
  }
}

VirtioBalloonDevice::~VirtioBalloonDevice() { shutdown(); }

// ---- Control (any thread) ------------------------------------------------------

void VirtioBalloonDevice::set_target_bytes(uint64_t bytes) {
  const uint64_t pages = pages_of(bytes, mem());
  std::lock_guard lock(mu_);
  if (config_.num_pages == pages) return;
  config_.num_pages = static_cast<uint32_t>(pages);
  target_pages_ = pages;
  // A driver that is not live yet reads num_pages when it comes up.
  if (live_locked()) config_changed();
}

BalloonGuestStats VirtioBalloonDevice::guest_stats() const {
  std::lock_guard lock(mu_);
  return guest_stats_;
}

void VirtioBalloonDevice::request_stats() {
  stats_wanted_ = true;
  // The I/O thread scans every enabled queue, the stats queue included.
  wake_io_thread();
}

// ---- Configuration space (vCPU threads, mu_ held) ------------------------------------

void VirtioBalloonDevice::read_device_config(uint32_t offset, uint8_t* data, uint32_t size) {
  std::memcpy(data, reinterpret_cast<const uint8_t*>(&config_) + offset, size);
}

void VirtioBalloonDevice::write_device_config(uint32_t offset, const uint8_t* data, uint32_t size) {
  // Only `actual` belongs to the driver (§5.5.4); bytes of num_pages are
  // ignored. Any width and alignment merges into the field.
  constexpr uint32_t kActual = offsetof(virtio_balloon_config, actual);
  auto* actual = reinterpret_cast<uint8_t*>(&config_.actual);
  for (uint32_t i = 0; i < size; ++i)
    if (offset + i >= kActual && offset + i < kActual + 4) actual[offset + i - kActual] = data[i];
  actual_pages_ = config_.actual;
}

// ---- Queues (I/O thread, mu_ held) -------------------------------------------------------

VirtioBalloonDevice::Role VirtioBalloonDevice::role(uint16_t q) const {
  switch (q) {
    case VIRTIO_BALLOON_INFLATE_QUEUE: return Role::kInflate;
    case VIRTIO_BALLOON_DEFLATE_QUEUE: return Role::kDeflate;
    case VIRTIO_BALLOON_STATS_QUEUE:
      return has_feature(VIRTIO_BALLOON_F_STATS_VQ) ? Role::kStats : Role::kAbsent;
    default: return Role::kAbsent;
  }
}

void VirtioBalloonDevice::on_reset() {
  // The transport forgets the rings; the buffer we held goes with them.
  held_stats_.reset();
  // The driver reports `actual` anew. The bitmap stays: the pages it
  // names are still released on the host, and the guest deflates them (or
  // touches them, getting zeroes) as it sees fit.
  config_.actual = 0;
  actual_pages_ = 0;
}

void VirtioBalloonDevice::on_queue_reset(uint16_t q) {
  if (q == VIRTIO_BALLOON_STATS_QUEUE) held_stats_.reset();
}

void VirtioBalloonDevice::on_queue_kick(uint16_t q) {
  switch (role(q)) {
    case Role::kInflate: process_pfn_queue(q, true); return;
    case Role::kDeflate: process_pfn_queue(q, false); return;
    case Role::kStats: process_stats_queue(q); return;
    case Role::kAbsent: {
      // Enabling the queue is harmless; putting a buffer on it is not.
      if (queue(q).pop(chain_) == PopResult::kChain)
        device_error("a buffer on queue " + std::to_string(q) +
                     ", which does not exist without VIRTIO_BALLOON_F_STATS_VQ (§5.5.2)");
      return;
    }
  }
}

// The vhost loop (virtqueue.h), with a budget per pass so that a guest that
// keeps one queue full cannot starve the other (or the stats queue).
void VirtioBalloonDevice::process_pfn_queue(uint16_t q, bool inflate) {
  Virtqueue& vq = queue(q);
  unsigned budget = kChainsPerPass;
  for (;;) {
    vq.disable_notification();
    while (live_locked() && budget > 0 && vq.pop(chain_) == PopResult::kChain) {
      --budget;
      if (!handle_pfns(chain_, inflate)) return;
      vq.push_used(chain_.head(), 0);
    }
    notify_queue(q);
    if (!live_locked() || vq.broken()) return;
    if (budget == 0) {
      // More may wait: come back after the other queues had their turn.
      vq.enable_notification();
      wake_io_thread();
      return;
    }
    if (!vq.enable_notification()) return;
  }
}

bool VirtioBalloonDevice::handle_pfns(const VirtqChain& chain, bool inflate) {
  const char* what = inflate ? "inflate" : "deflate";
  const std::string where = std::string(what) + " buffer " + std::to_string(chain.head());
  if (chain.writable_bytes() != 0) {
    device_error(where + " has " + std::to_string(chain.writable_bytes()) +
                 " device-writable bytes (a PFN array is device-readable)");
    return false;
  }
  const uint32_t bytes = chain.readable_bytes();
  if (bytes % sizeof(uint32_t) != 0) {
    device_error(where + ": " + std::to_string(bytes) + " bytes is not a whole number of 32-bit PFNs");
    return false;
  }
  const uint64_t count = bytes / sizeof(uint32_t);
  // No honest array names more pages than the guest has; this also bounds
  // the copy below.
  if (count > pfn_limit_) {
    device_error(where + " holds " + std::to_string(count) + " PFNs, more than the guest's " +
                 std::to_string(pfn_limit_) + " pages");
    return false;
  }
  // One copy out of guest memory, then only the copy is checked and used.
  pfns_.resize(count);
  if (chain.read(0, pfns_.data(), bytes) != bytes) {
    device_error(where + ": could not read the PFN array");
    return false;
  }
  for (uint32_t pfn : pfns_) {
    const uint64_t gpa = uint64_t(pfn) << VIRTIO_BALLOON_PFN_SHIFT;
    if (pfn >= pfn_limit_ || !mem().contains(gpa, kPageSize)) {
      device_error(where + ": PFN " + hex(pfn) + " (GPA " + hex(gpa) + ") is not guest RAM");
      return false;
    }
  }
  if (inflate) {
    if (!release_pages()) return false;
    stats_.inflate_buffers.fetch_add(1, std::memory_order_relaxed);
    stats_.pages_inflated.fetch_add(count, std::memory_order_relaxed);
  } else {
    deflate_pages();
    stats_.deflate_buffers.fetch_add(1, std::memory_order_relaxed);
    stats_.pages_deflated.fetch_add(count, std::memory_order_relaxed);
  }
  return true;
}

bool VirtioBalloonDevice::release_pages() {
  // Drivers hand out pages in allocation order, often contiguous: one
  // madvise per run of consecutive frames in one RAM region.
  size_t i = 0;
  while (i < pfns_.size()) {
    const uint64_t first = pfns_[i];
    size_t n = 1;
    while (i + n < pfns_.size() && pfns_[i + n] == first + n &&
           mem().contains(first * kPageSize, (n + 1) * kPageSize))
      ++n;
    const uint64_t gpa = first * kPageSize;
    uint8_t* host = mem().ptr(gpa, n * kPageSize);  // checked above, page by page and as a run
    const int err = release_(gpa, host, n * kPageSize);
    mem().mark_dirty(gpa, n * kPageSize);  // now reads as zero: a change KVM's dirty log misses
    stats_.release_calls.fetch_add(1, std::memory_order_relaxed);
    if (err != 0) {
      // The host refused (not the guest's fault): report it the same way,
      // the device cannot do what it promised.
      device_error("cannot release " + std::to_string(n) + " pages at GPA " + hex(gpa) + ": " +
                   std::strerror(err));
      return false;
    }
    uint64_t added = 0;
    for (uint64_t pfn = first; pfn < first + n; ++pfn) {
      if (in_balloon(pfn)) continue;
      bitmap_[pfn / 64] |= 1ull << (pfn % 64);
      ++added;
    }
    released_pages_.fetch_add(added, std::memory_order_relaxed);
    stats_.pages_reinflated.fetch_add(n - added, std::memory_order_relaxed);
    i += n;
  }
  return true;
}

void VirtioBalloonDevice::deflate_pages() {
  // Nothing to do on the host: the guest touches the page again and the
  // kernel faults a fresh zero page in. Only the accounting changes.
  uint64_t removed = 0;
  for (uint32_t pfn : pfns_) {
    if (!in_balloon(pfn)) {
      stats_.pages_not_in_balloon.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    bitmap_[pfn / 64] &= ~(1ull << (pfn % 64));
    ++removed;
  }
  released_pages_.fetch_sub(removed, std::memory_order_relaxed);
}

void VirtioBalloonDevice::process_stats_queue(uint16_t q) {
  Virtqueue& vq = queue(q);
  // Notifications stay on: the driver posts one buffer now and then, and
  // the device must hear of each.
  while (live_locked() && vq.pop(chain_) == PopResult::kChain) {
    if (held_stats_) {
      device_error("stats queue: buffer " + std::to_string(chain_.head()) + " while the device holds buffer " +
                   std::to_string(*held_stats_) + " (§5.5.6.3: at most one)");
      return;
    }
    if (!parse_stats(chain_)) return;
    held_stats_ = chain_.head();
  }
  if (!live_locked() || vq.broken()) return;
  if (held_stats_ && stats_wanted_.exchange(false)) {
    // Returning the buffer is the request (§5.5.6.3): the driver refills it.
    vq.push_used(*held_stats_, 0);
    held_stats_.reset();
    notify_queue(q);
  }
}

bool VirtioBalloonDevice::parse_stats(const VirtqChain& chain) {
  const std::string where = "stats buffer " + std::to_string(chain.head());
  if (chain.writable_bytes() != 0) {
    device_error(where + " has " + std::to_string(chain.writable_bytes()) +
                 " device-writable bytes (statistics are device-readable)");
    return false;
  }
  const uint32_t bytes = chain.readable_bytes();
  if (bytes % sizeof(virtio_balloon_stat) != 0) {
    device_error(where + ": " + std::to_string(bytes) + " bytes is not a whole number of 10-byte entries");
    return false;
  }
  const uint32_t count = bytes / sizeof(virtio_balloon_stat);
  if (count > kMaxStatEntries) {
    device_error(where + " has " + std::to_string(count) + " entries, more than " +
                 std::to_string(kMaxStatEntries));
    return false;
  }
  virtio_balloon_stat entries[kMaxStatEntries];
  if (chain.read(0, entries, bytes) != bytes) {
    device_error(where + ": could not read the statistics");
    return false;
  }
  BalloonGuestStats s;
  for (uint32_t i = 0; i < count; ++i) {
    // Packed (val is misaligned): the fields are read by value, never bound
    // to a reference.
    const uint16_t tag = entries[i].tag;
    const uint64_t val = entries[i].val;
    const int slot = BalloonGuestStats::slot(tag);
    if (slot < 0) {
      // §5.5.6.3: the device ignores tags it does not recognize.
      stats_.stats_unknown_tags.fetch_add(1, std::memory_order_relaxed);
      continue;
    }
    s.values[slot] = val;  // a repeated tag: the last one counts
  }
  s.updates = guest_stats_.updates + 1;
  s.received = std::chrono::steady_clock::now();
  guest_stats_ = s;
  stats_.stats_updates.fetch_add(1, std::memory_order_relaxed);
  return true;
}

std::string VirtioBalloonDevice::device_stats() const {
  auto get = [](const std::atomic<uint64_t>& a) { return std::to_string(a.load(std::memory_order_relaxed)); };
  std::string s = "target " + mib(target_bytes()) + ", actual " + mib(actual_bytes()) + ", released " +
                  mib(released_bytes()) + "; " + get(stats_.pages_inflated) + " pages inflated in " +
                  get(stats_.inflate_buffers) + " buffers (" + get(stats_.release_calls) + " madvise calls), " +
                  get(stats_.pages_deflated) + " deflated in " + get(stats_.deflate_buffers) + " buffers, " +
                  get(stats_.stats_updates) + " stats updates";
  if (stats_.pages_reinflated.load()) s += ", " + get(stats_.pages_reinflated) + " pages inflated twice";
  if (stats_.pages_not_in_balloon.load()) s += ", " + get(stats_.pages_not_in_balloon) + " deflated pages not in the balloon";
  return s;
}

}  // namespace vmm
