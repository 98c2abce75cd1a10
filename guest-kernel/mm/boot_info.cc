#include "guest-kernel/mm/boot_info.h"

namespace {
BootInfo g_boot_info;
}

const BootInfo& boot_info() { return g_boot_info; }

bool boot_info_init(const pvh::StartInfo* si) {
  if (!si || si->magic != pvh::kStartInfoMagic) return false;
  BootInfo& b = g_boot_info;
  if (si->cmdline_paddr) {
    const char* src = reinterpret_cast<const char*>(si->cmdline_paddr);
    size_t i = 0;
    for (; i + 1 < BootInfo::kMaxCmdline && src[i]; ++i) b.cmdline[i] = src[i];
    b.cmdline[i] = '\0';
  }
  if (si->version >= 1 && si->memmap_paddr) {
    const auto* map = reinterpret_cast<const pvh::MemmapEntry*>(si->memmap_paddr);
    for (uint32_t i = 0; i < si->memmap_entries && b.region_count < BootInfo::kMaxRegions; ++i)
      b.regions[b.region_count++] = map[i];
  }
  b.rsdp = si->rsdp_paddr;
  return true;
}
