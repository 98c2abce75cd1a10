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

// Returns a zeroed page's physical (= virtual) address, or 0 if none is free.
uint64_t alloc_page();
void free_page(uint64_t phys);
// `count` contiguous zeroed pages, or 0.
uint64_t alloc_pages(size_t count);
void free_pages(uint64_t phys, size_t count);

size_t free_page_count();
size_t total_page_count();  // RAM pages handed to the allocator at boot

}  // namespace mm
