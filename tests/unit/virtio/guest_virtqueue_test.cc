// The guest driver's virtqueue (virtio/guest/virtqueue.cc) against the
// VMM's device-side virtqueue (virtio/host/virtqueue.cc) over one guest
// memory: two independent implementations of the two ends of the ring.
// A seeded random schedule adds chains of random shapes, lets the device
// consume them and the driver reap them, each side sleeping exactly as
// the drivers and devices do (suppression on while busy, re-enable with
// the re-check before sleeping). After every step: no data corrupted, no
// token lost or duplicated, and no wakeup lost: a sleeping device never
// has available buffers it was not told about, a sleeping driver never
// has used buffers it was not interrupted for.
#include <gtest/gtest.h>

#include <cstring>
#include <random>
#include <vector>

#include "virtio/guest/virtqueue.h"
#include "virtio/host/virtqueue.h"

namespace {

constexpr uint64_t kRing = 0x10000;
constexpr uint64_t kData = 0x200000;
constexpr uint64_t kSlotBytes = 8192;

struct Param {
  bool event_idx;
  bool indirect;
  uint16_t size;
};

class GuestHostVirtqueue : public ::testing::TestWithParam<Param> {};

uint8_t pattern(uint32_t token, uint32_t i, bool device) { return static_cast<uint8_t>(token * 31 + i * 7 + (device ? 101 : 0)); }

TEST_P(GuestHostVirtqueue, RandomScheduleLosesNothing) {
  const Param p = GetParam();
  vmm::GuestMemory mem(16 << 20);
  const uint64_t ring_bytes = virtio::guest::Virtqueue::memory_bytes(p.size, p.indirect);
  uint8_t* ring = mem.ptr(kRing, ring_bytes);
  ASSERT_NE(ring, nullptr);
  int kicks = 0;
  virtio::guest::Virtqueue gq;
  ASSERT_TRUE(gq.init(0, p.size, ring, kRing, p.event_idx, p.indirect,
                      [](void* c, uint16_t) { ++*static_cast<int*>(c); }, &kicks));
  vmm::Virtqueue hq(mem);
  ASSERT_EQ(hq.enable({p.size, gq.desc_addr(), gq.avail_addr(), gq.used_addr(), p.event_idx, p.indirect}),
            vmm::VirtqueueConfigError::kNone);

  struct InFlight {
    bool busy = false;
    uint32_t out_bytes = 0, in_bytes = 0;
  };
  std::vector<InFlight> slots(p.size);
  std::mt19937 rng(1234 + p.size + p.event_idx * 2 + p.indirect);
  bool device_awake = false, driver_awake = false;
  int kicks_seen = 0;
  uint64_t added = 0, reaped = 0, interrupts = 0;
  vmm::VirtqChain chain;

  for (int step = 0; step < 20000; ++step) {
    const int action = rng() % 3;
    if (action == 0) {  // the driver adds a chain and kicks
      uint32_t t = rng() % p.size;
      if (slots[t].busy) continue;
      const int n_out = rng() % 3, n_in = (n_out == 0 ? 1 : 0) + rng() % 3;
      virtio::guest::Buffer out[3], in[3];
      uint64_t at = kData + uint64_t(t) * kSlotBytes;
      uint32_t out_bytes = 0, in_bytes = 0;
      for (int i = 0; i < n_out; ++i) {
        const uint32_t len = 1 + rng() % 1000;
        out[i] = {at, len};
        uint8_t* h = mem.ptr(at, len);
        for (uint32_t k = 0; k < len; ++k) h[k] = pattern(t, out_bytes + k, false);
        out_bytes += len;
        at += len;
      }
      for (int i = 0; i < n_in; ++i) {
        const uint32_t len = 1 + rng() % 1000;
        in[i] = {at, len};
        std::memset(mem.ptr(at, len), 0, len);
        in_bytes += len;
        at += len;
      }
      if (!gq.add(out, n_out, in, n_in, reinterpret_cast<void*>(uintptr_t(t) + 1))) continue;  // ring full
      slots[t] = {true, out_bytes, in_bytes};
      ++added;
      const int before = kicks;
      gq.kick();
      if (kicks != before) {
        device_awake = true;
        ++kicks_seen;
      }
    } else if (action == 1 && device_awake) {  // the device drains what is there
      hq.disable_notification();
      for (;;) {
        const vmm::PopResult r = hq.pop(chain);
        ASSERT_NE(r, vmm::PopResult::kBroken) << hq.broken_reason();
        if (r == vmm::PopResult::kEmpty) break;
        // Which slot: the first readable or writable buffer's address.
        const uint64_t first = chain.readable().empty() ? chain.writable()[0].gpa : chain.readable()[0].gpa;
        const uint32_t t = static_cast<uint32_t>((first - kData) / kSlotBytes);
        ASSERT_LT(t, p.size);
        ASSERT_EQ(chain.readable_bytes(), slots[t].out_bytes);
        ASSERT_EQ(chain.writable_bytes(), slots[t].in_bytes);
        std::vector<uint8_t> got(chain.readable_bytes());
        chain.read(0, got.data(), got.size());
        for (uint32_t k = 0; k < got.size(); ++k) ASSERT_EQ(got[k], pattern(t, k, false));
        std::vector<uint8_t> reply(chain.writable_bytes());
        for (uint32_t k = 0; k < reply.size(); ++k) reply[k] = pattern(t, k, true);
        chain.write(0, reply.data(), reply.size());
        ASSERT_TRUE(hq.push_used(chain.head(), static_cast<uint32_t>(reply.size())));
        if (rng() % 4 == 0) break;  // sometimes leave work for later
      }
      if (hq.should_notify()) {
        driver_awake = true;
        ++interrupts;
      }
      // Sometimes keep polling with kicks off (the driver must then not
      // kick); otherwise ask for kicks again and sleep if nothing came.
      if (rng() % 4 != 0 && !hq.enable_notification()) device_awake = false;
    } else if (action == 2 && driver_awake) {  // the driver reaps
      gq.disable_interrupts();
      uint32_t written;
      while (void* tok = gq.get_used(&written)) {
        const uint32_t t = static_cast<uint32_t>(uintptr_t(tok) - 1);
        ASSERT_LT(t, p.size);
        ASSERT_TRUE(slots[t].busy) << "token returned twice";
        ASSERT_EQ(written, slots[t].in_bytes);
        const uint8_t* h = mem.ptr(kData + uint64_t(t) * kSlotBytes + slots[t].out_bytes, slots[t].in_bytes);
        for (uint32_t k = 0; k < slots[t].in_bytes; ++k) ASSERT_EQ(h[k], pattern(t, k, true));
        slots[t].busy = false;
        ++reaped;
        if (rng() % 4 == 0) break;
      }
      if (gq.enable_interrupts()) driver_awake = false;
    }
    ASSERT_FALSE(gq.broken()) << gq.broken_reason();
    // No lost wakeups.
    if (!device_awake) {
      ASSERT_EQ(hq.next_avail(), static_cast<uint16_t>(added)) << "lost kick at step " << step;
    }
    if (!driver_awake) {
      ASSERT_FALSE(gq.has_used()) << "lost interrupt at step " << step;
    }
  }
  EXPECT_GT(reaped, 1000u);
  EXPECT_GT(kicks_seen, 10);
  EXPECT_GT(interrupts, 10u);
  EXPECT_GT(gq.kicks_suppressed, 0u);  // the device asked for fewer kicks at times
  // A chain may not be longer than the queue (§2.7.5.3.1), indirect or not.
  if (p.indirect && p.size > 1) {
    EXPECT_GT(gq.indirect_chains, 0u);
  }
}

INSTANTIATE_TEST_SUITE_P(Schemes, GuestHostVirtqueue,
                         ::testing::Values(Param{false, false, 16}, Param{true, false, 16}, Param{false, true, 8},
                                           Param{true, true, 64}, Param{true, true, 1}));

}  // namespace
