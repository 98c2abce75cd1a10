#include "guest-kernel/mm/heap.h"

#include <new>

#include "guest-kernel/arch/x86/cpu.h"
#include "guest-kernel/kernel/exit.h"
#include "guest-kernel/mm/page_alloc.h"

namespace mm {
namespace {

constexpr uint32_t kMagicUsed = 0x48454150;  // "HEAP"
constexpr uint32_t kMagicFree = 0x46524545;  // "FREE"
constexpr size_t kClasses = 8;               // 16 B .. 2 KiB payloads
constexpr size_t kClassSize[kClasses] = {16, 32, 64, 128, 256, 512, 1024, 2048};
constexpr uint32_t kLarge = 0xff;

struct Header {
  uint32_t magic;
  uint32_t size_class;  // index, or kLarge
  uint64_t size;        // requested bytes (large: pages in the upper half)
};
static_assert(sizeof(Header) == 16, "keeps payloads 16-byte aligned");

struct FreeBlock {
  Header header;
  FreeBlock* next;
};

FreeBlock* free_lists[kClasses];
HeapStats stats;

size_t class_for(size_t size) {
  for (size_t c = 0; c < kClasses; ++c)
    if (size <= kClassSize[c]) return c;
  return kClasses;
}

bool refill(size_t c) {
  const uint64_t page = alloc_page();
  if (!page) return false;
  ++stats.pages;
  const size_t block = sizeof(Header) + kClassSize[c];
  for (size_t off = 0; off + block <= kPageSize; off += block) {
    auto* b = reinterpret_cast<FreeBlock*>(page + off);
    b->header = {kMagicFree, static_cast<uint32_t>(c), 0};
    b->next = free_lists[c];
    free_lists[c] = b;
  }
  return true;
}

}  // namespace

void* kmalloc(size_t size) {
  if (size == 0) size = 1;
  const size_t c = class_for(size);
  if (c == kClasses) {
    if (size > (kMaxPhys >> 1)) return nullptr;
    const size_t pages = (size + sizeof(Header) + kPageSize - 1) / kPageSize;
    const uint64_t base = alloc_pages(pages);
    if (!base) return nullptr;
    stats.pages += pages;
    auto* h = reinterpret_cast<Header*>(base);
    *h = {kMagicUsed, kLarge, size};
    stats.bytes_in_use += size;
    ++stats.allocations;
    return h + 1;
  }
  if (!free_lists[c] && !refill(c)) return nullptr;
  FreeBlock* b = free_lists[c];
  if (b->header.magic != kMagicFree) panic("heap corrupted: free block %p has bad magic", static_cast<void*>(b));
  free_lists[c] = b->next;
  b->header = {kMagicUsed, static_cast<uint32_t>(c), size};
  stats.bytes_in_use += size;
  ++stats.allocations;
  return &b->header + 1;
}

void kfree(void* p) {
  if (!p) return;
  auto* h = static_cast<Header*>(p) - 1;
  if (h->magic == kMagicFree) panic("double free of %p", p);
  if (h->magic != kMagicUsed) panic("kfree of %p, which is not a heap block", p);
  stats.bytes_in_use -= h->size;
  --stats.allocations;
  if (h->size_class == kLarge) {
    const size_t pages = (h->size + sizeof(Header) + kPageSize - 1) / kPageSize;
    h->magic = kMagicFree;
    free_pages(reinterpret_cast<uint64_t>(h), pages);
    stats.pages -= pages;
    return;
  }
  if (h->size_class >= kClasses) panic("heap corrupted: block %p has class %u", p, h->size_class);
  auto* b = reinterpret_cast<FreeBlock*>(h);
  b->header = {kMagicFree, h->size_class, 0};
  b->next = free_lists[b->header.size_class];
  free_lists[b->header.size_class] = b;
}

HeapStats heap_stats() { return stats; }

}  // namespace mm

// The C++ allocation functions. Allocation failure panics: a kernel
// without exceptions has no bad_alloc to throw, and callers that can cope
// with failure use the nothrow forms or kmalloc.
void* operator new(size_t size) {
  void* p = mm::kmalloc(size);
  if (!p) panic("out of memory allocating %zu bytes", size);
  return p;
}
void* operator new[](size_t size) { return operator new(size); }
void* operator new(size_t size, const std::nothrow_t&) noexcept { return mm::kmalloc(size); }
void* operator new[](size_t size, const std::nothrow_t&) noexcept { return mm::kmalloc(size); }
void operator delete(void* p) noexcept { mm::kfree(p); }
void operator delete[](void* p) noexcept { mm::kfree(p); }
void operator delete(void* p, size_t) noexcept { mm::kfree(p); }
void operator delete[](void* p, size_t) noexcept { mm::kfree(p); }

extern "C" void* malloc(size_t size) { return mm::kmalloc(size); }
extern "C" void free(void* p) { mm::kfree(p); }
