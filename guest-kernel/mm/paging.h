// The kernel's own page tables, replacing the boot tables: RAM identity-
// mapped (2 MiB pages where possible), page 0 left unmapped so null
// pointers fault, MMIO windows mapped uncached on demand, and single 4 KiB
// pages unmappable (stack guard pages).
#pragma once

#include <stddef.h>
#include <stdint.h>

namespace mm {

// Builds the tables from the memory map and switches CR3 to them.
void paging_init();
// Identity-maps [phys, phys + size) uncached (device registers). Returns
// false if page tables cannot be allocated.
bool map_mmio(uint64_t phys, uint64_t size);
// Removes the mapping of one 4 KiB page (splitting a 2 MiB page if needed).
bool unmap_page(uint64_t va);
// Maps one 4 KiB page back (writable, identity).
bool map_page(uint64_t va);
// True if va is mapped (for tests and the backtrace walker).
bool is_mapped(uint64_t va);

// A kernel stack of `pages` pages with an unmapped guard page below it, so
// an overflow faults instead of corrupting memory. Returns its top (the
// initial stack pointer), or 0.
uint64_t alloc_stack(size_t pages);

}  // namespace mm
