// Guest physical RAM, backed by anonymous private host memory (ballooning
// and same-page merging later rely on it being anonymous and private).
//
// Every access on behalf of the guest goes through ptr()/read()/write(),
// which check the whole range against the RAM regions: the guest is
// hostile and its addresses and lengths are never trusted.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace vmm {

struct MemoryRegion {
  uint64_t gpa;
  uint64_t size;
  uint8_t* host;
};

class GuestMemory {
 public:
  // Lays out `size` bytes of RAM: all below the 32-bit MMIO hole.
  explicit GuestMemory(uint64_t size);
  ~GuestMemory();
  GuestMemory(const GuestMemory&) = delete;
  GuestMemory& operator=(const GuestMemory&) = delete;

  // The start of the 32-bit hole (PCI MMIO, IOAPIC, LAPIC): RAM stops here.
  static constexpr uint64_t kMmioHoleStart = 0xc0000000ull;
  static constexpr uint64_t kMaxSize = kMmioHoleStart;

  uint64_t size() const { return size_; }
  const std::vector<MemoryRegion>& regions() const { return regions_; }

  // Host address of [gpa, gpa + len) if the range lies entirely inside one
  // RAM region; nullptr otherwise (also on arithmetic overflow).
  uint8_t* ptr(uint64_t gpa, uint64_t len) const;
  bool contains(uint64_t gpa, uint64_t len) const { return ptr(gpa, len) != nullptr; }
  bool read(uint64_t gpa, void* dst, uint64_t len) const;
  bool write(uint64_t gpa, const void* src, uint64_t len);

 private:
  uint64_t size_;
  uint8_t* base_ = nullptr;
  std::vector<MemoryRegion> regions_;
};

}  // namespace vmm
