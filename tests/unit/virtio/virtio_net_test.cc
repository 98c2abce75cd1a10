// virtio-net through the virtio-pci transport: transmit into a fake
// FramePort, receive from deliver() into posted buffers, the bounded
// backlog while no buffers are posted, drops and notification suppression.
#include "virtio/host/virtio_net.h"

#include <gtest/gtest.h>

#include <mutex>

#include "tests/unit/virtio/virtio_driver.h"
#include "virtio/net.h"

namespace vmm {
namespace {

using namespace virtio;
using testing::Driver;
using testing::Seg;
using testing::VirtioRig;

class FakePort : public net::FramePort {
 public:
  bool transmit(std::span<const uint8_t> frame) override {
    std::lock_guard lock(mu);
    frames.emplace_back(frame.begin(), frame.end());
    return accept;
  }
  size_t count() {
    std::lock_guard lock(mu);
    return frames.size();
  }
  std::mutex mu;
  std::vector<net::Frame> frames;
  bool accept = true;
};

constexpr net::MacAddress kMac = {0x52, 0x54, 0x00, 0xab, 0xcd, 0xef};

net::Frame make_frame(size_t len, uint8_t seed) {
  net::Frame f(len);
  for (size_t i = 0; i < len; ++i) f[i] = static_cast<uint8_t>(seed + i);
  return f;
}

class VirtioNetTest : public ::testing::Test {
 protected:
  VirtioNetTest() {
    port = std::make_shared<FakePort>();
    dev = std::make_shared<VirtioNetDevice>(rig.mem, rig.router, kMac, [&](std::shared_ptr<net::FrameSink> s) {
      sink = s;
      return port;
    });
    rig.bus->add(std::make_shared<PciHostBridge>(), 0);
    rig.bus->add(dev, 4);
    dev->start();
    drv = std::make_unique<Driver>(rig, *dev);
  }
  void bring_up(uint64_t extra = 0) {
    drv->enable_msix();
    ASSERT_TRUE(drv->negotiate(drv->default_features() | feature_bit(VIRTIO_NET_F_MAC) | extra));
    drv->setup_queue(VIRTIO_NET_RX_QUEUE, 16);
    drv->setup_queue(VIRTIO_NET_TX_QUEUE, 16);
    drv->add_status(VIRTIO_STATUS_DRIVER_OK);
  }
  // Posts one receive buffer of `len` bytes; returns its address.
  uint64_t post_rx(uint32_t len = 1526, bool publish = true) {
    const uint64_t buf = drv->alloc(len);
    drv->post(VIRTIO_NET_RX_QUEUE, {{buf, len, true}}, publish);
    return buf;
  }
  // Sends `frame` behind a header (header and frame in separate descriptors).
  void send(const net::Frame& frame) {
    const uint64_t hdr = drv->alloc(12), data = drv->alloc(frame.size() ? frame.size() : 1);
    std::memset(drv->host(hdr, 12), 0, 12);
    if (!frame.empty()) std::memcpy(drv->host(data, frame.size()), frame.data(), frame.size());
    std::vector<Seg> segs{{hdr, 12, false}};
    if (!frame.empty()) segs.push_back({data, static_cast<uint32_t>(frame.size()), false});
    drv->post(VIRTIO_NET_TX_QUEUE, segs);
    drv->kick(VIRTIO_NET_TX_QUEUE);
  }

  void TearDown() override { dev->shutdown(); }

  VirtioRig rig;
  std::shared_ptr<FakePort> port;
  std::shared_ptr<net::FrameSink> sink;
  std::shared_ptr<VirtioNetDevice> dev;
  std::unique_ptr<Driver> drv;
};

TEST_F(VirtioNetTest, IdentityConfigAndFeatures) {
  EXPECT_EQ(dev->config_read(0x02, 2), 0x1041u);
  EXPECT_EQ(dev->config_read(0x0a, 2), 0x0200u);  // network controller, Ethernet
  EXPECT_EQ(drv->num_queues(), 2);
  const uint64_t f = drv->device_features();
  EXPECT_TRUE(f & feature_bit(VIRTIO_NET_F_MAC));
  EXPECT_TRUE(f & feature_bit(VIRTIO_NET_F_STATUS));
  EXPECT_FALSE(f & feature_bit(VIRTIO_NET_F_CSUM));  // no offloads
  EXPECT_FALSE(f & feature_bit(VIRTIO_NET_F_MRG_RXBUF));
  for (uint32_t i = 0; i < 6; ++i) EXPECT_EQ(drv->device_config(i, 1), kMac[i]);
  EXPECT_EQ(drv->device_config(6, 2), VIRTIO_NET_S_LINK_UP);
  EXPECT_FALSE(drv->negotiate(feature_bit(VIRTIO_F_VERSION_1) | feature_bit(VIRTIO_NET_F_CSUM)));
  ASSERT_NE(sink, nullptr);
}

TEST_F(VirtioNetTest, TransmitStripsTheHeader) {
  bring_up();
  const net::Frame f = make_frame(60, 1);
  send(f);
  ASSERT_TRUE(drv->wait_used(VIRTIO_NET_TX_QUEUE));
  EXPECT_EQ(drv->next_used(VIRTIO_NET_TX_QUEUE).len, 0u);
  ASSERT_EQ(port->count(), 1u);
  EXPECT_EQ(port->frames[0], f);
  EXPECT_TRUE(drv->wait_interrupt(1 + VIRTIO_NET_TX_QUEUE));
  // Header and frame in one descriptor work too.
  const net::Frame g = make_frame(100, 9);
  const uint64_t buf = drv->alloc(112);
  std::memset(drv->host(buf, 12), 0, 12);
  std::memcpy(drv->host(buf + 12, 100), g.data(), 100);
  drv->post(VIRTIO_NET_TX_QUEUE, {{buf, 112, false}});
  drv->kick(VIRTIO_NET_TX_QUEUE);
  ASSERT_TRUE(drv->wait_used(VIRTIO_NET_TX_QUEUE));
  ASSERT_EQ(port->count(), 2u);
  EXPECT_EQ(port->frames[1], g);
  EXPECT_EQ(dev->stats().tx_frames.load(), 2u);
  EXPECT_EQ(dev->stats().tx_bytes.load(), 160u);
}

TEST_F(VirtioNetTest, BadFramesAreCountedNotSent) {
  bring_up();
  send(make_frame(10, 0));    // a runt
  send(make_frame(1515, 0));  // too long
  send({});                   // header only
  ASSERT_TRUE(drv->wait_used(VIRTIO_NET_TX_QUEUE, 3));
  EXPECT_EQ(port->count(), 0u);
  EXPECT_EQ(dev->stats().tx_errors.load(), 3u);
  port->accept = false;  // the switch refuses one
  send(make_frame(64, 0));
  ASSERT_TRUE(drv->wait_used(VIRTIO_NET_TX_QUEUE, 4));
  EXPECT_EQ(dev->stats().tx_errors.load(), 4u);
  EXPECT_EQ(drv->status() & VIRTIO_STATUS_DEVICE_NEEDS_RESET, 0);
}

TEST_F(VirtioNetTest, ReceiveIntoPostedBuffers) {
  bring_up();
  const uint64_t b0 = post_rx(), b1 = post_rx();
  drv->kick(VIRTIO_NET_RX_QUEUE);
  const net::Frame f0 = make_frame(64, 3), f1 = make_frame(1514, 4);
  sink->deliver(f0);
  sink->deliver(f1);
  ASSERT_TRUE(drv->wait_used(VIRTIO_NET_RX_QUEUE, 2));
  EXPECT_EQ(drv->next_used(VIRTIO_NET_RX_QUEUE).len, 12u + 64);
  EXPECT_EQ(drv->next_used(VIRTIO_NET_RX_QUEUE).len, 12u + 1514);
  virtio_net_hdr h;
  std::memcpy(&h, drv->host(b0, 12), 12);
  EXPECT_EQ(h.flags, 0);
  EXPECT_EQ(h.gso_type, VIRTIO_NET_HDR_GSO_NONE);
  EXPECT_EQ(h.num_buffers, 1);
  EXPECT_EQ(std::memcmp(drv->host(b0 + 12, 64), f0.data(), 64), 0);
  EXPECT_EQ(std::memcmp(drv->host(b1 + 12, 1514), f1.data(), 1514), 0);
  EXPECT_TRUE(drv->wait_interrupt(1 + VIRTIO_NET_RX_QUEUE));
  EXPECT_EQ(dev->stats().rx_frames.load(), 2u);
  EXPECT_EQ(dev->rx_dropped(), 0u);
}

TEST_F(VirtioNetTest, FramesWaitForBuffersThenOverflowIsDropped) {
  bring_up();
  // No buffers: frames wait in the backlog, up to its size.
  const size_t extra = 10;
  for (size_t i = 0; i < VirtioNetDevice::kRxBacklog + extra; ++i) sink->deliver(make_frame(60, static_cast<uint8_t>(i)));
  ASSERT_TRUE(testing::eventually([&] { return dev->rx_dropped() == extra; })) << dev->rx_dropped();
  EXPECT_EQ(drv->used_idx(VIRTIO_NET_RX_QUEUE), 0);
  // The guest posts buffers and kicks: the oldest frames arrive, in order.
  std::vector<uint64_t> bufs;
  for (int i = 0; i < 4; ++i) bufs.push_back(post_rx(1526, false));
  drv->publish_avail(VIRTIO_NET_RX_QUEUE);
  drv->kick(VIRTIO_NET_RX_QUEUE);
  ASSERT_TRUE(drv->wait_used(VIRTIO_NET_RX_QUEUE, 4));
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(drv->next_used(VIRTIO_NET_RX_QUEUE).len, 72u);
    EXPECT_EQ(*drv->host(bufs[i] + 12, 1), static_cast<uint8_t>(i));
  }
  EXPECT_EQ(dev->stats().rx_frames.load(), 4u);
  // Still waiting: more buffers, more frames (the kick asked for earlier).
  post_rx();
  drv->kick(VIRTIO_NET_RX_QUEUE);
  ASSERT_TRUE(drv->wait_used(VIRTIO_NET_RX_QUEUE, 1));
  EXPECT_EQ(dev->stats().rx_frames.load(), 5u);
  EXPECT_EQ(dev->rx_dropped(), extra);
}

TEST_F(VirtioNetTest, TooSmallBufferDropsTheFrame) {
  bring_up();
  post_rx(100);
  const uint64_t good = post_rx();
  drv->kick(VIRTIO_NET_RX_QUEUE);
  sink->deliver(make_frame(200, 1));  // does not fit 100 bytes
  sink->deliver(make_frame(50, 2));
  ASSERT_TRUE(drv->wait_used(VIRTIO_NET_RX_QUEUE, 2));
  EXPECT_EQ(drv->next_used(VIRTIO_NET_RX_QUEUE).len, 0u);
  EXPECT_EQ(drv->next_used(VIRTIO_NET_RX_QUEUE).len, 62u);
  EXPECT_EQ(*drv->host(good + 12, 1), 2);
  EXPECT_EQ(dev->stats().rx_too_big.load(), 1u);
}

TEST_F(VirtioNetTest, FramesBeforeDriverOkOrAfterResetAreDropped) {
  sink->deliver(make_frame(60, 0));
  EXPECT_EQ(dev->rx_dropped(), 1u);
  bring_up();
  post_rx();
  drv->kick(VIRTIO_NET_RX_QUEUE);
  sink->deliver(make_frame(60, 0));
  ASSERT_TRUE(drv->wait_used(VIRTIO_NET_RX_QUEUE));
  drv->set_status(0);
  sink->deliver(make_frame(60, 0));
  EXPECT_EQ(dev->rx_dropped(), 2u);
}

TEST_F(VirtioNetTest, BusyTransmitNeedsFewKicks) {
  bring_up(feature_bit(VIRTIO_F_EVENT_IDX));
  // 12 frames, published together, one kick: one pass sends them all.
  for (int i = 0; i < 12; ++i) {
    const uint64_t buf = drv->alloc(12 + 60);
    std::memset(drv->host(buf, 12), 0, 12);
    std::memcpy(drv->host(buf + 12, 60), make_frame(60, static_cast<uint8_t>(i)).data(), 60);
    drv->post(VIRTIO_NET_TX_QUEUE, {{buf, 72, false}}, false);
  }
  drv->publish_avail(VIRTIO_NET_TX_QUEUE);
  drv->kick(VIRTIO_NET_TX_QUEUE);
  ASSERT_TRUE(drv->wait_used(VIRTIO_NET_TX_QUEUE, 12));
  EXPECT_EQ(port->count(), 12u);
  EXPECT_EQ(dev->transport_stats().kicks.load(), 1u);
  // With EVENT_IDX the device asks for the next kick at the next entry.
  uint16_t avail_event;
  rig.mem.read(drv->ring(VIRTIO_NET_TX_QUEUE).used + used_avail_event_offset(16), &avail_event, 2);
  EXPECT_EQ(avail_event, 12);
}

TEST_F(VirtioNetTest, StatsLineNamesBothDirections) {
  bring_up();
  send(make_frame(60, 0));
  ASSERT_TRUE(drv->wait_used(VIRTIO_NET_TX_QUEUE));
  const std::string line = dev->stats_line();
  EXPECT_NE(line.find("virtio-net"), std::string::npos) << line;
  EXPECT_NE(line.find("tx 1 frames"), std::string::npos) << line;
  EXPECT_NE(line.find("rx 0 frames"), std::string::npos) << line;
}

TEST(VirtioNetConnectTest, NoPortIsAnError) {
  VirtioRig rig;
  EXPECT_THROW(VirtioNetDevice(rig.mem, rig.router, kMac, [](std::shared_ptr<net::FrameSink>) { return nullptr; }),
               std::runtime_error);
}

}  // namespace
}  // namespace vmm
