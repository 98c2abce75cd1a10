#include "guest-kernel/mm/paging.h"

#include "guest-kernel/arch/x86/cpu.h"
#include "guest-kernel/arch/x86/post_mortem.h"
#include "guest-kernel/kernel/exit.h"
#include "guest-kernel/mm/boot_info.h"
#include "guest-kernel/mm/page_alloc.h"

namespace mm {
namespace {

constexpr uint64_t kPresent = 1, kWrite = 2, kPwt = 8, kPcd = 16, kHuge = 0x80, kNx = 1ull << 63;
constexpr uint64_t kAddrMask = 0x000ffffffffff000ull;
constexpr uint64_t k2M = 2ull << 20;

uint64_t* pml4 = nullptr;

uint64_t* table_at(uint64_t entry) { return reinterpret_cast<uint64_t*>(entry & kAddrMask); }

// Returns the next-level table for `entry`, creating it if absent.
uint64_t* next_table(uint64_t& entry) {
  if (!(entry & kPresent)) {
    const uint64_t page = alloc_page();
    if (!page) return nullptr;
    entry = page | kPresent | kWrite;
  }
  return table_at(entry);
}

// The page-directory entry covering va, creating the upper levels.
uint64_t* pd_entry(uint64_t va) {
  uint64_t* pdpt = next_table(pml4[(va >> 39) & 511]);
  if (!pdpt) return nullptr;
  uint64_t* pd = next_table(pdpt[(va >> 30) & 511]);
  if (!pd) return nullptr;
  return &pd[(va >> 21) & 511];
}

// Turns a 2 MiB mapping into a table of 512 4 KiB mappings with the same
// attributes, so one of them can change.
uint64_t* split(uint64_t* pde) {
  if (!(*pde & kHuge)) return (*pde & kPresent) ? table_at(*pde) : nullptr;
  const uint64_t page = alloc_page();
  if (!page) return nullptr;
  uint64_t* pt = reinterpret_cast<uint64_t*>(page);
  const uint64_t base = *pde & 0x000fffffffe00000ull;
  const uint64_t flags = *pde & (kWrite | kPwt | kPcd | kNx);
  for (int i = 0; i < 512; ++i) pt[i] = (base + i * kPageSize) | flags | kPresent;
  *pde = page | kPresent | kWrite;
  return pt;
}

void map_2m(uint64_t va, uint64_t flags) {
  uint64_t* pde = pd_entry(va);
  if (!pde) panic("out of memory for page tables");
  *pde = va | flags | kPresent | kHuge;
}

// The 4 KiB page-table entry for va, creating tables and splitting a
// 2 MiB mapping as needed.
uint64_t* pte_for(uint64_t va) {
  uint64_t* pde = pd_entry(va);
  if (!pde) return nullptr;
  if (!(*pde & kPresent)) {
    const uint64_t page = alloc_page();
    if (!page) return nullptr;
    *pde = page | kPresent | kWrite;
  }
  uint64_t* pt = split(pde);
  return pt ? &pt[(va >> 12) & 511] : nullptr;
}

}  // namespace

void paging_init() {
  pml4 = reinterpret_cast<uint64_t*>(alloc_page());
  if (!pml4) panic("no memory for the page tables");
  const BootInfo& b = boot_info();
  // Every RAM region, rounded out to 2 MiB: the gaps between regions below
  // 1 MiB are legacy ROM/reserved memory that is harmless to map.
  for (size_t i = 0; i < b.region_count; ++i) {
    const pvh::MemmapEntry& r = b.regions[i];
    if (r.type != pvh::kRam && r.type != pvh::kAcpi && r.type != pvh::kNvs) continue;
    const uint64_t start = r.addr & ~(k2M - 1);
    uint64_t end = (r.addr + r.size + k2M - 1) & ~(k2M - 1);
    if (end > kMaxPhys) end = kMaxPhys;
    for (uint64_t va = start; va < end; va += k2M) map_2m(va, kWrite);
  }
  // The first 2 MiB always: the kernel and the low boot data live there.
  map_2m(0, kWrite);
  // The LAPIC and IOAPIC, and the VMM's time page below 1 MiB.
  if (!map_mmio(0xfec00000, 0x1000) || !map_mmio(0xfee00000, 0x1000)) panic("cannot map the APICs");
  // Page 0 unmapped: a null pointer dereference faults.
  if (!unmap_page(0)) panic("cannot unmap page 0");
  x86::write_cr3(reinterpret_cast<uint64_t>(pml4));
}

bool map_mmio(uint64_t phys, uint64_t size) {
  const uint64_t end = (phys + size + k2M - 1) & ~(k2M - 1);
  for (uint64_t va = phys & ~(k2M - 1); va < end; va += k2M) {
    uint64_t* pde = pd_entry(va);
    if (!pde) return false;
    if (*pde & kPresent) {
      if (*pde & kHuge) *pde |= kPcd | kPwt;  // already mapped: make it uncached
      continue;
    }
    *pde = va | kPresent | kWrite | kPcd | kPwt | kHuge | kNx;
    x86::invlpg(va);
  }
  x86::post_mortem::tables_changed();
  return true;
}

bool unmap_page(uint64_t va) {
  uint64_t* pte = pte_for(va);
  if (!pte) return false;
  *pte = 0;
  x86::invlpg(va);
  x86::post_mortem::tables_changed();
  return true;
}

bool map_page(uint64_t va) {
  uint64_t* pte = pte_for(va);
  if (!pte) return false;
  *pte = (va & kAddrMask) | kPresent | kWrite;
  x86::invlpg(va);
  x86::post_mortem::tables_changed();
  return true;
}

bool is_mapped(uint64_t va) {
  uint64_t e = pml4[(va >> 39) & 511];
  if (!(e & kPresent)) return false;
  e = table_at(e)[(va >> 30) & 511];
  if (!(e & kPresent)) return false;
  e = table_at(e)[(va >> 21) & 511];
  if (!(e & kPresent)) return false;
  if (e & kHuge) return true;
  return table_at(e)[(va >> 12) & 511] & kPresent;
}

uint64_t alloc_stack(size_t pages) {
  const uint64_t base = alloc_pages(pages + 1);
  if (!base) return 0;
  if (!unmap_page(base)) return 0;  // the guard page
  return base + (pages + 1) * kPageSize;
}

}  // namespace mm
