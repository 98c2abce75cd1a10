#include "vmm/io_bus.h"

#include <cstring>
#include <stdexcept>

namespace vmm {

void IoBus::add(uint64_t base, uint64_t length, std::shared_ptr<IoDevice> device, std::string name) {
  if (length == 0 || base + length < base) throw std::logic_error("bad I/O range for " + name);
  auto next = ranges_.lower_bound(base);
  if (next != ranges_.end() && next->first < base + length)
    throw std::logic_error(name + " overlaps " + next->second.name);
  if (next != ranges_.begin()) {
    auto prev = std::prev(next);
    if (prev->first + prev->second.length > base) throw std::logic_error(name + " overlaps " + prev->second.name);
  }
  ranges_.emplace(base, Range{length, std::move(device), std::move(name)});
}

const IoBus::Range* IoBus::find(uint64_t addr, uint32_t size, uint64_t* offset) const {
  auto it = ranges_.upper_bound(addr);
  if (it == ranges_.begin()) return nullptr;
  --it;
  const uint64_t off = addr - it->first;
  if (off >= it->second.length || size > it->second.length - off) return nullptr;
  *offset = off;
  return &it->second;
}

bool IoBus::read(uint64_t addr, uint8_t* data, uint32_t size) const {
  uint64_t off;
  if (const Range* r = find(addr, size, &off)) {
    r->device->read(off, data, size);
    return true;
  }
  std::memset(data, 0xff, size);
  return false;
}

bool IoBus::write(uint64_t addr, const uint8_t* data, uint32_t size) const {
  uint64_t off;
  if (const Range* r = find(addr, size, &off)) {
    r->device->write(off, data, size);
    return true;
  }
  return false;
}

}  // namespace vmm
