// virtio-pci transport and virtio-blk, driven through PCI configuration and
// BAR accesses as a guest driver would, against a temporary file through
// real io_uring.
#include "virtio/host/virtio_blk.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <string>

#include "tests/unit/virtio/virtio_driver.h"
#include "virtio/blk.h"

namespace vmm {
namespace {

using namespace virtio;
using testing::Driver;
using testing::Seg;
using testing::VirtioRig;

constexpr uint64_t kDiskBytes = 1 << 20;  // 2048 sectors

// A temporary disk image filled with a known pattern.
class TempDisk {
 public:
  explicit TempDisk(uint64_t size = kDiskBytes) {
    char name[] = "/tmp/virtio-blk-test-XXXXXX";
    fd_ = ::mkstemp(name);
    path_ = name;
    std::vector<uint8_t> data(size);
    for (uint64_t i = 0; i < size; ++i) data[i] = static_cast<uint8_t>(i * 7 + i / 512);
    EXPECT_EQ(::pwrite(fd_, data.data(), size, 0), static_cast<ssize_t>(size));
  }
  ~TempDisk() {
    ::close(fd_);
    ::unlink(path_.c_str());
  }
  const std::string& path() const { return path_; }
  std::vector<uint8_t> read(uint64_t off, size_t n) const {
    std::vector<uint8_t> v(n);
    EXPECT_EQ(::pread(fd_, v.data(), n, off), static_cast<ssize_t>(n));
    return v;
  }
  static uint8_t pattern(uint64_t i) { return static_cast<uint8_t>(i * 7 + i / 512); }

 private:
  int fd_ = -1;
  std::string path_;
};

class VirtioBlkTest : public ::testing::Test {
 protected:
  void make(bool read_only = false, std::string serial = "disk-serial-1", uint64_t size = kDiskBytes) {
    disk = std::make_unique<TempDisk>(size);
    dev = std::make_shared<VirtioBlkDevice>(rig.mem, rig.router, VirtioBlkOptions{disk->path(), read_only, serial});
    rig.bus->add(std::make_shared<PciHostBridge>(), 0);
    rig.bus->add(dev, 3);
    dev->start();
    drv = std::make_unique<Driver>(rig, *dev);
  }
  // Negotiates, sets up the request queue (size 64: room for 21
  // three-descriptor requests) and DRIVER_OK.
  void bring_up(uint64_t extra = feature_bit(VIRTIO_BLK_F_FLUSH)) {
    drv->enable_msix();
    ASSERT_TRUE(drv->negotiate(drv->default_features() | extra));
    drv->setup_queue(0, 64);
    drv->add_status(VIRTIO_STATUS_DRIVER_OK);
    ASSERT_EQ(drv->status() & VIRTIO_STATUS_DEVICE_NEEDS_RESET, 0) << dev->needs_reset_reason();
  }

  struct Req {
    uint64_t hdr, data, status;
  };
  // Posts one request: header, `len` data bytes (device-writable for IN
  // and GET_ID), status. Returns where each part lives.
  Req post(uint32_t type, uint64_t sector, uint32_t len, bool publish = true) {
    Req r{drv->alloc(16), len ? drv->alloc(len) : 0, drv->alloc(1)};
    virtio_blk_req_hdr h{type, 0, sector};
    rig.mem.write(r.hdr, &h, sizeof h);
    *drv->host(r.status, 1) = 0xee;
    const bool device_writes = type == VIRTIO_BLK_T_IN || type == VIRTIO_BLK_T_GET_ID;
    std::vector<Seg> segs{{r.hdr, 16, false}};
    if (len) segs.push_back({r.data, len, device_writes});
    segs.push_back({r.status, 1, true});
    drv->post(0, segs, publish);
    return r;
  }
  uint8_t status_of(const Req& r) { return *drv->host(r.status, 1); }
  // Kicks and waits for one completion; returns the used length.
  uint32_t complete_one() {
    drv->kick(0);
    EXPECT_TRUE(drv->wait_used(0)) << "no completion; needs reset: " << dev->needs_reset_reason();
    return drv->next_used(0).len;
  }

  void TearDown() override {
    if (dev) dev->shutdown();
  }

  VirtioRig rig;
  std::unique_ptr<TempDisk> disk;
  std::shared_ptr<VirtioBlkDevice> dev;
  std::unique_ptr<Driver> drv;
};

TEST_F(VirtioBlkTest, PresentsAModernVirtioPciFunction) {
  make();
  EXPECT_EQ(dev->config_read(0x00, 2), 0x1af4u);
  EXPECT_EQ(dev->config_read(0x02, 2), 0x1042u);  // 0x1040 + block
  EXPECT_EQ(dev->config_read(0x08, 1), 1u);       // revision 1: non-transitional
  EXPECT_GE(dev->config_read(0x2e, 2), 0x40u);    // subsystem ID
  EXPECT_EQ(dev->config_read(0x10, 4) & 0x7, 0x4u);  // 64-bit memory BAR
  for (uint8_t type : {VIRTIO_PCI_CAP_COMMON_CFG, VIRTIO_PCI_CAP_NOTIFY_CFG, VIRTIO_PCI_CAP_ISR_CFG,
                       VIRTIO_PCI_CAP_DEVICE_CFG}) {
    ASSERT_TRUE(drv->cap_offsets.count(type)) << "cfg_type " << int(type);
    EXPECT_EQ(dev->config_read(drv->cap_offsets[type] + 4, 1), 0u);  // in BAR 0
  }
  EXPECT_EQ(dev->config_read(drv->cap_offsets[VIRTIO_PCI_CAP_NOTIFY_CFG] + 2, 1), 20u);  // cap_len
  EXPECT_EQ(drv->num_queues(), 1);
  drv->select(0);
  EXPECT_EQ(drv->queue_size(), VirtioBlkDevice::kQueueSize);
  drv->select(1);
  EXPECT_EQ(drv->queue_size(), 0);  // no such queue
  // Device configuration: capacity, size_max, seg_max, blk_size.
  EXPECT_EQ(drv->device_config(0, 4), kDiskBytes / 512);
  EXPECT_EQ(drv->device_config(4, 4), 0u);
  EXPECT_EQ(drv->device_config(8, 4), VirtioBlkDevice::kSizeMax);
  EXPECT_EQ(drv->device_config(12, 4), VirtioBlkDevice::kSegMax);
  EXPECT_EQ(drv->device_config(20, 4), 512u);
}

TEST_F(VirtioBlkTest, FeatureNegotiation) {
  make();
  const uint64_t offered = drv->device_features();
  for (unsigned bit : {VIRTIO_F_VERSION_1, VIRTIO_F_EVENT_IDX, VIRTIO_F_INDIRECT_DESC, VIRTIO_F_RING_RESET,
                       VIRTIO_BLK_F_FLUSH, VIRTIO_BLK_F_SEG_MAX, VIRTIO_BLK_F_SIZE_MAX})
    EXPECT_TRUE(offered & feature_bit(bit)) << bit;
  EXPECT_FALSE(offered & feature_bit(VIRTIO_BLK_F_RO));
  EXPECT_FALSE(offered & feature_bit(VIRTIO_F_RING_PACKED));

  // A legacy driver (no VERSION_1) is refused.
  EXPECT_FALSE(drv->negotiate(feature_bit(VIRTIO_BLK_F_FLUSH)));
  // So is one that takes a feature that was not offered.
  EXPECT_FALSE(drv->negotiate(feature_bit(VIRTIO_F_VERSION_1) | feature_bit(VIRTIO_F_RING_PACKED)));
  EXPECT_FALSE(drv->negotiate(feature_bit(VIRTIO_F_VERSION_1) | feature_bit(0)));
  EXPECT_EQ(dev->negotiated_features(), 0u);
  // A subset of the offer is fine, and then fixed.
  ASSERT_TRUE(drv->negotiate(feature_bit(VIRTIO_F_VERSION_1) | feature_bit(VIRTIO_BLK_F_FLUSH)));
  EXPECT_EQ(dev->negotiated_features(), feature_bit(VIRTIO_F_VERSION_1) | feature_bit(VIRTIO_BLK_F_FLUSH));
  drv->set_driver_features(feature_bit(VIRTIO_F_VERSION_1));
  EXPECT_EQ(dev->negotiated_features(), feature_bit(VIRTIO_F_VERSION_1) | feature_bit(VIRTIO_BLK_F_FLUSH));
  // The driver cannot clear status bits except by reset.
  drv->set_status(VIRTIO_STATUS_ACKNOWLEDGE);
  EXPECT_TRUE(drv->status() & VIRTIO_STATUS_FEATURES_OK);
  drv->set_status(0);
  EXPECT_EQ(drv->status(), 0);
  EXPECT_EQ(dev->negotiated_features(), 0u);
}

TEST_F(VirtioBlkTest, DriverOkWithoutFeaturesOkNeedsReset) {
  make();
  drv->enable_msix();
  drv->set_status(VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER | VIRTIO_STATUS_DRIVER_OK);
  EXPECT_TRUE(drv->status() & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
  EXPECT_FALSE(drv->status() & VIRTIO_STATUS_DRIVER_OK);
  EXPECT_EQ(drv->isr() & VIRTIO_PCI_ISR_CONFIG, VIRTIO_PCI_ISR_CONFIG);
  EXPECT_EQ(drv->isr(), 0);  // read-to-clear
  EXPECT_TRUE(drv->wait_interrupt(0));  // the configuration vector
}

TEST_F(VirtioBlkTest, QueueRegistersAndBadRings) {
  make();
  drv->enable_msix();
  // Enabling a queue before FEATURES_OK is a driver error.
  drv->set_status(VIRTIO_STATUS_ACKNOWLEDGE | VIRTIO_STATUS_DRIVER);
  drv->select(0);
  drv->write(offsetof(virtio_pci_common_cfg, queue_enable), 2, 1);
  EXPECT_TRUE(drv->status() & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
  EXPECT_NE(dev->needs_reset_reason().find("before FEATURES_OK"), std::string::npos);

  ASSERT_TRUE(drv->negotiate(drv->default_features()));
  drv->select(0);
  // A vector the table does not have reads back as NO_VECTOR.
  drv->write(offsetof(virtio_pci_common_cfg, queue_msix_vector), 2, 7);
  EXPECT_EQ(drv->read(offsetof(virtio_pci_common_cfg, queue_msix_vector), 2), VIRTIO_MSI_NO_VECTOR);
  drv->write(offsetof(virtio_pci_common_cfg, queue_msix_vector), 2, 1);
  EXPECT_EQ(drv->read(offsetof(virtio_pci_common_cfg, queue_msix_vector), 2), 1u);
  // A descriptor table outside guest RAM: refused, DEVICE_NEEDS_RESET.
  drv->write(offsetof(virtio_pci_common_cfg, queue_size), 2, 16);
  drv->write(offsetof(virtio_pci_common_cfg, queue_desc_lo), 4, 0xf0000000);
  drv->write(offsetof(virtio_pci_common_cfg, queue_enable), 2, 1);
  EXPECT_EQ(drv->read(offsetof(virtio_pci_common_cfg, queue_enable), 2), 0u);
  EXPECT_TRUE(drv->status() & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
  EXPECT_NE(dev->needs_reset_reason().find("0xf0000000"), std::string::npos) << dev->needs_reset_reason();
  EXPECT_TRUE(drv->wait_interrupt(0));
  // A size that is not a power of two, after a reset.
  ASSERT_TRUE(drv->negotiate(drv->default_features()));
  drv->select(0);
  drv->write(offsetof(virtio_pci_common_cfg, queue_size), 2, 12);
  drv->write(offsetof(virtio_pci_common_cfg, queue_enable), 2, 1);
  EXPECT_TRUE(drv->status() & VIRTIO_STATUS_DEVICE_NEEDS_RESET);
  // A valid setup works after the reset.
  bring_up();
  EXPECT_EQ(drv->read(offsetof(virtio_pci_common_cfg, queue_enable), 2), 1u);
}

TEST_F(VirtioBlkTest, KicksAreBoundToIoeventfdsThatFollowTheBar) {
  make();
  auto bound = [&] {
    std::lock_guard lock(rig.kvm.mu);
    std::vector<uint64_t> addrs;
    for (const auto& e : rig.kvm.ioeventfds) {
      EXPECT_EQ(std::get<2>(e), 2u);                     // 16-bit writes
      EXPECT_EQ(std::get<3>(e), dev->kick_event(0).fd());
      addrs.push_back(std::get<1>(e));
    }
    return addrs;
  };
  EXPECT_EQ(bound(), std::vector<uint64_t>{drv->bar() + VirtioPciDevice::kNotifyOffset});
  // The guest moves the BAR: the binding moves with it.
  const uint64_t moved = drv->bar() + 0x100000;
  dev->config_write(0x10, 4, static_cast<uint32_t>(moved) | 0x4);
  EXPECT_EQ(bound(), std::vector<uint64_t>{moved + VirtioPciDevice::kNotifyOffset});
  // Memory decoding off: no binding.
  dev->config_write(0x04, 2, 0);
  EXPECT_TRUE(bound().empty());
}

TEST_F(VirtioBlkTest, ReadWriteFlushGetIdRoundTrip) {
  make();
  bring_up();
  // Read sectors 3-4.
  Req rd = post(VIRTIO_BLK_T_IN, 3, 1024);
  EXPECT_EQ(complete_one(), 1025u);
  EXPECT_EQ(status_of(rd), VIRTIO_BLK_S_OK);
  const uint8_t* got = drv->host(rd.data, 1024);
  for (uint64_t i = 0; i < 1024; ++i) ASSERT_EQ(got[i], TempDisk::pattern(3 * 512 + i)) << i;
  EXPECT_TRUE(drv->wait_interrupt(1));

  // Write sector 10, read it back from the file.
  Req wr = post(VIRTIO_BLK_T_OUT, 10, 512);
  std::memset(drv->host(wr.data, 512), 0x5a, 512);
  EXPECT_EQ(complete_one(), 1u);
  EXPECT_EQ(status_of(wr), VIRTIO_BLK_S_OK);
  EXPECT_EQ(disk->read(10 * 512, 512), std::vector<uint8_t>(512, 0x5a));
  EXPECT_EQ(disk->read(11 * 512, 1)[0], TempDisk::pattern(11 * 512));

  Req fl = post(VIRTIO_BLK_T_FLUSH, 0, 0);
  EXPECT_EQ(complete_one(), 1u);
  EXPECT_EQ(status_of(fl), VIRTIO_BLK_S_OK);

  Req id = post(VIRTIO_BLK_T_GET_ID, 0, 20);
  std::memset(drv->host(id.data, 20), 0xff, 20);
  EXPECT_EQ(complete_one(), 21u);
  EXPECT_EQ(status_of(id), VIRTIO_BLK_S_OK);
  char want[20] = "disk-serial-1";
  EXPECT_EQ(std::memcmp(drv->host(id.data, 20), want, 20), 0);  // NUL-padded

  EXPECT_EQ(dev->stats().reads.load(), 1u);
  EXPECT_EQ(dev->stats().writes.load(), 1u);
  EXPECT_EQ(dev->stats().bytes_read.load(), 1024u);
  EXPECT_EQ(dev->stats().bytes_written.load(), 512u);
  const std::string line = dev->stats_line();
  EXPECT_NE(line.find("4 requests"), std::string::npos) << line;
  EXPECT_NE(line.find("MMIO exits"), std::string::npos) << line;
}

TEST_F(VirtioBlkTest, ManyRequestsInFlightWithOneKick) {
  make();
  bring_up();
  std::vector<Req> reqs;
  for (int i = 0; i < 8; ++i) reqs.push_back(post(VIRTIO_BLK_T_OUT, 100 + i, 512, false));
  for (int i = 0; i < 8; ++i) std::memset(drv->host(reqs[i].data, 512), 0x10 + i, 512);
  drv->publish_avail(0);
  drv->kick(0);
  ASSERT_TRUE(drv->wait_used(0, 8));
  for (int i = 0; i < 8; ++i) {
    drv->next_used(0);
    EXPECT_EQ(status_of(reqs[i]), VIRTIO_BLK_S_OK);
    EXPECT_EQ(disk->read((100 + i) * 512, 512), std::vector<uint8_t>(512, 0x10 + i));
  }
  EXPECT_GE(dev->stats().max_in_flight.load(), 8u);  // one submission each, all queued together
  EXPECT_GE(dev->transport_stats().kicks.load(), 1u);
}

TEST_F(VirtioBlkTest, WritesToAReadOnlyDiskFail) {
  make(/*read_only=*/true);
  EXPECT_TRUE(drv->device_features() & feature_bit(VIRTIO_BLK_F_RO));
  bring_up(feature_bit(VIRTIO_BLK_F_RO) | feature_bit(VIRTIO_BLK_F_FLUSH));
  Req wr = post(VIRTIO_BLK_T_OUT, 0, 512);
  std::memset(drv->host(wr.data, 512), 0, 512);
  complete_one();
  // §5.2.6.2: IOERR, and no data written.
  EXPECT_EQ(status_of(wr), VIRTIO_BLK_S_IOERR);
  EXPECT_EQ(disk->read(0, 2), (std::vector<uint8_t>{TempDisk::pattern(0), TempDisk::pattern(1)}));
  Req rd = post(VIRTIO_BLK_T_IN, 0, 512);
  complete_one();
  EXPECT_EQ(status_of(rd), VIRTIO_BLK_S_OK);
  Req fl = post(VIRTIO_BLK_T_FLUSH, 0, 0);
  complete_one();
  EXPECT_EQ(status_of(fl), VIRTIO_BLK_S_OK);
}

TEST_F(VirtioBlkTest, OutOfRangeAndMisshapenRequestsGetIoerr) {
  make();
  bring_up();
  const uint64_t cap = kDiskBytes / 512;
  struct Case {
    uint32_t type;
    uint64_t sector;
    uint32_t len;
  } cases[] = {
      {VIRTIO_BLK_T_IN, cap, 512},            // just past the end
      {VIRTIO_BLK_T_IN, cap - 1, 1024},       // straddles the end
      {VIRTIO_BLK_T_OUT, cap - 1, 1024},
      {VIRTIO_BLK_T_IN, 1ull << 63, 512},     // sector * 512 would overflow
      {VIRTIO_BLK_T_IN, ~0ull, 512},
      {VIRTIO_BLK_T_IN, 0, 100},              // not whole sectors
      {VIRTIO_BLK_T_OUT, 0, 513},
  };
  for (const Case& c : cases) {
    Req r = post(c.type, c.sector, c.len);
    EXPECT_EQ(complete_one(), 1u);
    EXPECT_EQ(status_of(r), VIRTIO_BLK_S_IOERR) << c.type << " " << c.sector << " " << c.len;
  }
  // The last sector itself is fine.
  Req last = post(VIRTIO_BLK_T_IN, cap - 1, 512);
  complete_one();
  EXPECT_EQ(status_of(last), VIRTIO_BLK_S_OK);
  // Unknown types are unsupported, not errors.
  Req unk = post(42, 0, 0);
  complete_one();
  EXPECT_EQ(status_of(unk), VIRTIO_BLK_S_UNSUPP);
  EXPECT_EQ(dev->stats().io_errors.load(), 7u);
  EXPECT_EQ(dev->stats().unsupported.load(), 1u);
  EXPECT_EQ(drv->status() & VIRTIO_STATUS_DEVICE_NEEDS_RESET, 0);
}

TEST_F(VirtioBlkTest, SegmentLargerThanSizeMaxGetsIoerr) {
  make(false, "s", 4u << 20);
  bring_up();
  Req r = post(VIRTIO_BLK_T_IN, 0, 2u << 20);  // one 2 MiB segment; size_max is 1 MiB
  complete_one();
  EXPECT_EQ(status_of(r), VIRTIO_BLK_S_IOERR);
}

TEST_F(VirtioBlkTest, ShortHeaderOrMissingStatusNeedsReset) {
  make();
  bring_up();
  // An 8-byte header.
  const uint64_t hdr = drv->alloc(16), st = drv->alloc(1);
  drv->post(0, {{hdr, 8, false}, {st, 1, true}});
  drv->kick(0);
  ASSERT_TRUE(testing::eventually([&] { return drv->status() & VIRTIO_STATUS_DEVICE_NEEDS_RESET; }));
  EXPECT_NE(dev->needs_reset_reason().find("header"), std::string::npos) << dev->needs_reset_reason();
  EXPECT_TRUE(drv->wait_interrupt(0));

  // After a reset the device works again; then a request with no status byte.
  bring_up();
  Req ok = post(VIRTIO_BLK_T_IN, 0, 512);
  complete_one();
  EXPECT_EQ(status_of(ok), VIRTIO_BLK_S_OK);
  virtio_blk_req_hdr h{VIRTIO_BLK_T_IN, 0, 0};
  rig.mem.write(hdr, &h, sizeof h);
  drv->post(0, {{hdr, 16, false}});
  drv->kick(0);
  ASSERT_TRUE(testing::eventually([&] { return drv->status() & VIRTIO_STATUS_DEVICE_NEEDS_RESET; }));
  EXPECT_NE(dev->needs_reset_reason().find("status"), std::string::npos) << dev->needs_reset_reason();
}

TEST_F(VirtioBlkTest, BrokenChainSetsDeviceNeedsReset) {
  make();
  bring_up();
  // A descriptor whose next is outside the 16-entry table.
  virtq_desc d{drv->alloc(16), 16, VIRTQ_DESC_F_NEXT, 64};
  rig.mem.write(drv->ring(0).desc, &d, sizeof d);
  const uint16_t head = 0;
  rig.mem.write(drv->ring(0).avail + avail_ring_entry_offset(0), &head, 2);
  drv->ring(0).avail_idx = 1;
  drv->publish_avail(0);
  drv->kick(0);
  ASSERT_TRUE(testing::eventually([&] { return drv->status() & VIRTIO_STATUS_DEVICE_NEEDS_RESET; }));
  EXPECT_NE(dev->needs_reset_reason().find("queue 0"), std::string::npos) << dev->needs_reset_reason();
  EXPECT_TRUE(drv->wait_interrupt(0));
  EXPECT_EQ(drv->isr() & VIRTIO_PCI_ISR_CONFIG, VIRTIO_PCI_ISR_CONFIG);
  EXPECT_EQ(dev->transport_stats().needs_reset.load(), 1u);
  // Further kicks do nothing; a reset brings it back.
  drv->kick(0);
  bring_up();
  Req r = post(VIRTIO_BLK_T_IN, 1, 512);
  complete_one();
  EXPECT_EQ(status_of(r), VIRTIO_BLK_S_OK);
}

TEST_F(VirtioBlkTest, ResetWhileRequestsAreInFlight) {
  make();
  for (int round = 0; round < 20; ++round) {
    bring_up();
    for (int i = 0; i < 20; ++i) post(i % 2 ? VIRTIO_BLK_T_IN : VIRTIO_BLK_T_OUT, i, 4096, false);
    drv->publish_avail(0);
    drv->kick(0);
    if (round % 2) std::this_thread::sleep_for(std::chrono::microseconds(50 * round));
    drv->set_status(0);
    ASSERT_EQ(drv->status(), 0);  // the reset finished: nothing in flight any more
    drv->select(0);
    EXPECT_EQ(drv->read(offsetof(virtio_pci_common_cfg, queue_enable), 2), 0u);
  }
  bring_up();
  Req r = post(VIRTIO_BLK_T_IN, 1000, 512);  // a sector the rounds did not write
  complete_one();
  EXPECT_EQ(status_of(r), VIRTIO_BLK_S_OK);
  EXPECT_EQ(*drv->host(r.data, 1), TempDisk::pattern(1000 * 512));
}

TEST_F(VirtioBlkTest, QueueReset) {
  make();
  bring_up(feature_bit(VIRTIO_F_RING_RESET) | feature_bit(VIRTIO_BLK_F_FLUSH));
  Req a = post(VIRTIO_BLK_T_IN, 0, 512);
  complete_one();
  EXPECT_EQ(status_of(a), VIRTIO_BLK_S_OK);
  drv->select(0);
  drv->write(offsetof(virtio_pci_common_cfg, queue_reset), 2, 1);
  EXPECT_EQ(drv->read(offsetof(virtio_pci_common_cfg, queue_reset), 2), 1u);
  EXPECT_EQ(drv->read(offsetof(virtio_pci_common_cfg, queue_enable), 2), 0u);
  EXPECT_TRUE(drv->status() & VIRTIO_STATUS_DRIVER_OK);  // only the queue was reset
  drv->setup_queue(0, 8);
  EXPECT_EQ(drv->read(offsetof(virtio_pci_common_cfg, queue_reset), 2), 0u);
  Req b = post(VIRTIO_BLK_T_IN, 1, 512);
  complete_one();
  EXPECT_EQ(status_of(b), VIRTIO_BLK_S_OK);
}

TEST_F(VirtioBlkTest, EventIdxSuppressesInterrupts) {
  make();
  drv->enable_msix();
  ASSERT_TRUE(drv->negotiate(drv->default_features() | feature_bit(VIRTIO_F_EVENT_IDX)));
  drv->setup_queue(0, 16);
  drv->add_status(VIRTIO_STATUS_DRIVER_OK);
  // used_event = 5: no interrupt for the first completion.
  const uint16_t used_event = 5;
  rig.mem.write(drv->ring(0).avail + avail_used_event_offset(16), &used_event, 2);
  post(VIRTIO_BLK_T_IN, 0, 512);
  complete_one();
  std::this_thread::sleep_for(std::chrono::milliseconds(20));
  EXPECT_EQ(drv->interrupts(1), 0u);
  EXPECT_EQ(dev->transport_stats().interrupts.load(), 0u);
}

TEST(VirtioBlkOpenTest, MissingFileAndLongSerialFailCleanly) {
  VirtioRig rig;
  try {
    VirtioBlkDevice d(rig.mem, rig.router, VirtioBlkOptions{"/nonexistent/disk.img", false, ""});
    FAIL() << "opened a missing file";
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find("/nonexistent/disk.img"), std::string::npos) << e.what();
  }
  EXPECT_THROW(VirtioBlkDevice(rig.mem, rig.router, VirtioBlkOptions{"/dev/null", false, std::string(21, 'x')}),
               std::runtime_error);
  EXPECT_THROW(VirtioBlkDevice(rig.mem, rig.router, VirtioBlkOptions{"/tmp", false, ""}), std::runtime_error);
}

}  // namespace
}  // namespace vmm
