// A FramePort that leads nowhere: it accepts every frame and drops it,
// counting what it dropped. A lone VM started with `--net` and no switch is
// connected to one, so its NIC exists and works (the guest's driver can be
// exercised) but nothing it sends arrives anywhere and nothing is received.
#pragma once

#include <atomic>
#include <cstdint>
#include <span>

#include "vmm/net/frame_port.h"

namespace vmm::net {

class DiscardPort final : public FramePort {
 public:
  bool transmit(std::span<const uint8_t> frame) override {
    frames_.fetch_add(1, std::memory_order_relaxed);
    bytes_.fetch_add(frame.size(), std::memory_order_relaxed);
    return true;
  }
  uint64_t frames() const { return frames_.load(std::memory_order_relaxed); }
  uint64_t bytes() const { return bytes_.load(std::memory_order_relaxed); }

 private:
  std::atomic<uint64_t> frames_{0};
  std::atomic<uint64_t> bytes_{0};
};

}  // namespace vmm::net
