// Dispatch of port I/O and MMIO exits to device models by address range.
// The bus is built before the vCPUs start and never changes afterwards, so
// lookups need no lock; each device guards its own state.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>

namespace vmm {

class IoDevice {
 public:
  virtual ~IoDevice() = default;
  // `offset` is relative to the device's base; `size` is 1, 2, 4 or 8 and
  // the access never crosses the end of the device's range.
  virtual void read(uint64_t offset, uint8_t* data, uint32_t size) = 0;
  virtual void write(uint64_t offset, const uint8_t* data, uint32_t size) = 0;
};

class IoBus {
 public:
  // Throws std::logic_error if the range is empty or overlaps another.
  void add(uint64_t base, uint64_t length, std::shared_ptr<IoDevice> device, std::string name);
  // False (and, for reads, all-ones data, as on real buses) when no device
  // claims the whole access.
  bool read(uint64_t addr, uint8_t* data, uint32_t size) const;
  bool write(uint64_t addr, const uint8_t* data, uint32_t size) const;

 private:
  struct Range {
    uint64_t length;
    std::shared_ptr<IoDevice> device;
    std::string name;
  };
  const Range* find(uint64_t addr, uint32_t size, uint64_t* offset) const;
  std::map<uint64_t, Range> ranges_;  // keyed by base
};

}  // namespace vmm
