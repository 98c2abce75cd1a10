#include "guest-kernel/mm/page_alloc.h"

#include "guest-kernel/kernel/exit.h"
#include "guest-kernel/lib/string.h"
#include "guest-kernel/mm/boot_info.h"

extern "C" char __kernel_start[], __kernel_end[];

namespace mm {
namespace {

constexpr size_t kFrames = kMaxPhys / kPageSize;
uint64_t free_bits[kFrames / 64];  // 1 = free
size_t free_count = 0, total_count = 0;
size_t search_hint = 0;  // first word that may hold a free frame
LowMemoryHandler low_memory_fn = nullptr;
void* low_memory_context = nullptr;
bool in_low_memory_handler = false;

bool is_free(size_t f) { return free_bits[f / 64] & (1ull << (f % 64)); }
void set_free(size_t f) {
  free_bits[f / 64] |= 1ull << (f % 64);
  if (f / 64 < search_hint) search_hint = f / 64;
}
void set_used(size_t f) { free_bits[f / 64] &= ~(1ull << (f % 64)); }

}  // namespace

void page_alloc_init() {
  const uint64_t kstart = reinterpret_cast<uint64_t>(__kernel_start);
  const uint64_t kend = reinterpret_cast<uint64_t>(__kernel_end);
  const BootInfo& b = boot_info();
  for (size_t i = 0; i < b.region_count; ++i) {
    const pvh::MemmapEntry& r = b.regions[i];
    if (r.type != pvh::kRam) continue;
    uint64_t start = (r.addr + kPageSize - 1) & ~(kPageSize - 1);
    uint64_t end = (r.addr + r.size) & ~(kPageSize - 1);
    if (end > kMaxPhys) end = kMaxPhys;
    // Below 1 MiB lie the boot data, the legacy hole and firmware tables.
    if (start < 0x100000) start = 0x100000;
    for (uint64_t p = start; p < end; p += kPageSize) {
      if (p >= kstart && p < kend) continue;
      if (!is_free(p / kPageSize)) {
        set_free(p / kPageSize);
        ++free_count;
        ++total_count;
      }
    }
  }
  search_hint = 0;
}

uint64_t alloc_page(unsigned flags) { return alloc_pages(1, flags); }

void free_page(uint64_t phys) { free_pages(phys, 1); }

void set_low_memory_handler(LowMemoryHandler fn, void* context) {
  low_memory_fn = fn;
  low_memory_context = context;
}

LowMemoryHandler low_memory_handler(void** context) {
  *context = low_memory_context;
  return low_memory_fn;
}

namespace {

// First fit over the bitmap; 0 if no run of `count` free frames exists.
uint64_t take_run(size_t count, unsigned flags) {
  if (count == 0 || count > free_count) return 0;
  size_t run = 0;
  for (size_t w = search_hint; w < kFrames / 64; ++w) {
    if (!free_bits[w]) {
      run = 0;
      continue;
    }
    for (size_t bit = 0; bit < 64; ++bit) {
      const size_t f = w * 64 + bit;
      run = is_free(f) ? run + 1 : 0;
      if (run == count) {
        const size_t first = f + 1 - count;
        for (size_t i = first; i <= f; ++i) set_used(i);
        free_count -= count;
        if (count == 1 && !free_bits[search_hint]) ++search_hint;
        if (!(flags & kAllocNoZero)) memset(reinterpret_cast<void*>(first * kPageSize), 0, count * kPageSize);
        return first * kPageSize;
      }
    }
  }
  return 0;
}

}  // namespace

uint64_t alloc_pages(size_t count, unsigned flags) {
  if (count == 0) return 0;
  uint64_t p = take_run(count, flags);
  if (p || (flags & kAllocNoReclaim) || !low_memory_fn || in_low_memory_handler) return p;
  // Out of memory: ask the handler for pages until the run exists or it
  // has nothing more to give (a contiguous run may need several rounds).
  in_low_memory_handler = true;
  while (!p && low_memory_fn(count, low_memory_context) > 0) p = take_run(count, flags);
  in_low_memory_handler = false;
  return p;
}

void free_pages(uint64_t phys, size_t count) {
  if (phys % kPageSize || phys >= kMaxPhys || count > (kMaxPhys - phys) / kPageSize)
    panic("free_pages: bad range %#lx +%zu pages", phys, count);
  for (size_t i = 0; i < count; ++i) {
    const size_t f = phys / kPageSize + i;
    if (is_free(f)) panic("free_pages: double free of page %#lx", f * kPageSize);
    set_free(f);
  }
  free_count += count;
}

size_t free_page_count() { return free_count; }
size_t total_page_count() { return total_count; }

}  // namespace mm
