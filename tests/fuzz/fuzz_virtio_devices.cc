// libFuzzer target: a hostile driver against the virtio-pci transport and
// the virtio-blk and virtio-net device models. The input is a program: it
// fills guest RAM (rings, descriptors, requests, frames: all of it
// guest-controlled), then performs register reads and writes anywhere in
// each device's BAR and configuration space, kicks, frame deliveries,
// guest memory rewrites, resets and "driver bring-up" macros that get the
// devices live with rings at input-chosen addresses. The devices run their
// I/O work on this thread (poll()), so each input is deterministic apart
// from io_uring's timing. The VMM must never crash, a frame handed to the
// network must have a legal length, and the disk file must keep its size.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <memory>

#include "tests/fuzz/fuzz_input.h"
#include "virtio/blk.h"
#include "virtio/features.h"
#include "virtio/host/virtio_blk.h"
#include "virtio/host/virtio_net.h"
#include "virtio/pci.h"
#include "vmm/irq/fake_irq_backend.h"
#include "vmm/pci/pci_bus.h"

namespace {

using namespace vmm;
using namespace virtio;
using fuzz::Input;

constexpr uint64_t kRam = 64 << 10;
constexpr off_t kDiskBytes = 32 << 10;

class CheckingPort : public net::FramePort {
 public:
  bool transmit(std::span<const uint8_t> frame) override {
    CHECK(frame.size() >= net::kEthHeaderLen && frame.size() <= net::kMaxFrameLen);
    volatile uint8_t sink = 0;
    for (uint8_t b : frame) sink = sink ^ b;  // every byte must be readable
    (void)sink;
    return frame.size() % 7 != 0;  // the switch sometimes refuses
  }
};

struct World {
  GuestMemory mem{kRam};
  FakeIrqBackend kvm;
  GsiRouter router{kvm, IrqCapabilities::all()};
  IoBus pio, mmio;
  std::shared_ptr<PciBus> bus = PciBus::create(pio, mmio);
  std::string disk_path;
  int disk_fd = -1;
  std::shared_ptr<VirtioBlkDevice> blk;
  std::shared_ptr<VirtioNetDevice> net;
  std::shared_ptr<net::FrameSink> sink;
  VirtioPciDevice* devs[2] = {};
  uint64_t bars[2] = {};

  World() {
    char name[] = "/tmp/fuzz-virtio-blk-XXXXXX";
    disk_fd = ::mkstemp(name);
    CHECK(disk_fd >= 0 && ::ftruncate(disk_fd, kDiskBytes) == 0);
    disk_path = name;
    blk = std::make_shared<VirtioBlkDevice>(mem, router, VirtioBlkOptions{disk_path, false, "fuzz"});
    net = std::make_shared<VirtioNetDevice>(mem, router, net::MacAddress{2, 0, 0, 0, 0, 1},
                                            [&](std::shared_ptr<net::FrameSink> s) {
                                              sink = s;
                                              return std::make_shared<CheckingPort>();
                                            });
    bus->add(std::make_shared<PciHostBridge>(), 0);
    bus->add(blk, 2);
    bus->add(net, 3);
    devs[0] = blk.get();
    devs[1] = net.get();
    for (int i = 0; i < 2; ++i) bars[i] = *devs[i]->bar_mapping(VirtioPciDevice::kBar);
  }
  ~World() { ::unlink(disk_path.c_str()); }

  void write_bar(int d, uint64_t off, uint64_t v, uint32_t size) {
    mmio.write(bars[d] + off, reinterpret_cast<const uint8_t*>(&v), size);
  }
  uint64_t read_bar(int d, uint64_t off, uint32_t size) {
    uint64_t v = 0;
    mmio.read(bars[d] + off, reinterpret_cast<uint8_t*>(&v), size);
    return v;
  }
  void common(int d, size_t field, uint64_t v, uint32_t size) { write_bar(d, field, v, size); }
};

// Where the last honest bring-up put each queue, so that the fuzzer can
// post plausible chains (deep device paths) as well as garbage.
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

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static World* w = new World;  // lives for the whole run: threads and fds are costly
  std::memset(w->mem.ptr(0, kRam), 0, kRam);
  RingState rings[2][2];

  Input in{data, size};
  // Guest RAM image first.
  const size_t image = in.take(2) % (kRam / 4 + 1);
  const size_t k = image < in.n ? image : in.n;
  std::memcpy(w->mem.ptr(0x1000, kRam - 0x1000), in.p, k);
  in.p += k;
  in.n -= k;

  for (int steps = 0; steps < 64 && in.n > 0; ++steps) {
    const uint8_t op = static_cast<uint8_t>(in.take(1));
    const int d = op & 1;
    VirtioPciDevice& dev = *w->devs[d];
    switch ((op >> 1) % 12) {
      case 0: {  // a common configuration write of any width
        const uint64_t off = in.take(1) % 64;
        const uint32_t sz = access_size(in.take(1));
        w->write_bar(d, off, in.take(8), sz);
        break;
      }
      case 1: {  // a read anywhere in the BAR (ISR clears, MSI-X, config)
        const uint64_t off = in.take(2) % VirtioPciDevice::kBarSize;
        const uint32_t sz = access_size(in.take(1));
        if (off + sz <= VirtioPciDevice::kBarSize) w->read_bar(d, off, sz);
        break;
      }
      case 2: {  // a write anywhere in the BAR (MSI-X table, notify, config)
        const uint64_t off = in.take(2) % VirtioPciDevice::kBarSize;
        const uint32_t sz = access_size(in.take(1));
        const uint64_t v = in.take(8);
        if (off + sz <= VirtioPciDevice::kBarSize) w->write_bar(d, off, v, sz);
        break;
      }
      case 3: {  // kick a queue (or a slot past the last one)
        const uint64_t q = in.take(1) % 4;
        w->write_bar(d, VirtioPciDevice::kNotifyOffset + q * VirtioPciDevice::kNotifyMultiplier, q, 2);
        break;
      }
      case 4:
        dev.poll();
        break;
      case 5: {  // the switch delivers a frame
        const size_t len = in.take(2) % 1600;
        net::Frame f(len);
        for (size_t i = 0; i < len && in.n; ++i) f[i] = static_cast<uint8_t>(in.take(1));
        w->sink->deliver(std::move(f));
        break;
      }
      case 6: {  // driver bring-up with input-chosen features and rings
        const uint64_t features = in.take(8);
        const bool honest = features & 1;
        w->common(d, offsetof(virtio_pci_common_cfg, device_status), 0, 1);
        w->common(d, offsetof(virtio_pci_common_cfg, device_status), 3, 1);
        w->common(d, offsetof(virtio_pci_common_cfg, config_msix_vector), 0, 2);
        const uint64_t f = honest ? (features & dev.offered_features()) | feature_bit(VIRTIO_F_VERSION_1) : features;
        w->common(d, offsetof(virtio_pci_common_cfg, driver_feature_select), 0, 4);
        w->common(d, offsetof(virtio_pci_common_cfg, driver_feature), f & 0xffffffff, 4);
        w->common(d, offsetof(virtio_pci_common_cfg, driver_feature_select), 1, 4);
        w->common(d, offsetof(virtio_pci_common_cfg, driver_feature), f >> 32, 4);
        w->common(d, offsetof(virtio_pci_common_cfg, device_status), 11, 1);
        for (uint16_t q = 0; q < dev.num_queues(); ++q) {
          const uint16_t qsize = static_cast<uint16_t>(1u << (in.take(1) % 6));
          // Honest: rings inside RAM and aligned. Otherwise anywhere.
          const uint64_t base = honest ? (in.take(2) % (kRam / 2)) & ~15ull : in.take(2) % kRam;
          rings[d][q] = RingState{honest, qsize, base, base + 16 * qsize, 0, 0};
          w->common(d, offsetof(virtio_pci_common_cfg, queue_select), q, 2);
          w->common(d, offsetof(virtio_pci_common_cfg, queue_size), qsize, 2);
          w->common(d, offsetof(virtio_pci_common_cfg, queue_msix_vector), q + 1, 2);
          w->common(d, offsetof(virtio_pci_common_cfg, queue_desc_lo), honest ? base & ~15ull : base, 4);
          w->common(d, offsetof(virtio_pci_common_cfg, queue_driver_lo), (base + 16 * qsize) & ~1ull, 4);
          w->common(d, offsetof(virtio_pci_common_cfg, queue_device_lo), (base + 32 * qsize) & ~3ull, 4);
          w->common(d, offsetof(virtio_pci_common_cfg, queue_enable), 1, 2);
        }
        w->common(d, offsetof(virtio_pci_common_cfg, device_status), 15, 1);
        break;
      }
      case 7: {  // the guest rewrites some of its memory
        const uint64_t off = in.take(2) % kRam;
        const size_t n = in.take(1) % 64;
        for (size_t i = 0; i < n && off + i < kRam; ++i) *w->mem.ptr(off + i, 1) = static_cast<uint8_t>(in.take(1));
        break;
      }
      case 8:  // device reset
        w->common(d, offsetof(virtio_pci_common_cfg, device_status), 0, 1);
        CHECK(dev.device_status() == 0);
        break;
      case 9: {  // PCI configuration space (MSI-X enable, command, BARs are left alone)
        const uint32_t off = 0x40 + static_cast<uint32_t>(in.take(1) % 0xc0);
        dev.config_write(off, access_size(in.take(1)) & 7, static_cast<uint32_t>(in.take(4)));
        dev.config_read(off, 4);
        break;
      }
      case 10: {  // let io_uring finish, then collect completions
        for (int i = 0; i < 4; ++i) dev.poll();
        break;
      }
      case 11: {  // post a plausible chain on a queue set up honestly
        RingState& r = rings[d][in.take(1) % 2];
        if (!r.set) break;
        const unsigned nseg = 1 + in.take(1) % 4;
        const uint8_t writable = static_cast<uint8_t>(in.take(1));
        const uint16_t head = r.next_desc;
        for (unsigned i = 0; i < nseg; ++i) {
          virtq_desc desc{};
          desc.addr = 0x8000 + in.take(2) % (kRam - 0x8000);
          desc.len = i == 0 && d == 0 ? 16 : static_cast<uint32_t>(in.take(2) % 2048);
          if (i + 1 == nseg && d == 0) desc.len = 1 + desc.len % 600;
          desc.flags = static_cast<uint16_t>(((writable >> i) & 1 ? VIRTQ_DESC_F_WRITE : 0) |
                                             (i + 1 < nseg ? VIRTQ_DESC_F_NEXT : 0));
          desc.next = static_cast<uint16_t>((r.next_desc + 1) % r.size);
          if (i == 0 && d == 0) {  // a block request header: mostly real types, sectors near the end
            static constexpr uint32_t types[] = {VIRTIO_BLK_T_IN, VIRTIO_BLK_T_OUT, VIRTIO_BLK_T_FLUSH,
                                                 VIRTIO_BLK_T_GET_ID, 3};
            const virtio_blk_req_hdr h{types[in.take(1) % 5], 0, in.take(1) % (kDiskBytes / 512 + 4)};
            if (desc.addr + 16 <= kRam) w->mem.write(desc.addr, &h, sizeof h);
          }
          w->mem.write(r.desc + 16ull * r.next_desc, &desc, sizeof desc);
          r.next_desc = static_cast<uint16_t>((r.next_desc + 1) % r.size);
        }
        w->mem.write(r.avail + avail_ring_entry_offset(r.avail_idx % r.size), &head, 2);
        ++r.avail_idx;
        w->mem.write(r.avail + 2, &r.avail_idx, 2);
        break;
      }
    }
  }
  // Finish: serve what is pending, then reset both devices (which waits for
  // in-flight disk requests), so no work leaks into the next input.
  for (int d = 0; d < 2; ++d) {
    w->devs[d]->poll();
    w->common(d, offsetof(virtio_pci_common_cfg, device_status), 0, 1);
    CHECK(w->devs[d]->device_status() == 0);
    w->devs[d]->poll();  // drains stale kicks and wake-ups
  }
  struct stat st {};
  CHECK(::fstat(w->disk_fd, &st) == 0 && st.st_size == kDiskBytes);
  return 0;
}
