// The virtio-pci modern transport (virtio 1.2 §4.1), host side: one PCI
// function whose 64-bit memory BAR 0 holds the common configuration, the
// ISR, the device configuration, the notification area and the MSI-X table
// and PBA. A device model (virtio-blk, virtio-net, ...) derives from
// VirtioPciDevice and supplies its type, features, configuration space and
// queue work; this class does feature negotiation, the device status state
// machine, resets, queue setup, notifications (ioeventfd) and interrupts
// (MSI-X through irqfd).
//
// Threads. vCPU threads reach the BAR (bar_read/bar_write, no PCI lock);
// each device has one I/O thread that waits (epoll) on one eventfd per
// queue (bound by KVM_IOEVENTFD to the queue's notify address, so a kick
// does not leave the kernel), a wake-up eventfd, a stop eventfd and any fds
// the device adds (add_io_fd). The device's work runs only there, never on
// a vCPU. One mutex, `mu_`, covers the transport state, the Virtqueues and
// every device callback: the I/O thread holds it while it works on a queue,
// a vCPU holds it while it changes the configuration. So a reset or a
// queue change waits for the I/O thread's current batch and the I/O thread
// never sees a half-changed queue. Lock order: mu_ -> MsiX -> GsiRouter;
// PciDevice's config lock -> ioeventfd lock.
//
// Hostile guests: every register offset, size and value is checked; a
// queue that breaks a rule (Virtqueue::broken), a queue configuration that
// Virtqueue::enable refuses, or a request a device model cannot make sense
// of sets DEVICE_NEEDS_RESET and raises the configuration interrupt; the
// device then does nothing until the driver resets it.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "virtio/features.h"
#include "virtio/host/virtqueue.h"
#include "virtio/pci.h"
#include "vmm/guest_memory.h"
#include "vmm/irq/eventfd.h"
#include "vmm/irq/gsi_router.h"
#include "vmm/pci/msix.h"
#include "vmm/pci/pci_device.h"

namespace vmm {

// Transport counters, shared by every device model; readable from any
// thread at any time.
struct VirtioTransportStats {
  std::atomic<uint64_t> mmio_exits{0};        // BAR accesses that reached userspace
  std::atomic<uint64_t> kicks{0};             // queue notifications (eventfd counts)
  std::atomic<uint64_t> interrupts{0};        // queue interrupts sent (MSI-X)
  std::atomic<uint64_t> config_interrupts{0}; // configuration-change interrupts sent
  std::atomic<uint64_t> resets{0};            // device resets by the driver
  std::atomic<uint64_t> needs_reset{0};       // times DEVICE_NEEDS_RESET was set
};

class VirtioPciDevice : public PciDevice {
 public:
  // BAR 0 layout (offsets inside the BAR). Every structure starts on its
  // own page; the notify area gives each queue its own 4-byte slot.
  static constexpr uint32_t kBar = 0;
  static constexpr uint64_t kBarSize = 0x8000;
  static constexpr uint32_t kCommonOffset = 0x0000;
  static constexpr uint32_t kIsrOffset = 0x1000;
  static constexpr uint32_t kIsrSize = 4;
  static constexpr uint32_t kDeviceCfgOffset = 0x2000;
  static constexpr uint32_t kDeviceCfgMax = 0x1000;
  static constexpr uint32_t kNotifyOffset = 0x3000;
  static constexpr uint32_t kNotifyMultiplier = 4;
  static constexpr uint32_t kMsixTableOffset = 0x4000;
  static constexpr uint32_t kMsixPbaOffset = 0x6000;
  static constexpr uint16_t kMaxQueues = 64;  // notify area and MSI-X table room

  // Transport features every device offers.
  static constexpr uint64_t kTransportFeatures =
      virtio::feature_bit(virtio::VIRTIO_F_VERSION_1) | virtio::feature_bit(virtio::VIRTIO_F_EVENT_IDX) |
      virtio::feature_bit(virtio::VIRTIO_F_INDIRECT_DESC) | virtio::feature_bit(virtio::VIRTIO_F_RING_RESET);

  struct Params {
    std::string name;           // for logs and statistics ("virtio-blk")
    uint16_t device_type = 0;   // virtio::VIRTIO_ID_*; PCI device ID 0x1040 + type
    uint32_t class_code = 0;    // PCI class code
    uint16_t num_queues = 1;    // 1..kMaxQueues
    uint16_t max_queue_size = 256;  // power of two, at most 32768
    uint64_t device_features = 0;   // device-specific bits (below 28 or above 40)
    uint32_t config_size = 0;   // bytes of device configuration (<= kDeviceCfgMax)
  };

  // Throws std::logic_error on bad parameters (a VMM bug), KvmError if an
  // eventfd cannot be made.
  VirtioPciDevice(GuestMemory& mem, GsiRouter& router, const Params& params);
  // Device models must call shutdown() first in their own destructor, so
  // the I/O thread is gone before their state is.
  ~VirtioPciDevice() override;

  // Starts the I/O thread. Call once, after construction (the thread calls
  // virtual functions, so not from the base constructor).
  void start();
  // Stops and joins the I/O thread. Idempotent; BAR accesses afterwards
  // still work, but no queue is served.
  void shutdown();
  // Does the I/O thread's pending work on the calling thread, without
  // waiting: for fuzz targets and tests that want every effect to happen at
  // a known point. Only for a device that was never start()ed.
  void poll();

  uint16_t device_type() const { return params_.device_type; }
  uint16_t num_queues() const { return params_.num_queues; }
  uint64_t offered_features() const { return offered_; }
  // The device status register and the negotiated features (0 until
  // FEATURES_OK), for tests and diagnostics.
  uint8_t device_status() const;
  uint64_t negotiated_features() const;
  const VirtioTransportStats& transport_stats() const { return tstats_; }
  // The first reason DEVICE_NEEDS_RESET was set since the last reset, or "".
  std::string needs_reset_reason() const;
  // The eventfd queue `q` is kicked through (what KVM_IOEVENTFD is bound
  // to): for tests.
  const EventFd& kick_event(uint16_t q) const { return *kick_.at(q); }
  MsiX& msix() { return *msix_; }

  // One line of statistics for `vmm --stats`: the transport's counters
  // followed by the device model's (device_stats()).
  std::string stats_line() const;

  // ---- Snapshots (vmm/snapshot) -------------------------------------------
  struct QueueState {
    uint16_t size = 0, msix_vector = 0;
    uint64_t desc = 0, driver = 0, device = 0;
    bool enabled = false, reset_done = false;
    VirtqueueState vq;
  };
  struct TransportState {
    uint8_t status = 0, isr = 0, config_generation = 0;
    uint64_t driver_features = 0, negotiated = 0;
    bool driver_features_high = false;
    uint32_t device_feature_select = 0, driver_feature_select = 0;
    uint16_t config_vector = 0, queue_select = 0;
    std::string needs_reset_reason;
    std::vector<QueueState> queues;
  };
  // Why this device model cannot be saved, or "" if it can.
  virtual std::string snapshot_refusal() const { return ""; }
  // Holds the device still until the returned lock is dropped, for a
  // snapshot (vmm/snapshot) and for same-page merging
  // (vmm/memory/merge_service.h): takes mu_, which covers every device
  // callback and the I/O thread's work, so the I/O thread is between
  // batches and stays there; then the device model finishes what it has in
  // flight outside mu_ (on_quiesce, e.g. virtio-blk's io_uring reads).
  // While the lock is held nothing touches guest memory on this device's
  // behalf; frames arriving for a NIC wait in its backlog. Any thread not
  // already holding mu_.
  std::unique_lock<std::mutex> quiesce();
  // With quiesce()'s lock held. Throws std::runtime_error if a queue still
  // has chains in flight (a snapshot must not lose a request).
  TransportState transport_state_locked() const;
  // On a freshly built device of the same kind (nothing negotiated yet):
  // takes the saved state, enables the saved queues again (checked against
  // guest RAM as a driver's enable is) and continues at their indices.
  // Throws std::runtime_error naming the queue that cannot be restored.
  // The MSI-X table is restored separately, after the config space.
  void restore_transport_state(const TransportState& s);

 protected:
  // ---- What a device model supplies ---------------------------------------
  // Device configuration space: [offset, offset + size) lies inside
  // config_size (checked here). Called on a vCPU thread with mu_ held.
  virtual void read_device_config(uint32_t offset, uint8_t* data, uint32_t size) = 0;
  virtual void write_device_config(uint32_t offset, const uint8_t* data, uint32_t size) {
    (void)offset, (void)data, (void)size;  // read-only by default
  }
  // FEATURES_OK: may the driver have these (already a subset of the
  // offered ones, with VERSION_1)? Set `why` when refusing.
  virtual bool accept_features(uint64_t features, std::string& why) {
    (void)features, (void)why;
    return true;
  }
  // DRIVER_OK was set (vCPU thread, mu_ held). Queues are then scanned once.
  virtual void on_driver_ok() {}
  // Device reset (vCPU thread, mu_ held), before the queues are reset:
  // finish or cancel in-flight work so nothing touches the old queues later.
  virtual void on_reset() {}
  // Queue reset (VIRTIO_F_RING_RESET), same rules, for queue `q` only.
  virtual void on_queue_reset(uint16_t q) { (void)q; }
  // Queue `q` was kicked, or needs a scan (I/O thread, mu_ held). Only
  // called while the device is live (DRIVER_OK, no error) and `q` enabled.
  virtual void on_queue_kick(uint16_t q) = 0;
  // The device model's part of stats_line(), e.g. "12 requests, 0 errors".
  virtual std::string device_stats() const { return ""; }
  // quiesce() (mu_ held): finish every write into guest RAM that runs
  // outside mu_ (the kernel's, for asynchronous I/O) and return those
  // chains, so nothing is in flight while the VM is saved or merged.
  virtual void on_quiesce() {}
  // After restore_transport_state (mu_ held): device-model state that
  // follows from the transport's (e.g. a NIC opens its receive side).
  virtual void on_restored() {}

  // ---- Helpers for device models (with mu_ held: inside the callbacks) ----
  // Adds `fd` to the I/O thread's epoll set (before start()); `handler`
  // runs on the I/O thread with mu_ held whenever fd is readable, whatever
  // the device's state, and must consume what made it readable.
  void add_io_fd(int fd, std::function<void()> handler);
  Virtqueue& queue(uint16_t q) { return *queues_.at(q).vq; }
  // DRIVER_OK set, no DEVICE_NEEDS_RESET, not FAILED.
  bool live_locked() const;
  bool has_feature(unsigned bit) const { return (negotiated_ >> bit) & 1; }
  // After used buffers were pushed: interrupts the driver if the queue's
  // notification suppression allows it (and sets the ISR queue bit).
  void notify_queue(uint16_t q);
  // The device cannot go on (a malformed request, an internal error):
  // DEVICE_NEEDS_RESET, configuration interrupt, one line on stderr.
  void device_error(const std::string& reason);
  // The device configuration changed: config_generation moves and the
  // driver gets the configuration interrupt.
  void config_changed();
  GuestMemory& mem() { return mem_; }
  // Wakes the I/O thread to scan every enabled queue (any thread).
  void wake_io_thread() { wake_.signal(); }

  mutable std::mutex mu_;

  // ---- PciDevice ------------------------------------------------------------
  void bar_read(uint32_t bar, uint64_t offset, uint8_t* data, uint32_t size) override;
  void bar_write(uint32_t bar, uint64_t offset, const uint8_t* data, uint32_t size) override;
  void bar_remapped(uint32_t bar, std::optional<uint64_t> address) override;

 private:
  struct Queue {
    std::unique_ptr<Virtqueue> vq;
    uint16_t size = 0;              // queue_size as the driver set it
    uint16_t msix_vector = virtio::VIRTIO_MSI_NO_VECTOR;
    uint64_t desc = 0, driver = 0, device = 0;
    bool enabled = false;
    bool reset_done = false;        // queue_reset reads 1 until re-enabled
  };
  struct IoFd {
    int fd;
    std::function<void()> handler;
  };

  void add_virtio_capability(uint8_t cfg_type, uint32_t offset, uint32_t length, uint8_t extra = 0);
  virtio::virtio_pci_common_cfg common_snapshot_locked() const;
  void common_read(uint64_t offset, uint8_t* data, uint32_t size);
  void common_write(uint64_t offset, const uint8_t* data, uint32_t size);
  void write_status_locked(uint8_t value);
  void reset_locked();
  void reset_queue_config_locked(Queue& q);
  void enable_queue_locked(uint16_t index);
  // Enables q's virtqueue at the addresses and size the driver set, with
  // the negotiated ring features (size checked against the maximum).
  VirtqueueConfigError enable_virtqueue_locked(Queue& q);
  void queue_reset_locked(uint16_t index);
  uint16_t checked_vector(uint16_t v) const;
  void raise_config_interrupt_locked();
  void check_queues_locked();
  void setup_epoll();
  // One round of the I/O loop: waits up to `timeout_ms` (-1: forever) and
  // handles what is ready. False when asked to stop.
  bool dispatch(int timeout_ms);
  void io_thread_main();

  GuestMemory& mem_;
  GsiRouter& router_;
  const Params params_;
  const uint64_t offered_;
  std::unique_ptr<MsiX> msix_;
  std::vector<std::unique_ptr<EventFd>> kick_;  // one per queue; fds stable for KVM
  EventFd wake_;
  EventFd stop_;
  std::vector<IoFd> io_fds_;
  Fd epoll_;
  std::thread thread_;
  bool started_ = false;

  // ioeventfd bindings at the current BAR address (PciDevice's config lock
  // -> this lock; never taken with mu_).
  std::mutex ioevent_mu_;
  std::vector<std::unique_ptr<IoEventFd>> notifiers_;
  bool ioeventfd_failed_logged_ = false;

  // Guarded by mu_.
  std::vector<Queue> queues_;
  uint32_t device_feature_select_ = 0;
  uint32_t driver_feature_select_ = 0;
  uint64_t driver_features_ = 0;   // as written by the driver
  bool driver_features_high_ = false;  // the driver set a bit above 63
  uint64_t negotiated_ = 0;        // accepted at FEATURES_OK
  uint16_t config_vector_ = virtio::VIRTIO_MSI_NO_VECTOR;
  uint16_t queue_select_ = 0;
  uint8_t status_ = 0;
  std::string needs_reset_reason_;
  bool refusal_logged_ = false;
  // Read without mu_ (ISR by vCPUs, generation by the driver).
  std::atomic<uint8_t> isr_{0};
  std::atomic<uint8_t> config_generation_{0};

  VirtioTransportStats tstats_;
};

}  // namespace vmm
