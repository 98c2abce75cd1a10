// Guest physical RAM, backed by anonymous private host memory (ballooning
// and same-page merging later rely on it being anonymous and private).
//
// Every access on behalf of the guest goes through ptr()/read()/write(),
// which check the whole range against the RAM regions: the guest is
// hostile and its addresses and lengths are never trusted.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <vector>

#include "vmm/snapshot/dirty_bitmap.h"

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

  // ---- Writes KVM's dirty log cannot see (vmm/snapshot/README.md) --------
  // KVM logs the guest's own stores (KVM_MEM_LOG_DIRTY_PAGES), not the
  // VMM's: device threads writing guest RAM through host pointers (virtio
  // used rings and receive buffers, virtio-blk reads by io_uring, e1000
  // write-backs, the time page) bypass the guest's page tables. Every such
  // writer calls mark_dirty() (write() does it itself); while tracking is
  // on, the pages land in vmm_dirty(), which an incremental snapshot ORs
  // with KVM's log. Costs one relaxed load while tracking is off.
  void mark_dirty(uint64_t gpa, uint64_t len) {
    if (tracking_.load(std::memory_order_relaxed)) vmm_dirty_.set_bytes(gpa, len);
  }
  void set_dirty_tracking(bool on) { tracking_.store(on, std::memory_order_seq_cst); }
  bool dirty_tracking() const { return tracking_.load(); }
  snapshot::DirtyBitmap& vmm_dirty() { return vmm_dirty_; }

 private:
  uint64_t size_;
  uint8_t* base_ = nullptr;
  std::vector<MemoryRegion> regions_;
  std::atomic<bool> tracking_{false};
  snapshot::DirtyBitmap vmm_dirty_;  // pages of gpa 0 .. size_
};

}  // namespace vmm
