#include "vmm/io_bus.h"

#include <cstring>
#include <stdexcept>

namespace vmm {

IoBus::IoBus() : ranges_(std::make_shared<const Map>()) {}

std::string IoBus::conflict(const Map& map, uint64_t base, uint64_t length, const std::string& name) {
  if (length == 0 || base + length < base) return "bad I/O range for " + name;
  auto next = map.lower_bound(base);
  if (next != map.end() && next->first < base + length) return name + " overlaps " + next->second.name;
  if (next != map.begin()) {
    auto prev = std::prev(next);
    if (prev->first + prev->second.length > base) return name + " overlaps " + prev->second.name;
  }
  return {};
}

void IoBus::add(uint64_t base, uint64_t length, std::shared_ptr<IoDevice> device, std::string name) {
  std::lock_guard lock(write_mu_);
  auto current = ranges_.load();
  if (std::string why = conflict(*current, base, length, name); !why.empty()) throw std::logic_error(why);
  auto next = std::make_shared<Map>(*current);
  next->emplace(base, Range{length, std::move(device), std::move(name)});
  ranges_.store(std::move(next));
}

bool IoBus::try_add(uint64_t base, uint64_t length, std::shared_ptr<IoDevice> device, std::string name) {
  std::lock_guard lock(write_mu_);
  auto current = ranges_.load();
  if (!conflict(*current, base, length, name).empty()) return false;
  auto next = std::make_shared<Map>(*current);
  next->emplace(base, Range{length, std::move(device), std::move(name)});
  ranges_.store(std::move(next));
  return true;
}

bool IoBus::remove(uint64_t base, const IoDevice* device) {
  std::lock_guard lock(write_mu_);
  auto current = ranges_.load();
  auto it = current->find(base);
  if (it == current->end() || it->second.device.get() != device) return false;
  auto next = std::make_shared<Map>(*current);
  next->erase(base);
  ranges_.store(std::move(next));
  return true;
}

const IoBus::Range* IoBus::find(const Map& map, uint64_t addr, uint32_t size, uint64_t* offset) {
  auto it = map.upper_bound(addr);
  if (it == map.begin()) return nullptr;
  --it;
  const uint64_t off = addr - it->first;
  if (off >= it->second.length || size > it->second.length - off) return nullptr;
  *offset = off;
  return &it->second;
}

bool IoBus::read(uint64_t addr, uint8_t* data, uint32_t size) const {
  // The snapshot keeps the map and its devices alive for this call.
  const auto snapshot = ranges_.load();
  uint64_t off;
  if (const Range* r = find(*snapshot, addr, size, &off)) {
    r->device->read(off, data, size);
    return true;
  }
  std::memset(data, 0xff, size);
  return false;
}

bool IoBus::write(uint64_t addr, const uint8_t* data, uint32_t size) const {
  const auto snapshot = ranges_.load();
  uint64_t off;
  if (const Range* r = find(*snapshot, addr, size, &off)) {
    r->device->write(off, data, size);
    return true;
  }
  return false;
}

}  // namespace vmm
