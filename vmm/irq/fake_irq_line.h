// An IrqLine for unit tests and fuzz targets: records the level and how
// often it rose. Header-only; not linked into the VMM.
#pragma once

#include <atomic>
#include <cstdint>

#include "vmm/irq/irq_line.h"

namespace vmm {

class FakeIrqLine final : public IrqLine {
 public:
  explicit FakeIrqLine(uint32_t gsi = 11) : gsi_(gsi) {}
  void set_level(bool high) override {
    if (high && !level) ++rises;
    level = high;
    ++changes;
  }
  uint32_t gsi() const override { return gsi_; }

  std::atomic<bool> level{false};
  std::atomic<uint64_t> rises{0};
  std::atomic<uint64_t> changes{0};

 private:
  uint32_t gsi_;
};

}  // namespace vmm
