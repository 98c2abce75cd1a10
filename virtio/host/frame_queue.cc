#include "virtio/host/frame_queue.h"

#include <utility>

namespace vmm {

void FrameQueue::deliver(net::Frame frame) {
  bool wake;
  {
    std::lock_guard lock(mu_);
    if (!open_ || frames_.size() >= capacity_) {
      dropped_.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    wake = frames_.empty();
    frames_.push_back(std::move(frame));
  }
  // Only the first frame needs a wake-up: the consumer drains the queue,
  // and while frames wait for buffers it waits for the guest's kick.
  if (wake) event_.signal();
}

bool FrameQueue::take(net::Frame& out) {
  std::lock_guard lock(mu_);
  if (frames_.empty()) return false;
  out = std::move(frames_.front());
  frames_.pop_front();
  return true;
}

void FrameQueue::put_back(net::Frame frame) {
  std::lock_guard lock(mu_);
  if (open_) frames_.push_front(std::move(frame));
}

void FrameQueue::set_open(bool open) {
  std::lock_guard lock(mu_);
  open_ = open;
  if (!open) frames_.clear();
}

size_t FrameQueue::size() const {
  std::lock_guard lock(mu_);
  return frames_.size();
}

}  // namespace vmm
