#include "guest-kernel/kernel/timer_bench.h"

#include "boot/platform.h"
#include "guest-kernel/kernel/event_loop.h"
#include "guest-kernel/lib/print.h"
#include "guest-kernel/time/clock.h"

namespace {
constexpr uint64_t kPeriodNs = 10'000'000;
}

uint32_t run_timer_bench(unsigned long ticks) {
  EventLoop& loop = EventLoop::instance();
  const uint64_t start = timekeeping::monotonic_ns();
  unsigned long n = 0;
  uint64_t sum = 0, worst = 0;
  // Deadlines are start + k * period; lateness is how far past its
  // deadline each tick ran.
  const auto id = loop.add_timer(kPeriodNs, [&] {
    ++n;
    const uint64_t deadline = start + n * kPeriodNs;
    const uint64_t now = timekeeping::monotonic_ns();
    const uint64_t late = now > deadline ? now - deadline : 0;
    sum += late;
    if (late > worst) worst = late;
    if (n >= ticks) loop.stop();
  }, kPeriodNs);
  loop.run();
  loop.cancel_timer(id);
  kprintf("timer-bench: %lu ticks of %lu ms: mean deviation %lu us, worst %lu us, %lu halts\n", n,
          kPeriodNs / 1000000, n ? sum / n / 1000 : 0, worst / 1000, loop.halts());
  return platform::kStatusOk;
}

uint32_t run_idle(unsigned long seconds) {
  EventLoop& loop = EventLoop::instance();
  const uint64_t end = timekeeping::monotonic_ns() + seconds * 1'000'000'000ull;
  unsigned long ticks = 0;
  const auto id = loop.add_timer(kPeriodNs, [&] {
    ++ticks;
    if (timekeeping::monotonic_ns() >= end) loop.stop();
  }, kPeriodNs);
  loop.run();
  loop.cancel_timer(id);
  kprintf("idle: %lu s, %lu ticks, %lu halts\n", seconds, ticks, loop.halts());
  return platform::kStatusOk;
}
