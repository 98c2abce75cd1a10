#include "guest-kernel/kernel/memory_command.h"

#include "boot/platform.h"
#include "guest-kernel/kernel/cmdline.h"
#include "guest-kernel/kernel/event_loop.h"
#include "guest-kernel/lib/print.h"
#include "guest-kernel/lib/string.h"
#include "guest-kernel/mm/page_alloc.h"
#include "guest-kernel/time/clock.h"
#include "virtio/guest/virtio_balloon.h"

namespace {

using virtio::guest::VirtioBalloon;

constexpr unsigned long kDefaultWaitSeconds = 30;
constexpr unsigned long kMaxTouchMib = 3u << 10;

// The pattern word `i` of the `index`th page touched holds.
uint64_t pattern(uint64_t index, uint64_t i) { return (index * 0x9e3779b97f4a7c15ull) ^ (i * 0xff51afd7ed558ccdull); }

bool mem_touch(unsigned long mib) {
  if (mib == 0 || mib > kMaxTouchMib) {
    kprintf("mem-touch: %lu MiB is not between 1 and %lu\n", mib, kMaxTouchMib);
    return false;
  }
  VirtioBalloon* balloon = VirtioBalloon::instance();
  const uint64_t oom_before = balloon ? balloon->pages_given_back_on_oom() : 0;
  const size_t free_before = mm::free_page_count();
  const size_t pages = mib * (1u << 20) / mm::kPageSize;
  // The pages form a list through their first word: nothing else is
  // allocated while memory runs out.
  uint64_t head = 0;
  size_t got = 0;
  for (; got < pages; ++got) {
    const uint64_t p = mm::alloc_page();
    if (!p) break;
    auto* w = reinterpret_cast<uint64_t*>(p);
    w[0] = head;
    for (size_t i = 1; i < mm::kPageSize / 8; ++i) w[i] = pattern(got, i);
    head = p;
  }
  const size_t free_low = mm::free_page_count();
  // Check every page, then give it back.
  size_t corrupt = 0, index = got;
  while (head) {
    auto* w = reinterpret_cast<uint64_t*>(head);
    --index;
    for (size_t i = 1; i < mm::kPageSize / 8; ++i)
      if (w[i] != pattern(index, i)) {
        ++corrupt;
        break;
      }
    const uint64_t next = w[0];
    mm::free_page(head);
    head = next;
  }
  const uint64_t given_back = balloon ? balloon->pages_given_back_on_oom() - oom_before : 0;
  if (got < pages)
    kprintf("mem-touch: out of memory after %zu of %zu pages\n", got, pages);
  kprintf("mem-touch: wrote %lu MiB (%zu pages), %zu corrupt, the balloon gave back %lu pages; "
          "free pages %zu before, %zu at the peak, %zu after\n",
          got * mm::kPageSize >> 20, got, corrupt, given_back, free_before, free_low, mm::free_page_count());
  return got == pages && corrupt == 0;
}

void print_state(const VirtioBalloon& b) {
  kprintf("balloon: target %u pages, actual %u\n", b.target_pages(), b.actual_pages());
}

// Runs the event loop until `done()` or `seconds` pass (0: forever).
template <typename F>
void run_for(unsigned long seconds, F done) {
  EventLoop& loop = EventLoop::instance();
  bool timed_out = false;
  EventLoop::TimerId timer = 0;
  if (seconds) timer = loop.add_timer(seconds * 1'000'000'000ull, [&timed_out] { timed_out = true; });
  loop.run([&] { return timed_out || done(); });
  if (timer && !timed_out) loop.cancel_timer(timer);
}

bool balloon_wait(unsigned long seconds) {
  VirtioBalloon* b = VirtioBalloon::instance();
  if (!b) {
    kprintf("balloon: no virtio-balloon device\n");
    return false;
  }
  const uint64_t start = timekeeping::monotonic_ns();
  run_for(seconds, [b] { return b->settled(); });
  if (!b->settled() || b->broken()) {
    kprintf("balloon: not settled after %lu s: target %u pages, actual %u%s\n", seconds, b->target_pages(),
            b->actual_pages(), b->broken() ? " (device broken)" : "");
    return false;
  }
  print_state(*b);
  kprintf("balloon: settled in %lu ms; %lu pages inflated, %lu deflated (%lu on OOM), %lu stats reports\n",
          (timekeeping::monotonic_ns() - start) / 1'000'000, b->pages_inflated(), b->pages_deflated(),
          b->pages_given_back_on_oom(), b->stats_reports());
  return true;
}

struct DemoState {
  VirtioBalloon* balloon;
  uint32_t last_target;
  bool reported_reached;
};

bool balloon_demo(unsigned long seconds) {
  VirtioBalloon* b = VirtioBalloon::instance();
  if (!b) {
    kprintf("balloon: no virtio-balloon device\n");
    return false;
  }
  DemoState s{b, b->target_pages(), b->actual_pages() == b->target_pages()};
  print_state(*b);
  b->set_observer(
      [](void* ctx) {
        auto* st = static_cast<DemoState*>(ctx);
        const VirtioBalloon& bal = *st->balloon;
        if (bal.target_pages() != st->last_target) {
          st->last_target = bal.target_pages();
          st->reported_reached = false;
          print_state(bal);
        }
        if (!st->reported_reached && bal.actual_pages() == bal.target_pages()) {
          st->reported_reached = true;
          print_state(bal);
        }
      },
      &s);
  run_for(seconds, [] { return false; });
  b->set_observer(nullptr, nullptr);
  return !b->broken();
}

// "key=N" or "key" (value 0) from one word; false if `word` is not `key`.
bool match(const char* word, const char* key, unsigned long* value, bool* malformed) {
  const size_t n = strlen(key);
  if (strncmp(word, key, n) != 0 || (word[n] != '\0' && word[n] != '=')) return false;
  *value = 0;
  *malformed = word[n] == '=' && !Cmdline(word).get_uint(key, value);
  return true;
}

}  // namespace

uint32_t run_memory_commands(const Cmdline& cmdline) {
  const char* p = cmdline.text();
  while (*p) {
    while (*p == ' ') ++p;
    const char* start = p;
    while (*p && *p != ' ') ++p;
    char word[48];
    const size_t len = static_cast<size_t>(p - start);
    if (len == 0 || len >= sizeof word) continue;
    memcpy(word, start, len);
    word[len] = '\0';
    unsigned long v;
    bool malformed = false;
    bool ok = true;
    if (match(word, "mem-touch", &v, &malformed)) {
      ok = !malformed && mem_touch(v);
    } else if (match(word, "balloon-wait", &v, &malformed)) {
      ok = !malformed && balloon_wait(v ? v : kDefaultWaitSeconds);
    } else if (match(word, "balloon-demo", &v, &malformed)) {
      ok = !malformed && balloon_demo(v);
    } else {
      continue;
    }
    if (malformed) kprintf("guest-kernel: malformed '%s' (a number is expected after '=')\n", word);
    if (!ok) return platform::kStatusTestsFailed;
  }
  return platform::kStatusOk;
}
