#include "virtio/host/virtio_pci.h"

#include <pthread.h>
#include <sys/epoll.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <stdexcept>

namespace vmm {

using namespace virtio;

namespace {

// Device errors a guest can provoke at will are logged this many times per
// device, then counted only: a hostile guest must not flood the log.
constexpr uint64_t kMaxLoggedErrors = 8;

// epoll tags for the I/O thread's fds: queues are 0..kMaxQueues-1.
constexpr uint64_t kTagStop = ~0ull;
constexpr uint64_t kTagWake = ~0ull - 1;
constexpr uint64_t kTagIoFdBase = 1ull << 32;

std::string hex(uint64_t v) {
  char b[24];
  std::snprintf(b, sizeof b, "0x%llx", static_cast<unsigned long long>(v));
  return b;
}

}  // namespace

VirtioPciDevice::VirtioPciDevice(GuestMemory& mem, GsiRouter& router, const Params& p)
    : PciDevice(PciIds{VIRTIO_PCI_VENDOR_ID, static_cast<uint16_t>(VIRTIO_PCI_DEVICE_ID_BASE + p.device_type),
                       p.class_code, VIRTIO_PCI_MIN_REVISION, VIRTIO_PCI_VENDOR_ID,
                       // §4.1.2.1: non-transitional devices SHOULD use a
                       // subsystem ID of 0x40 or more (legacy drivers skip them).
                       static_cast<uint16_t>(0x40 + p.device_type), 0},
                p.name),
      mem_(mem),
      router_(router),
      params_(p),
      offered_(p.device_features | kTransportFeatures) {
  if (p.num_queues == 0 || p.num_queues > kMaxQueues) throw std::logic_error(p.name + ": 1 to 64 queues");
  if (!is_valid_queue_size(p.max_queue_size)) throw std::logic_error(p.name + ": bad maximum queue size");
  if (p.config_size > kDeviceCfgMax) throw std::logic_error(p.name + ": device configuration too large");
  // Bits 28-40 belong to the transport (§6); a device model does not set them.
  const uint64_t reserved = ((1ull << 41) - 1) & ~((1ull << 28) - 1);
  if (p.device_features & reserved) throw std::logic_error(p.name + ": device features overlap transport bits");

  add_bar(kBar, PciBarKind::kMem64, kBarSize);
  add_virtio_capability(VIRTIO_PCI_CAP_COMMON_CFG, kCommonOffset, sizeof(virtio_pci_common_cfg));
  add_virtio_capability(VIRTIO_PCI_CAP_NOTIFY_CFG, kNotifyOffset, p.num_queues * kNotifyMultiplier, 4);
  add_virtio_capability(VIRTIO_PCI_CAP_ISR_CFG, kIsrOffset, kIsrSize);
  if (p.config_size) add_virtio_capability(VIRTIO_PCI_CAP_DEVICE_CFG, kDeviceCfgOffset, p.config_size);
  // One vector per queue plus one for configuration changes, as Linux
  // asks for first.
  msix_ = std::make_unique<MsiX>(*this, router, static_cast<uint16_t>(p.num_queues + 1), kBar, kMsixTableOffset,
                                 kMsixPbaOffset);

  queues_.resize(p.num_queues);
  for (Queue& q : queues_) {
    q.vq = std::make_unique<Virtqueue>(mem_);
    reset_queue_config_locked(q);
  }
  for (uint16_t i = 0; i < p.num_queues; ++i) kick_.push_back(std::make_unique<EventFd>());
}

VirtioPciDevice::~VirtioPciDevice() { shutdown(); }

void VirtioPciDevice::add_virtio_capability(uint8_t cfg_type, uint32_t offset, uint32_t length, uint8_t extra) {
  const uint8_t len = static_cast<uint8_t>(sizeof(virtio_pci_cap) + extra);
  const uint8_t cap = add_capability(pci::kCapIdVendor, len);
  raw_set8(cap + offsetof(virtio_pci_cap, cap_len), len);
  raw_set8(cap + offsetof(virtio_pci_cap, cfg_type), cfg_type);
  raw_set8(cap + offsetof(virtio_pci_cap, bar), kBar);
  raw_set32(cap + offsetof(virtio_pci_cap, offset), offset);
  raw_set32(cap + offsetof(virtio_pci_cap, length), length);
  if (cfg_type == VIRTIO_PCI_CAP_NOTIFY_CFG)
    raw_set32(cap + offsetof(virtio_pci_notify_cap, notify_off_multiplier), kNotifyMultiplier);
}

void VirtioPciDevice::start() {
  if (started_) throw std::logic_error(name() + ": started twice");
  started_ = true;
  thread_ = std::thread([this] { io_thread_main(); });
}

void VirtioPciDevice::shutdown() {
  if (!thread_.joinable()) return;
  stop_.signal();
  thread_.join();
}

void VirtioPciDevice::add_io_fd(int fd, std::function<void()> handler) {
  if (started_) throw std::logic_error(name() + ": add_io_fd after start");
  io_fds_.push_back(IoFd{fd, std::move(handler)});
}

uint8_t VirtioPciDevice::device_status() const {
  std::lock_guard lock(mu_);
  return status_;
}

uint64_t VirtioPciDevice::negotiated_features() const {
  std::lock_guard lock(mu_);
  return negotiated_;
}

std::string VirtioPciDevice::needs_reset_reason() const {
  std::lock_guard lock(mu_);
  return needs_reset_reason_;
}

bool VirtioPciDevice::live_locked() const {
  return (status_ & VIRTIO_STATUS_DRIVER_OK) &&
         !(status_ & (VIRTIO_STATUS_DEVICE_NEEDS_RESET | VIRTIO_STATUS_FAILED));
}

uint16_t VirtioPciDevice::checked_vector(uint16_t v) const {
  // §4.1.5.1.2: a vector the device cannot use reads back as NO_VECTOR,
  // which is how the driver learns the mapping failed.
  return v < msix_->vectors() ? v : VIRTIO_MSI_NO_VECTOR;
}

void VirtioPciDevice::reset_queue_config_locked(Queue& q) {
  q.size = params_.max_queue_size;
  q.msix_vector = VIRTIO_MSI_NO_VECTOR;
  q.desc = q.driver = q.device = 0;
  q.enabled = false;
  q.reset_done = false;
}

// ---- Interrupts and errors --------------------------------------------------

void VirtioPciDevice::notify_queue(uint16_t q) {
  Queue& queue = queues_.at(q);
  if (!queue.vq->should_notify()) return;
  isr_.fetch_or(VIRTIO_PCI_ISR_QUEUE);
  if (msix_->notify(queue.msix_vector)) tstats_.interrupts.fetch_add(1, std::memory_order_relaxed);
}

void VirtioPciDevice::raise_config_interrupt_locked() {
  isr_.fetch_or(VIRTIO_PCI_ISR_CONFIG);
  if (msix_->notify(config_vector_)) tstats_.config_interrupts.fetch_add(1, std::memory_order_relaxed);
}

void VirtioPciDevice::config_changed() {
  config_generation_.fetch_add(1);
  raise_config_interrupt_locked();
}

void VirtioPciDevice::device_error(const std::string& reason) {
  if (status_ & VIRTIO_STATUS_DEVICE_NEEDS_RESET) return;  // the first reason stands
  status_ |= VIRTIO_STATUS_DEVICE_NEEDS_RESET;
  needs_reset_reason_ = reason;
  const uint64_t n = tstats_.needs_reset.fetch_add(1) + 1;
  if (n <= kMaxLoggedErrors)
    std::fprintf(stderr, "vmm: %s: device needs reset: %s%s\n", name().c_str(), reason.c_str(),
                 n == kMaxLoggedErrors ? " (further errors are counted, not logged)" : "");
  raise_config_interrupt_locked();
}

void VirtioPciDevice::check_queues_locked() {
  for (size_t i = 0; i < queues_.size(); ++i)
    if (queues_[i].enabled && queues_[i].vq->broken())
      device_error("queue " + std::to_string(i) + ": " + queues_[i].vq->broken_reason());
}

// ---- Common configuration ---------------------------------------------------

virtio_pci_common_cfg VirtioPciDevice::common_snapshot_locked() const {
  virtio_pci_common_cfg c{};
  c.device_feature_select = device_feature_select_;
  c.device_feature = device_feature_select_ == 0   ? static_cast<uint32_t>(offered_)
                     : device_feature_select_ == 1 ? static_cast<uint32_t>(offered_ >> 32)
                                                   : 0;
  c.driver_feature_select = driver_feature_select_;
  c.driver_feature = driver_feature_select_ == 0   ? static_cast<uint32_t>(driver_features_)
                     : driver_feature_select_ == 1 ? static_cast<uint32_t>(driver_features_ >> 32)
                                                   : 0;
  c.config_msix_vector = config_vector_;
  c.num_queues = params_.num_queues;
  c.device_status = status_;
  c.config_generation = config_generation_.load();
  c.queue_select = queue_select_;
  // §4.1.4.3.2: a queue_select past the last queue reads queue_size 0
  // ("not available"), and every other queue field 0.
  if (queue_select_ < queues_.size()) {
    const Queue& q = queues_[queue_select_];
    c.queue_size = q.size;
    c.queue_msix_vector = q.msix_vector;
    c.queue_enable = q.enabled ? 1 : 0;
    c.queue_notify_off = queue_select_;
    c.queue_desc_lo = static_cast<uint32_t>(q.desc);
    c.queue_desc_hi = static_cast<uint32_t>(q.desc >> 32);
    c.queue_driver_lo = static_cast<uint32_t>(q.driver);
    c.queue_driver_hi = static_cast<uint32_t>(q.driver >> 32);
    c.queue_device_lo = static_cast<uint32_t>(q.device);
    c.queue_device_hi = static_cast<uint32_t>(q.device >> 32);
    c.queue_notify_data = queue_select_;
    c.queue_reset = q.reset_done ? 1 : 0;
  }
  return c;
}

void VirtioPciDevice::common_read(uint64_t offset, uint8_t* data, uint32_t size) {
  std::memset(data, 0, size);
  if (offset >= sizeof(virtio_pci_common_cfg)) return;
  std::lock_guard lock(mu_);
  const virtio_pci_common_cfg c = common_snapshot_locked();
  const size_t n = std::min<size_t>(size, sizeof c - offset);
  std::memcpy(data, reinterpret_cast<const uint8_t*>(&c) + offset, n);
}

void VirtioPciDevice::common_write(uint64_t offset, const uint8_t* data, uint32_t size) {
  if (offset >= sizeof(virtio_pci_common_cfg)) return;
  std::lock_guard lock(mu_);
  // Merge the written bytes into the current register image, then act on
  // each writable field the access touched, in address order. Drivers use
  // each field's natural width; a wider or partial access still does what
  // the bytes say, and read-only fields ignore it.
  virtio_pci_common_cfg img = common_snapshot_locked();
  const size_t n = std::min<size_t>(size, sizeof img - offset);
  std::memcpy(reinterpret_cast<uint8_t*>(&img) + offset, data, n);
  const uint64_t end = offset + n;
  auto touched = [&](size_t field, size_t width) { return offset < field + width && field < end; };
#define FIELD(f) offsetof(virtio_pci_common_cfg, f), sizeof(img.f)
  Queue* q = nullptr;
  auto selected = [&]() -> Queue* { return queue_select_ < queues_.size() ? &queues_[queue_select_] : nullptr; };

  if (touched(FIELD(device_feature_select))) device_feature_select_ = img.device_feature_select;
  if (touched(FIELD(driver_feature_select))) driver_feature_select_ = img.driver_feature_select;
  if (touched(FIELD(driver_feature)) && !(status_ & VIRTIO_STATUS_FEATURES_OK)) {
    // §3.1.1: features are fixed once FEATURES_OK is set.
    if (driver_feature_select_ == 0)
      driver_features_ = (driver_features_ & ~0xffffffffull) | img.driver_feature;
    else if (driver_feature_select_ == 1)
      driver_features_ = (driver_features_ & 0xffffffffull) | (uint64_t(img.driver_feature) << 32);
    else if (img.driver_feature)
      driver_features_high_ = true;  // a feature above bit 63: never offered
  }
  if (touched(FIELD(config_msix_vector))) config_vector_ = checked_vector(img.config_msix_vector);
  if (touched(FIELD(device_status))) write_status_locked(img.device_status);
  if (touched(FIELD(queue_select))) queue_select_ = img.queue_select;
  q = selected();
  if (q && !q->enabled) {
    // §4.1.4.3.2: the driver sets these only while the queue is disabled.
    if (touched(FIELD(queue_size))) q->size = img.queue_size;
    if (touched(FIELD(queue_desc_lo)) || touched(FIELD(queue_desc_hi)))
      q->desc = img.queue_desc_lo | (uint64_t(img.queue_desc_hi) << 32);
    if (touched(FIELD(queue_driver_lo)) || touched(FIELD(queue_driver_hi)))
      q->driver = img.queue_driver_lo | (uint64_t(img.queue_driver_hi) << 32);
    if (touched(FIELD(queue_device_lo)) || touched(FIELD(queue_device_hi)))
      q->device = img.queue_device_lo | (uint64_t(img.queue_device_hi) << 32);
  }
  if (q && touched(FIELD(queue_msix_vector))) q->msix_vector = checked_vector(img.queue_msix_vector);
  // Writing 0 to queue_enable is forbidden to the driver (§4.1.4.3.2);
  // a queue is disabled by a device or queue reset.
  if (q && touched(FIELD(queue_enable)) && img.queue_enable == 1 && !q->enabled) enable_queue_locked(queue_select_);
  if (q && touched(FIELD(queue_reset)) && img.queue_reset == 1 && has_feature(VIRTIO_F_RING_RESET))
    queue_reset_locked(queue_select_);
#undef FIELD
}

void VirtioPciDevice::write_status_locked(uint8_t value) {
  if (value == 0) {
    reset_locked();
    return;
  }
  // Bits are only ever added by the driver (§2.1.2: it must not clear
  // them, except by reset); DEVICE_NEEDS_RESET belongs to the device.
  uint8_t add = static_cast<uint8_t>(value & ~status_ & ~VIRTIO_STATUS_DEVICE_NEEDS_RESET);
  if (add & VIRTIO_STATUS_FEATURES_OK) {
    std::string why;
    if (!(driver_features_ & feature_bit(VIRTIO_F_VERSION_1)))
      why = "the driver did not accept VIRTIO_F_VERSION_1 (legacy drivers are not supported)";
    else if ((driver_features_ & ~offered_) || driver_features_high_)
      why = "the driver accepted features that were not offered (" +
            hex(driver_features_ & ~offered_) + (driver_features_high_ ? " and bits above 63" : "") + ")";
    else
      accept_features(driver_features_, why);
    if (why.empty()) {
      negotiated_ = driver_features_;
    } else {
      // §3.1.1: the device leaves FEATURES_OK clear; the driver re-reads it.
      add &= ~VIRTIO_STATUS_FEATURES_OK;
      if (!refusal_logged_) {
        refusal_logged_ = true;
        std::fprintf(stderr, "vmm: %s: FEATURES_OK refused: %s\n", name().c_str(), why.c_str());
      }
    }
  }
  if ((add & VIRTIO_STATUS_DRIVER_OK) && !((status_ | add) & VIRTIO_STATUS_FEATURES_OK)) {
    status_ |= static_cast<uint8_t>(add & ~VIRTIO_STATUS_DRIVER_OK);
    device_error("DRIVER_OK without FEATURES_OK");
    return;
  }
  status_ |= add;
  if (add & VIRTIO_STATUS_DRIVER_OK && live_locked()) {
    on_driver_ok();
    // Kicks that came before DRIVER_OK were dropped: look at every queue.
    wake_.signal();
  }
}

void VirtioPciDevice::reset_locked() {
  // The device model first finishes what it has in flight, so nothing
  // touches the old rings once the driver sees status 0.
  on_reset();
  for (Queue& q : queues_) {
    q.vq->reset();
    reset_queue_config_locked(q);
  }
  status_ = 0;
  driver_features_ = negotiated_ = 0;
  driver_features_high_ = false;
  device_feature_select_ = driver_feature_select_ = 0;
  config_vector_ = VIRTIO_MSI_NO_VECTOR;
  queue_select_ = 0;
  needs_reset_reason_.clear();
  isr_.store(0);
  tstats_.resets.fetch_add(1, std::memory_order_relaxed);
}

void VirtioPciDevice::enable_queue_locked(uint16_t index) {
  Queue& q = queues_[index];
  const std::string what = "queue " + std::to_string(index) + ": ";
  if (!(status_ & VIRTIO_STATUS_FEATURES_OK)) {
    device_error(what + "enabled before FEATURES_OK");
    return;
  }
  if (q.size > params_.max_queue_size) {
    device_error(what + "size " + std::to_string(q.size) + " above the maximum " +
                 std::to_string(params_.max_queue_size));
    return;
  }
  const VirtqueueConfigError err = enable_virtqueue_locked(q);
  if (err != VirtqueueConfigError::kNone) {
    device_error(what + to_string(err) + " (size " + std::to_string(q.size) + ", desc " + hex(q.desc) +
                 ", driver " + hex(q.driver) + ", device " + hex(q.device) + ")");
    return;
  }
  q.enabled = true;
  q.reset_done = false;
  if (live_locked()) wake_.signal();  // re-enabled after a queue reset
}

VirtqueueConfigError VirtioPciDevice::enable_virtqueue_locked(Queue& q) {
  if (q.size > params_.max_queue_size) return VirtqueueConfigError::kBadSize;
  VirtqueueConfig cfg;
  cfg.size = q.size;
  cfg.desc = q.desc;
  cfg.avail = q.driver;
  cfg.used = q.device;
  cfg.event_idx = has_feature(VIRTIO_F_EVENT_IDX);
  cfg.indirect_desc = has_feature(VIRTIO_F_INDIRECT_DESC);
  return q.vq->enable(cfg);
}

void VirtioPciDevice::queue_reset_locked(uint16_t index) {
  Queue& q = queues_[index];
  on_queue_reset(index);
  q.vq->reset();
  reset_queue_config_locked(q);
  // §4.1.4.3.2 (1.2): queue_reset reads 1 once the reset is done, until
  // the queue is enabled again.
  q.reset_done = true;
}

// ---- BAR accesses -------------------------------------------------------------

void VirtioPciDevice::bar_read(uint32_t bar, uint64_t offset, uint8_t* data, uint32_t size) {
  tstats_.mmio_exits.fetch_add(1, std::memory_order_relaxed);
  if (bar != kBar) {
    std::memset(data, 0xff, size);
    return;
  }
  if (msix_->bar_read(bar, offset, data, size)) return;
  if (offset < kIsrOffset) {
    common_read(offset - kCommonOffset, data, size);
    return;
  }
  std::memset(data, 0, size);
  if (offset >= kIsrOffset && offset < kIsrOffset + kIsrSize) {
    // §4.1.4.5: reading the ISR clears it.
    if (offset == kIsrOffset) data[0] = isr_.exchange(0);
  } else if (offset >= kDeviceCfgOffset && offset < kDeviceCfgOffset + params_.config_size) {
    const uint32_t rel = static_cast<uint32_t>(offset - kDeviceCfgOffset);
    const uint32_t n = std::min(size, params_.config_size - rel);
    std::lock_guard lock(mu_);
    read_device_config(rel, data, n);
  }
  // The notify area and the unused parts of the BAR read as zero.
}

void VirtioPciDevice::bar_write(uint32_t bar, uint64_t offset, const uint8_t* data, uint32_t size) {
  tstats_.mmio_exits.fetch_add(1, std::memory_order_relaxed);
  if (bar != kBar) return;
  if (msix_->bar_write(bar, offset, data, size)) return;
  if (offset < kIsrOffset) {
    common_write(offset - kCommonOffset, data, size);
  } else if (offset >= kNotifyOffset && offset < kNotifyOffset + uint64_t(params_.num_queues) * kNotifyMultiplier) {
    // A kick that exited to userspace: no ioeventfd (or a write of another
    // width than the one bound). The queue is the slot, whatever the value.
    kick_[(offset - kNotifyOffset) / kNotifyMultiplier]->signal();
  } else if (offset >= kDeviceCfgOffset && offset < kDeviceCfgOffset + params_.config_size) {
    const uint32_t rel = static_cast<uint32_t>(offset - kDeviceCfgOffset);
    const uint32_t n = std::min(size, params_.config_size - rel);
    std::lock_guard lock(mu_);
    write_device_config(rel, data, n);
  }
  // ISR and unused parts: writes ignored.
}

void VirtioPciDevice::bar_remapped(uint32_t bar, std::optional<uint64_t> address) {
  if (bar != kBar) return;
  std::lock_guard lock(ioevent_mu_);
  notifiers_.clear();  // unbinds the old addresses
  if (!address || !router_.capabilities().ioeventfd) return;
  try {
    // §4.1.5.2: without VIRTIO_F_NOTIFICATION_DATA the driver writes the
    // 16-bit queue index; other widths still work, through a VM exit.
    for (uint16_t q = 0; q < params_.num_queues; ++q)
      notifiers_.push_back(std::make_unique<IoEventFd>(router_.backend(), *kick_[q], IoSpace::kMmio,
                                                       *address + kNotifyOffset + q * kNotifyMultiplier, 2));
  } catch (const std::exception& e) {
    notifiers_.clear();
    if (!ioeventfd_failed_logged_) {
      ioeventfd_failed_logged_ = true;
      std::fprintf(stderr, "vmm: %s: no ioeventfd (%s); queue kicks will exit to the VMM\n", name().c_str(),
                   e.what());
    }
  }
}

// ---- The I/O thread -------------------------------------------------------------

void VirtioPciDevice::setup_epoll() {
  if (epoll_) return;
  Fd ep(::epoll_create1(EPOLL_CLOEXEC));
  if (!ep) throw std::runtime_error("epoll_create1: " + std::string(std::strerror(errno)));
  auto watch = [&](int fd, uint64_t tag) {
    epoll_event ev{};
    ev.events = EPOLLIN;
    ev.data.u64 = tag;
    if (::epoll_ctl(ep.get(), EPOLL_CTL_ADD, fd, &ev) < 0)
      throw std::runtime_error("epoll_ctl: " + std::string(std::strerror(errno)));
  };
  watch(stop_.fd(), kTagStop);
  watch(wake_.fd(), kTagWake);
  for (uint16_t q = 0; q < params_.num_queues; ++q) watch(kick_[q]->fd(), q);
  for (size_t i = 0; i < io_fds_.size(); ++i) watch(io_fds_[i].fd, kTagIoFdBase + i);
  epoll_ = std::move(ep);
}

void VirtioPciDevice::io_thread_main() {
  pthread_setname_np(pthread_self(), name().substr(0, 15).c_str());  // ps and /proc tell the threads apart
  try {
    setup_epoll();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "vmm: %s: I/O thread cannot start: %s\n", name().c_str(), e.what());
    std::lock_guard lock(mu_);
    device_error("no I/O thread");
    return;
  }
  while (dispatch(-1)) {
  }
}

void VirtioPciDevice::poll() {
  if (started_) throw std::logic_error(name() + ": poll() on a device with an I/O thread");
  setup_epoll();
  dispatch(0);
}

bool VirtioPciDevice::dispatch(int timeout_ms) {
  // Runs a device callback; an exception (a VMM bug or a host failure) puts
  // the device in DEVICE_NEEDS_RESET rather than ending the process.
  auto guarded = [&](auto&& fn) {
    try {
      fn();
    } catch (const std::exception& e) {
      device_error(std::string("internal error: ") + e.what());
    }
    check_queues_locked();
  };
  epoll_event events[16];
  const int n = ::epoll_wait(epoll_.get(), events, 16, timeout_ms);
  if (n < 0) {
    if (errno == EINTR) return true;
    std::fprintf(stderr, "vmm: %s: epoll_wait: %s\n", name().c_str(), std::strerror(errno));
    return false;
  }
  for (int i = 0; i < n; ++i) {
    const uint64_t tag = events[i].data.u64;
    if (tag == kTagStop) return false;
    if (tag == kTagWake) {
      wake_.consume();
      std::lock_guard lock(mu_);
      for (uint16_t q = 0; q < params_.num_queues; ++q)
        if (queues_[q].enabled && live_locked()) guarded([&] { on_queue_kick(q); });
    } else if (tag < params_.num_queues) {
      const uint16_t q = static_cast<uint16_t>(tag);
      tstats_.kicks.fetch_add(kick_[q]->consume(), std::memory_order_relaxed);
      std::lock_guard lock(mu_);
      // Kicks while the device is not live are dropped; DRIVER_OK and
      // queue enable wake the thread to look at every queue anyway.
      if (live_locked() && queues_[q].enabled) guarded([&] { on_queue_kick(q); });
    } else if (tag >= kTagIoFdBase && tag - kTagIoFdBase < io_fds_.size()) {
      std::lock_guard lock(mu_);
      guarded([&] { io_fds_[tag - kTagIoFdBase].handler(); });
    }
  }
  return true;
}

// ---- Snapshots -------------------------------------------------------------------

std::unique_lock<std::mutex> VirtioPciDevice::quiesce() {
  std::unique_lock lock(mu_);
  try {
    on_quiesce();
  } catch (const std::exception& e) {
    device_error(std::string("internal error while quiescing: ") + e.what());
  }
  return lock;
}

VirtioPciDevice::TransportState VirtioPciDevice::transport_state_locked() const {
  TransportState s;
  s.status = status_;
  s.isr = isr_.load();
  s.config_generation = config_generation_.load();
  s.driver_features = driver_features_;
  s.negotiated = negotiated_;
  s.driver_features_high = driver_features_high_;
  s.device_feature_select = device_feature_select_;
  s.driver_feature_select = driver_feature_select_;
  s.config_vector = config_vector_;
  s.queue_select = queue_select_;
  s.needs_reset_reason = needs_reset_reason_;
  for (size_t i = 0; i < queues_.size(); ++i) {
    const Queue& q = queues_[i];
    QueueState qs{q.size, q.msix_vector, q.desc, q.driver, q.device, q.enabled, q.reset_done, q.vq->state()};
    if (qs.vq.in_flight)
      throw std::runtime_error(name() + ": queue " + std::to_string(i) + " has " + std::to_string(qs.vq.in_flight) +
                               " requests in flight");
    s.queues.push_back(qs);
  }
  return s;
}

void VirtioPciDevice::restore_transport_state(const TransportState& s) {
  std::lock_guard lock(mu_);
  if (s.queues.size() != queues_.size())
    throw std::runtime_error(name() + ": the snapshot has " + std::to_string(s.queues.size()) + " queues, the device " +
                             std::to_string(queues_.size()));
  // What the driver could never have set is refused, as the register
  // writes would have refused it.
  if (s.negotiated & ~offered_) throw std::runtime_error(name() + ": the snapshot negotiated features never offered");
  status_ = s.status;
  isr_.store(s.isr);
  config_generation_.store(s.config_generation);
  driver_features_ = s.driver_features;
  negotiated_ = s.negotiated;
  driver_features_high_ = s.driver_features_high;
  device_feature_select_ = s.device_feature_select;
  driver_feature_select_ = s.driver_feature_select;
  config_vector_ = checked_vector(s.config_vector);
  queue_select_ = s.queue_select;
  needs_reset_reason_ = s.needs_reset_reason;
  for (size_t i = 0; i < queues_.size(); ++i) {
    const QueueState& qs = s.queues[i];
    Queue& q = queues_[i];
    q.vq->reset();
    q.size = qs.size;
    q.msix_vector = checked_vector(qs.msix_vector);
    q.desc = qs.desc;
    q.driver = qs.driver;
    q.device = qs.device;
    q.reset_done = qs.reset_done;
    q.enabled = false;
    if (!qs.enabled) continue;
    const VirtqueueConfigError err = enable_virtqueue_locked(q);
    if (err != VirtqueueConfigError::kNone)
      throw std::runtime_error(name() + ": queue " + std::to_string(i) + " cannot be enabled again: " + to_string(err));
    if (!q.vq->restore_state(qs.vq))
      throw std::runtime_error(name() + ": queue " + std::to_string(i) + " cannot take its saved indices");
    q.enabled = true;
  }
  on_restored();
  // Whatever the driver made available while the VM was being saved, or
  // frames that wait: look at every queue once.
  if (live_locked()) wake_.signal();
}

// ---- Statistics -------------------------------------------------------------------

std::string VirtioPciDevice::stats_line() const {
  auto get = [](const std::atomic<uint64_t>& a) { return std::to_string(a.load(std::memory_order_relaxed)); };
  std::string s = name() + ": " + get(tstats_.mmio_exits) + " MMIO exits, " + get(tstats_.kicks) + " kicks, " +
                  get(tstats_.interrupts) + " interrupts (+" + get(tstats_.config_interrupts) + " config), " +
                  get(tstats_.resets) + " resets";
  if (tstats_.needs_reset.load()) s += ", " + get(tstats_.needs_reset) + " times DEVICE_NEEDS_RESET";
  const std::string dev = device_stats();
  if (!dev.empty()) s += "; " + dev;
  return s;
}

}  // namespace vmm
