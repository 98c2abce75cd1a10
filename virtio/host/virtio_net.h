// virtio-net (virtio 1.2 §5.1), host side: one receive queue (0) and one
// transmit queue (1), the 12-byte VERSION_1 header, a fixed MAC and a link
// that is always up (VIRTIO_NET_F_MAC, VIRTIO_NET_F_STATUS), no offloads.
//
// TX: the I/O thread pops a chain, strips the header and hands the frame
// to the FramePort (the switch), then returns the chain.
// RX: the switch calls deliver() on the device's FrameQueue from any thread;
// the I/O thread copies each frame, behind a zeroed header with
// num_buffers = 1, into one posted receive chain. A frame that does not fit
// the chain is dropped and the chain returned empty (len 0; drivers post
// buffers of at least 1526 bytes without MRG_RXBUF, §5.1.6.3.1). With no
// buffers posted, frames wait in the bounded queue until the guest refills
// the ring and kicks; when the queue is full, further frames are dropped.
// Both directions follow the notification-suppression loop of
// virtqueue.h, so a busy guest sends few kicks and gets few interrupts.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "virtio/host/frame_queue.h"
#include "virtio/host/virtio_pci.h"
#include "virtio/net.h"
#include "vmm/net/frame_port.h"

namespace vmm {

struct VirtioNetStats {
  std::atomic<uint64_t> tx_frames{0}, tx_bytes{0};
  std::atomic<uint64_t> tx_errors{0};      // malformed chains, bad lengths, refused by the switch
  std::atomic<uint64_t> rx_frames{0}, rx_bytes{0};
  std::atomic<uint64_t> rx_too_big{0};     // dropped: the posted chain was too small
};

class VirtioNetDevice final : public VirtioPciDevice {
 public:
  static constexpr uint16_t kQueueSize = 256;
  // Frames waiting for receive buffers, at most.
  static constexpr size_t kRxBacklog = 256;
  // Frames handled per queue before the I/O thread looks at the others.
  static constexpr int kBudget = 64;

  // Gives the device's receive side to the switch (or anything else) and
  // gets the port it transmits into. Called once, in the constructor.
  using Connector = std::function<std::shared_ptr<net::FramePort>(std::shared_ptr<net::FrameSink>)>;

  // Throws std::runtime_error if `connect` returns no port.
  VirtioNetDevice(GuestMemory& mem, GsiRouter& router, const net::MacAddress& mac, const Connector& connect);
  ~VirtioNetDevice() override;

  const net::MacAddress& mac() const { return mac_; }
  const VirtioNetStats& stats() const { return stats_; }
  // Frames dropped on receive because the backlog was full or the driver
  // was not running, plus those too big for their buffer.
  uint64_t rx_dropped() const { return rx_->dropped() + stats_.rx_too_big.load(); }

 protected:
  void read_device_config(uint32_t offset, uint8_t* data, uint32_t size) override;
  void on_driver_ok() override;
  void on_reset() override;
  void on_queue_reset(uint16_t q) override;
  void on_queue_kick(uint16_t q) override;
  std::string device_stats() const override;
  void on_restored() override;

 private:
  void process_rx();
  void process_tx();
  void transmit(const VirtqChain& chain);

  const net::MacAddress mac_;
  std::shared_ptr<FrameQueue> rx_;
  std::shared_ptr<net::FramePort> port_;
  virtio::virtio_net_config config_{};

  // I/O thread state (mu_).
  VirtqChain chain_;
  std::vector<uint8_t> tx_buf_;

  VirtioNetStats stats_;
};

}  // namespace vmm
