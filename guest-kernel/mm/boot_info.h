// What the kernel keeps from the PVH start info: the memory map and the
// command line, copied out at boot so the memory they lived in can be
// reused (wherever the loader put them: our VMM, QEMU or the EFI loader).
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "boot/pvh.h"

// Trivially constructible on purpose: it is filled before global
// constructors run, and must not be reset by them.
struct BootInfo {
  static constexpr size_t kMaxRegions = 64;
  static constexpr size_t kMaxCmdline = 4096;
  pvh::MemmapEntry regions[kMaxRegions];
  size_t region_count;
  char cmdline[kMaxCmdline];
  uint64_t rsdp;
};

// Copies what the start info points to; false if it is unusable.
bool boot_info_init(const pvh::StartInfo* si);
const BootInfo& boot_info();
