// Self-tests of the virtio guest drivers. The virtqueue tests play the
// device by hand on the ring memory (no device needed); the virtio-blk and
// virtio-net tests run when such a device is present (QEMU:
// -device virtio-blk-pci / virtio-net-pci with user networking) and skip
// otherwise.
#include <stdint.h>

#include <vector>

#include "guest-kernel/block/block_device.h"
#include "guest-kernel/kernel/event_loop.h"
#include "guest-kernel/kernel/selftest.h"
#include "guest-kernel/lib/print.h"
#include "guest-kernel/lib/string.h"
#include "guest-kernel/mm/page_alloc.h"
#include "guest-kernel/net/net_device.h"
#include "virtio/guest/virtio_pci.h"
#include "virtio/guest/virtqueue.h"
#include "virtio/ring.h"

using virtio::guest::Buffer;
using virtio::guest::Virtqueue;

namespace {

// A queue over freshly allocated pages, and the device's view of it.
class FakeDevice {
 public:
  FakeDevice(uint16_t size, bool event_idx, bool indirect) : size_(size) {
    pages_ = (Virtqueue::memory_bytes(size, indirect) + mm::kPageSize - 1) / mm::kPageSize;
    mem_ = reinterpret_cast<uint8_t*>(mm::alloc_pages(pages_));
    ok_ = mem_ && q.init(3, size, mem_, reinterpret_cast<uint64_t>(mem_), event_idx, indirect, on_notify, this);
  }
  ~FakeDevice() {
    if (mem_) mm::free_pages(reinterpret_cast<uint64_t>(mem_), pages_);
  }
  bool ok() const { return ok_; }

  uint16_t avail_idx() const { return at16(Virtqueue::avail_offset(size_) + 2); }
  uint16_t avail_entry(uint16_t i) const {
    return at16(Virtqueue::avail_offset(size_) + virtio::avail_ring_entry_offset(i % size_));
  }
  uint16_t avail_flags() const { return at16(Virtqueue::avail_offset(size_)); }
  uint16_t used_event() const { return at16(Virtqueue::avail_offset(size_) + virtio::avail_used_event_offset(size_)); }
  const virtio::virtq_desc& desc(uint16_t i) const { return reinterpret_cast<virtio::virtq_desc*>(mem_)[i]; }
  const virtio::virtq_desc* table(const virtio::virtq_desc& d) const {
    return reinterpret_cast<const virtio::virtq_desc*>(d.addr);  // identity-mapped
  }

  // Takes the next available head, as a device pops it.
  uint16_t pop() { return avail_entry(consumed_++); }
  void push_used(uint32_t id, uint32_t len) {
    auto* e = reinterpret_cast<virtio::virtq_used_elem*>(mem_ + Virtqueue::used_offset(size_) +
                                                        virtio::used_ring_entry_offset(used_ % size_));
    e->id = id;
    e->len = len;
    ++used_;
    set16(Virtqueue::used_offset(size_) + 2, used_);
  }
  void set_avail_event(uint16_t v) { set16(Virtqueue::used_offset(size_) + virtio::used_avail_event_offset(size_), v); }
  void set_used_flags(uint16_t v) { set16(Virtqueue::used_offset(size_), v); }

  Virtqueue q;
  int notifications = 0;

 private:
  static void on_notify(void* ctx, uint16_t queue) {
    auto* d = static_cast<FakeDevice*>(ctx);
    if (queue == 3) ++d->notifications;
  }
  uint16_t at16(uint64_t off) const { return *reinterpret_cast<volatile uint16_t*>(mem_ + off); }
  void set16(uint64_t off, uint16_t v) { *reinterpret_cast<volatile uint16_t*>(mem_ + off) = v; }

  uint16_t size_;
  size_t pages_ = 0;
  uint8_t* mem_ = nullptr;
  bool ok_ = false;
  uint16_t consumed_ = 0, used_ = 0;
};

void* tok(uintptr_t v) { return reinterpret_cast<void*>(v); }

}  // namespace

KTEST(virtqueue_chains_round_trip_and_free_list) {
  FakeDevice dev(8, false, false);
  KCHECK(dev.ok());
  Virtqueue& q = dev.q;
  const Buffer out[2] = {{0x10000, 16}, {0x20000, 512}};
  const Buffer in[1] = {{0x30000, 1}};
  KCHECK(q.add(out, 2, in, 1, tok(1)));
  KCHECK(q.free_descriptors() == 5 && q.in_flight() == 1);
  KCHECK(dev.avail_idx() == 1);
  const uint16_t head = dev.pop();
  // The chain as the device walks it: readable, readable, writable.
  const auto& d0 = dev.desc(head);
  KCHECK(d0.addr == 0x10000 && d0.len == 16 && d0.flags == virtio::VIRTQ_DESC_F_NEXT);
  const auto& d1 = dev.desc(d0.next);
  KCHECK(d1.addr == 0x20000 && d1.len == 512 && d1.flags == virtio::VIRTQ_DESC_F_NEXT);
  const auto& d2 = dev.desc(d1.next);
  KCHECK(d2.addr == 0x30000 && d2.len == 1 && d2.flags == virtio::VIRTQ_DESC_F_WRITE);

  uint32_t written = 0;
  KCHECK(q.get_used(&written) == nullptr);  // nothing used yet
  dev.push_used(head, 100);                 // more than the 1 writable byte
  KCHECK(q.get_used(&written) == tok(1));
  KCHECK(written == 1);  // clamped to what the chain let the device write
  KCHECK(q.free_descriptors() == 8 && q.in_flight() == 0);

  // Fill the ring completely, then one more fails without side effects.
  const Buffer one{0x40000, 64};
  for (uintptr_t i = 0; i < 8; ++i) KCHECK(q.add(&one, 1, nullptr, 0, tok(10 + i)));
  KCHECK(!q.add(&one, 1, nullptr, 0, tok(99)));
  KCHECK(q.free_descriptors() == 0 && dev.avail_idx() == 9);
  // Completed out of order: tokens come back in used order.
  uint16_t heads[8];
  for (int i = 0; i < 8; ++i) heads[i] = dev.pop();
  dev.push_used(heads[5], 0);
  dev.push_used(heads[2], 0);
  KCHECK(q.get_used(nullptr) == tok(15));
  KCHECK(q.get_used(nullptr) == tok(12));
  KCHECK(q.free_descriptors() == 2);
  // Empty or zero-length chains are refused.
  const Buffer empty{0x40000, 0};
  KCHECK(!q.add(&empty, 1, nullptr, 0, tok(1)));
  KCHECK(!q.add(nullptr, 0, nullptr, 0, tok(1)));
  KCHECK(!q.broken());
}

KTEST(virtqueue_indirect_chain_takes_one_slot) {
  FakeDevice dev(4, false, true);
  KCHECK(dev.ok());
  const Buffer out[1] = {{0x10000, 16}};
  const Buffer in[3] = {{0x20000, 4096}, {0x30000, 4096}, {0x40000, 1}};
  KCHECK(dev.q.add(out, 1, in, 3, tok(7)));
  KCHECK(dev.q.free_descriptors() == 3 && dev.q.indirect_chains == 1);
  const uint16_t head = dev.pop();
  const auto& d = dev.desc(head);
  KCHECK(d.flags == virtio::VIRTQ_DESC_F_INDIRECT && d.len == 4 * sizeof(virtio::virtq_desc));
  const virtio::virtq_desc* t4 = dev.table(d);
  KCHECK(t4[0].addr == 0x10000 && t4[0].flags == virtio::VIRTQ_DESC_F_NEXT && t4[0].next == 1);
  KCHECK(t4[1].flags == (virtio::VIRTQ_DESC_F_NEXT | virtio::VIRTQ_DESC_F_WRITE) && t4[1].next == 2);
  KCHECK(t4[3].addr == 0x40000 && t4[3].flags == virtio::VIRTQ_DESC_F_WRITE);
  // A single buffer goes direct: an indirect table would cost a fetch.
  KCHECK(dev.q.add(out, 1, nullptr, 0, tok(8)));
  KCHECK(dev.q.indirect_chains == 1);
  dev.push_used(head, 8193);
  uint32_t written = 0;
  KCHECK(dev.q.get_used(&written) == tok(7) && written == 8193);
  KCHECK(dev.q.free_descriptors() == 3);
}

KTEST(virtqueue_kick_follows_event_idx) {
  FakeDevice dev(8, true, false);
  KCHECK(dev.ok());
  const Buffer b{0x10000, 64};
  KCHECK(!dev.q.kick());  // nothing added: nothing to say
  // avail_event 0: the device wants to hear when entry 0 is added.
  KCHECK(dev.q.add(&b, 1, nullptr, 0, tok(1)));
  KCHECK(dev.q.kick() && dev.notifications == 1);
  // The device asks for entry 3: adding 1 and 2 must not notify, 3 must.
  dev.set_avail_event(3);
  KCHECK(dev.q.add(&b, 1, nullptr, 0, tok(2)));
  KCHECK(!dev.q.kick());
  KCHECK(dev.q.add(&b, 1, nullptr, 0, tok(3)));
  KCHECK(!dev.q.kick());
  KCHECK(dev.q.add(&b, 1, nullptr, 0, tok(4)));
  KCHECK(dev.q.kick() && dev.notifications == 2);
  KCHECK(dev.q.kicks_suppressed == 2);
}

KTEST(virtqueue_kick_follows_no_notify_without_event_idx) {
  FakeDevice dev(8, false, false);
  KCHECK(dev.ok());
  const Buffer b{0x10000, 64};
  dev.set_used_flags(virtio::VIRTQ_USED_F_NO_NOTIFY);
  KCHECK(dev.q.add(&b, 1, nullptr, 0, tok(1)));
  KCHECK(!dev.q.kick() && dev.notifications == 0);
  dev.set_used_flags(0);
  KCHECK(dev.q.add(&b, 1, nullptr, 0, tok(2)));
  KCHECK(dev.q.kick() && dev.notifications == 1);
}

KTEST(virtqueue_interrupt_suppression_and_recheck) {
  {
    FakeDevice dev(8, true, false);
    KCHECK(dev.ok());
    const Buffer b{0x10000, 64};
    for (uintptr_t i = 1; i <= 3; ++i) KCHECK(dev.q.add(&b, 1, nullptr, 0, tok(i)));
    for (int i = 0; i < 3; ++i) dev.pop();
    dev.q.disable_interrupts();
    // Already passed: the device's window [old, new) never contains it.
    KCHECK(dev.used_event() == 0xffff && dev.avail_flags() == 0);
    KCHECK(!virtio::vring_need_event(dev.used_event(), 3, 0));
    KCHECK(dev.q.enable_interrupts());  // nothing used: safe to sleep
    KCHECK(dev.used_event() == 0);
    dev.q.disable_interrupts();
    dev.push_used(0, 0);  // lands while "disabled"
    KCHECK(!dev.q.enable_interrupts());  // the re-check catches it
    KCHECK(dev.q.get_used(nullptr) == tok(1));
    KCHECK(dev.used_event() == 1);  // interrupts on: ask for the next one
  }
  {
    FakeDevice dev(8, false, false);
    KCHECK(dev.ok());
    dev.q.disable_interrupts();
    KCHECK(dev.avail_flags() == virtio::VIRTQ_AVAIL_F_NO_INTERRUPT);
    KCHECK(dev.q.enable_interrupts() && dev.avail_flags() == 0);
  }
}

KTEST(virtqueue_rejects_a_lying_device) {
  FakeDevice dev(4, false, false);
  KCHECK(dev.ok());
  const Buffer b{0x10000, 64};
  KCHECK(dev.q.add(&b, 1, nullptr, 0, tok(1)));
  dev.push_used(3, 0);  // never made available
  KCHECK(dev.q.get_used(nullptr) == nullptr);
  KCHECK(dev.q.broken());
  KCHECK(!dev.q.add(&b, 1, nullptr, 0, tok(2)));  // a broken queue takes nothing
  FakeDevice dev2(4, false, false);
  KCHECK(dev2.q.add(&b, 1, nullptr, 0, tok(1)));
  dev2.push_used(dev2.pop(), 0);
  dev2.push_used(0, 0);  // the used index now runs ahead of what is in flight
  KCHECK(dev2.q.get_used(nullptr) == nullptr && dev2.q.broken());
}

namespace {

block::BlockDevice* find_virtio_blk() {
  for (size_t i = 0; i < block::block_device_count(); ++i)
    if (strcmp(block::block_device(i)->name(), "virtio-blk") == 0) return block::block_device(i);
  return nullptr;
}

// Submits and waits on the event loop (at most 10 s).
block::Status do_io(block::BlockDevice* dev, block::Op op, uint64_t sector, void* buf, size_t bytes) {
  bool done = false;
  block::Status status = block::Status::kIoError;
  dev->submit(block::Request{op, sector, buf, bytes, [&](block::Status s) {
                               status = s;
                               done = true;
                             }});
  if (!virtio::guest::run_loop_until(&done, 10'000'000'000ull)) return block::Status::kIoError;
  return status;
}

}  // namespace

KTEST(virtio_blk_write_read_flush_round_trip) {
  block::BlockDevice* dev = find_virtio_blk();
  if (!dev) {
    t.skip("no virtio-blk device");
    return;
  }
  if (dev->read_only() || dev->sectors() < 64) {
    t.skip("virtio-blk device read-only or smaller than 64 sectors");
    return;
  }
  // The disk's last 16 sectors, restored afterwards.
  constexpr size_t kSectors = 16, kBytes = kSectors * block::kSectorSize;
  const uint64_t first = dev->sectors() - kSectors;
  std::vector<uint8_t> saved(kBytes), pattern(kBytes), back(kBytes);
  KCHECK(do_io(dev, block::Op::kRead, first, saved.data(), kBytes) == block::Status::kOk);
  for (size_t i = 0; i < kBytes; ++i) pattern[i] = static_cast<uint8_t>(i * 7 + (i >> 9) + 0x5a);
  KCHECK(do_io(dev, block::Op::kWrite, first, pattern.data(), kBytes) == block::Status::kOk);
  KCHECK(do_io(dev, block::Op::kFlush, 0, nullptr, 0) == block::Status::kOk);
  KCHECK(do_io(dev, block::Op::kRead, first, back.data(), kBytes) == block::Status::kOk);
  KCHECK(memcmp(back.data(), pattern.data(), kBytes) == 0);

  // Many in flight at once: one sector each, read back in one request.
  int completed = 0, ok = 0;
  std::vector<uint8_t> sector_data(kBytes);
  for (size_t i = 0; i < kSectors; ++i) {
    memset(sector_data.data() + i * block::kSectorSize, static_cast<int>(0xa0 + i), block::kSectorSize);
    dev->submit(block::Request{block::Op::kWrite, first + i, sector_data.data() + i * block::kSectorSize,
                               block::kSectorSize, [&](block::Status s) {
                                 ++completed;
                                 ok += s == block::Status::kOk;
                               }});
  }
  bool all = false;
  const EventLoop::TimerId poll = EventLoop::instance().add_timer(
      1'000'000, [&] { all = completed == int(kSectors); }, 1'000'000);
  virtio::guest::run_loop_until(&all, 10'000'000'000ull);
  EventLoop::instance().cancel_timer(poll);
  KCHECKF(completed == int(kSectors) && ok == int(kSectors), "%d completed, %d ok", completed, ok);
  KCHECK(do_io(dev, block::Op::kRead, first, back.data(), kBytes) == block::Status::kOk);
  KCHECK(memcmp(back.data(), sector_data.data(), kBytes) == 0);

  // Refused by the driver, never sent: past the end, misaligned, too big.
  KCHECK(do_io(dev, block::Op::kRead, dev->sectors(), back.data(), 512) == block::Status::kBadRequest);
  KCHECK(do_io(dev, block::Op::kRead, dev->sectors() - 1, back.data(), 1024) == block::Status::kBadRequest);
  KCHECK(do_io(dev, block::Op::kRead, first, back.data(), 100) == block::Status::kBadRequest);
  KCHECK(do_io(dev, block::Op::kRead, first, nullptr, 512) == block::Status::kBadRequest);
  KCHECK(do_io(dev, block::Op::kRead, 0, back.data(), dev->max_request_bytes() + 512) == block::Status::kBadRequest);

  KCHECK(do_io(dev, block::Op::kWrite, first, saved.data(), kBytes) == block::Status::kOk);
  KCHECK(do_io(dev, block::Op::kFlush, 0, nullptr, 0) == block::Status::kOk);
}

namespace {

// What the ARP test listens for: a reply from 10.0.2.2 (QEMU's user-mode
// network gateway) to our request.
struct ArpWait {
  net::MacAddress ours{};
  bool replied = false;
  uint8_t gateway_mac[6] = {};
  int other_frames = 0;
};

void on_frame(void* ctx, const uint8_t* f, size_t len) {
  auto* w = static_cast<ArpWait*>(ctx);
  // Ethernet(14) + ARP(28): ethertype 0x0806, opcode 2 (reply), sender IP
  // 10.0.2.2, target MAC ours.
  if (len >= 42 && f[12] == 0x08 && f[13] == 0x06 && f[20] == 0 && f[21] == 2 && f[28] == 10 && f[29] == 0 &&
      f[30] == 2 && f[31] == 2 && memcmp(f + 32, w->ours.b, 6) == 0) {
    memcpy(w->gateway_mac, f + 22, 6);
    w->replied = true;
  } else {
    ++w->other_frames;
  }
}

}  // namespace

KTEST(virtio_net_arp_to_user_network_gateway) {
  net::NetDevice* dev = nullptr;
  for (size_t i = 0; i < net::net_device_count(); ++i)
    if (strcmp(net::net_device(i)->name(), "virtio-net") == 0) dev = net::net_device(i);
  if (!dev) {
    t.skip("no virtio-net device");
    return;
  }
  ArpWait w;
  w.ours = dev->mac();
  dev->set_receiver(on_frame, &w);
  // Who has 10.0.2.2? Tell 10.0.2.15 (the address slirp hands out first).
  uint8_t f[42] = {};
  memset(f, 0xff, 6);
  memcpy(f + 6, w.ours.b, 6);
  f[12] = 0x08, f[13] = 0x06;               // ARP
  f[14] = 0x00, f[15] = 0x01;               // Ethernet
  f[16] = 0x08, f[17] = 0x00;               // IPv4
  f[18] = 6, f[19] = 4, f[20] = 0, f[21] = 1;  // request
  memcpy(f + 22, w.ours.b, 6);
  f[28] = 10, f[29] = 0, f[30] = 2, f[31] = 15;
  f[38] = 10, f[39] = 0, f[40] = 2, f[41] = 2;
  const uint64_t tx_before = dev->tx_frames, rx_before = dev->rx_frames;
  // A few tries: the first frame may race the device's link setup.
  for (int attempt = 0; attempt < 3 && !w.replied; ++attempt) {
    KCHECK(dev->transmit(f, sizeof f));
    virtio::guest::run_loop_until(&w.replied, 2'000'000'000ull);
  }
  dev->set_receiver(nullptr, nullptr);
  KCHECK(w.replied);
  KCHECK(dev->tx_frames > tx_before && dev->rx_frames > rx_before);
  KCHECK(dev->interrupts > 0);
  if (w.replied)
    kprintf("    ARP reply: 10.0.2.2 is at %02x:%02x:%02x:%02x:%02x:%02x (%d other frames)\n", w.gateway_mac[0],
            w.gateway_mac[1], w.gateway_mac[2], w.gateway_mac[3], w.gateway_mac[4], w.gateway_mac[5],
            w.other_frames);
  // Malformed frames are refused and counted.
  const uint64_t dropped = dev->tx_dropped;
  KCHECK(!dev->transmit(f, 13));
  KCHECK(!dev->transmit(nullptr, 60));
  KCHECK(dev->tx_dropped == dropped + 2);
}
