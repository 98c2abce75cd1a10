#include "guest-kernel/net/event_loop_clock.h"

#include <utility>

#include "guest-kernel/kernel/event_loop.h"
#include "guest-kernel/time/clock.h"

namespace net {

// The monotonic clock, not now_ns(): the VMM may skew a VM's service clock,
// and that must not stretch ARP retries or ping round trips.
uint64_t EventLoopClock::now_ns() { return timekeeping::monotonic_ns(); }

Clock::TimerId EventLoopClock::add_timer(uint64_t delay_ns, std::function<void()> fn) {
  // EventLoop ids start at 1, as the Clock contract wants.
  return EventLoop::instance().add_timer(delay_ns, std::move(fn));
}

void EventLoopClock::cancel_timer(TimerId id) { EventLoop::instance().cancel_timer(id); }

}  // namespace net
