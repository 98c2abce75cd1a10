// libFuzzer target: arbitrary bytes as a kernel image for the PVH loader.
// Whatever the file holds, the loader must either load it inside guest RAM
// or throw LoadError; ASan and UBSan watch every read of the image.
#include <cstddef>
#include <cstdint>
#include <span>

#include "vmm/guest_memory.h"
#include "vmm/pvh_loader.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static vmm::GuestMemory mem(16 << 20);
  try {
    const vmm::PvhKernel k = vmm::load_pvh_kernel(std::span<const uint8_t>(data, size), mem);
    // A loaded kernel lies inside guest RAM, at or above 1 MiB.
    if (k.load_start < vmm::BootLayout::kKernelMin || !mem.contains(k.load_start, k.load_end - k.load_start))
      __builtin_trap();
  } catch (const vmm::LoadError&) {
  }
  return 0;
}
