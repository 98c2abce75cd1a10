#include "guest-kernel/net/pair_device.h"

#include <utility>

namespace net {

PairDevice::~PairDevice() {
  for (auto& [n, id] : in_flight_) clock_.cancel_timer(id);
  if (peer_) peer_->peer_ = nullptr;
}

void PairDevice::connect(PairDevice& a, PairDevice& b) {
  a.peer_ = &b;
  b.peer_ = &a;
}

bool PairDevice::transmit(const uint8_t* frame, size_t len) {
  if (tx_full_ || tx_room_ == 0) {
    ++tx_dropped;
    return false;
  }
  if (tx_room_ != kUnlimited) --tx_room_;
  ++tx_frames;
  std::vector<uint8_t> copy(frame, frame + len);
  // A dropped frame still counts as transmitted: the loss is the cable's.
  if (filter_ && !filter_(copy)) return true;
  const uint64_t n = next_frame_++;
  in_flight_[n] = clock_.add_timer(latency_ns, [this, n, f = std::move(copy)] {
    in_flight_.erase(n);
    if (peer_) peer_->receive(f.data(), f.size());
  });
  return true;
}

}  // namespace net
