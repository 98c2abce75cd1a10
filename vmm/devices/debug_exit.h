// The debug-exit port: a guest write ends the VM with that status
// (boot/platform.h). Same port as QEMU's isa-debug-exit.
#pragma once

#include <functional>

#include "vmm/io_bus.h"

namespace vmm {

class DebugExit : public IoDevice {
 public:
  explicit DebugExit(std::function<void(uint32_t status)> on_exit) : on_exit_(std::move(on_exit)) {}
  void read(uint64_t, uint8_t* data, uint32_t size) override;
  void write(uint64_t offset, const uint8_t* data, uint32_t size) override;

 private:
  std::function<void(uint32_t)> on_exit_;
};

}  // namespace vmm
