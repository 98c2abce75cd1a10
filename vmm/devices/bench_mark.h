// The benchmark mark port (boot/platform.h, kBenchMarkPort): the guest
// writes kBenchMarkStart when its measurement begins and kBenchMarkEnd when
// it ends; the Machine then snapshots this VM's counters (vmm/bench_window.h)
// so that `--stats` reports the window alone, without boot and teardown.
// A 32-bit read at the port returns kBenchMarkPresent. Any other write
// (another value, a partial or offset access) is the guest's mistake: it is
// counted and otherwise ignored.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>

#include "vmm/io_bus.h"

namespace vmm {

class BenchMark : public IoDevice {
 public:
  // Runs on the vCPU thread that wrote the mark, with
  // platform::kBenchMarkStart or platform::kBenchMarkEnd.
  using OnMark = std::function<void(uint32_t what)>;
  explicit BenchMark(OnMark on_mark) : on_mark_(std::move(on_mark)) {}

  void read(uint64_t offset, uint8_t* data, uint32_t size) override;
  void write(uint64_t offset, const uint8_t* data, uint32_t size) override;

  uint64_t ignored_writes() const { return ignored_.load(std::memory_order_relaxed); }

 private:
  OnMark on_mark_;
  std::atomic<uint64_t> ignored_{0};
};

}  // namespace vmm
