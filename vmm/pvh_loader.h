// Loading a PVH kernel: an ELF64 image whose XEN_ELFNOTE_PHYS32_ENTRY note
// names a 32-bit entry point, and the hvm_start_info the kernel finds in
// %ebx. The image comes from the user, so every field is checked; a bad
// image is a LoadError with a one-line reason, never a crash.
#pragma once

#include <cstdint>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

#include "boot/pvh.h"
#include "vmm/guest_memory.h"

namespace vmm {

class LoadError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

struct PvhKernel {
  uint32_t entry;        // 32-bit protected-mode entry point
  uint64_t load_start;   // lowest physical address loaded
  uint64_t load_end;     // one past the highest (bss included)
};

// Where the boot data lives in guest RAM: below 1 MiB, under the kernel.
struct BootLayout {
  static constexpr uint64_t kStartInfo = 0x6000;
  static constexpr uint64_t kMemmap = 0x6100;
  static constexpr uint32_t kMaxMemmapEntries = 16;
  static constexpr uint64_t kCmdline = 0x7000;
  static constexpr uint64_t kCmdlineMax = 4096;  // including the NUL
  // Kernels must load at or above 1 MiB: lower memory holds the boot data
  // and the legacy VGA/BIOS hole.
  static constexpr uint64_t kKernelMin = 0x100000;
  // Reserved for KVM's TSS and identity-map pages (used on Intel hosts).
  static constexpr uint64_t kKvmReservedStart = 0xfffbc000;
  static constexpr uint64_t kKvmReservedSize = 0x4000;
};

// Validates `image` and copies its PT_LOAD segments into guest RAM.
PvhKernel load_pvh_kernel(std::span<const uint8_t> image, GuestMemory& mem);

// Reads a kernel file whole (LoadError if it cannot be read).
std::vector<uint8_t> read_kernel_file(const std::string& path);

// The E820-style map the guest sees for this much RAM.
std::vector<pvh::MemmapEntry> guest_memory_map(const GuestMemory& mem);

// Writes the start info, the memory map and the command line into guest
// RAM; returns the start info's physical address (the guest's %ebx).
uint64_t write_start_info(GuestMemory& mem, const std::string& cmdline);

}  // namespace vmm
