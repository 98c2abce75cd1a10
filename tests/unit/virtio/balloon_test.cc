// virtio-balloon through the virtio-pci transport, with the test driver
// playing the guest: inflated pages really leave the process (mincore),
// PFNs outside RAM and malformed arrays break the device, deflate
// accounting, the stats queue (parsing, unknown tags, truncated buffers,
// the request protocol) and queue numbering without STATS_VQ.
#include "virtio/host/virtio_balloon.h"

#include <gtest/gtest.h>
#include <sys/mman.h>

#include "tests/unit/virtio/virtio_driver.h"
#include "virtio/balloon.h"

namespace vmm {
namespace {

using namespace virtio;
using testing::Driver;
using testing::eventually;
using testing::Seg;
using testing::VirtioRig;
using namespace std::chrono_literals;

constexpr uint64_t kPage = 4096;
// Pages the tests inflate live here, far above the driver's rings and buffers.
constexpr uint64_t kArena = 8ull << 20;

class BalloonTest : public ::testing::Test {
 protected:
  void make(BalloonOptions options = {.target_bytes = 0, .stats_period_ns = 0, .release = {}}) {
    dev = std::make_shared<VirtioBalloonDevice>(rig.mem, rig.router, std::move(options));
    rig.bus->add(std::make_shared<PciHostBridge>(), 0);
    rig.bus->add(dev, 5);
    dev->start();
    drv = std::make_unique<Driver>(rig, *dev);
  }
  void bring_up(bool stats_vq = true) {
    drv->enable_msix();
    uint64_t f = drv->default_features() | feature_bit(VIRTIO_BALLOON_F_DEFLATE_ON_OOM);
    if (stats_vq) f |= feature_bit(VIRTIO_BALLOON_F_STATS_VQ);
    ASSERT_TRUE(drv->negotiate(f));
    drv->setup_queue(VIRTIO_BALLOON_INFLATE_QUEUE, 16);
    drv->setup_queue(VIRTIO_BALLOON_DEFLATE_QUEUE, 16);
    if (stats_vq) drv->setup_queue(VIRTIO_BALLOON_STATS_QUEUE, 4);
    drv->add_status(VIRTIO_STATUS_DRIVER_OK);
  }
  // Posts a PFN array on `q` and kicks.
  void send_pfns(uint16_t q, const std::vector<uint32_t>& pfns) {
    const uint32_t bytes = static_cast<uint32_t>(pfns.size() * 4);
    const uint64_t buf = drv->alloc(bytes ? bytes : 4, 4);
    if (bytes) std::memcpy(drv->host(buf, bytes), pfns.data(), bytes);
    drv->post(q, {{buf, bytes, false}});
    drv->kick(q);
  }
  // Sends and waits for the device to return the buffer.
  void transfer(uint16_t q, const std::vector<uint32_t>& pfns) {
    send_pfns(q, pfns);
    ASSERT_TRUE(drv->wait_used(q)) << dev->needs_reset_reason();
    EXPECT_EQ(drv->next_used(q).len, 0u);
  }
  // Posts a stats buffer made of `entries` (plus `extra` raw bytes).
  void send_stats(const std::vector<virtio_balloon_stat>& entries, uint32_t extra = 0) {
    const uint32_t bytes = static_cast<uint32_t>(entries.size() * sizeof(virtio_balloon_stat)) + extra;
    const uint64_t buf = drv->alloc(bytes, 8);
    std::memset(drv->host(buf, bytes), 0xab, bytes);
    std::memcpy(drv->host(buf, bytes), entries.data(), entries.size() * sizeof(virtio_balloon_stat));
    drv->post(VIRTIO_BALLOON_STATS_QUEUE, {{buf, bytes, false}});
    drv->kick(VIRTIO_BALLOON_STATS_QUEUE);
  }
  bool broken() {
    return eventually([&] { return (drv->status() & VIRTIO_STATUS_DEVICE_NEEDS_RESET) != 0; });
  }
  // Writes a pattern into guest page `pfn` (so the host backs it).
  void touch(uint32_t pfn) { std::memset(rig.mem.ptr(uint64_t(pfn) * kPage, kPage), 0x5a, kPage); }
  // Whether the host has a page behind guest page `pfn` (mincore).
  bool resident(uint32_t pfn) {
    unsigned char v = 0;
    EXPECT_EQ(::mincore(rig.mem.ptr(uint64_t(pfn) * kPage, kPage), kPage, &v), 0);
    return v & 1;
  }

  void TearDown() override {
    if (dev) dev->shutdown();
  }

  VirtioRig rig;
  std::shared_ptr<VirtioBalloonDevice> dev;
  std::unique_ptr<Driver> drv;
};

constexpr uint32_t pfn(uint64_t offset_pages) { return static_cast<uint32_t>(kArena / kPage + offset_pages); }

TEST_F(BalloonTest, IdentityFeaturesAndTarget) {
  make({.target_bytes = 3 << 20, .stats_period_ns = 0, .release = {}});
  EXPECT_EQ(dev->config_read(0x02, 2), 0x1045u);
  EXPECT_EQ(drv->num_queues(), 3);
  const uint64_t f = drv->device_features();
  EXPECT_TRUE(f & feature_bit(VIRTIO_BALLOON_F_STATS_VQ));
  EXPECT_TRUE(f & feature_bit(VIRTIO_BALLOON_F_DEFLATE_ON_OOM));
  EXPECT_FALSE(f & feature_bit(VIRTIO_BALLOON_F_MUST_TELL_HOST));
  EXPECT_FALSE(f & feature_bit(VIRTIO_BALLOON_F_FREE_PAGE_HINT));
  EXPECT_EQ(drv->device_config(0, 4), 768u);  // num_pages: 3 MiB
  EXPECT_EQ(dev->target_bytes(), 3u << 20);

  bring_up();
  drv->interrupts(0);  // forget anything before
  dev->set_target_bytes((5 << 20) + 100);  // rounded down to pages
  EXPECT_EQ(drv->device_config(0, 4), 1280u);
  EXPECT_EQ(dev->target_bytes(), 5u << 20);
  EXPECT_TRUE(drv->wait_interrupt(0));  // the configuration change interrupt
  EXPECT_THROW(dev->set_target_bytes(rig.mem.size() + kPage), std::invalid_argument);

  // actual belongs to the driver; num_pages does not change by writing it.
  drv->write(VirtioPciDevice::kDeviceCfgOffset + 4, 4, 77);
  drv->write(VirtioPciDevice::kDeviceCfgOffset + 0, 4, 12345);
  EXPECT_EQ(drv->device_config(4, 4), 77u);
  EXPECT_EQ(drv->device_config(0, 4), 1280u);
  EXPECT_EQ(dev->actual_bytes(), 77 * kPage);
  EXPECT_THROW(VirtioBalloonDevice(rig.mem, rig.router, {.target_bytes = 17 << 20, .stats_period_ns = 0, .release = {}}),
               std::invalid_argument);
}

TEST_F(BalloonTest, InflateReleasesPagesToTheHost) {
  make();
  bring_up();
  // A contiguous run, a gap, a lone page, a run given in order again.
  const std::vector<uint32_t> pfns = {pfn(0), pfn(1), pfn(2), pfn(3), pfn(10), pfn(20), pfn(21)};
  for (uint32_t p : pfns) touch(p);
  touch(pfn(4));  // a neighbour that stays
  for (uint32_t p : pfns) ASSERT_TRUE(resident(p));
  transfer(VIRTIO_BALLOON_INFLATE_QUEUE, pfns);
  for (uint32_t p : pfns) {
    EXPECT_FALSE(resident(p)) << "page " << p << " is still backed by the host";
    EXPECT_EQ(*rig.mem.ptr(uint64_t(p) * kPage, 1), 0);  // it reads zeroes when touched again
  }
  EXPECT_TRUE(resident(pfn(4)));
  EXPECT_EQ(*rig.mem.ptr(uint64_t(pfn(4)) * kPage, 1), 0x5a);
  EXPECT_EQ(dev->released_bytes(), pfns.size() * kPage);
  EXPECT_EQ(dev->stats().release_calls.load(), 3u);  // runs: 0-3, 10, 20-21
  EXPECT_EQ(dev->stats().pages_inflated.load(), pfns.size());
  EXPECT_EQ(dev->stats().inflate_buffers.load(), 1u);
  EXPECT_TRUE(drv->wait_interrupt(1 + VIRTIO_BALLOON_INFLATE_QUEUE));
  // The driver reports what it holds.
  drv->write(VirtioPciDevice::kDeviceCfgOffset + 4, 4, pfns.size());
  EXPECT_EQ(dev->actual_bytes(), pfns.size() * kPage);
  EXPECT_EQ(drv->status() & VIRTIO_STATUS_DEVICE_NEEDS_RESET, 0);
}

TEST_F(BalloonTest, ReleaseHookGetsEachRun) {
  std::vector<std::pair<uint64_t, uint64_t>> runs;
  make({.target_bytes = 0, .stats_period_ns = 0, .release = [&](uint64_t gpa, uint8_t* host, uint64_t len) {
          EXPECT_EQ(host, rig.mem.ptr(gpa, len));
          runs.emplace_back(gpa, len);
          return 0;
        }});
  bring_up();
  transfer(VIRTIO_BALLOON_INFLATE_QUEUE, {pfn(5), pfn(6), pfn(8), pfn(7)});
  ASSERT_EQ(runs.size(), 3u);
  EXPECT_EQ(runs[0], std::make_pair(kArena + 5 * kPage, 2 * kPage));
  EXPECT_EQ(runs[1], std::make_pair(kArena + 8 * kPage, kPage));
  EXPECT_EQ(runs[2], std::make_pair(kArena + 7 * kPage, kPage));
}

TEST_F(BalloonTest, HostRefusalBreaksTheDevice) {
  make({.target_bytes = 0, .stats_period_ns = 0, .release = [](uint64_t, uint8_t*, uint64_t) { return EINVAL; }});
  bring_up();
  send_pfns(VIRTIO_BALLOON_INFLATE_QUEUE, {pfn(0)});
  ASSERT_TRUE(broken());
  EXPECT_NE(dev->needs_reset_reason().find("cannot release 1 pages"), std::string::npos);
  EXPECT_EQ(dev->released_bytes(), 0u);
}

TEST_F(BalloonTest, PfnOutsideRamBreaksTheDeviceAndReleasesNothing) {
  make();
  bring_up();
  touch(pfn(0));
  const uint32_t outside = static_cast<uint32_t>(rig.mem.size() / kPage);  // first page past RAM
  send_pfns(VIRTIO_BALLOON_INFLATE_QUEUE, {pfn(0), outside});
  ASSERT_TRUE(broken());
  EXPECT_NE(dev->needs_reset_reason().find("PFN 0x1000 (GPA 0x1000000) is not guest RAM"), std::string::npos)
      << dev->needs_reset_reason();
  EXPECT_TRUE(resident(pfn(0)));  // the whole array is checked before anything is released
  EXPECT_EQ(dev->released_bytes(), 0u);

  // The same on the deflate queue, after a reset; a huge PFN too.
  bring_up();
  EXPECT_EQ(drv->status() & VIRTIO_STATUS_DEVICE_NEEDS_RESET, 0);
  send_pfns(VIRTIO_BALLOON_DEFLATE_QUEUE, {0xffffffffu});
  ASSERT_TRUE(broken());
  EXPECT_NE(dev->needs_reset_reason().find("deflate buffer"), std::string::npos);
}

TEST_F(BalloonTest, MalformedArraysBreakTheDevice) {
  make();
  bring_up();
  // Not a whole number of PFNs.
  const uint64_t buf = drv->alloc(8, 4);
  drv->post(VIRTIO_BALLOON_INFLATE_QUEUE, {{buf, 6, false}});
  drv->kick(VIRTIO_BALLOON_INFLATE_QUEUE);
  ASSERT_TRUE(broken());
  EXPECT_NE(dev->needs_reset_reason().find("6 bytes is not a whole number of 32-bit PFNs"), std::string::npos);

  // A device-writable part.
  bring_up();
  drv->post(VIRTIO_BALLOON_INFLATE_QUEUE, {{buf, 4, false}, {buf + 4, 4, true}});
  drv->kick(VIRTIO_BALLOON_INFLATE_QUEUE);
  ASSERT_TRUE(broken());
  EXPECT_NE(dev->needs_reset_reason().find("device-writable"), std::string::npos);

  // More PFNs than the guest has pages (16 MiB: 4096 pages).
  bring_up();
  const uint64_t big = drv->alloc(4 * 4097, 4);
  std::memset(drv->host(big, 4 * 4097), 0, 4 * 4097);
  drv->post(VIRTIO_BALLOON_DEFLATE_QUEUE, {{big, 4 * 4097, false}});
  drv->kick(VIRTIO_BALLOON_DEFLATE_QUEUE);
  ASSERT_TRUE(broken());
  EXPECT_NE(dev->needs_reset_reason().find("4097 PFNs, more than the guest's 4096 pages"), std::string::npos);
}

TEST_F(BalloonTest, DeflateAccounting) {
  make();
  bring_up();
  std::vector<uint32_t> ten;
  for (uint32_t i = 0; i < 10; ++i) ten.push_back(pfn(i));
  transfer(VIRTIO_BALLOON_INFLATE_QUEUE, ten);
  EXPECT_EQ(dev->released_bytes(), 10 * kPage);
  transfer(VIRTIO_BALLOON_DEFLATE_QUEUE, {pfn(0), pfn(1), pfn(2), pfn(9)});
  EXPECT_EQ(dev->released_bytes(), 6 * kPage);
  EXPECT_EQ(dev->stats().pages_deflated.load(), 4u);
  // The guest may use a deflated page again.
  touch(pfn(0));
  EXPECT_TRUE(resident(pfn(0)));
  // Oddities change nothing: a page deflated twice, one never inflated,
  // one inflated twice.
  transfer(VIRTIO_BALLOON_DEFLATE_QUEUE, {pfn(0), pfn(100)});
  EXPECT_EQ(dev->stats().pages_not_in_balloon.load(), 2u);
  EXPECT_EQ(dev->released_bytes(), 6 * kPage);
  transfer(VIRTIO_BALLOON_INFLATE_QUEUE, {pfn(5), pfn(200)});
  EXPECT_EQ(dev->stats().pages_reinflated.load(), 1u);
  EXPECT_EQ(dev->released_bytes(), 7 * kPage);
  // An empty array is legal and does nothing.
  transfer(VIRTIO_BALLOON_DEFLATE_QUEUE, {});
  EXPECT_EQ(dev->released_bytes(), 7 * kPage);
  EXPECT_NE(dev->stats_line().find("released 0.0 MiB"), std::string::npos);  // 28 KiB
  EXPECT_NE(dev->stats_line().find("12 pages inflated in 2 buffers"), std::string::npos) << dev->stats_line();
  EXPECT_EQ(drv->status() & VIRTIO_STATUS_DEVICE_NEEDS_RESET, 0);
}

TEST_F(BalloonTest, StatsAreParsedAndRequested) {
  make();
  bring_up();
  EXPECT_EQ(dev->guest_stats().updates, 0u);
  send_stats({{VIRTIO_BALLOON_S_MEMFREE, 100 << 20},
              {0x1234, 7},  // unknown: skipped
              {VIRTIO_BALLOON_S_MEMTOT, 128 << 20},
              {VIRTIO_BALLOON_S_PRIV_INFLATED, 42},
              {VIRTIO_BALLOON_S_MEMFREE, 99 << 20}});  // repeated: the last counts
  ASSERT_TRUE(eventually([&] { return dev->guest_stats().updates == 1; }));
  BalloonGuestStats s = dev->guest_stats();
  EXPECT_EQ(s.get(VIRTIO_BALLOON_S_MEMFREE), 99u << 20);
  EXPECT_EQ(s.get(VIRTIO_BALLOON_S_MEMTOT), 128u << 20);
  EXPECT_EQ(s.get(VIRTIO_BALLOON_S_PRIV_INFLATED), 42u);
  EXPECT_FALSE(s.get(VIRTIO_BALLOON_S_SWAP_IN).has_value());
  EXPECT_FALSE(s.get(0x1234).has_value());
  EXPECT_EQ(dev->stats().stats_unknown_tags.load(), 1u);
  EXPECT_LE(s.received, std::chrono::steady_clock::now());
  // The device keeps the buffer until it wants fresh numbers.
  std::this_thread::sleep_for(20ms);
  EXPECT_EQ(drv->used_idx(VIRTIO_BALLOON_STATS_QUEUE), 0);
  dev->request_stats();
  ASSERT_TRUE(drv->wait_used(VIRTIO_BALLOON_STATS_QUEUE));
  EXPECT_EQ(drv->next_used(VIRTIO_BALLOON_STATS_QUEUE).len, 0u);
  // The driver answers with a new buffer.
  send_stats({{VIRTIO_BALLOON_S_MEMFREE, 5 << 20}});
  ASSERT_TRUE(eventually([&] { return dev->guest_stats().updates == 2; }));
  EXPECT_EQ(dev->guest_stats().get(VIRTIO_BALLOON_S_MEMFREE), 5u << 20);
  EXPECT_FALSE(dev->guest_stats().get(VIRTIO_BALLOON_S_MEMTOT).has_value());  // not in this one
  // A second buffer while the device holds one breaks the rule.
  send_stats({{VIRTIO_BALLOON_S_MEMFREE, 1}});
  ASSERT_TRUE(broken());
  EXPECT_NE(dev->needs_reset_reason().find("at most one"), std::string::npos);
}

TEST_F(BalloonTest, RequestBeforeTheBufferArrives) {
  make();
  bring_up();
  dev->request_stats();  // nothing held: the first buffer goes back at once
  send_stats({{VIRTIO_BALLOON_S_MEMFREE, 1}});
  ASSERT_TRUE(drv->wait_used(VIRTIO_BALLOON_STATS_QUEUE));
  EXPECT_EQ(dev->guest_stats().get(VIRTIO_BALLOON_S_MEMFREE), 1u);
}

TEST_F(BalloonTest, TruncatedStatsBreakTheDevice) {
  make();
  bring_up();
  send_stats({{VIRTIO_BALLOON_S_MEMFREE, 1}, {VIRTIO_BALLOON_S_MEMTOT, 2}}, 5);  // half an entry more
  ASSERT_TRUE(broken());
  EXPECT_NE(dev->needs_reset_reason().find("25 bytes is not a whole number of 10-byte entries"), std::string::npos)
      << dev->needs_reset_reason();
  EXPECT_EQ(dev->guest_stats().updates, 0u);  // nothing of it was taken

  bring_up();
  std::vector<virtio_balloon_stat> many(VirtioBalloonDevice::kMaxStatEntries + 1, {VIRTIO_BALLOON_S_MEMFREE, 1});
  send_stats(many);
  ASSERT_TRUE(broken());
  EXPECT_NE(dev->needs_reset_reason().find("65 entries"), std::string::npos);
}

TEST_F(BalloonTest, PeriodicStatsRequests) {
  make({.target_bytes = 0, .stats_period_ns = 10'000'000, .release = {}});
  bring_up();
  for (int round = 0; round < 3; ++round) {
    send_stats({{VIRTIO_BALLOON_S_MEMFREE, uint64_t(round)}});
    ASSERT_TRUE(drv->wait_used(VIRTIO_BALLOON_STATS_QUEUE)) << "round " << round;
    drv->next_used(VIRTIO_BALLOON_STATS_QUEUE);
  }
  EXPECT_EQ(dev->guest_stats().get(VIRTIO_BALLOON_S_MEMFREE), 2u);
}

TEST_F(BalloonTest, QueueNumberingWithoutStatsVq) {
  make();
  bring_up(false);
  EXPECT_FALSE(dev->negotiated_features() & feature_bit(VIRTIO_BALLOON_F_STATS_VQ));
  touch(pfn(1));
  transfer(VIRTIO_BALLOON_INFLATE_QUEUE, {pfn(1)});
  EXPECT_FALSE(resident(pfn(1)));
  transfer(VIRTIO_BALLOON_DEFLATE_QUEUE, {pfn(1)});
  EXPECT_EQ(dev->released_bytes(), 0u);
  dev->request_stats();  // no stats queue: nothing to do, nothing breaks
  std::this_thread::sleep_for(20ms);
  EXPECT_EQ(drv->status() & VIRTIO_STATUS_DEVICE_NEEDS_RESET, 0);
  // Queue 2 does not exist for this driver: a buffer there is an error.
  drv->setup_queue(VIRTIO_BALLOON_STATS_QUEUE, 4);
  send_stats({{VIRTIO_BALLOON_S_MEMFREE, 1}});
  ASSERT_TRUE(broken());
  EXPECT_NE(dev->needs_reset_reason().find("does not exist without VIRTIO_BALLOON_F_STATS_VQ"), std::string::npos);
  EXPECT_EQ(dev->guest_stats().updates, 0u);
}

TEST_F(BalloonTest, ResetForgetsTheStatsBufferAndActual) {
  make();
  bring_up();
  send_stats({{VIRTIO_BALLOON_S_MEMFREE, 1}});
  ASSERT_TRUE(eventually([&] { return dev->guest_stats().updates == 1; }));
  drv->write(VirtioPciDevice::kDeviceCfgOffset + 4, 4, 3);
  transfer(VIRTIO_BALLOON_INFLATE_QUEUE, {pfn(0), pfn(1), pfn(2)});
  bring_up();  // resets first
  EXPECT_EQ(dev->actual_bytes(), 0u);
  EXPECT_EQ(dev->released_bytes(), 3 * kPage);  // still released on the host
  // A new first buffer is not "a second one".
  send_stats({{VIRTIO_BALLOON_S_MEMFREE, 2}});
  ASSERT_TRUE(eventually([&] { return dev->guest_stats().updates == 2; }));
  EXPECT_EQ(drv->status() & VIRTIO_STATUS_DEVICE_NEEDS_RESET, 0);
}

}  // namespace
}  // namespace vmm
