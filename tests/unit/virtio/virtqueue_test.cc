// The host side of a split virtqueue against a driver played by the test:
// the test writes descriptors and ring entries into guest RAM exactly as a
// guest would, publishes the available index, and checks what the device
// side pops, writes back, and refuses.
#include "virtio/host/virtqueue.h"

#include <gtest/gtest.h>

#include <atomic>
#include <cstring>
#include <thread>
#include <vector>

#include "virtio/features.h"
#include "virtio/ring.h"

namespace vmm {
namespace {

using namespace virtio;
using E = VirtqueueError;

// 512 MiB so that a chain can exceed 4 GiB with a few descriptors (the test
// of the 32-bit total); the mapping is MAP_NORESERVE, untouched pages are free.
constexpr uint64_t kRam = 512ull << 20;
constexpr uint64_t kDesc = 0x10000, kAvail = 0x20000, kUsed = 0x30000;
constexpr uint64_t kTables = 0x40000;  // indirect tables
constexpr uint64_t kData = 0x100000;   // buffers

class VirtqueueTest : public ::testing::Test {
 protected:
  GuestMemory mem{kRam};
  Virtqueue q{mem};
  VirtqChain chain;
  uint16_t n = 16;
  uint16_t avail_idx = 0;  // the driver's copy

  void enable(uint16_t size = 16, bool event_idx = false, bool indirect = false) {
    n = size;
    ASSERT_EQ(q.enable({size, kDesc, kAvail, kUsed, event_idx, indirect}), VirtqueueConfigError::kNone);
  }

  // ---- the driver's side ----
  template <typename T>
  void poke(uint64_t gpa, T v) {
    ASSERT_TRUE(mem.write(gpa, &v, sizeof v));
  }
  template <typename T>
  T peek(uint64_t gpa) {
    T v{};
    EXPECT_TRUE(mem.read(gpa, &v, sizeof v));
    return v;
  }
  void desc_at(uint64_t table, uint32_t i, uint64_t addr, uint32_t len, uint16_t flags, uint16_t next = 0) {
    poke(table + 16ull * i, virtq_desc{addr, len, flags, next});
  }
  void desc(uint32_t i, uint64_t addr, uint32_t len, uint16_t flags = 0, uint16_t next = 0) {
    desc_at(kDesc, i, addr, len, flags, next);
  }
  // Makes `head` available and publishes the new index.
  void publish(uint16_t head) {
    poke<uint16_t>(kAvail + avail_ring_entry_offset(avail_idx % n), head);
    set_avail_idx(++avail_idx);
  }
  void set_avail_idx(uint16_t idx) { poke<uint16_t>(kAvail + 2, idx); }
  void set_avail_flags(uint16_t f) { poke<uint16_t>(kAvail, f); }
  void set_used_event(uint16_t v) { poke<uint16_t>(kAvail + avail_used_event_offset(n), v); }
  uint16_t used_idx() { return peek<uint16_t>(kUsed + 2); }
  uint16_t used_flags() { return peek<uint16_t>(kUsed); }
  uint16_t avail_event() { return peek<uint16_t>(kUsed + used_avail_event_offset(n)); }
  virtq_used_elem used_elem(uint16_t i) { return peek<virtq_used_elem>(kUsed + used_ring_entry_offset(i % n)); }

  // One request through: a single readable buffer, popped and pushed.
  void cycle() {
    desc(0, kData, 8);
    publish(0);
    ASSERT_EQ(q.pop(chain), PopResult::kChain);
    ASSERT_TRUE(q.push_used(chain.head(), 0));
  }

  void expect_broken(VirtqueueError e) {
    EXPECT_EQ(q.pop(chain), PopResult::kBroken);
    EXPECT_TRUE(q.broken());
    EXPECT_EQ(q.error(), e) << q.broken_reason();
    EXPECT_NE(q.broken_reason().find(to_string(e)), std::string::npos) << q.broken_reason();
    // Sticky: asking again changes nothing.
    EXPECT_EQ(q.pop(chain), PopResult::kBroken);
    EXPECT_EQ(q.error(), e);
  }
};

// ---------------------------------------------------------------------------
// Configuration

TEST_F(VirtqueueTest, EnableRejectsBadSizes) {
  for (uint16_t s : {0, 3, 6, 100, 32767, 65535})
    EXPECT_EQ(q.enable({s, kDesc, kAvail, kUsed, false, false}), VirtqueueConfigError::kBadSize) << s;
  EXPECT_FALSE(q.enabled());
  for (uint16_t s : {1, 2, 256, 32768})
    EXPECT_EQ(q.enable({s, 0x0, 0x80000, 0xa0000, false, false}), VirtqueueConfigError::kNone) << s;
}

TEST_F(VirtqueueTest, EnableRejectsMisalignedParts) {
  EXPECT_EQ(q.enable({16, kDesc + 8, kAvail, kUsed}), VirtqueueConfigError::kDescMisaligned);
  EXPECT_EQ(q.enable({16, kDesc, kAvail + 1, kUsed}), VirtqueueConfigError::kAvailMisaligned);
  EXPECT_EQ(q.enable({16, kDesc, kAvail, kUsed + 2}), VirtqueueConfigError::kUsedMisaligned);
  // The minimum alignments are enough.
  EXPECT_EQ(q.enable({16, kDesc + 16, kAvail + 2, kUsed + 4}), VirtqueueConfigError::kNone);
}

TEST_F(VirtqueueTest, EnableRejectsPartsOutsideRam) {
  EXPECT_EQ(q.enable({16, kRam - 16 * 8, kAvail, kUsed}), VirtqueueConfigError::kDescOutsideRam);
  EXPECT_EQ(q.enable({16, kDesc, kRam - 6, kUsed}), VirtqueueConfigError::kAvailOutsideRam);  // last bytes
  EXPECT_EQ(q.enable({16, kDesc, kAvail, kRam - 8 * 16}), VirtqueueConfigError::kUsedOutsideRam);
  EXPECT_EQ(q.enable({16, ~0ull - 15, kAvail, kUsed}), VirtqueueConfigError::kDescOutsideRam);  // wraps
  EXPECT_EQ(q.enable({16, kDesc, GuestMemory::kMmioHoleStart, kUsed}), VirtqueueConfigError::kAvailOutsideRam);
  EXPECT_FALSE(q.enabled());
  // Exactly at the end of RAM is fine.
  EXPECT_EQ(q.enable({16, kRam - 256, kRam - 256 - 38, kRam - 512 - 136}), VirtqueueConfigError::kNone);
}

TEST_F(VirtqueueTest, DisabledQueueIsInert) {
  EXPECT_EQ(q.pop(chain), PopResult::kEmpty);
  EXPECT_FALSE(q.push_used(0, 0));
  EXPECT_FALSE(q.should_notify());
  EXPECT_FALSE(q.enable_notification());
}

// ---------------------------------------------------------------------------
// Happy paths

TEST_F(VirtqueueTest, EmptyQueue) {
  enable();
  EXPECT_EQ(q.pop(chain), PopResult::kEmpty);
  EXPECT_FALSE(q.broken());
}

TEST_F(VirtqueueTest, SingleReadableBuffer) {
  enable();
  const char msg[] = "hello, device";
  ASSERT_TRUE(mem.write(kData, msg, sizeof msg));
  desc(3, kData, sizeof msg);
  publish(3);
  ASSERT_EQ(q.pop(chain), PopResult::kChain);
  EXPECT_EQ(chain.head(), 3);
  ASSERT_EQ(chain.readable().size(), 1u);
  EXPECT_TRUE(chain.writable().empty());
  EXPECT_EQ(chain.readable()[0].gpa, kData);
  EXPECT_EQ(chain.readable()[0].host, mem.ptr(kData, 1));
  EXPECT_EQ(chain.readable_bytes(), sizeof msg);
  char got[sizeof msg] = {};
  EXPECT_EQ(chain.read(0, got, sizeof got), sizeof msg);
  EXPECT_STREQ(got, msg);
  EXPECT_EQ(chain.write(0, "x", 1), 0u);  // nothing writable
  EXPECT_EQ(q.pop(chain), PopResult::kEmpty);

  EXPECT_EQ(q.in_flight(), 1u);
  ASSERT_TRUE(q.push_used(3, 0));
  EXPECT_EQ(used_idx(), 1);
  EXPECT_EQ(used_elem(0).id, 3u);
  EXPECT_EQ(used_elem(0).len, 0u);
  EXPECT_EQ(q.in_flight(), 0u);
  EXPECT_FALSE(q.push_used(3, 0)) << "nothing in flight";
  EXPECT_EQ(used_idx(), 1);
}

TEST_F(VirtqueueTest, ChainedReadableThenWritable) {
  enable();
  // 2 readable (3 + 5 bytes), then 2 writable (4 + 6 bytes), linked out of order.
  desc(5, kData + 0x000, 3, VIRTQ_DESC_F_NEXT, 9);
  desc(9, kData + 0x100, 5, VIRTQ_DESC_F_NEXT, 1);
  desc(1, kData + 0x200, 4, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 7);
  desc(7, kData + 0x300, 6, VIRTQ_DESC_F_WRITE);
  ASSERT_TRUE(mem.write(kData, "abc", 3));
  ASSERT_TRUE(mem.write(kData + 0x100, "defgh", 5));
  publish(5);
  ASSERT_EQ(q.pop(chain), PopResult::kChain);
  EXPECT_EQ(chain.head(), 5);
  EXPECT_EQ(chain.readable().size(), 2u);
  EXPECT_EQ(chain.writable().size(), 2u);
  EXPECT_EQ(chain.readable_bytes(), 8u);
  EXPECT_EQ(chain.writable_bytes(), 10u);
  EXPECT_EQ(chain.descriptors(), 4u);

  char buf[16] = {};
  EXPECT_EQ(chain.read(0, buf, sizeof buf), 8u);  // clamped at the end
  EXPECT_EQ(std::string(buf, 8), "abcdefgh");
  EXPECT_EQ(chain.read(2, buf, 3), 3u);  // across the buffer boundary
  EXPECT_EQ(std::string(buf, 3), "cde");
  EXPECT_EQ(chain.read(8, buf, 1), 0u);

  EXPECT_EQ(chain.write(2, "0123456789", 10), 8u);  // 2 + 8 = 10 bytes of room
  char w[6] = {};
  ASSERT_TRUE(mem.read(kData + 0x200, w, 4));
  EXPECT_EQ(std::string(w + 2, 2), "01");
  ASSERT_TRUE(mem.read(kData + 0x300, w, 6));
  EXPECT_EQ(std::string(w, 6), "234567");

  ASSERT_TRUE(q.push_used(5, 10));
  EXPECT_EQ(used_elem(0).id, 5u);
  EXPECT_EQ(used_elem(0).len, 10u);
}

TEST_F(VirtqueueTest, ZeroLengthDescriptorsAreAcceptedAndDropped) {
  enable();
  // The zero-length descriptors' addresses are never used, so not checked.
  desc(0, ~0ull, 0, VIRTQ_DESC_F_NEXT, 1);
  desc(1, kData, 4, VIRTQ_DESC_F_NEXT, 2);
  desc(2, 0, 0, VIRTQ_DESC_F_WRITE);
  publish(0);
  ASSERT_EQ(q.pop(chain), PopResult::kChain);
  EXPECT_EQ(chain.readable().size(), 1u);
  EXPECT_EQ(chain.writable().size(), 0u);
  EXPECT_EQ(chain.descriptors(), 3u);
  EXPECT_EQ(chain.readable_bytes(), 4u);
}

TEST_F(VirtqueueTest, IndirectTable) {
  enable(16, false, true);
  // Table entries linked 0 -> 2 -> 1; the pointer's WRITE flag is ignored.
  desc_at(kTables, 0, kData, 4, VIRTQ_DESC_F_NEXT, 2);
  desc_at(kTables, 2, kData + 0x100, 8, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 1);
  desc_at(kTables, 1, kData + 0x200, 16, VIRTQ_DESC_F_WRITE);
  desc(4, kTables, 3 * 16, VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_WRITE);
  ASSERT_TRUE(mem.write(kData, "req!", 4));
  publish(4);
  ASSERT_EQ(q.pop(chain), PopResult::kChain);
  EXPECT_EQ(chain.head(), 4);
  ASSERT_EQ(chain.readable().size(), 1u);
  ASSERT_EQ(chain.writable().size(), 2u);
  EXPECT_EQ(chain.writable()[0].gpa, kData + 0x100);
  EXPECT_EQ(chain.writable()[1].gpa, kData + 0x200);
  EXPECT_EQ(chain.writable_bytes(), 24u);
  char r[4];
  EXPECT_EQ(chain.read(0, r, 4), 4u);
  EXPECT_EQ(std::string(r, 4), "req!");
}

TEST_F(VirtqueueTest, DirectDescriptorsThenIndirectTable) {
  enable(16, false, true);
  desc(0, kData, 12, VIRTQ_DESC_F_NEXT, 1);
  desc(1, kTables + 7, 16, VIRTQ_DESC_F_INDIRECT);  // tables need no alignment
  desc_at(kTables + 7, 0, kData + 0x100, 1, VIRTQ_DESC_F_WRITE);
  publish(0);
  ASSERT_EQ(q.pop(chain), PopResult::kChain);
  EXPECT_EQ(chain.readable_bytes(), 12u);
  EXPECT_EQ(chain.writable_bytes(), 1u);
}

TEST_F(VirtqueueTest, ManyRequestsInFlightCompletedOutOfOrder) {
  enable(8);
  for (uint16_t i = 0; i < 8; ++i) {
    desc(i, kData + 0x100 * i, 0x10 + i, VIRTQ_DESC_F_WRITE);
    publish(7 - i);
  }
  std::vector<uint16_t> heads;
  while (q.pop(chain) == PopResult::kChain) {
    EXPECT_EQ(chain.writable_bytes(), 0x10u + chain.head());
    heads.push_back(chain.head());
  }
  ASSERT_FALSE(q.broken()) << q.broken_reason();
  ASSERT_EQ(heads.size(), 8u);
  EXPECT_EQ(q.in_flight(), 8u);
  for (size_t i = 0; i < heads.size(); ++i) EXPECT_EQ(heads[i], 7 - i);
  for (uint16_t h : heads) ASSERT_TRUE(q.push_used(h, h));  // completed in pop order reversed below
  for (uint16_t i = 0; i < 8; ++i) {
    EXPECT_EQ(used_elem(i).id, 7u - i);
    EXPECT_EQ(used_elem(i).len, 7u - i);
  }
  EXPECT_EQ(used_idx(), 8);
  // The driver reuses the ring: the next round lands on entries 0.. again.
  publish(3);
  ASSERT_EQ(q.pop(chain), PopResult::kChain);
  EXPECT_EQ(chain.head(), 3);
  ASSERT_TRUE(q.push_used(3, 1));
  EXPECT_EQ(used_elem(8).id, 3u);
  EXPECT_EQ(used_idx(), 9);
}

TEST_F(VirtqueueTest, IndicesWrapAt16Bits) {
  enable(4);
  for (int i = 0; i < 65536 + 5; ++i) ASSERT_NO_FATAL_FAILURE(cycle());
  EXPECT_EQ(q.next_avail(), 5);
  EXPECT_EQ(q.next_used(), 5);
  EXPECT_EQ(used_idx(), 5);
  EXPECT_FALSE(q.broken());
  // A full queue's worth published across the wrap point is fine too.
  for (uint16_t i = 0; i < 4; ++i) {
    desc(i, kData, 1);
    publish(i);
  }
  for (int i = 0; i < 4; ++i) ASSERT_EQ(q.pop(chain), PopResult::kChain);
  EXPECT_EQ(q.pop(chain), PopResult::kEmpty);
}

TEST_F(VirtqueueTest, AvailIdxExactlyQueueSizeAheadIsAllowed) {
  enable(4);
  for (uint16_t i = 0; i < 4; ++i) {
    desc(i, kData, 1);
    publish(i);
  }
  for (int i = 0; i < 4; ++i) EXPECT_EQ(q.pop(chain), PopResult::kChain);
  EXPECT_FALSE(q.broken());
}

// ---------------------------------------------------------------------------
// Every malformed case, each on its own

TEST_F(VirtqueueTest, AvailIdxRunsAhead) {
  enable();
  for (uint16_t i = 0; i < 16; ++i) desc(i, kData, 1);
  set_avail_idx(17);
  expect_broken(E::kAvailIdxAhead);
}

TEST_F(VirtqueueTest, AvailIdxGoesBackwards) {
  enable();
  cycle();
  set_avail_idx(0);  // 0 - 1 = 65535 ahead
  expect_broken(E::kAvailIdxAhead);
}

TEST_F(VirtqueueTest, HeadOutOfRange) {
  enable();
  publish(16);
  expect_broken(E::kHeadOutOfRange);
}

TEST_F(VirtqueueTest, NextOutOfRange) {
  enable();
  desc(0, kData, 1, VIRTQ_DESC_F_NEXT, 16);
  publish(0);
  expect_broken(E::kNextOutOfRange);
}

TEST_F(VirtqueueTest, LoopInChain) {
  enable();
  desc(0, kData, 1, VIRTQ_DESC_F_NEXT, 1);
  desc(1, kData, 1, VIRTQ_DESC_F_NEXT, 2);
  desc(2, kData, 1, VIRTQ_DESC_F_NEXT, 0);
  publish(0);
  expect_broken(E::kChainTooLong);
}

TEST_F(VirtqueueTest, SelfLoopOfZeroLengthDescriptors) {
  enable();
  desc(0, 0, 0, VIRTQ_DESC_F_NEXT, 0);
  publish(0);
  expect_broken(E::kChainTooLong);
}

TEST_F(VirtqueueTest, DirectPlusIndirectLongerThanQueue) {
  enable(16, false, true);
  for (uint16_t i = 0; i < 10; ++i) desc(i, kData, 1, VIRTQ_DESC_F_NEXT, i + 1);
  desc(10, kTables, 10 * 16, VIRTQ_DESC_F_INDIRECT);
  for (uint16_t i = 0; i < 10; ++i) desc_at(kTables, i, kData, 1, i < 9 ? VIRTQ_DESC_F_NEXT : 0, i + 1);
  publish(0);
  expect_broken(E::kChainTooLong);
}

TEST_F(VirtqueueTest, BufferBeyondRam) {
  enable();
  desc(0, kRam, 1);
  publish(0);
  expect_broken(E::kBufferOutsideRam);
}

TEST_F(VirtqueueTest, BufferStraddlingEndOfRam) {
  enable();
  desc(0, kData, 1, VIRTQ_DESC_F_NEXT, 1);
  desc(1, kRam - 4, 8, VIRTQ_DESC_F_WRITE);
  publish(0);
  expect_broken(E::kBufferOutsideRam);
}

TEST_F(VirtqueueTest, BufferAddressPlusLengthOverflows) {
  enable();
  desc(0, ~0ull - 0xff, 0x200);
  publish(0);
  expect_broken(E::kBufferOutsideRam);
}

TEST_F(VirtqueueTest, BufferInMmioHole) {
  enable();
  desc(0, GuestMemory::kMmioHoleStart + 0x1000, 4);
  publish(0);
  expect_broken(E::kBufferOutsideRam);
}

TEST_F(VirtqueueTest, TotalLengthOverflows32Bits) {
  enable();
  // 8 x 512 MiB = 4 GiB: one byte more than a 32-bit length can say.
  for (uint16_t i = 0; i < 8; ++i) desc(i, 0, static_cast<uint32_t>(kRam), i < 7 ? VIRTQ_DESC_F_NEXT : 0, i + 1);
  publish(0);
  expect_broken(E::kChainTooLarge);
}

TEST_F(VirtqueueTest, TotalLengthJustBelow4GiBIsFine) {
  enable();
  for (uint16_t i = 0; i < 7; ++i) desc(i, 0, static_cast<uint32_t>(kRam), VIRTQ_DESC_F_NEXT, i + 1);
  desc(7, 0, static_cast<uint32_t>(kRam) - 1);
  publish(0);
  ASSERT_EQ(q.pop(chain), PopResult::kChain) << q.broken_reason();
  EXPECT_EQ(chain.readable_bytes(), UINT32_MAX);
}

TEST_F(VirtqueueTest, ReadableAfterWritable) {
  enable();
  desc(0, kData, 1, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 1);
  desc(1, kData, 1);
  publish(0);
  expect_broken(E::kReadableAfterWritable);
}

TEST_F(VirtqueueTest, ReadableAfterWritableInsideIndirectTable) {
  enable(16, false, true);
  desc(0, kData, 1, VIRTQ_DESC_F_WRITE | VIRTQ_DESC_F_NEXT, 1);
  desc(1, kTables, 16, VIRTQ_DESC_F_INDIRECT);
  desc_at(kTables, 0, kData, 1, 0);
  publish(0);
  expect_broken(E::kReadableAfterWritable);
}

TEST_F(VirtqueueTest, IndirectNotNegotiated) {
  enable(16, false, false);
  desc(0, kTables, 16, VIRTQ_DESC_F_INDIRECT);
  desc_at(kTables, 0, kData, 1, 0);
  publish(0);
  expect_broken(E::kIndirectNotNegotiated);
}

TEST_F(VirtqueueTest, IndirectWithNext) {
  enable(16, false, true);
  desc(0, kTables, 16, VIRTQ_DESC_F_INDIRECT | VIRTQ_DESC_F_NEXT, 1);
  desc(1, kData, 1);
  desc_at(kTables, 0, kData, 1, 0);
  publish(0);
  expect_broken(E::kIndirectWithNext);
}

TEST_F(VirtqueueTest, NestedIndirect) {
  enable(16, false, true);
  desc(0, kTables, 16, VIRTQ_DESC_F_INDIRECT);
  desc_at(kTables, 0, kTables + 0x100, 16, VIRTQ_DESC_F_INDIRECT);
  desc_at(kTables + 0x100, 0, kData, 1, 0);
  publish(0);
  expect_broken(E::kNestedIndirect);
}

TEST_F(VirtqueueTest, IndirectTableOfLengthZero) {
  enable(16, false, true);
  desc(0, kTables, 0, VIRTQ_DESC_F_INDIRECT);
  publish(0);
  expect_broken(E::kIndirectBadLength);
}

TEST_F(VirtqueueTest, IndirectTableLengthNotMultipleOf16) {
  enable(16, false, true);
  desc(0, kTables, 24, VIRTQ_DESC_F_INDIRECT);
  desc_at(kTables, 0, kData, 1, 0);
  publish(0);
  expect_broken(E::kIndirectBadLength);
}

TEST_F(VirtqueueTest, IndirectTableLargerThanQueue) {
  enable(16, false, true);
  desc(0, kTables, 17 * 16, VIRTQ_DESC_F_INDIRECT);
  for (uint16_t i = 0; i < 17; ++i) desc_at(kTables, i, kData, 1, i < 16 ? VIRTQ_DESC_F_NEXT : 0, i + 1);
  publish(0);
  expect_broken(E::kIndirectTooLong);
}

TEST_F(VirtqueueTest, IndirectTableOutsideRam) {
  enable(16, false, true);
  desc(0, kRam - 16, 32, VIRTQ_DESC_F_INDIRECT);
  publish(0);
  expect_broken(E::kIndirectOutsideRam);
}

TEST_F(VirtqueueTest, IndirectNextOutOfRange) {
  enable(16, false, true);
  desc(0, kTables, 2 * 16, VIRTQ_DESC_F_INDIRECT);
  desc_at(kTables, 0, kData, 1, VIRTQ_DESC_F_NEXT, 2);  // table has 2 entries
  desc_at(kTables, 2, kData, 1, 0);
  publish(0);
  expect_broken(E::kNextOutOfRange);
}

TEST_F(VirtqueueTest, LoopInIndirectTable) {
  enable(16, false, true);
  desc(0, kTables, 2 * 16, VIRTQ_DESC_F_INDIRECT);
  desc_at(kTables, 0, kData, 1, VIRTQ_DESC_F_NEXT, 1);
  desc_at(kTables, 1, kData, 1, VIRTQ_DESC_F_NEXT, 0);
  publish(0);
  expect_broken(E::kChainTooLong);
}

TEST_F(VirtqueueTest, BufferOutsideRamInsideIndirectTable) {
  enable(16, false, true);
  desc(0, kTables, 16, VIRTQ_DESC_F_INDIRECT);
  desc_at(kTables, 0, kRam, 1, VIRTQ_DESC_F_WRITE);
  publish(0);
  expect_broken(E::kBufferOutsideRam);
}

TEST_F(VirtqueueTest, MoreChainsInFlightThanQueueSize) {
  enable(4);
  for (uint16_t i = 0; i < 4; ++i) {
    desc(i, kData, 1);
    publish(i);
  }
  for (int i = 0; i < 4; ++i) ASSERT_EQ(q.pop(chain), PopResult::kChain);
  publish(0);  // reuses a head the device still owns
  expect_broken(E::kTooManyInFlight);
}

// ---------------------------------------------------------------------------
// Broken state and reset

TEST_F(VirtqueueTest, BrokenQueueIsStickyAndWritesNothing) {
  enable(16, true, false);
  desc(0, kData, 1);
  publish(0);
  ASSERT_EQ(q.pop(chain), PopResult::kChain);
  publish(16);  // bad head
  expect_broken(E::kHeadOutOfRange);
  const std::string reason = q.broken_reason();

  // Fixing the ring does not help: the guest must reset the device.
  poke<uint16_t>(kAvail + avail_ring_entry_offset(1), 0);
  EXPECT_EQ(q.pop(chain), PopResult::kBroken);
  EXPECT_FALSE(q.push_used(0, 1));
  EXPECT_EQ(used_idx(), 0);
  EXPECT_FALSE(q.should_notify());
  poke<uint16_t>(kUsed + used_avail_event_offset(16), 0x1234);
  EXPECT_FALSE(q.enable_notification());
  q.disable_notification();
  EXPECT_EQ(avail_event(), 0x1234);
  EXPECT_EQ(used_flags(), 0);
  EXPECT_EQ(q.broken_reason(), reason);  // the first reason is kept
}

TEST_F(VirtqueueTest, ResetClearsBrokenState) {
  enable();
  publish(99);
  expect_broken(E::kHeadOutOfRange);
  q.reset();
  EXPECT_FALSE(q.broken());
  EXPECT_FALSE(q.enabled());
  EXPECT_TRUE(q.broken_reason().empty());
  EXPECT_EQ(q.pop(chain), PopResult::kEmpty);
  // The driver re-initialises its rings after a reset.
  std::memset(mem.ptr(kAvail, 0x1000), 0, 0x1000);
  std::memset(mem.ptr(kUsed, 0x1000), 0, 0x1000);
  avail_idx = 0;
  enable();
  EXPECT_EQ(q.next_avail(), 0);
  cycle();
  EXPECT_EQ(used_idx(), 1);
}

TEST_F(VirtqueueTest, ConfigErrorLeavesQueueDisabled) {
  enable();
  cycle();
  EXPECT_EQ(q.enable({16, kDesc + 1, kAvail, kUsed}), VirtqueueConfigError::kDescMisaligned);
  EXPECT_FALSE(q.enabled());
  EXPECT_EQ(q.pop(chain), PopResult::kEmpty);
}

// ---------------------------------------------------------------------------
// Notification suppression

TEST(VringNeedEvent, Semantics) {
  // Notify when event_idx is in [old, new).
  EXPECT_TRUE(vring_need_event(0, 1, 0));
  EXPECT_FALSE(vring_need_event(1, 1, 0));
  EXPECT_TRUE(vring_need_event(3, 5, 2));
  EXPECT_TRUE(vring_need_event(4, 5, 2));
  EXPECT_FALSE(vring_need_event(5, 5, 2));
  EXPECT_FALSE(vring_need_event(1, 5, 2));
  EXPECT_FALSE(vring_need_event(7, 7, 7));  // nothing moved
  // Across the 16-bit wrap.
  EXPECT_TRUE(vring_need_event(0xfffe, 2, 0xfffd));
  EXPECT_TRUE(vring_need_event(0xffff, 0, 0xfffe));
  EXPECT_TRUE(vring_need_event(0, 2, 0xffff));
  EXPECT_TRUE(vring_need_event(1, 2, 0xffff));
  EXPECT_FALSE(vring_need_event(2, 2, 0xffff));
  EXPECT_FALSE(vring_need_event(0xfffe, 2, 0xffff));
}

TEST_F(VirtqueueTest, InterruptsWithoutEventIdx) {
  enable();
  EXPECT_FALSE(q.should_notify()) << "nothing used yet";
  cycle();
  EXPECT_TRUE(q.should_notify());
  EXPECT_FALSE(q.should_notify()) << "nothing new since the last interrupt";
  set_avail_flags(VIRTQ_AVAIL_F_NO_INTERRUPT);
  cycle();
  EXPECT_FALSE(q.should_notify());
  set_avail_flags(0);
  cycle();
  cycle();
  EXPECT_TRUE(q.should_notify());
}

TEST_F(VirtqueueTest, InterruptsWithEventIdx) {
  enable(16, true, false);
  // The NO_INTERRUPT flag means nothing with EVENT_IDX.
  set_avail_flags(VIRTQ_AVAIL_F_NO_INTERRUPT);
  set_used_event(0);  // interrupt when entry 0 is used
  cycle();
  EXPECT_TRUE(q.should_notify());
  cycle();  // used idx 2, used_event still 0: already passed
  EXPECT_FALSE(q.should_notify());
  set_used_event(4);  // interrupt once entry 4 is used
  cycle();            // entry 2
  EXPECT_FALSE(q.should_notify());
  cycle();  // 3
  cycle();  // 4
  cycle();  // 5
  EXPECT_TRUE(q.should_notify());
  EXPECT_FALSE(q.should_notify());
}

TEST_F(VirtqueueTest, EventIdxAcrossIndexWrap) {
  enable(2, true, false);
  set_used_event(0);
  for (int i = 0; i < 65534; ++i) ASSERT_NO_FATAL_FAILURE(cycle());
  EXPECT_TRUE(q.should_notify());  // entry 0 was used: one interrupt for them all
  ASSERT_EQ(q.next_used(), 65534);
  set_used_event(0xffff);  // interrupt when entry 65535 is used
  cycle();                 // 65534
  EXPECT_FALSE(q.should_notify());
  cycle();  // 65535
  cycle();  // 0 (wrapped)
  EXPECT_TRUE(q.should_notify());
  set_used_event(1);
  cycle();  // 1
  EXPECT_TRUE(q.should_notify());
  EXPECT_EQ(used_idx(), 2);
}

TEST_F(VirtqueueTest, KickSuppressionWithoutEventIdx) {
  enable();
  q.disable_notification();
  EXPECT_EQ(used_flags(), VIRTQ_USED_F_NO_NOTIFY);
  EXPECT_FALSE(q.enable_notification()) << "nothing pending";
  EXPECT_EQ(used_flags(), 0);
  q.disable_notification();
  desc(0, kData, 1);
  publish(0);  // arrives while the device polls
  EXPECT_TRUE(q.enable_notification()) << "the device must look again";
  EXPECT_EQ(used_flags(), 0);
  EXPECT_TRUE(q.set_notification(true));
  EXPECT_FALSE(q.set_notification(false));
  EXPECT_EQ(used_flags(), VIRTQ_USED_F_NO_NOTIFY);
}

TEST_F(VirtqueueTest, KickSuppressionWithEventIdx) {
  enable(16, true, false);
  EXPECT_FALSE(q.enable_notification());
  EXPECT_EQ(avail_event(), 0);
  desc(0, kData, 1);
  publish(0);
  publish(0);
  ASSERT_EQ(q.pop(chain), PopResult::kChain);
  EXPECT_EQ(avail_event(), 1) << "kick me for the next entry";
  ASSERT_TRUE(q.push_used(0, 0));
  // While polling the device stops moving avail_event, so the driver's
  // index runs past it and it does not kick.
  q.disable_notification();
  ASSERT_EQ(q.pop(chain), PopResult::kChain);
  EXPECT_EQ(avail_event(), 1);
  EXPECT_FALSE(vring_need_event(avail_event(), 4, 3));
  EXPECT_EQ(used_flags(), 0) << "the flag is not used with EVENT_IDX";
  EXPECT_EQ(q.pop(chain), PopResult::kEmpty);
  EXPECT_FALSE(q.enable_notification());
  EXPECT_EQ(avail_event(), 2);
  publish(0);
  EXPECT_TRUE(q.enable_notification());
}

// ---------------------------------------------------------------------------
// A real driver thread against a device thread: the ordering between ring
// indices and their contents (acquire/release on both sides) carries every
// request's payload and response intact. The outcome is deterministic.

TEST_F(VirtqueueTest, ConcurrentDriverAndDevice) {
  constexpr uint16_t kSize = 32, kSlots = kSize / 2;  // 2 descriptors a request
  constexpr uint32_t kRequests = 20000;
  enable(kSize);
  uint8_t* avail = mem.ptr(kAvail, avail_ring_size(kSize));
  uint8_t* used = mem.ptr(kUsed, used_ring_size(kSize));
  auto* avail_idx_p = reinterpret_cast<uint16_t*>(avail + 2);
  auto* used_idx_p = reinterpret_cast<uint16_t*>(used + 2);

  // Set by the device thread when it gives up, so the driver never waits
  // forever on a failure.
  std::atomic<bool> device_failed{false};
  std::thread device([&] {
    VirtqChain c;
    auto fail = [&] { device_failed.store(true); };
    for (uint32_t done = 0; done < kRequests;) {
      const PopResult r = q.pop(c);
      if (r == PopResult::kBroken) return fail();
      if (r == PopResult::kEmpty) {
        std::this_thread::yield();
        continue;
      }
      uint64_t v = 0;
      if (c.read(0, &v, sizeof v) != sizeof v) return fail();
      v = v * 2 + 1;
      if (c.write(0, &v, sizeof v) != sizeof v) return fail();
      if (!q.push_used(c.head(), sizeof v)) return fail();
      ++done;
    }
  });

  uint32_t reaped = 0, bad = 0;
  uint16_t used_seen = 0;
  auto reap = [&] {
    const uint16_t now = __atomic_load_n(used_idx_p, __ATOMIC_ACQUIRE);
    for (; used_seen != now; ++used_seen, ++reaped) {
      virtq_used_elem e;
      std::memcpy(&e, used + used_ring_entry_offset(used_seen % kSize), sizeof e);
      // The device completes in order, so this is request `reaped`.
      const uint32_t slot = reaped % kSlots;
      uint64_t resp;
      std::memcpy(&resp, mem.ptr(kData + 64 * slot + 8, 8), 8);
      if (e.id != 2 * slot || e.len != 8 || resp != 2ull * reaped + 1) ++bad;
    }
  };
  for (uint32_t seq = 0; seq < kRequests && !device_failed; ++seq) {
    while (seq - reaped >= kSlots && !device_failed) {
      reap();
      std::this_thread::yield();
    }
    const uint16_t slot = seq % kSlots;
    const uint64_t req = seq;
    std::memcpy(mem.ptr(kData + 64 * slot, 8), &req, 8);
    const virtq_desc d[2] = {{kData + 64 * slot, 8, VIRTQ_DESC_F_NEXT, static_cast<uint16_t>(2 * slot + 1)},
                             {kData + 64 * slot + 8, 8, VIRTQ_DESC_F_WRITE, 0}};
    std::memcpy(mem.ptr(kDesc + 32 * slot, 32), d, 32);
    const uint16_t head = 2 * slot;
    std::memcpy(avail + avail_ring_entry_offset(seq % kSize), &head, 2);
    __atomic_store_n(avail_idx_p, static_cast<uint16_t>(seq + 1), __ATOMIC_RELEASE);
  }
  while (reaped < kRequests && !device_failed) {
    reap();
    std::this_thread::yield();
  }
  device.join();
  EXPECT_FALSE(device_failed);
  EXPECT_FALSE(q.broken()) << q.broken_reason();
  EXPECT_EQ(bad, 0u);
  EXPECT_EQ(reaped, kRequests);
}

}  // namespace
}  // namespace vmm
