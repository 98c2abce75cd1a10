// The virtio-net driver (virtio 1.2 §5.1): a net::NetDevice over one
// receive and one transmit queue, no offloads, no mergeable buffers.
//
// RX: every descriptor of the ring holds a 2 KiB buffer (12-byte header +
// the largest untagged or VLAN-tagged frame); the interrupt work drains a
// batch with interrupts off, hands each frame to the stack, puts the
// buffers back, kicks once, and re-enables interrupts with the re-check.
// TX: frames are copied into per-slot buffers; TX interrupts stay off and
// finished buffers are reclaimed lazily at the next transmit.
//
// Probed through the PCI driver registry (1af4:1041); each device found is
// registered with net::register_net_device(), so the stack reaches it as
// net::net_device(i) (name() == "virtio-net").
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "guest-kernel/net/net_device.h"
#include "guest-kernel/pci/pci.h"
#include "virtio/guest/virtio_pci.h"
#include "virtio/guest/virtqueue.h"
#include "virtio/net.h"

namespace virtio::guest {

class VirtioNet final : public net::NetDevice {
 public:
  static bool probe(const pci::Device& dev);

  const char* name() const override { return "virtio-net"; }
  net::MacAddress mac() const override { return mac_; }
  // Copies the frame (14..1514 bytes, no FCS; 1518 with a VLAN tag) into
  // the TX ring; false (counted in tx_dropped) when it is malformed, the
  // ring is full or the device is broken.
  bool transmit(const uint8_t* frame, size_t len) override;

  bool link_up() const { return link_up_; }
  const Virtqueue& rx_queue() const { return rx_; }
  const Virtqueue& tx_queue() const { return tx_; }

  static constexpr size_t kBufferBytes = 2048;
  static constexpr size_t kMinFrame = 14;
  static constexpr size_t kMaxFrame = 1518;  // 1500 + Ethernet header + VLAN tag
  // Frames handled per run of the receive work before it yields the loop.
  static constexpr unsigned kRxBudget = 64;

 protected:
  bool rx_waiting_for_interrupt() const override { return !failed_ && rx_.interrupts_enabled() && rx_.has_used(); }
  uint64_t interrupts_taken() const override { return transport_.interrupts(); }
  void take_rx() override { on_rx(); }

 private:
  bool init(const pci::Device& dev);
  bool post_rx(uint16_t buffer);
  void on_rx();
  void reclaim_tx();
  void on_config();
  uint8_t* rx_buffer(uint16_t i) const { return rx_buffers_ + size_t(i) * kBufferBytes; }
  uint8_t* tx_buffer(uint16_t i) const { return tx_buffers_ + size_t(i) * kBufferBytes; }

  PciTransport transport_;
  Virtqueue rx_, tx_;
  net::MacAddress mac_{};
  bool link_up_ = true;
  uint8_t* rx_buffers_ = nullptr;  // rx_.size() buffers
  uint8_t* tx_buffers_ = nullptr;  // tx_.size() buffers
  uint16_t* tx_free_ = nullptr;    // stack of free TX buffer indices
  uint16_t tx_free_count_ = 0;
  bool failed_ = false;
};

}  // namespace virtio::guest
