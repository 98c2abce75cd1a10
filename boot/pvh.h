// The PVH boot ABI (Xen's arch-x86/hvm/start_info.h, version 1), shared by
// the VMM that builds the start info and the kernel that reads it.
// Freestanding: no library headers beyond <stdint.h>.
#pragma once

#include <stdint.h>

namespace pvh {

// ELF note (name "Xen") whose descriptor is the 32-bit entry point.
constexpr uint32_t kElfNotePhys32Entry = 18;
constexpr uint32_t kStartInfoMagic = 0x336ec578;

struct StartInfo {
  uint32_t magic;
  uint32_t version;  // 1: memmap fields valid
  uint32_t flags;
  uint32_t nr_modules;
  uint64_t modlist_paddr;
  uint64_t cmdline_paddr;
  uint64_t rsdp_paddr;
  uint64_t memmap_paddr;
  uint32_t memmap_entries;
  uint32_t reserved;
};
static_assert(sizeof(StartInfo) == 56, "hvm_start_info layout");

// E820 types.
enum MemType : uint32_t { kRam = 1, kReserved = 2, kAcpi = 3, kNvs = 4, kUnusable = 5 };

struct MemmapEntry {
  uint64_t addr;
  uint64_t size;
  uint32_t type;
  uint32_t reserved;
};
static_assert(sizeof(MemmapEntry) == 24, "hvm_memmap_table_entry layout");

}  // namespace pvh
