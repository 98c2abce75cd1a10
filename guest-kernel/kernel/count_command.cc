#include "guest-kernel/kernel/count_command.h"

#include "guest-kernel/kernel/cmdline.h"
#include "guest-kernel/kernel/event_loop.h"
#include "guest-kernel/lib/print.h"

namespace {

constexpr unsigned long kDefaultPeriodMs = 200;
constexpr unsigned long kMaxPeriodMs = 3'600'000;

}  // namespace

bool run_count_command(const Cmdline& cmdline, unsigned* status) {
  if (!cmdline.has("count")) return false;
  unsigned long period_ms = kDefaultPeriodMs;
  char value[24] = "";
  if (cmdline.get("count", value, sizeof value) && value[0] != '\0' &&
      (!cmdline.get_uint("count", &period_ms) || period_ms == 0 || period_ms > kMaxPeriodMs)) {
    kprintf("count: the period must be 1 to %lu ms, not '%s'\n", kMaxPeriodMs, value);
    *status = 1;
    return true;
  }
  kprintf("count: every %lu ms\n", period_ms);
  static unsigned long n = 0;
  EventLoop& loop = EventLoop::instance();
  loop.add_timer(period_ms * 1'000'000ull, [] { kprintf("count: %lu\n", ++n); }, period_ms * 1'000'000ull);
  loop.run();  // forever: nothing stops this loop
  *status = 0;
  return true;
}
