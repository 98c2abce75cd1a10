// The kernel's single event loop: one-shot and periodic timers, deferred
// work, and work handed over from interrupt handlers. When nothing is due
// it programs the LAPIC timer for the next deadline and halts, so an idle
// guest costs the host almost nothing.
//
// Interrupt handlers must not allocate or run long: they call raise() on an
// IrqWork they own, and its function runs later on the loop, with
// interrupts enabled.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <functional>
#include <map>
#include <deque>
#include <utility>

class EventLoop;

// A unit of interrupt-to-task handoff, owned by the driver that raises it.
struct IrqWork {
  void (*fn)(void* context) = nullptr;
  void* context = nullptr;
  IrqWork* next = nullptr;
  bool queued = false;
};

class EventLoop {
 public:
  using TimerId = uint64_t;
  using Callback = std::function<void()>;

  // Sets up the LAPIC timer vector. Call once, after the clock.
  void init();

  // Runs `fn` after `delay_ns`; with period_ns > 0, again every period
  // (deadlines advance by the period, so the schedule does not drift).
  TimerId add_timer(uint64_t delay_ns, Callback fn, uint64_t period_ns = 0);
  bool cancel_timer(TimerId id);
  // Runs `fn` on the loop, after the current event.
  void defer(Callback fn);
  // From an interrupt handler: queues work->fn to run on the loop.
  void raise(IrqWork* work);

  // Runs events until stop() is called or `until` returns true.
  void run(const std::function<bool()>& until = {});
  void stop() { stopped_ = true; }

  size_t pending_timers() const { return timers_.size(); }
  uint64_t halts() const { return halts_; }
  uint64_t wakeups() const { return timer_interrupts_; }
  // Halts another interrupt ended long after the armed deadline, with no
  // timer interrupt taken: the timer's interrupt was lost.
  uint64_t lost_timer_interrupts() const { return lost_timer_interrupts_; }
  static constexpr uint64_t kLostTimerLateNs = 100'000'000;

  static EventLoop& instance();

 private:
  struct Timer {
    TimerId id;
    uint64_t period_ns;
    Callback fn;
  };
  bool run_once();  // true if it did something
  uint64_t arm_hardware_timer();  // the deadline armed, 0 if none
  void note_lost_timer_interrupt(uint64_t timer_interrupts_before, uint64_t armed_deadline);
  void report_clock_anomalies();
  void report_timer_rewrites();

  std::map<std::pair<uint64_t, TimerId>, Timer> timers_;  // by deadline
  std::map<TimerId, uint64_t> deadline_of_;
  std::deque<Callback> deferred_;
  IrqWork* volatile irq_head_ = nullptr;
  TimerId next_id_ = 1;
  bool stopped_ = false;
  uint8_t vector_ = 0;
  uint64_t halts_ = 0;
  volatile uint64_t timer_interrupts_ = 0;
  uint64_t lost_timer_interrupts_ = 0;
  uint64_t timer_rewrites_ = 0, timer_rewrite_events_ = 0, timer_rewrites_reported_ = 0;
  uint64_t tsc_behind_reported_ = 0, leaps_reported_ = 0, clock_reports_ = 0;
};
