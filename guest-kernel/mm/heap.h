// The kernel heap behind operator new/delete and malloc/free: size classes
// from 16 bytes to 2 KiB carved out of pages, and whole page runs above.
// Each block has a 16-byte header with a magic word, so a double free or a
// stray pointer panics instead of corrupting the heap. Not for use from
// interrupt handlers (they hand work to the event loop instead).
#pragma once

#include <stddef.h>
#include <stdint.h>

namespace mm {

void* kmalloc(size_t size);
void kfree(void* p);

struct HeapStats {
  size_t bytes_in_use;  // as requested by callers
  size_t allocations;   // live blocks
  size_t pages;         // pages taken from the page allocator
};
HeapStats heap_stats();

}  // namespace mm
