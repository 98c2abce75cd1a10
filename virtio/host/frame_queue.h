// The receive side of a NIC model as the switch sees it: a bounded queue of
// frames (a FrameSink) between whoever delivers them (any thread) and the
// NIC's I/O thread, which copies them into the guest's receive buffers.
//
// deliver() never blocks on the NIC and never touches guest memory
// (frame_port.h): it appends the frame and wakes the I/O thread through an
// eventfd, or drops and counts the frame when the queue is full or closed
// (a NIC whose driver is not running drops everything, as hardware does).
// Frames the I/O thread cannot place yet (no receive buffers) go back to
// the front and wait for the guest to post buffers.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <deque>
#include <mutex>

#include "vmm/irq/eventfd.h"
#include "vmm/net/frame_port.h"

namespace vmm {

class FrameQueue final : public net::FrameSink {
 public:
  explicit FrameQueue(size_t capacity) : capacity_(capacity) {}

  // Any thread. The eventfd is signalled when the queue becomes non-empty.
  void deliver(net::Frame frame) override;

  // The consumer's side (one thread).
  bool take(net::Frame& out);
  void put_back(net::Frame frame);  // to the front, even if that overfills by one
  // Closed: deliveries are dropped; closing also discards what is queued
  // (a reset NIC forgets its backlog).
  void set_open(bool open);
  const EventFd& event() const { return event_; }

  size_t size() const;
  uint64_t dropped() const { return dropped_.load(std::memory_order_relaxed); }

 private:
  const size_t capacity_;
  mutable std::mutex mu_;
  std::deque<net::Frame> frames_;
  bool open_ = false;
  std::atomic<uint64_t> dropped_{0};
  EventFd event_;
};

}  // namespace vmm
