#include "guest-kernel/kernel/memory_command.h"

#include "boot/platform.h"
#include "guest-kernel/kernel/cmdline.h"
#include "guest-kernel/kernel/page_pattern.h"
#include "guest-kernel/kernel/event_loop.h"
#include "guest-kernel/lib/print.h"
#include "guest-kernel/lib/string.h"
#include "guest-kernel/mm/page_alloc.h"
#include "guest-kernel/time/clock.h"
#include "virtio/guest/virtio_balloon.h"

#include <vector>

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
  const uint64_t start_ns = timekeeping::monotonic_ns();
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
          "free pages %zu before, %zu at the peak, %zu after; %lu ms\n",
          got * mm::kPageSize >> 20, got, corrupt, given_back, free_before, free_low, mm::free_page_count(),
          (timekeeping::monotonic_ns() - start_ns) / 1'000'000);
  return got == pages && corrupt == 0;
}

// ---- mem-pattern (patterns in page_pattern.h) -------------------------------
constexpr uint32_t kBasePatterns = 64;
static_assert(page_pattern::kPageBytes == mm::kPageSize);

void write_pattern(uint64_t page, uint32_t id) { page_pattern::write(reinterpret_cast<volatile uint64_t*>(page), id); }
bool page_ok(uint64_t page, uint32_t id) {
  return page_pattern::check(reinterpret_cast<const volatile uint64_t*>(page), id);
}

bool mem_pattern(unsigned long mib, unsigned long seconds) {
  if (mib == 0 || mib > kMaxTouchMib) {
    kprintf("mem-pattern: %lu MiB is not between 1 and %lu\n", mib, kMaxTouchMib);
    return false;
  }
  const size_t want = mib * (1u << 20) / mm::kPageSize;
  std::vector<uint64_t> pages;
  std::vector<uint32_t> ids;  // what each page was last given
  pages.reserve(want);
  ids.reserve(want);
  for (size_t i = 0; i < want; ++i) {
    const uint64_t p = mm::alloc_page();
    if (!p) break;
    const uint32_t id = static_cast<uint32_t>(i % kBasePatterns);
    write_pattern(p, id);
    pages.push_back(p);
    ids.push_back(id);
  }
  bool ok = pages.size() == want;
  if (!ok) kprintf("mem-pattern: out of memory after %zu of %zu pages\n", pages.size(), want);
  const uint64_t start = timekeeping::monotonic_ns();
  const uint64_t end = start + seconds * 1'000'000'000ull;
  // Every 100 ms a round rewrites one page in 256 (at least one) with a
  // pattern not used at fill time, chosen by the round's number, so VMs
  // booted alike write alike and the rewritten pages can merge again; the
  // rest of the time the pages are only read, stable enough to be merged.
  // Between passes the vCPU halts for 10 ms, so verifying is not a busy loop.
  constexpr uint64_t kRoundNs = 100'000'000, kRestNs = 10'000'000;
  const size_t per_round = pages.size() / 256 ? pages.size() / 256 : 1;
  uint64_t verified = 0, corrupt = 0, rewritten = 0, passes = 0, rounds = 0;
  uint64_t next_round = start + kRoundNs;
  EventLoop& loop = EventLoop::instance();
  do {
    for (size_t i = 0; i < pages.size(); ++i) {
      ++verified;
      if (page_ok(pages[i], ids[i])) continue;
      if (++corrupt <= 5) {
        const auto* w = reinterpret_cast<const volatile uint64_t*>(pages[i]);
        kprintf("mem-pattern: page %zu (pattern %u) corrupt: header %lx, checksum %lx\n", i, ids[i],
                static_cast<unsigned long>(w[0]), static_cast<unsigned long>(w[1]));
      }
    }
    ++passes;
    if (seconds == 0 || pages.empty()) break;
    if (timekeeping::monotonic_ns() >= next_round) {
      ++rounds;
      next_round += kRoundNs;
      for (size_t k = 0; k < per_round; ++k) {
        const size_t i = (rounds * 7919 + k * 104729) % pages.size();
        ids[i] = kBasePatterns + static_cast<uint32_t>((rounds + k) % kBasePatterns);
        write_pattern(pages[i], ids[i]);
        ++rewritten;
      }
    }
    bool rested = false;
    loop.add_timer(kRestNs, [&rested] { rested = true; });
    loop.run([&rested] { return rested; });
  } while (timekeeping::monotonic_ns() < end);
  kprintf("mem-pattern: %zu pages, %lu verified, %lu corrupt, %lu rewritten, %lu passes in %lu ms\n", pages.size(),
          verified, corrupt, rewritten, passes, (timekeeping::monotonic_ns() - start) / 1'000'000);
  for (uint64_t p : pages) mm::free_page(p);
  return ok && corrupt == 0;
}

// "mem-pattern=MiB[,SECONDS]".
bool parse_pattern_args(const char* word, unsigned long* mib, unsigned long* seconds) {
  const char* v = word + strlen("mem-pattern=");
  auto number = [](const char*& s, unsigned long* out) {
    if (*s < '0' || *s > '9') return false;
    unsigned long n = 0;
    for (; *s >= '0' && *s <= '9'; ++s) {
      if (n > 100'000'000ul) return false;
      n = n * 10 + static_cast<unsigned long>(*s - '0');
    }
    *out = n;
    return true;
  };
  *seconds = 0;
  if (!number(v, mib)) return false;
  if (*v == ',') {
    ++v;
    if (!number(v, seconds) || *seconds > 3600) return false;
  }
  return *v == '\0';
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
    } else if (strncmp(word, "mem-pattern=", 12) == 0) {
      unsigned long mib = 0, seconds = 0;
      malformed = !parse_pattern_args(word, &mib, &seconds);
      if (malformed) {
        kprintf("guest-kernel: malformed '%s' (mem-pattern=MiB[,SECONDS], at most 3600 s)\n", word);
        return platform::kStatusTestsFailed;
      }
      ok = mem_pattern(mib, seconds);
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
