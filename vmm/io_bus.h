// Dispatch of port I/O and MMIO exits to device models by address range.
//
// Most ranges are added before the vCPUs start, but PCI BARs move at run
// time when the guest reprograms them. vCPU threads dispatch concurrently,
// so the range map is an immutable snapshot swapped atomically (RCU style):
// a lookup takes a reference to the current snapshot (a few atomic
// operations, never the writer lock); a change copies the map under a
// writer lock and publishes the copy. A
// device may therefore change the bus from inside its own handler (a PCI
// config write that moves a BAR) without deadlocking, and a device removed
// while another vCPU is still inside it stays alive until that call
// returns. Each device guards its own state.
#pragma once

#include <atomic>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <string>

namespace vmm {

class IoDevice {
 public:
  virtual ~IoDevice() = default;
  // `offset` is relative to the device's base; `size` is 1, 2, 4 or 8 and
  // the access never crosses the end of the device's range.
  virtual void read(uint64_t offset, uint8_t* data, uint32_t size) = 0;
  virtual void write(uint64_t offset, const uint8_t* data, uint32_t size) = 0;
};

class IoBus {
 public:
  IoBus();
  // Throws std::logic_error if the range is empty or overlaps another: for
  // the VMM's own setup, where that is a bug.
  void add(uint64_t base, uint64_t length, std::shared_ptr<IoDevice> device, std::string name);
  // The same, but returns false instead of throwing: for ranges the guest
  // chooses (BARs), where an overlap is the guest's mistake, not ours.
  bool try_add(uint64_t base, uint64_t length, std::shared_ptr<IoDevice> device, std::string name);
  // Removes the range that starts at `base` if `device` owns it.
  bool remove(uint64_t base, const IoDevice* device);
  // False (and, for reads, all-ones data, as on real buses) when no device
  // claims the whole access.
  bool read(uint64_t addr, uint8_t* data, uint32_t size) const;
  bool write(uint64_t addr, const uint8_t* data, uint32_t size) const;

 private:
  struct Range {
    uint64_t length;
    std::shared_ptr<IoDevice> device;
    std::string name;
  };
  using Map = std::map<uint64_t, Range>;  // keyed by base
  // Why the range cannot be added to `map`, or empty if it can.
  static std::string conflict(const Map& map, uint64_t base, uint64_t length, const std::string& name);
  // The device claiming [addr, addr + size) in `map`, and the offset.
  static const Range* find(const Map& map, uint64_t addr, uint32_t size, uint64_t* offset);

  std::mutex write_mu_;                      // serializes writers only
  std::atomic<std::shared_ptr<const Map>> ranges_;
};

// For a platform port that announces itself (boot/platform.h): a read
// returns the 32-bit signature's bytes at their offsets (little-endian)
// and zeroes past them, so any width of read is answered consistently.
inline void read_port_signature(uint32_t signature, uint64_t offset, uint8_t* data, uint32_t size) {
  for (uint32_t i = 0; i < size; ++i) {
    const uint64_t at = offset + i;
    data[i] = at < sizeof signature ? static_cast<uint8_t>(signature >> (8 * at)) : 0;
  }
}

}  // namespace vmm
