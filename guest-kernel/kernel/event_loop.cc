#include "guest-kernel/kernel/event_loop.h"

#include "guest-kernel/arch/x86/apic.h"
#include "guest-kernel/arch/x86/cpu.h"
#include "guest-kernel/arch/x86/interrupts.h"
#include "guest-kernel/arch/x86/post_mortem.h"
#include "guest-kernel/kernel/exit.h"
#include "guest-kernel/lib/print.h"
#include "guest-kernel/time/clock.h"

namespace {

EventLoop* g_loop = nullptr;

// Interrupts off while the handoff list is touched from task context.
class InterruptsOff {
 public:
  InterruptsOff() : was_on_(x86::interrupts_enabled()) { x86::cli(); }
  ~InterruptsOff() {
    if (was_on_) x86::sti();
  }

 private:
  bool was_on_;
};

}  // namespace

EventLoop& EventLoop::instance() {
  static EventLoop loop;
  return loop;
}

void EventLoop::init() {
  g_loop = this;
  vector_ = x86::allocate_interrupt(
      [](x86::InterruptFrame&, void* ctx) {
        auto* loop = static_cast<EventLoop*>(ctx);
        loop->timer_interrupts_ = loop->timer_interrupts_ + 1;
        x86::apic_eoi();  // the loop itself looks at the deadlines
      },
      this);
  if (!vector_) panic("no interrupt vector for the timer");
  x86::apic_timer_init(vector_, timekeeping::tsc_hz());
}

EventLoop::TimerId EventLoop::add_timer(uint64_t delay_ns, Callback fn, uint64_t period_ns) {
  const TimerId id = next_id_++;
  const uint64_t deadline = timekeeping::monotonic_ns() + delay_ns;
  timers_.emplace(std::make_pair(deadline, id), Timer{id, period_ns, std::move(fn)});
  deadline_of_[id] = deadline;
  return id;
}

bool EventLoop::cancel_timer(TimerId id) {
  auto it = deadline_of_.find(id);
  if (it == deadline_of_.end()) return false;
  timers_.erase({it->second, id});
  deadline_of_.erase(it);
  return true;
}

void EventLoop::defer(Callback fn) { deferred_.push_back(std::move(fn)); }

void EventLoop::raise(IrqWork* work) {
  // Called with interrupts off (from a handler) or under InterruptsOff.
  if (work->queued) return;
  work->queued = true;
  work->next = irq_head_;
  irq_head_ = work;
}

bool EventLoop::run_once() {
  bool did = false;
  // Interrupt work first: it is what woke us.
  IrqWork* list;
  {
    InterruptsOff off;
    list = irq_head_;
    irq_head_ = nullptr;
    for (IrqWork* w = list; w; w = w->next) w->queued = false;
  }
  // The list was built newest first; order hardly matters, but run oldest
  // first for fairness.
  IrqWork* reversed = nullptr;
  while (list) {
    IrqWork* n = list->next;
    list->next = reversed;
    reversed = list;
    list = n;
  }
  for (IrqWork* w = reversed; w;) {
    IrqWork* n = w->next;
    w->fn(w->context);
    did = true;
    w = n;
  }

  const uint64_t now = timekeeping::monotonic_ns();
  while (!timers_.empty() && timers_.begin()->first.first <= now) {
    auto node = timers_.extract(timers_.begin());
    const uint64_t deadline = node.key().first;
    Timer& t = node.mapped();
    if (t.period_ns) {
      // Reschedule before running, so the callback may cancel it.
      uint64_t next = deadline + t.period_ns;
      if (next <= now) next = now + t.period_ns - (now - deadline) % t.period_ns;  // skip missed ticks
      Callback fn = t.fn;
      deadline_of_[t.id] = next;
      node.key() = {next, t.id};
      timers_.insert(std::move(node));
      fn();
    } else {
      deadline_of_.erase(t.id);
      t.fn();
    }
    did = true;
  }

  while (!deferred_.empty()) {
    Callback fn = std::move(deferred_.front());
    deferred_.pop_front();
    fn();
    did = true;
  }
  return did;
}

uint64_t EventLoop::arm_hardware_timer() {
  if (timers_.empty()) {
    x86::apic_timer_disarm();
    return 0;
  }
  const uint64_t deadline = timers_.begin()->first.first;
  const uint64_t now = timekeeping::monotonic_ns();
  const uint64_t delta = deadline > now ? deadline - now : 0;
  if (const int rewrites = x86::apic_timer_arm_tsc(x86::rdtsc() + timekeeping::ns_to_tsc(delta))) {
    timer_rewrites_ += static_cast<uint64_t>(rewrites);
    ++timer_rewrite_events_;
  }
  return deadline;
}

void EventLoop::run(const std::function<bool()>& until) {
  stopped_ = false;
  x86::sti();
  while (!stopped_ && !(until && until())) {
    if (run_once()) continue;
    report_clock_anomalies();  // before cli: printing takes a while
    report_timer_rewrites();
    // Nothing to do: arm the timer and halt. Interrupts are off from the
    // check to the hlt (sti's shadow covers it), so no wakeup is lost.
    x86::cli();
    if (irq_head_ || !deferred_.empty() || stopped_) {
      x86::sti();
      continue;
    }
    const uint64_t armed_deadline = arm_hardware_timer();  // 0: no timer
    if (armed_deadline && armed_deadline <= timekeeping::monotonic_ns()) {
      x86::sti();
      continue;
    }
    ++halts_;
    x86::post_mortem::check_cpu_state();
    const uint64_t timer_interrupts_before = timer_interrupts_;
    x86::sti_hlt();
    note_lost_timer_interrupt(timer_interrupts_before, armed_deadline);
  }
}

void EventLoop::report_clock_anomalies() {
  // Counted where the clock is read (any context), said here (task
  // context): the first five times, then whenever the count has doubled.
  const uint64_t n = timekeeping::kvmclock_tsc_behind_reads();
  if (n != tsc_behind_reported_ && (clock_reports_ < 5 || n >= 2 * tsc_behind_reported_)) {
    ++clock_reports_;
    kprintf("kvmclock: %lu reads found the TSC behind the hypervisor's timestamp; they read the timestamp's time\n", n);
    tsc_behind_reported_ = n;
  }
  const uint64_t leaps = timekeeping::leaps_refused_count();
  if (leaps != leaps_reported_ && (clock_reports_ < 5 || leaps >= 2 * leaps_reported_)) {
    ++clock_reports_;
    kprintf("clock: %lu readings leapt more than an hour ahead and were refused\n", leaps);
    leaps_reported_ = leaps;
  }
}

void EventLoop::report_timer_rewrites() {
  // Counted with interrupts off (arm_hardware_timer), said here.
  if (timer_rewrite_events_ == timer_rewrites_reported_) return;
  timer_rewrites_reported_ = timer_rewrite_events_;
  if (timer_rewrite_events_ <= 5 || timer_rewrite_events_ % 100 == 0)
    kprintf("event loop: a timer deadline read back unarmed before its time and was written again (%lu times, "
            "%lu writes)\n",
            timer_rewrite_events_, timer_rewrites_);
}

void EventLoop::note_lost_timer_interrupt(uint64_t timer_interrupts_before, uint64_t armed_deadline) {
  // Another interrupt woke us. Had the timer fired, its handler would have
  // run by now (a pending interrupt is taken as soon as IF is set again),
  // so a deadline long past with no timer interrupt taken means the timer's
  // interrupt was lost below us (suspected under the nested runner, whose
  // software-emulated SVM is known to fail interrupt deliveries).
  // Nothing to recover: the loop runs the due timers and re-arms.
  if (!armed_deadline || timer_interrupts_ != timer_interrupts_before) return;
  const uint64_t now = timekeeping::monotonic_ns();
  if (now < armed_deadline + kLostTimerLateNs) return;
  ++lost_timer_interrupts_;
  if (lost_timer_interrupts_ <= 5 || lost_timer_interrupts_ % 100 == 0)
    kprintf("event loop: the timer interrupt for a deadline %lu ms ago never came (%lu so far)\n",
            (now - armed_deadline) / 1'000'000, lost_timer_interrupts_);
}
