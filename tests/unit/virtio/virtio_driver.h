// A guest driver in miniature, for the transport and device tests: it
// finds the virtio capabilities in PCI configuration space, programs
// MSI-X, negotiates features, lays out split rings in guest RAM and posts
// descriptor chains, all through configuration and MMIO accesses on the
// buses, as a guest would. KVM is the FakeIrqBackend; the device's I/O
// thread is real, so completions are awaited with a timeout.
#pragma once

#include <gtest/gtest.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstring>
#include <map>
#include <memory>
#include <thread>
#include <vector>

#include "virtio/features.h"
#include "virtio/host/virtio_pci.h"
#include "virtio/pci.h"
#include "virtio/ring.h"
#include "vmm/guest_memory.h"
#include "vmm/irq/fake_irq_backend.h"
#include "vmm/pci/pci_bus.h"

namespace vmm::testing {

using namespace std::chrono_literals;

// What the devices under test plug into: fake KVM, buses, 16 MiB of RAM.
// RAM comes first so that it goes last: devices on the bus (and their I/O
// threads) live until the buses are destroyed.
struct VirtioRig {
  GuestMemory mem{16ull << 20};
  FakeIrqBackend kvm;
  GsiRouter router{kvm, IrqCapabilities::all()};
  IoBus pio, mmio;
  std::shared_ptr<PciBus> bus = PciBus::create(pio, mmio);
};

// Polls `cond` for up to two seconds (the device works on its own thread).
template <typename F>
bool eventually(F cond) {
  const auto deadline = std::chrono::steady_clock::now() + 2s;
  while (!cond()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    std::this_thread::sleep_for(200us);
  }
  return true;
}

struct Seg {
  uint64_t gpa;
  uint32_t len;
  bool write;  // device-writable
};

class Driver {
 public:
  Driver(VirtioRig& rig, VirtioPciDevice& dev) : rig_(rig), dev_(dev) {
    find_capabilities();
    bar_ = *dev_.bar_mapping(VirtioPciDevice::kBar);
  }

  // ---- Registers --------------------------------------------------------------
  uint64_t bar() const { return bar_; }
  uint32_t read(uint64_t off, uint32_t size) {
    uint64_t v = 0;
    rig_.mmio.read(bar_ + off, reinterpret_cast<uint8_t*>(&v), size);
    return static_cast<uint32_t>(v);
  }
  void write(uint64_t off, uint32_t size, uint64_t v) {
    rig_.mmio.write(bar_ + off, reinterpret_cast<const uint8_t*>(&v), size);
  }
#define COMMON(f) (common_ + offsetof(virtio::virtio_pci_common_cfg, f))
  uint8_t status() { return static_cast<uint8_t>(read(COMMON(device_status), 1)); }
  void set_status(uint8_t s) { write(COMMON(device_status), 1, s); }
  void add_status(uint8_t s) { set_status(status() | s); }
  uint64_t device_features() {
    write(COMMON(device_feature_select), 4, 0);
    uint64_t f = read(COMMON(device_feature), 4);
    write(COMMON(device_feature_select), 4, 1);
    return f | (uint64_t(read(COMMON(device_feature), 4)) << 32);
  }
  void set_driver_features(uint64_t f) {
    write(COMMON(driver_feature_select), 4, 0);
    write(COMMON(driver_feature), 4, static_cast<uint32_t>(f));
    write(COMMON(driver_feature_select), 4, 1);
    write(COMMON(driver_feature), 4, static_cast<uint32_t>(f >> 32));
  }
  uint16_t num_queues() { return static_cast<uint16_t>(read(COMMON(num_queues), 2)); }
  void select(uint16_t q) { write(COMMON(queue_select), 2, q); }
  uint16_t queue_size() { return static_cast<uint16_t>(read(COMMON(queue_size), 2)); }
  uint8_t isr() { return static_cast<uint8_t>(read(isr_, 1)); }
  uint32_t device_config(uint32_t off, uint32_t size) { return read(device_cfg_ + off, size); }

  // Reset, ACKNOWLEDGE, DRIVER, features, FEATURES_OK; true if it stuck.
  bool negotiate(uint64_t features) {
    set_status(0);
    EXPECT_EQ(status(), 0);
    add_status(virtio::VIRTIO_STATUS_ACKNOWLEDGE);
    add_status(virtio::VIRTIO_STATUS_DRIVER);
    // Reset forgot the configuration vector; vector 0 (set up by enable_msix).
    write(COMMON(config_msix_vector), 2, 0);
    set_driver_features(features);
    add_status(virtio::VIRTIO_STATUS_FEATURES_OK);
    return status() & virtio::VIRTIO_STATUS_FEATURES_OK;
  }
  uint64_t default_features() {
    return virtio::feature_bit(virtio::VIRTIO_F_VERSION_1) | virtio::feature_bit(virtio::VIRTIO_F_INDIRECT_DESC);
  }

  // MSI-X on, vector v -> message data 0x40 + v, all unmasked.
  void enable_msix() {
    const uint32_t cap = dev_.msix().capability_offset();
    dev_.config_write(cap + 2, 2, 0x8000);
    for (uint16_t v = 0; v < dev_.msix().vectors(); ++v) {
      const uint64_t e = VirtioPciDevice::kMsixTableOffset + 16ull * v;
      write(e, 4, 0xfee00000);
      write(e + 4, 4, 0);
      write(e + 8, 4, 0x40 + v);
      write(e + 12, 4, 0);
    }
    write(COMMON(config_msix_vector), 2, 0);
  }
  // Interrupts on vector `v` since last asked (reads its irqfd).
  uint64_t interrupts(uint16_t v) {
    auto gsi = dev_.msix().gsi(v);
    if (!gsi) return 0;
    int fd = -1;
    {
      std::lock_guard lock(rig_.kvm.mu);
      for (const auto& [f, g] : rig_.kvm.irqfds)
        if (g == *gsi) fd = f;
    }
    uint64_t n = 0;
    return fd >= 0 && ::read(fd, &n, sizeof n) == sizeof n ? n : 0;
  }
  bool wait_interrupt(uint16_t v) {
    uint64_t got = 0;
    return eventually([&] { return (got += interrupts(v)) > 0; });
  }

  // ---- Queues -----------------------------------------------------------------
  struct Ring {
    uint16_t size = 0;
    uint64_t desc = 0, avail = 0, used = 0;
    uint16_t next_desc = 0;   // descriptors handed out round-robin
    uint16_t avail_idx = 0;
    uint16_t used_seen = 0;
  };
  // Lays out queue `q` with `size` entries (vector q + 1) and enables it.
  void setup_queue(uint16_t q, uint16_t size) {
    Ring& r = rings_[q];
    r = Ring{};
    r.size = size;
    r.desc = alloc(virtio::desc_table_size(size), 16);
    r.avail = alloc(virtio::avail_ring_size(size), 2);
    r.used = alloc(virtio::used_ring_size(size), 4);
    select(q);
    write(COMMON(queue_size), 2, size);
    write(COMMON(queue_msix_vector), 2, q + 1);
    write(COMMON(queue_desc_lo), 4, static_cast<uint32_t>(r.desc));
    write(COMMON(queue_desc_hi), 4, static_cast<uint32_t>(r.desc >> 32));
    write(COMMON(queue_driver_lo), 4, static_cast<uint32_t>(r.avail));
    write(COMMON(queue_driver_hi), 4, 0);
    write(COMMON(queue_device_lo), 4, static_cast<uint32_t>(r.used));
    write(COMMON(queue_device_hi), 4, 0);
    write(COMMON(queue_enable), 2, 1);
  }
  Ring& ring(uint16_t q) { return rings_.at(q); }

  // Writes a chain into the descriptor table and publishes it; returns the head.
  uint16_t post(uint16_t q, const std::vector<Seg>& segs, bool publish = true) {
    Ring& r = rings_.at(q);
    const uint16_t head = r.next_desc;
    for (size_t i = 0; i < segs.size(); ++i) {
      const uint16_t idx = static_cast<uint16_t>((head + i) % r.size);
      virtio::virtq_desc d{};
      d.addr = segs[i].gpa;
      d.len = segs[i].len;
      d.flags = (segs[i].write ? virtio::VIRTQ_DESC_F_WRITE : 0) |
                (i + 1 < segs.size() ? virtio::VIRTQ_DESC_F_NEXT : 0);
      d.next = static_cast<uint16_t>((idx + 1) % r.size);
      rig_.mem.write(r.desc + 16ull * idx, &d, sizeof d);
    }
    r.next_desc = static_cast<uint16_t>((head + segs.size()) % r.size);
    const uint16_t slot = r.avail_idx % r.size;
    rig_.mem.write(r.avail + virtio::avail_ring_entry_offset(slot), &head, 2);
    ++r.avail_idx;
    if (publish) publish_avail(q);
    return head;
  }
  void publish_avail(uint16_t q) {
    Ring& r = rings_.at(q);
    auto* idx = reinterpret_cast<uint16_t*>(rig_.mem.ptr(r.avail + 2, 2));
    __atomic_store_n(idx, r.avail_idx, __ATOMIC_RELEASE);
  }
  void kick(uint16_t q) { write(notify_ + uint64_t(q) * notify_mult_, 2, q); }

  uint16_t used_idx(uint16_t q) {
    auto* idx = reinterpret_cast<uint16_t*>(rig_.mem.ptr(rings_.at(q).used + 2, 2));
    return __atomic_load_n(idx, __ATOMIC_ACQUIRE);
  }
  // Waits until `n` more chains were used; false on timeout.
  bool wait_used(uint16_t q, uint16_t n = 1) {
    Ring& r = rings_.at(q);
    const uint16_t want = static_cast<uint16_t>(r.used_seen + n);
    return eventually([&] { return static_cast<uint16_t>(used_idx(q) - want) < 0x8000; });
  }
  // The next used element (after wait_used).
  virtio::virtq_used_elem next_used(uint16_t q) {
    Ring& r = rings_.at(q);
    virtio::virtq_used_elem e{};
    rig_.mem.read(r.used + virtio::used_ring_entry_offset(r.used_seen % r.size), &e, sizeof e);
    ++r.used_seen;
    return e;
  }

  // Guest RAM for buffers (bump allocator above the rings).
  uint64_t alloc(uint64_t size, uint64_t align = 16) {
    next_ = (next_ + align - 1) & ~(align - 1);
    const uint64_t a = next_;
    next_ += size;
    EXPECT_LE(next_, rig_.mem.size());
    return a;
  }
  uint8_t* host(uint64_t gpa, uint64_t len) { return rig_.mem.ptr(gpa, len); }

  // Capability offsets found in configuration space.
  std::map<uint8_t, uint32_t> cap_offsets;  // cfg_type -> offset in config space

 private:
  void find_capabilities() {
    uint32_t p = dev_.config_read(0x34, 1);
    for (int guard = 0; p && guard < 48; ++guard) {
      if (dev_.config_read(p, 1) == 0x09) {
        const uint8_t type = static_cast<uint8_t>(dev_.config_read(p + 3, 1));
        cap_offsets[type] = p;
        const uint32_t off = dev_.config_read(p + 8, 4);
        if (type == virtio::VIRTIO_PCI_CAP_COMMON_CFG) common_ = off;
        if (type == virtio::VIRTIO_PCI_CAP_ISR_CFG) isr_ = off;
        if (type == virtio::VIRTIO_PCI_CAP_DEVICE_CFG) device_cfg_ = off;
        if (type == virtio::VIRTIO_PCI_CAP_NOTIFY_CFG) {
          notify_ = off;
          notify_mult_ = dev_.config_read(p + 16, 4);
        }
      }
      p = dev_.config_read(p + 1, 1);
    }
  }
#undef COMMON

  VirtioRig& rig_;
  VirtioPciDevice& dev_;
  uint64_t bar_ = 0;
  uint32_t common_ = ~0u, isr_ = ~0u, device_cfg_ = ~0u, notify_ = ~0u, notify_mult_ = 0;
  std::map<uint16_t, Ring> rings_;
  uint64_t next_ = 0x10000;
};

}  // namespace vmm::testing
