// The guest's virtio-pci modern transport (virtio 1.2 §4.1): finds the
// common, notify, ISR and device configuration structures through the
// vendor capabilities, resets the device and walks the initialization
// sequence (§3.1.1), negotiates features, sets queues up with their own
// MSI-X vectors, and notifies.
//
// Interrupt handlers do nothing but count and raise an IrqWork: the queue
// callbacks and the configuration-change callback run on the event loop.
// A device that sets DEVICE_NEEDS_RESET is reported on the console and
// marked broken; the drivers then stop submitting.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "guest-kernel/kernel/event_loop.h"
#include "guest-kernel/pci/pci.h"
#include "virtio/guest/virtqueue.h"
#include "virtio/pci.h"

namespace virtio::guest {

class PciTransport {
 public:
  using Callback = void (*)(void* context);

  // Locates the structures, enables the function, resets the device and
  // sets ACKNOWLEDGE and DRIVER. `name` prefixes every message. False (with
  // a message) if the device is not a usable modern virtio-pci device.
  bool init(const pci::Device& dev, const char* name);

  uint64_t device_features();
  // Accepts VERSION_1 (required), EVENT_IDX and INDIRECT_DESC when offered,
  // plus whichever of `wanted` (device-specific bits) the device offers;
  // writes them, sets FEATURES_OK and checks the device kept it. Returns
  // false (device marked FAILED) otherwise.
  bool negotiate(uint64_t wanted);
  uint64_t features() const { return features_; }
  bool has(unsigned bit) const { return features_ & (1ull << bit); }

  uint16_t num_queues();
  // Sets queue `index` up: size = min(device maximum, max_size), ring
  // memory allocated here, its own MSI-X vector whose interrupt runs
  // `on_used(context)` on the event loop. False (with a message) on error.
  bool setup_queue(uint16_t index, uint16_t max_size, Virtqueue* q, Callback on_used, void* context);
  // Called on the loop after a configuration-change interrupt, once the
  // transport has checked DEVICE_NEEDS_RESET.
  void set_config_callback(Callback fn, void* context);
  // Sets DRIVER_OK: the device is live.
  bool driver_ok();
  // Sets FAILED (the driver gives up on the device).
  void fail(const char* why);

  // Device-specific configuration, read consistently (config_generation
  // re-checked, §2.5.1). `offset` is checked against the structure's length;
  // false if out of range.
  bool read_config(uint32_t offset, void* out, uint32_t len);
  uint32_t device_config_length() const { return device_len_; }
  // Writes a driver-owned field of the device configuration (the
  // balloon's `actual`): 1, 2 or 4 bytes at a naturally aligned offset
  // inside the structure; false otherwise.
  bool write_config(uint32_t offset, const void* in, uint32_t len);

  uint8_t status();
  bool broken() const { return broken_; }
  uint64_t interrupts() const { return interrupts_; }
  const pci::Device& pci_device() const { return *dev_; }
  const char* name() const { return name_; }

 private:
  struct Vector {
    PciTransport* transport = nullptr;
    IrqWork work;
    Callback fn = nullptr;
    void* context = nullptr;
    uint8_t cpu_vector = 0;
  };
  // Queues this transport drives (net uses 2, blk 1); MSI-X entry 0 is
  // for configuration changes, entry q + 1 for queue q.
  static constexpr uint16_t kMaxQueues = 4;

  volatile virtio_pci_common_cfg* common() const {
    return reinterpret_cast<volatile virtio_pci_common_cfg*>(common_);
  }
  void set_status(uint8_t bits);
  bool route_vector(uint16_t entry, Callback fn, void* context);
  static void notify(void* context, uint16_t queue);
  static void on_config(void* context);

  const pci::Device* dev_ = nullptr;
  const char* name_ = "virtio";
  uint64_t common_ = 0, isr_ = 0, device_cfg_ = 0, notify_base_ = 0;
  uint32_t device_len_ = 0, notify_len_ = 0, notify_multiplier_ = 0;
  uint64_t features_ = 0;
  pci::Msix msix_;
  Vector vectors_[kMaxQueues + 1];
  uint64_t notify_addr_[kMaxQueues] = {};
  Callback config_fn_ = nullptr;
  void* config_context_ = nullptr;
  bool broken_ = false;
  volatile uint64_t interrupts_ = 0;
};

// Runs the event loop until `*flag` is set or `timeout_ns` passes; for the
// few synchronous steps of a probe (interrupts are on while it runs, and
// restored after). Returns *flag.
bool run_loop_until(const bool* flag, uint64_t timeout_ns);

// "0000:bb:ss.f" of a PCI function, for messages.
void format_pci_address(const pci::Device& d, char* out, size_t size);

}  // namespace virtio::guest
