// The post-mortem port (boot/platform.h, kPostMortemPort): a 32-bit write
// carries the GPA of the guest's PostMortemInfo, which vmm/post_mortem.h
// copies; a 32-bit read returns kPostMortemMagic so the guest knows we
// listen. Other accesses are counted and otherwise ignored.
#pragma once

#include <atomic>
#include <cstdint>

#include "vmm/io_bus.h"
#include "vmm/post_mortem.h"

namespace vmm {

class PostMortemPort : public IoDevice {
 public:
  explicit PostMortemPort(PostMortem& post_mortem) : post_mortem_(post_mortem) {}

  void read(uint64_t offset, uint8_t* data, uint32_t size) override;
  void write(uint64_t offset, const uint8_t* data, uint32_t size) override;

  uint64_t ignored_writes() const { return ignored_.load(std::memory_order_relaxed); }

 private:
  PostMortem& post_mortem_;
  std::atomic<uint64_t> ignored_{0};
};

}  // namespace vmm
