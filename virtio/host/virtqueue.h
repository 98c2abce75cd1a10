// The device side of one split virtqueue (virtio 1.2 §2.7) over guest RAM.
//
// The guest is hostile (DESIGN.md decision 9): every index, address, length
// and flag it writes into the rings is checked before use, each descriptor
// is read exactly once (so a guest rewriting the table under us cannot make
// a checked value change), and the first broken rule marks the queue broken
// with a reason. A broken queue pops nothing and writes nothing to guest
// memory until reset(); the transport turns broken() into
// DEVICE_NEEDS_RESET. Nothing the guest writes can crash the VMM.
//
// Threading: a Virtqueue belongs to one thread at a time (the device's I/O
// thread); it is not internally locked. The guest driver runs concurrently
// on vCPUs, which is what the memory fences inside are for.
//
// Typical device loop (Linux vhost's pattern, which loses no kick):
//
//   for (;;) {
//     q.disable_notification();
//     while (q.pop(chain) == PopResult::kChain) { ...; q.push_used(chain.head(), n); }
//     if (q.should_notify()) irqfd.trigger();
//     if (q.broken()) { transport.needs_reset(); break; }
//     if (!q.enable_notification()) break;   // nothing new: wait for the kick
//   }
#pragma once

#include <cstddef>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "virtio/ring.h"
#include "vmm/guest_memory.h"

namespace vmm {

// Why a queue configuration was refused at enable time.
enum class VirtqueueConfigError {
  kNone = 0,
  kBadSize,              // 0, not a power of two, or above 32768
  kDescMisaligned,       // descriptor table not 16-byte aligned
  kDescOutsideRam,       // [desc, desc + 16N) not inside one RAM region
  kAvailMisaligned,      // available ring not 2-byte aligned
  kAvailOutsideRam,      // [avail, avail + 6 + 2N) not inside RAM
  kUsedMisaligned,       // used ring not 4-byte aligned
  kUsedOutsideRam,       // [used, used + 6 + 8N) not inside RAM
};
const char* to_string(VirtqueueConfigError e);

// The rule a guest broke; the queue is broken from then on.
enum class VirtqueueError {
  kNone = 0,
  kAvailIdxAhead,            // avail idx more than queue size past the last seen
  kHeadOutOfRange,           // avail ring entry >= queue size
  kNextOutOfRange,           // next >= queue size (or >= indirect table entries)
  kChainTooLong,             // more descriptors than the queue size (a loop)
  kBufferOutsideRam,         // [addr, addr + len) not inside one RAM region
  kChainTooLarge,            // total length of the chain above 2^32 - 1
  kReadableAfterWritable,    // device-readable descriptor after a writable one
  kIndirectNotNegotiated,    // INDIRECT without VIRTIO_F_INDIRECT_DESC
  kIndirectWithNext,         // INDIRECT and NEXT on one descriptor
  kNestedIndirect,           // INDIRECT inside an indirect table
  kIndirectBadLength,        // table length 0 or not a multiple of 16
  kIndirectTooLong,          // table holds more than queue size descriptors
  kIndirectOutsideRam,       // the table itself is not inside RAM
  kTooManyInFlight,          // more chains in flight than the queue size
};
const char* to_string(VirtqueueError e);

struct VirtqueueConfig {
  uint16_t size = 0;  // number of entries; 32768 fits in 16 bits
  uint64_t desc = 0;  // queue_desc: descriptor table
  uint64_t avail = 0; // queue_driver: available ring
  uint64_t used = 0;  // queue_device: used ring
  bool event_idx = false;       // VIRTIO_F_EVENT_IDX negotiated
  bool indirect_desc = false;   // VIRTIO_F_INDIRECT_DESC negotiated
};

// One guest buffer of a chain, already checked: [gpa, gpa + len) lies inside
// guest RAM and `host` maps it. Never zero-length (those are dropped).
struct VirtqBuffer {
  uint64_t gpa;
  uint32_t len;
  uint8_t* host;
};

// A validated descriptor chain: its device-readable buffers, then its
// device-writable ones (the spec's order, enforced). Reuse one Chain across
// pop() calls: its storage is kept, so the hot path does not allocate.
class VirtqChain {
 public:
  uint16_t head() const { return head_; }
  std::span<const VirtqBuffer> readable() const { return {bufs_.data(), n_readable_}; }
  std::span<const VirtqBuffer> writable() const {
    return {bufs_.data() + n_readable_, bufs_.size() - n_readable_};
  }
  uint32_t readable_bytes() const { return readable_bytes_; }
  uint32_t writable_bytes() const { return writable_bytes_; }
  // Number of descriptors the chain used (direct and indirect, including
  // zero-length ones): a device's seg_max style limits apply to this.
  uint32_t descriptors() const { return descriptors_; }

  // Copies up to `len` bytes of the readable part, starting `offset` bytes
  // into it, to `dst`; returns how many were copied (fewer at its end).
  size_t read(size_t offset, void* dst, size_t len) const;
  // Copies up to `len` bytes from `src` into the writable part, starting
  // `offset` bytes into it; returns how many were copied.
  size_t write(size_t offset, const void* src, size_t len) const;

 private:
  friend class Virtqueue;
  void clear() {
    bufs_.clear();
    n_readable_ = 0;
    readable_bytes_ = writable_bytes_ = descriptors_ = 0;
  }
  std::vector<VirtqBuffer> bufs_;
  size_t n_readable_ = 0;
  uint32_t readable_bytes_ = 0;
  uint32_t writable_bytes_ = 0;
  uint32_t descriptors_ = 0;
  uint16_t head_ = 0;
};

enum class PopResult { kEmpty, kChain, kBroken };

// The device-side indices of a queue, for snapshots (vmm/snapshot): with
// the rings in guest RAM and the transport's configuration, all a queue is.
struct VirtqueueState {
  uint16_t last_avail = 0;
  uint16_t used_idx = 0;
  uint16_t signalled_used = 0;
  bool notify_enabled = true;
  uint32_t in_flight = 0;  // popped, not pushed: a snapshot needs 0
};

class Virtqueue {
 public:
  explicit Virtqueue(GuestMemory& mem) : mem_(mem) {}
  Virtqueue(const Virtqueue&) = delete;
  Virtqueue& operator=(const Virtqueue&) = delete;

  // queue_enable = 1: checks the configuration against guest RAM and the
  // alignment rules and starts the queue at index 0. On error the queue stays
  // disabled; the transport should set DEVICE_NEEDS_RESET.
  VirtqueueConfigError enable(const VirtqueueConfig& cfg);
  // Device or queue reset: forgets the configuration, the indices and any
  // broken state. Writes nothing to guest memory.
  void reset();

  bool enabled() const { return enabled_; }
  bool broken() const { return error_ != VirtqueueError::kNone; }
  VirtqueueError error() const { return error_; }
  // Human-readable reason for broken(), with the offending values.
  const std::string& broken_reason() const { return reason_; }
  uint16_t size() const { return size_; }

  // Takes the next available chain into `chain` (its storage is reused).
  // kEmpty: nothing new. kBroken: this chain (or an earlier one) broke a
  // rule; see error(). A queue that is not enabled reads as empty.
  PopResult pop(VirtqChain& chain);

  // Returns a chain to the driver: `bytes_written` into its writable part.
  // Publishes the new used index with release ordering. False (and nothing
  // written) when broken, disabled, or no chain is in flight.
  bool push_used(uint16_t head, uint32_t bytes_written);

  // After one or more push_used(): must the driver be interrupted? Honours
  // used_event with EVENT_IDX and VIRTQ_AVAIL_F_NO_INTERRUPT without it.
  bool should_notify();

  // Driver -> device notifications (kicks). disable_notification() is a
  // hint that the device is polling; enable_notification() asks for kicks
  // again and returns true if buffers arrived meanwhile (keep polling then,
  // or a kick may have been skipped).
  void disable_notification();
  bool enable_notification();
  // The spelling the transport may prefer; the return value is the same.
  bool set_notification(bool enable) {
    if (enable) return enable_notification();
    disable_notification();
    return false;
  }

  // Indices, for tests, statistics and (later) snapshots.
  uint16_t next_avail() const { return last_avail_; }
  uint16_t next_used() const { return used_idx_; }
  uint32_t in_flight() const { return in_flight_; }
  VirtqueueState state() const;
  // After enable() on a restored machine: continues at the saved indices.
  // False (nothing changed) unless enabled, not broken and nothing in
  // flight on either side.
  bool restore_state(const VirtqueueState& s);

 private:
  // Reads of the rings; the addresses were checked at enable time.
  uint16_t load_avail_idx() const;
  uint16_t load_avail_flags() const;
  uint16_t load_used_event() const;
  uint16_t avail_ring_entry(uint16_t idx) const;
  void store_avail_event(uint16_t v);
  void store_used_flags(uint16_t v);

  PopResult fail(VirtqueueError e, std::string reason);
  // Walks the chain starting at `head`; fills `chain` or breaks the queue.
  bool walk(uint16_t head, VirtqChain& chain);
  // Adds one data descriptor (already read) to the chain.
  bool add_buffer(const virtio::virtq_desc& d, bool& seen_writable, uint64_t& total, VirtqChain& chain,
                  const char* table, uint32_t index);

  GuestMemory& mem_;
  bool enabled_ = false;
  uint16_t size_ = 0;
  bool event_idx_ = false;
  bool indirect_desc_ = false;
  uint8_t* desc_ = nullptr;   // host addresses of the three parts
  uint8_t* avail_ = nullptr;
  uint8_t* used_ = nullptr;
  uint64_t used_gpa_ = 0;     // for mark_dirty() of host writes to the used ring

  uint16_t last_avail_ = 0;       // next avail ring entry to consume
  uint16_t used_idx_ = 0;         // next used ring entry to fill
  uint16_t signalled_used_ = 0;   // used_idx_ at the last should_notify()
  bool notify_enabled_ = true;    // kicks wanted (see enable_notification)
  uint32_t in_flight_ = 0;        // popped, not yet pushed

  VirtqueueError error_ = VirtqueueError::kNone;
  std::string reason_;
};

}  // namespace vmm
