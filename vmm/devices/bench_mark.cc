#include "vmm/devices/bench_mark.h"

#include <cstring>

#include "boot/platform.h"

namespace vmm {

void BenchMark::read(uint64_t offset, uint8_t* data, uint32_t size) {
  read_port_signature(platform::kBenchMarkPresent, offset, data, size);
}

void BenchMark::write(uint64_t offset, const uint8_t* data, uint32_t size) {
  uint32_t value = 0;
  if (offset != 0 || size != sizeof value) {
    ignored_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  std::memcpy(&value, data, sizeof value);
  if (value != platform::kBenchMarkStart && value != platform::kBenchMarkEnd) {
    ignored_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  on_mark_(value);
}

}  // namespace vmm
