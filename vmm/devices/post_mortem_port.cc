#include "vmm/devices/post_mortem_port.h"

#include <cstring>

#include "boot/platform.h"

namespace vmm {

void PostMortemPort::read(uint64_t offset, uint8_t* data, uint32_t size) {
  read_port_signature(platform::kPostMortemMagic, offset, data, size);
}

void PostMortemPort::write(uint64_t offset, const uint8_t* data, uint32_t size) {
  uint32_t gpa = 0;
  if (offset != 0 || size != sizeof gpa) {
    ignored_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  std::memcpy(&gpa, data, sizeof gpa);
  // A refused report is remembered by PostMortem and shown in the crash
  // report; the guest is not told (it has nothing better to do).
  post_mortem_.take(gpa);
}

}  // namespace vmm
