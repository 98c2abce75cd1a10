// Self-tests of the page allocator, the heap, the page tables and the C++
// runtime (standard containers in the kernel).
#include <deque>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "guest-kernel/arch/x86/fault_probes.h"
#include "guest-kernel/arch/x86/interrupts.h"
#include "guest-kernel/kernel/selftest.h"
#include "guest-kernel/selftest/catch_exception.h"
#include "guest-kernel/lib/print.h"
#include "guest-kernel/mm/heap.h"
#include "guest-kernel/mm/page_alloc.h"
#include "guest-kernel/mm/paging.h"


KTEST(page_allocator_counts_and_hands_out_pages) {
  const size_t before = mm::free_page_count();
  KCHECK(before > 0 && before <= mm::total_page_count());
  const uint64_t a = mm::alloc_page(), b = mm::alloc_page();
  KCHECK(a && b && a != b);
  KCHECK(a % mm::kPageSize == 0 && b % mm::kPageSize == 0);
  KCHECK(a >= 0x100000);  // nothing below 1 MiB is handed out
  KCHECK(mm::free_page_count() == before - 2);
  const uint8_t* p = reinterpret_cast<const uint8_t*>(a);
  bool zero = true;
  for (size_t i = 0; i < mm::kPageSize; ++i) zero &= p[i] == 0;
  KCHECK(zero);
  mm::free_page(a);
  mm::free_page(b);
  KCHECK(mm::free_page_count() == before);
}

KTEST(page_allocator_contiguous_runs) {
  const size_t before = mm::free_page_count();
  const uint64_t run = mm::alloc_pages(16);
  KCHECK(run != 0);
  // Every page of the run is usable.
  for (int i = 0; i < 16; ++i) reinterpret_cast<volatile uint64_t*>(run + i * mm::kPageSize)[0] = i;
  KCHECK(mm::free_page_count() == before - 16);
  mm::free_pages(run, 16);
  KCHECK(mm::free_page_count() == before);
  KCHECK(mm::alloc_pages(mm::free_page_count() + 1) == 0);  // more than exists
}

KTEST(page_allocator_calls_the_low_memory_handler) {
  void* saved_context;
  const mm::LowMemoryHandler saved = mm::low_memory_handler(&saved_context);
  // Take every free page (a list through the pages themselves: nothing
  // else may allocate while memory is gone).
  uint64_t head = 0;
  size_t taken = 0;
  while (const uint64_t p = mm::alloc_page(mm::kAllocNoReclaim | mm::kAllocNoZero)) {
    *reinterpret_cast<uint64_t*>(p) = head;
    head = p;
    ++taken;
  }
  KCHECK(taken > 0 && mm::free_page_count() == 0);
  // The handler plays the balloon: it gives back two pages of the list per call.
  struct Stash {
    uint64_t head;
    size_t calls;
  } stash{head, 0};
  mm::set_low_memory_handler(
      [](size_t, void* ctx) -> size_t {
        auto* s = static_cast<Stash*>(ctx);
        ++s->calls;
        size_t freed = 0;
        for (; freed < 2 && s->head; ++freed) {
          const uint64_t p = s->head;
          s->head = *reinterpret_cast<uint64_t*>(p);
          mm::free_page(p);
        }
        return freed;
      },
      &stash);
  KCHECK(mm::alloc_page(mm::kAllocNoReclaim) == 0);  // never asks the handler
  KCHECK(stash.calls == 0);
  const uint64_t a = mm::alloc_page();  // asks once, gets two, uses one
  KCHECK(a != 0 && stash.calls == 1);
  KCHECK(a && *reinterpret_cast<const uint64_t*>(a) == 0);  // still zeroed
  const uint64_t b = mm::alloc_page(mm::kAllocNoReclaim);  // the second one
  KCHECK(b != 0 && stash.calls == 1);
  // A handler with nothing left: the allocation fails after asking once more.
  const uint64_t rest = stash.head;
  stash.head = 0;
  KCHECK(mm::alloc_page() == 0 && stash.calls == 2);
  // Everything back, the balloon's handler (if any) back in place.
  mm::set_low_memory_handler(saved, saved_context);
  if (a) mm::free_page(a);
  if (b) mm::free_page(b);
  for (uint64_t p = rest; p;) {
    const uint64_t next = *reinterpret_cast<uint64_t*>(p);
    mm::free_page(p);
    p = next;
  }
  KCHECK(mm::free_page_count() == taken);
}

KTEST(page_allocator_can_drain_and_refill) {
  // What the balloon does: take many single pages, give them back.
  std::vector<uint64_t> pages;
  const size_t take = mm::free_page_count() / 4;
  pages.reserve(take);  // before counting: the list itself takes pages
  const size_t before = mm::free_page_count();
  for (size_t i = 0; i < take; ++i) {
    const uint64_t p = mm::alloc_page();
    if (!p) break;
    pages.push_back(p);
  }
  KCHECKF(pages.size() == take, "got %zu of %zu pages", pages.size(), take);
  for (uint64_t p : pages) mm::free_page(p);
  KCHECK(mm::free_page_count() == before);
}

KTEST(heap_small_and_large_allocations) {
  const mm::HeapStats before = mm::heap_stats();
  void* blocks[64];
  for (int i = 0; i < 64; ++i) {
    const size_t size = 1 + (i * 97) % 3000;
    blocks[i] = mm::kmalloc(size);
    KCHECK(blocks[i] != nullptr);
    KCHECK(reinterpret_cast<uint64_t>(blocks[i]) % 16 == 0);
    __builtin_memset(blocks[i], i, size);
  }
  for (int i = 0; i < 64; ++i) {
    const size_t size = 1 + (i * 97) % 3000;
    const uint8_t* p = static_cast<uint8_t*>(blocks[i]);
    KCHECK(p[0] == i && p[size - 1] == i);  // no block overlapped another
  }
  void* big = mm::kmalloc(1 << 20);
  KCHECK(big != nullptr);
  mm::kfree(big);
  for (int i = 0; i < 64; ++i) mm::kfree(blocks[i]);
  const mm::HeapStats after = mm::heap_stats();
  KCHECK(after.bytes_in_use == before.bytes_in_use);
  KCHECK(after.allocations == before.allocations);
}

KTEST(cxx_containers_work) {
  std::vector<int> v;
  for (int i = 0; i < 1000; ++i) v.push_back(i * i);
  KCHECK(v.size() == 1000 && v[999] == 999 * 999);
  std::map<std::string, int> m;
  m["raft"] = 1;
  m["paxos"] = 2;
  m["zab"] = 3;
  KCHECK(m.size() == 3 && m.begin()->first == "paxos");
  std::unordered_map<uint64_t, std::string> u;
  for (uint64_t i = 0; i < 200; ++i) u[i * 7919] = std::to_string(i);
  KCHECK(u.size() == 200 && u[7919 * 5] == "5");
  std::string s = "hello";
  s += ", kernel";
  KCHECK(s == "hello, kernel" && s.find("kernel") == 7);
  int calls = 0;
  std::function<void(int)> f = [&](int n) { calls += n; };
  f(2);
  f(3);
  KCHECK(calls == 5);
  std::deque<int> d{1, 2, 3};
  d.push_front(0);
  KCHECK(d.front() == 0 && d.back() == 3);
  std::optional<int> o;
  KCHECK(!o.has_value());
  o = 4;
  KCHECK(o.value_or(0) == 4);
}

KTEST(null_page_is_unmapped) {
  KCHECK(!mm::is_mapped(0));
  uint64_t error = 0, cr2 = 1;
  const int64_t v = catch_exception([] { return probe_load(0x10); }, &error, &cr2);
  KCHECKF(v == 14, "vector %ld", v);
  KCHECK(cr2 == 0x10);
  KCHECK((error & 1) == 0);  // not present
}

KTEST(stack_guard_page_faults) {
  const uint64_t top = mm::alloc_stack(2);
  KCHECK(top != 0);
  const uint64_t guard = top - 3 * mm::kPageSize;
  KCHECK(!mm::is_mapped(guard));
  KCHECK(mm::is_mapped(guard + mm::kPageSize));
  uint64_t error = 0;
  KCHECK(catch_exception([guard] { return probe_store(guard + 8); }, &error) == 14);
  KCHECK(error & 2);  // a write
  mm::map_page(guard);
  mm::free_pages(guard, 3);
}
