#include "vmm/guest_memory.h"

#include <sys/mman.h>

#include <cerrno>
#include <cstring>
#include <stdexcept>
#include <string>

namespace vmm {

// The bitmap is sized only for a size the checks below accept.
GuestMemory::GuestMemory(uint64_t size)
    : size_(size), vmm_dirty_(size <= kMaxSize ? size / snapshot::kPageSize : 0) {
  if (size == 0 || size > kMaxSize || size % 4096)
    throw std::invalid_argument("guest RAM size must be a non-zero multiple of 4 KiB up to 3 GiB");
  // MAP_NORESERVE: untouched guest pages cost the host nothing.
  void* p = ::mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE,
                   -1, 0);
  if (p == MAP_FAILED)
    throw std::runtime_error("cannot map " + std::to_string(size >> 20) + " MiB of guest RAM: " +
                             std::strerror(errno));
  base_ = static_cast<uint8_t*>(p);
  regions_.push_back({0, size, base_});
}

GuestMemory::~GuestMemory() {
  if (base_) ::munmap(base_, size_);
}

uint8_t* GuestMemory::ptr(uint64_t gpa, uint64_t len) const {
  for (const auto& r : regions_) {
    // Written so that no sum can overflow: gpa - r.gpa and r.size - off.
    if (gpa < r.gpa) continue;
    const uint64_t off = gpa - r.gpa;
    if (off >= r.size) continue;
    if (len > r.size - off) return nullptr;
    return r.host + off;
  }
  return nullptr;
}

bool GuestMemory::read(uint64_t gpa, void* dst, uint64_t len) const {
  const uint8_t* p = ptr(gpa, len);
  if (!p) return false;
  std::memcpy(dst, p, len);
  return true;
}

bool GuestMemory::write(uint64_t gpa, const void* src, uint64_t len) {
  uint8_t* p = ptr(gpa, len);
  if (!p) return false;
  std::memcpy(p, src, len);
  mark_dirty(gpa, len);
  return true;
}

}  // namespace vmm
