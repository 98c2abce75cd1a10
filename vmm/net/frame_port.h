// The contract between a NIC model (virtio-net, e1000, the gateway) and the
// virtual switch (vmm/net/switch.h) that joins every NIC of every VM of one
// VMM process.
//
//   NIC -> switch: the NIC calls FramePort::transmit() from its own I/O
//     thread with one Ethernet frame (no FCS, 14-byte header included). The
//     switch copies what it needs before returning, so the NIC may reuse
//     its buffer at once.
//   switch -> NIC: the switch calls FrameSink::deliver() with a frame the
//     sink now owns. It may be called from any thread (the sender's I/O
//     thread, or the switch's delay thread), concurrently with the NIC's own
//     work, so a sink only queues the frame and wakes its I/O thread; it
//     never touches guest memory inside deliver(). A sink whose queue is full
//     drops the frame and counts it, as a NIC with no free RX buffers does.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

namespace vmm::net {

using MacAddress = std::array<uint8_t, 6>;
using Frame = std::vector<uint8_t>;

// Frames shorter than an Ethernet header or longer than a standard frame
// (no jumbo frames) are refused by the switch and counted as errors.
constexpr size_t kEthHeaderLen = 14;
constexpr size_t kMaxFrameLen = 1514;

class FrameSink {
 public:
  virtual ~FrameSink() = default;
  virtual void deliver(Frame frame) = 0;
};

class FramePort {
 public:
  virtual ~FramePort() = default;
  // Hands one frame to the switch. False if the switch refused it (runt,
  // oversized, port detached); the NIC counts that as a TX error.
  virtual bool transmit(std::span<const uint8_t> frame) = 0;
};

// Hands frames to a sink the switch must not keep alive: a NIC that holds
// its switch port would otherwise form a cycle with the switch holding the
// NIC. Frames for a sink that is gone are dropped.
class WeakSink final : public FrameSink {
 public:
  explicit WeakSink(std::weak_ptr<FrameSink> target) : target_(std::move(target)) {}
  void deliver(Frame frame) override {
    if (auto t = target_.lock()) t->deliver(std::move(frame));
  }

 private:
  std::weak_ptr<FrameSink> target_;
};

}  // namespace vmm::net
