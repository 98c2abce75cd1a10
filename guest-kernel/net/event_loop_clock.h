// net::Clock on the guest: the kernel's monotonic clock and EventLoop
// timers. Guest only.
#pragma once

#include "guest-kernel/net/clock.h"

namespace net {

class EventLoopClock : public Clock {
 public:
  uint64_t now_ns() override;
  TimerId add_timer(uint64_t delay_ns, std::function<void()> fn) override;
  void cancel_timer(TimerId id) override;
};

}  // namespace net
