// Time for the network stack: a monotonic clock and one-shot timers. The
// guest binds it to the kernel's EventLoop (net_boot.cc); host tests bind
// it to a fake clock they advance by hand, so ARP retries and ping
// timeouts are tested without waiting.
//
// Contract: timer callbacks run later, from the event loop, never inside
// add_timer(); ids are never 0 (0 means "no timer" to the stack);
// cancelling a timer that already ran or was cancelled is harmless.
#pragma once

#include <stdint.h>

#include <functional>

namespace net {

class Clock {
 public:
  using TimerId = uint64_t;
  virtual ~Clock() = default;
  virtual uint64_t now_ns() = 0;
  virtual TimerId add_timer(uint64_t delay_ns, std::function<void()> fn) = 0;
  virtual void cancel_timer(TimerId id) = 0;
};

constexpr uint64_t kMillisecond = 1'000'000;
constexpr uint64_t kSecond = 1'000'000'000;

}  // namespace net
