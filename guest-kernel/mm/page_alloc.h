// The physical page allocator: a bitmap of 4 KiB frames fed from the PVH
// memory map. It can count and hand out free pages one at a time (what the
// balloon driver needs) or as contiguous runs (stacks, DMA buffers).
#pragma once

#include <stddef.h>
#include <stdint.h>

namespace mm {

constexpr uint64_t kPageSize = 4096;
constexpr uint64_t kMaxPhys = 4ull << 30;  // the allocator manages RAM below 4 GiB

// Frees every RAM page of the memory map except those below 1 MiB and the
// kernel image.
void page_alloc_init();

// Allocation flags (bits); the default is a zeroed page that may call the
// low-memory handler.
enum AllocFlags : unsigned {
  kAllocNoZero = 1u << 0,     // leave the contents (the balloon hands pages to the host unread)
  kAllocNoReclaim = 1u << 1,  // fail rather than call the low-memory handler
};

// Returns a zeroed page's physical (= virtual) address, or 0 if none is free.
uint64_t alloc_page(unsigned flags = 0);
void free_page(uint64_t phys);
// `count` contiguous zeroed pages, or 0.
uint64_t alloc_pages(size_t count, unsigned flags = 0);
void free_pages(uint64_t phys, size_t count);

// The low-memory hook. When an allocation finds no free run, the handler
// may free pages it holds (with free_pages) and returns how many it freed;
// the allocation is retried for as long as the handler frees something.
// It runs synchronously inside whatever allocated (a command, the event
// loop, operator new), so it must not allocate or block, and it is never
// re-entered. One handler: the virtio-balloon driver's, which gives
// ballooned pages back under VIRTIO_BALLOON_F_DEFLATE_ON_OOM (virtio 1.2
// §5.5.6.1). nullptr removes it.
using LowMemoryHandler = size_t (*)(size_t pages_wanted, void* context);
void set_low_memory_handler(LowMemoryHandler fn, void* context);
// The handler now set (nullptr if none) and its context (self-tests).
LowMemoryHandler low_memory_handler(void** context);

size_t free_page_count();
size_t total_page_count();  // RAM pages handed to the allocator at boot

}  // namespace mm
