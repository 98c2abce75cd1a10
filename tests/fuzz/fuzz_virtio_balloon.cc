// libFuzzer target: a hostile driver against the virtio-balloon device
// through the virtio-pci transport. The input is a program: a guest RAM
// image, then register reads and writes anywhere in the BAR, bring-ups with
// input-chosen features (with or without STATS_VQ, so queue 2 is sometimes
// the stats queue and sometimes absent), PFN arrays on the inflate and
// deflate queues (mostly inside RAM, some outside, odd lengths, writable
// parts), stats buffers (known, unknown and repeated tags, truncated
// entries, too many entries, several at once), target changes, stats
// requests and resets. The device runs its work on this thread (poll()).
//
// Checked: the VMM never crashes; every range the device releases is
// page-aligned and inside guest RAM (the release hook checks it); target
// changes beyond RAM are refused; released_bytes() stays a whole number of
// pages, never exceeds RAM, and never exceeds the distinct pages the hook
// was actually given (the device counts nothing it did not release).
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory>
#include <set>
#include <vector>

#include "tests/fuzz/fuzz_input.h"
#include "virtio/balloon.h"
#include "virtio/features.h"
#include "virtio/host/virtio_balloon.h"
#include "virtio/pci.h"
#include "vmm/irq/fake_irq_backend.h"
#include "vmm/pci/pci_bus.h"

namespace {

using namespace vmm;
using namespace virtio;
using fuzz::Input;

constexpr uint64_t kRam = 256 << 10;  // 64 pages
constexpr uint64_t kPages = kRam / 4096;

struct World {
  GuestMemory mem{kRam};
  FakeIrqBackend kvm;
  GsiRouter router{kvm, IrqCapabilities::all()};
  IoBus pio, mmio;
  std::shared_ptr<PciBus> bus = PciBus::create(pio, mmio);
  std::shared_ptr<VirtioBalloonDevice> dev;
  uint64_t bar = 0;
  // Pages the release hook was given, for the accounting check.
  std::set<uint64_t> released;

  World() {
    BalloonOptions o;
    o.stats_period_ns = 0;  // requests only when the input asks: deterministic
    o.release = [this](uint64_t gpa, uint8_t* host, uint64_t len) {
      CHECK(gpa % 4096 == 0 && len % 4096 == 0 && len > 0);
      CHECK(host == mem.ptr(gpa, len));  // inside RAM, the right place
      for (uint64_t p = gpa / 4096; p < (gpa + len) / 4096; ++p) released.insert(p);
      return 0;  // the contents stay: the fuzzer rewrites RAM anyway
    };
    dev = std::make_shared<VirtioBalloonDevice>(mem, router, o);
    bus->add(std::make_shared<PciHostBridge>(), 0);
    bus->add(dev, 2);
    bar = *dev->bar_mapping(VirtioPciDevice::kBar);
  }

  void write_bar(uint64_t off, uint64_t v, uint32_t size) {
    mmio.write(bar + off, reinterpret_cast<const uint8_t*>(&v), size);
  }
  uint64_t read_bar(uint64_t off, uint32_t size) {
    uint64_t v = 0;
    mmio.read(bar + off, reinterpret_cast<uint8_t*>(&v), size);
    return v;
  }
  void common(size_t field, uint64_t v, uint32_t size) { write_bar(field, v, size); }
};

struct RingState {
  bool set = false;
  uint16_t size = 0;
  uint64_t desc = 0, avail = 0;
  uint16_t next_desc = 0, avail_idx = 0;
};

uint32_t access_size(uint64_t v) {
  static constexpr uint32_t sizes[] = {1, 2, 4, 8};
  return sizes[v & 3];
}

// Posts one chain of `nseg` descriptors over [buf, buf + len) split evenly.
void post(World& w, RingState& r, uint64_t buf, uint32_t len, unsigned nseg, uint8_t writable) {
  const uint16_t head = r.next_desc;
  uint32_t off = 0;
  for (unsigned i = 0; i < nseg; ++i) {
    virtq_desc d{};
    const uint32_t part = i + 1 == nseg ? len - off : len / nseg;
    d.addr = buf + off;
    d.len = part;
    off += part;
    d.flags = static_cast<uint16_t>(((writable >> i) & 1 ? VIRTQ_DESC_F_WRITE : 0) |
                                    (i + 1 < nseg ? VIRTQ_DESC_F_NEXT : 0));
    d.next = static_cast<uint16_t>((r.next_desc + 1) % r.size);
    w.mem.write(r.desc + 16ull * r.next_desc, &d, sizeof d);
    r.next_desc = static_cast<uint16_t>((r.next_desc + 1) % r.size);
  }
  w.mem.write(r.avail + avail_ring_entry_offset(r.avail_idx % r.size), &head, 2);
  ++r.avail_idx;
  w.mem.write(r.avail + 2, &r.avail_idx, 2);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static World* w = new World;
  std::memset(w->mem.ptr(0, kRam), 0, kRam);
  RingState rings[3];
  // Buffers go in the upper half of RAM, rings in the lower quarter.
  constexpr uint64_t kBufBase = kRam / 2;

  Input in{data, size};
  const size_t image = in.take(2) % (kRam / 4 + 1);
  const size_t k = image < in.n ? image : in.n;
  std::memcpy(w->mem.ptr(0x1000, kRam - 0x1000), in.p, k);
  in.p += k;
  in.n -= k;

  VirtioBalloonDevice& dev = *w->dev;
  for (int steps = 0; steps < 64 && in.n > 0; ++steps) {
    switch (in.take(1) % 12) {
      case 0: {  // a common configuration write of any width
        const uint64_t off = in.take(1) % 64;
        w->write_bar(off, in.take(8), access_size(in.take(1)));
        break;
      }
      case 1: {  // a read or write anywhere in the BAR (device config included)
        const uint64_t off = in.take(2) % VirtioPciDevice::kBarSize;
        const uint32_t sz = access_size(in.take(1));
        const uint64_t v = in.take(8);
        if (off + sz > VirtioPciDevice::kBarSize) break;
        if (v & 1) w->write_bar(off, v >> 1, sz);
        else w->read_bar(off, sz);
        break;
      }
      case 2: {  // kick a queue (or a slot past the last one)
        const uint64_t q = in.take(1) % 4;
        w->write_bar(VirtioPciDevice::kNotifyOffset + q * VirtioPciDevice::kNotifyMultiplier, q, 2);
        break;
      }
      case 3:
        dev.poll();
        break;
      case 4: {  // bring-up: mostly honest features, rings in the lower quarter
        const uint64_t features = in.take(8);
        const bool honest = features & 1;
        w->common(offsetof(virtio_pci_common_cfg, device_status), 0, 1);
        w->common(offsetof(virtio_pci_common_cfg, device_status), 3, 1);
        w->common(offsetof(virtio_pci_common_cfg, config_msix_vector), 0, 2);
        const uint64_t f = honest ? (features & dev.offered_features()) | feature_bit(VIRTIO_F_VERSION_1) : features;
        w->common(offsetof(virtio_pci_common_cfg, driver_feature_select), 0, 4);
        w->common(offsetof(virtio_pci_common_cfg, driver_feature), f & 0xffffffff, 4);
        w->common(offsetof(virtio_pci_common_cfg, driver_feature_select), 1, 4);
        w->common(offsetof(virtio_pci_common_cfg, driver_feature), f >> 32, 4);
        w->common(offsetof(virtio_pci_common_cfg, device_status), 11, 1);
        const unsigned queues = 2 + (in.take(1) & 1);  // queue 2 with or without STATS_VQ
        for (uint16_t q = 0; q < queues; ++q) {
          const uint16_t qsize = static_cast<uint16_t>(1u << (in.take(1) % 5));
          const uint64_t base = (0x1000 + q * 0x1800 + (in.take(1) % 16) * 16) & ~15ull;
          rings[q] = RingState{honest, qsize, base, base + 16 * qsize, 0, 0};
          w->common(offsetof(virtio_pci_common_cfg, queue_select), q, 2);
          w->common(offsetof(virtio_pci_common_cfg, queue_size), qsize, 2);
          w->common(offsetof(virtio_pci_common_cfg, queue_msix_vector), q + 1, 2);
          w->common(offsetof(virtio_pci_common_cfg, queue_desc_lo), base, 4);
          w->common(offsetof(virtio_pci_common_cfg, queue_driver_lo), base + 16 * qsize, 4);
          w->common(offsetof(virtio_pci_common_cfg, queue_device_lo), (base + 32 * qsize + 3) & ~3ull, 4);
          w->common(offsetof(virtio_pci_common_cfg, queue_enable), 1, 2);
        }
        w->common(offsetof(virtio_pci_common_cfg, device_status), 15, 1);
        break;
      }
      case 5: {  // a PFN array on the inflate or deflate queue
        RingState& r = rings[in.take(1) & 1];
        if (!r.set) break;
        const uint32_t count = static_cast<uint32_t>(in.take(1) % 48);
        const uint64_t buf = kBufBase + (in.take(1) % 64) * 4;
        for (uint32_t i = 0; i < count; ++i) {
          const uint8_t kind = static_cast<uint8_t>(in.take(1));
          // Mostly pages inside RAM (often runs), sometimes anything.
          const uint32_t pfn = kind < 200 ? static_cast<uint32_t>(kind % kPages) : static_cast<uint32_t>(in.take(4));
          if (buf + 4 * i + 4 <= kRam) w->mem.write(buf + 4 * i, &pfn, 4);
        }
        const uint32_t len = count * 4 + ((in.take(1) % 8) == 0 ? static_cast<uint32_t>(in.take(1) % 4) : 0);
        if (len == 0 || buf + len > kRam) break;
        post(*w, r, buf, len, 1 + in.take(1) % 3, (in.take(1) % 8) == 0 ? 0xff : 0);
        break;
      }
      case 6: {  // a stats buffer on queue 2
        RingState& r = rings[2];
        if (!r.set) break;
        const uint32_t count = static_cast<uint32_t>(in.take(1) % 80);
        const uint64_t buf = kBufBase + 0x8000 + (in.take(1) % 32) * 2;
        static constexpr uint16_t tags[] = {VIRTIO_BALLOON_S_MEMFREE, VIRTIO_BALLOON_S_MEMTOT, VIRTIO_BALLOON_S_AVAIL,
                                            VIRTIO_BALLOON_S_SWAP_IN, VIRTIO_BALLOON_S_PRIV_INFLATED,
                                            VIRTIO_BALLOON_S_PRIV_DEFLATED, 10, 0x7fff, 0xffff};
        for (uint32_t i = 0; i < count; ++i) {
          const virtio_balloon_stat s{tags[in.take(1) % 9], in.take(8)};
          if (buf + 10 * (i + 1) <= kRam) w->mem.write(buf + 10 * i, &s, sizeof s);
        }
        const uint32_t len = count * 10 + ((in.take(1) % 4) == 0 ? static_cast<uint32_t>(in.take(1) % 10) : 0);
        if (len == 0 || buf + len > kRam) break;
        post(*w, r, buf, len, 1 + in.take(1) % 2, (in.take(1) % 8) == 0 ? 0xff : 0);
        break;
      }
      case 7: {  // the guest rewrites some of its memory
        const uint64_t off = in.take(2) % kRam;
        const size_t n = in.take(1) % 64;
        for (size_t i = 0; i < n && off + i < kRam; ++i) *w->mem.ptr(off + i, 1) = static_cast<uint8_t>(in.take(1));
        break;
      }
      case 8:  // device reset
        w->common(offsetof(virtio_pci_common_cfg, device_status), 0, 1);
        CHECK(dev.device_status() == 0);
        break;
      case 9: {  // the VMM changes the target (sometimes beyond RAM: refused)
        const uint64_t bytes = in.take(3) % (2 * kRam);
        try {
          dev.set_target_bytes(bytes);
          CHECK(bytes <= kRam && dev.target_bytes() == bytes / 4096 * 4096);
        } catch (const std::invalid_argument&) {
          CHECK(bytes > kRam);
        }
        break;
      }
      case 10:
        dev.request_stats();
        dev.poll();
        break;
      case 11: {  // PCI configuration space (MSI-X enable, command)
        const uint32_t off = 0x40 + static_cast<uint32_t>(in.take(1) % 0xc0);
        dev.config_write(off, access_size(in.take(1)) & 7, static_cast<uint32_t>(in.take(4)));
        break;
      }
    }
    CHECK(dev.released_bytes() <= kRam && dev.released_bytes() % 4096 == 0);
    (void)dev.guest_stats();
    (void)dev.stats_line();
  }
  dev.poll();
  w->common(offsetof(virtio_pci_common_cfg, device_status), 0, 1);
  CHECK(dev.device_status() == 0);
  dev.poll();
  // The device's accounting against ours: a page counts as released once
  // the hook got it, until deflated. The device cannot have more than the
  // hook saw (it never counts a page it did not release).
  CHECK(dev.released_bytes() <= w->released.size() * 4096);
  return 0;
}
