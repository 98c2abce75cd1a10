#include "virtio/guest/virtio_pci.h"

#include "guest-kernel/arch/x86/apic.h"
#include "guest-kernel/arch/x86/cpu.h"
#include "guest-kernel/arch/x86/interrupts.h"
#include "guest-kernel/lib/print.h"
#include "guest-kernel/lib/string.h"
#include "guest-kernel/mm/page_alloc.h"
#include "virtio/features.h"
#include "virtio/pci.h"

namespace virtio::guest {
namespace {

constexpr uint8_t kCapPointer = 0x34, kStatusRegister = 0x06;
constexpr uint16_t kStatusCapList = 1 << 4;

// Smallest common configuration we can drive: everything up to the queue
// addresses (queue_notify_data and queue_reset are for features we never
// take).
constexpr uint32_t kCommonMinLength = offsetof(virtio_pci_common_cfg, queue_notify_data);

struct Found {
  bool present = false;
  uint8_t bar = 0;
  uint32_t offset = 0, length = 0;
  uint8_t cap = 0;  // where in configuration space
};

}  // namespace

bool run_loop_until(const bool* flag, uint64_t timeout_ns) {
  EventLoop& loop = EventLoop::instance();
  const bool interrupts_were_on = x86::interrupts_enabled();
  bool timed_out = false;
  // The timer also wakes the halted loop, so a silent device cannot hang us.
  const EventLoop::TimerId timer = loop.add_timer(timeout_ns, [&timed_out] { timed_out = true; });
  loop.run([&] { return *flag || timed_out; });
  loop.cancel_timer(timer);
  if (!interrupts_were_on) x86::cli();
  return *flag;
}

void format_pci_address(const pci::Device& d, char* out, size_t size) {
  ksnprintf(out, size, "0000:%02x:%02x.%u", d.bus, d.slot, d.func);
}

bool PciTransport::init(const pci::Device& dev, const char* name) {
  dev_ = &dev;
  name_ = name;
  char where[16];
  format_pci_address(dev, where, sizeof where);
  if (dev.revision < VIRTIO_PCI_MIN_REVISION) {
    kprintf("%s: %s: revision %u is a transitional device; only modern (rev >= 1) is driven\n", name, where,
            dev.revision);
    return false;
  }

  // Walk every vendor capability; take the first usable one of each type
  // (§4.1.4: the driver uses the first it can, and ignores types it does
  // not know).
  Found found[VIRTIO_PCI_CAP_PCI_CFG + 1];
  if (!(pci::config_read16(dev, kStatusRegister) & kStatusCapList)) {
    kprintf("%s: %s: no capability list\n", name, where);
    return false;
  }
  uint8_t ptr = pci::config_read8(dev, kCapPointer) & 0xfc;
  for (int n = 0; ptr >= 0x40 && n < 48; ++n) {  // bounded: a looping list ends
    if (pci::config_read8(dev, ptr) == pci::kCapVendor) {
      const uint8_t cap_len = pci::config_read8(dev, ptr + 2);
      const uint8_t type = pci::config_read8(dev, ptr + 3);
      const uint8_t bar = pci::config_read8(dev, ptr + 4);
      const uint32_t offset = pci::config_read32(dev.bus, dev.slot, dev.func, ptr + 8);
      const uint32_t length = pci::config_read32(dev.bus, dev.slot, dev.func, ptr + 12);
      const bool usable = cap_len >= sizeof(virtio_pci_cap) && bar <= 5 && dev.bars[bar].size &&
                          !dev.bars[bar].io && uint64_t(offset) + length <= dev.bars[bar].size;
      if (type >= VIRTIO_PCI_CAP_COMMON_CFG && type <= VIRTIO_PCI_CAP_DEVICE_CFG && usable &&
          !found[type].present &&
          (type != VIRTIO_PCI_CAP_NOTIFY_CFG || cap_len >= sizeof(virtio_pci_notify_cap)))
        found[type] = Found{true, bar, offset, length, ptr};
    }
    ptr = pci::config_read8(dev, ptr + 1) & 0xfc;
  }
  const Found& c = found[VIRTIO_PCI_CAP_COMMON_CFG];
  const Found& nt = found[VIRTIO_PCI_CAP_NOTIFY_CFG];
  const Found& is = found[VIRTIO_PCI_CAP_ISR_CFG];
  const Found& dc = found[VIRTIO_PCI_CAP_DEVICE_CFG];
  if (!c.present || !nt.present || !is.present) {
    kprintf("%s: %s: missing virtio capability (common %d, notify %d, isr %d)\n", name, where, c.present,
            nt.present, is.present);
    return false;
  }
  if (c.length < kCommonMinLength || is.length < 1) {
    kprintf("%s: %s: common configuration (%u bytes) or ISR (%u bytes) too small\n", name, where, c.length,
            is.length);
    return false;
  }

  pci::enable(dev);
  uint64_t mapped[6] = {};
  auto base_of = [&](uint8_t bar) -> uint64_t {
    if (!mapped[bar]) mapped[bar] = pci::map_bar(dev, bar);
    return mapped[bar];
  };
  if (!base_of(c.bar) || !base_of(nt.bar) || !base_of(is.bar) || (dc.present && !base_of(dc.bar))) {
    kprintf("%s: %s: cannot map the BARs of the virtio structures\n", name, where);
    return false;
  }
  common_ = mapped[c.bar] + c.offset;
  isr_ = mapped[is.bar] + is.offset;
  notify_base_ = mapped[nt.bar] + nt.offset;
  notify_len_ = nt.length;
  notify_multiplier_ = pci::config_read32(dev.bus, dev.slot, dev.func, nt.cap + 16);
  if (dc.present) {
    device_cfg_ = mapped[dc.bar] + dc.offset;
    device_len_ = dc.length;
  }

  // §3.1.1: reset, wait for the reset to finish, then ACKNOWLEDGE, DRIVER.
  common()->device_status = 0;
  for (int spin = 0; common()->device_status != 0; ++spin) {
    if (spin > 1000000) {
      kprintf("%s: %s: device did not finish its reset\n", name, where);
      return false;
    }
    x86::pause();
  }
  set_status(VIRTIO_STATUS_ACKNOWLEDGE);
  set_status(VIRTIO_STATUS_DRIVER);

  if (!pci::msix_enable(dev, &msix_)) {
    fail("no usable MSI-X capability (INTx is not supported by this driver)");
    return false;
  }
  // Entry 0 carries configuration changes.
  if (!route_vector(0, on_config, this)) return false;
  common()->config_msix_vector = 0;
  if (common()->config_msix_vector != 0) {
    fail("the device refused MSI-X entry 0 for configuration changes");
    return false;
  }
  return true;
}

void PciTransport::set_status(uint8_t bits) { common()->device_status = common()->device_status | bits; }

uint8_t PciTransport::status() { return common()->device_status; }

void PciTransport::fail(const char* why) {
  char where[16];
  format_pci_address(*dev_, where, sizeof where);
  kprintf("%s: %s: %s; device marked FAILED\n", name_, where, why);
  if (common_) set_status(VIRTIO_STATUS_FAILED);
  broken_ = true;
}

uint64_t PciTransport::device_features() {
  common()->device_feature_select = 0;
  const uint64_t lo = common()->device_feature;
  common()->device_feature_select = 1;
  const uint64_t hi = common()->device_feature;
  return lo | (hi << 32);
}

bool PciTransport::negotiate(uint64_t wanted) {
  const uint64_t offered = device_features();
  if (!(offered & feature_bit(VIRTIO_F_VERSION_1))) {
    fail("the device does not offer VIRTIO_F_VERSION_1");
    return false;
  }
  const uint64_t ours = wanted | feature_bit(VIRTIO_F_VERSION_1) | feature_bit(VIRTIO_F_EVENT_IDX) |
                        feature_bit(VIRTIO_F_INDIRECT_DESC);
  features_ = offered & ours;
  common()->driver_feature_select = 0;
  common()->driver_feature = static_cast<uint32_t>(features_);
  common()->driver_feature_select = 1;
  common()->driver_feature = static_cast<uint32_t>(features_ >> 32);
  set_status(VIRTIO_STATUS_FEATURES_OK);
  if (!(status() & VIRTIO_STATUS_FEATURES_OK)) {  // §3.1.1 step 6
    fail("the device did not accept our features (FEATURES_OK cleared)");
    return false;
  }
  return true;
}

uint16_t PciTransport::num_queues() { return common()->num_queues; }

void PciTransport::notify(void* context, uint16_t queue) {
  auto* t = static_cast<PciTransport*>(context);
  // §4.1.5.2: without VIRTIO_F_NOTIFICATION_DATA, the queue index, 16 bits.
  if (queue < kMaxQueues && t->notify_addr_[queue])
    *reinterpret_cast<volatile uint16_t*>(t->notify_addr_[queue]) = queue;
}

bool PciTransport::route_vector(uint16_t entry, Callback fn, void* context) {
  if (entry >= kMaxQueues + 1 || entry >= msix_.size) {
    fail("not enough MSI-X entries for one per queue");
    return false;
  }
  Vector& v = vectors_[entry];
  v.transport = this;
  v.fn = fn;
  v.context = context;
  v.work.fn = [](void* ctx) {
    Vector* vec = static_cast<Vector*>(ctx);
    vec->fn(vec->context);
  };
  v.work.context = &v;
  // The handler only counts and hands over: the work runs on the loop.
  v.cpu_vector = x86::allocate_interrupt(
      [](x86::InterruptFrame&, void* ctx) {
        Vector* vec = static_cast<Vector*>(ctx);
        vec->transport->interrupts_ = vec->transport->interrupts_ + 1;
        EventLoop::instance().raise(&vec->work);
        x86::apic_eoi();
      },
      &v);
  if (!v.cpu_vector) {
    fail("no free interrupt vector");
    return false;
  }
  if (!pci::msix_route(msix_, entry, v.cpu_vector)) {
    fail("cannot program the MSI-X table");
    return false;
  }
  return true;
}

void PciTransport::on_config(void* context) {
  auto* t = static_cast<PciTransport*>(context);
  const uint8_t s = t->status();
  if (s & VIRTIO_STATUS_DEVICE_NEEDS_RESET) {
    if (!t->broken_) {
      char where[16];
      format_pci_address(*t->dev_, where, sizeof where);
      kprintf("%s: %s: *** DEVICE_NEEDS_RESET: the device reports an unrecoverable error (status %#x); "
              "the driver stops using it ***\n",
              t->name_, where, s);
    }
    t->broken_ = true;
  }
  if (t->config_fn_) t->config_fn_(t->config_context_);
}

void PciTransport::set_config_callback(Callback fn, void* context) {
  config_fn_ = fn;
  config_context_ = context;
}

bool PciTransport::setup_queue(uint16_t index, uint16_t max_size, Virtqueue* q, Callback on_used, void* context) {
  if (index >= kMaxQueues || index >= num_queues()) {
    fail("asked for a queue the device does not have");
    return false;
  }
  common()->queue_select = index;
  const uint16_t device_max = common()->queue_size;
  if (device_max == 0) {
    fail("queue not available (size 0)");
    return false;
  }
  if (common()->queue_enable) {
    fail("queue already enabled after reset");
    return false;
  }
  // Largest power of two within both limits (a modern device accepts any
  // smaller power of two, §4.1.4.3.2).
  uint16_t size = 1;
  while (uint32_t(size) * 2 <= device_max && uint32_t(size) * 2 <= max_size) size = static_cast<uint16_t>(size * 2);

  const bool indirect = has(VIRTIO_F_INDIRECT_DESC);
  const uint64_t bytes = Virtqueue::memory_bytes(size, indirect);
  const size_t pages = (bytes + mm::kPageSize - 1) / mm::kPageSize;
  const uint64_t mem = mm::alloc_pages(pages);  // zeroed; identity-mapped: virtual == physical
  if (!mem) {
    fail("no memory for the virtqueue");
    return false;
  }
  if (!q->init(index, size, reinterpret_cast<void*>(mem), mem, has(VIRTIO_F_EVENT_IDX), indirect, notify, this)) {
    mm::free_pages(mem, pages);
    fail("virtqueue initialization failed");
    return false;
  }
  const uint64_t notify_off = uint64_t(common()->queue_notify_off) * notify_multiplier_;
  if (notify_off + 2 > notify_len_) {
    fail("queue notify address outside the notify structure");
    return false;
  }
  notify_addr_[index] = notify_base_ + notify_off;

  const uint16_t entry = static_cast<uint16_t>(index + 1);
  if (!route_vector(entry, on_used, context)) return false;
  common()->queue_size = size;
  common()->queue_msix_vector = entry;
  if (common()->queue_msix_vector != entry) {
    fail("the device refused an MSI-X vector for a queue");
    return false;
  }
  common()->queue_desc_lo = static_cast<uint32_t>(q->desc_addr());
  common()->queue_desc_hi = static_cast<uint32_t>(q->desc_addr() >> 32);
  common()->queue_driver_lo = static_cast<uint32_t>(q->avail_addr());
  common()->queue_driver_hi = static_cast<uint32_t>(q->avail_addr() >> 32);
  common()->queue_device_lo = static_cast<uint32_t>(q->used_addr());
  common()->queue_device_hi = static_cast<uint32_t>(q->used_addr() >> 32);
  common()->queue_enable = 1;
  return true;
}

bool PciTransport::driver_ok() {
  set_status(VIRTIO_STATUS_DRIVER_OK);
  const uint8_t s = status();
  if (s & (VIRTIO_STATUS_DEVICE_NEEDS_RESET | VIRTIO_STATUS_FAILED) || !(s & VIRTIO_STATUS_DRIVER_OK)) {
    fail("the device did not go live at DRIVER_OK");
    return false;
  }
  return true;
}

bool PciTransport::read_config(uint32_t offset, void* out, uint32_t len) {
  if (!device_cfg_ || uint64_t(offset) + len > device_len_) return false;
  uint8_t* dst = static_cast<uint8_t*>(out);
  const uint64_t src = device_cfg_ + offset;
  // §2.5.1: re-read until the generation is stable, so a multi-field value
  // is not torn by a concurrent change. §4.1.3.1: natural widths, 64-bit
  // fields as two 32-bit reads.
  for (int attempt = 0; attempt < 100; ++attempt) {
    const uint8_t before = common()->config_generation;
    if (len == 1) {
      dst[0] = *reinterpret_cast<volatile uint8_t*>(src);
    } else if (len == 2 && offset % 2 == 0) {
      const uint16_t v = *reinterpret_cast<volatile uint16_t*>(src);
      memcpy(dst, &v, 2);
    } else if ((len == 4 || len == 8) && offset % 4 == 0) {
      for (uint32_t i = 0; i < len; i += 4) {
        const uint32_t v = x86::mmio_read32(src + i);
        memcpy(dst + i, &v, 4);
      }
    } else {
      for (uint32_t i = 0; i < len; ++i) dst[i] = *reinterpret_cast<volatile uint8_t*>(src + i);
    }
    if (common()->config_generation == before) return true;
  }
  kprintf("%s: configuration kept changing while read\n", name_);
  return false;
}

bool PciTransport::write_config(uint32_t offset, const void* in, uint32_t len) {
  if (!device_cfg_ || uint64_t(offset) + len > device_len_ || (len != 1 && len != 2 && len != 4) || offset % len)
    return false;
  const uint64_t dst = device_cfg_ + offset;
  // §4.1.3.1: the field's own width, one access.
  if (len == 1) {
    *reinterpret_cast<volatile uint8_t*>(dst) = *static_cast<const uint8_t*>(in);
  } else if (len == 2) {
    uint16_t v;
    memcpy(&v, in, 2);
    *reinterpret_cast<volatile uint16_t*>(dst) = v;
  } else {
    uint32_t v;
    memcpy(&v, in, 4);
    *reinterpret_cast<volatile uint32_t*>(dst) = v;
  }
  return true;
}

}  // namespace virtio::guest
