// The driver side of one split virtqueue (virtio 1.2 §2.7): a free list of
// descriptors, adding scatter-gather chains (direct or through an indirect
// table), kicking only when the device asks for it, collecting used
// buffers, and turning used-buffer interrupts off and on without losing one.
//
// Independent of the kernel: it never dereferences a buffer address (those
// are only written into descriptors) and touches only the ring memory it is
// given, so the same code runs in the guest and in a host unit test that
// pairs it with the VMM's device-side queue. The transport (virtio_pci)
// supplies the ring memory, tells the device where it is, and does the
// actual notification through the callback given to init().
//
// Not thread-safe: one owner, on the event loop.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "virtio/ring.h"

namespace virtio::guest {

// One buffer of a chain, as the device addresses it (guest physical).
struct Buffer {
  uint64_t addr;
  uint32_t len;
};

class Virtqueue {
 public:
  // Entries of an indirect table per ring slot: chains longer than one
  // descriptor and at most this long take a single ring slot when
  // VIRTIO_F_INDIRECT_DESC was negotiated.
  static constexpr uint32_t kIndirectMax = 16;

  // Bytes of ring memory a queue of `size` entries needs (descriptor table,
  // available ring, used ring on its own page, and the indirect tables when
  // `indirect`), and the offsets of the parts in it. The memory must be
  // 16-byte aligned and zeroed.
  static uint64_t memory_bytes(uint32_t size, bool indirect);
  static uint64_t avail_offset(uint32_t size) { return desc_table_size(size); }
  static uint64_t used_offset(uint32_t size) { return vring_used_offset(size, 4096); }
  static uint64_t indirect_offset(uint32_t size) { return align_up(vring_size(size, 4096), 16); }

  using NotifyFn = void (*)(void* context, uint16_t queue_index);

  // `memory` (memory_bytes(size, indirect), zeroed, aligned) is seen by
  // the device at `device_addr`. Returns false for a size that is not a
  // power of two in [1, 32768] or misaligned memory. Call once.
  bool init(uint16_t queue_index, uint16_t size, void* memory, uint64_t device_addr, bool event_idx,
            bool indirect, NotifyFn notify, void* notify_context);

  // Where the transport must point the device.
  uint64_t desc_addr() const { return device_addr_; }
  uint64_t avail_addr() const { return device_addr_ + avail_offset(size_); }
  uint64_t used_addr() const { return device_addr_ + used_offset(size_); }

  // Adds one chain: `out` buffers the device reads, then `in` buffers it
  // writes. `token` (non-null) comes back from get_used(). The available
  // index is published at once, but the device is told only by kick().
  // Returns false (nothing added) if the chain is empty, has a zero-length
  // buffer, or the free descriptors do not suffice.
  bool add(const Buffer* out, size_t out_count, const Buffer* in, size_t in_count, void* token);

  // Notifies the device if it asked to be told about what was added since
  // the last kick (VIRTQ_USED_F_NO_NOTIFY, or avail_event with EVENT_IDX).
  // Returns true if it notified.
  bool kick();

  // The next used chain: its token and the bytes the device says it wrote
  // (clamped to the chain's writable length). nullptr when none is ready or
  // the queue is broken.
  void* get_used(uint32_t* written);
  // True when a used entry is waiting (cheap; no barrier).
  bool has_used() const;

  // Asks the device not to interrupt for used buffers (a hint: one already
  // on its way may still arrive).
  void disable_interrupts();
  // Asks for an interrupt at the next used buffer. Returns false if used
  // buffers arrived meanwhile (checked after a full barrier): the caller
  // must process them, since the device may have decided not to interrupt
  // before it saw the request. True: the next used buffer will interrupt.
  bool enable_interrupts();
  bool interrupts_enabled() const { return interrupts_on_; }

  uint16_t size() const { return size_; }
  uint16_t index() const { return index_; }
  uint16_t free_descriptors() const { return free_count_; }
  uint16_t in_flight() const { return in_flight_; }
  // The device broke the protocol (a used id that is not in flight, a used
  // index that runs ahead): nothing more is returned.
  bool broken() const { return broken_ != nullptr; }
  const char* broken_reason() const { return broken_; }

  // Counters for benchmarks and tests.
  uint64_t kicks = 0, kicks_suppressed = 0, chains_added = 0, chains_used = 0, indirect_chains = 0;

 private:
  struct Slot {
    void* token = nullptr;     // non-null while the chain is in flight
    uint16_t descriptors = 0;  // in the main table (1 for an indirect chain)
    uint16_t last = 0;         // last descriptor of the chain in the main table
    uint64_t writable = 0;     // bytes the device may write
  };

  volatile uint16_t* avail_flags() const;
  volatile uint16_t* avail_idx() const;
  volatile uint16_t* avail_ring(uint16_t i) const;
  volatile uint16_t* used_event() const;
  volatile uint16_t* used_flags() const;
  volatile uint16_t* used_idx() const;
  volatile virtq_used_elem* used_ring(uint16_t i) const;
  volatile uint16_t* avail_event() const;

  uint8_t* mem_ = nullptr;
  uint64_t device_addr_ = 0;
  virtq_desc* desc_ = nullptr;
  virtq_desc* indirect_ = nullptr;  // kIndirectMax entries per slot
  Slot* slots_ = nullptr;           // per head descriptor
  uint16_t* next_ = nullptr;        // free-list and chain links, private
                                    // (never read back from device memory)
  uint16_t index_ = 0, size_ = 0;
  bool event_idx_ = false, indirect_ok_ = false;
  NotifyFn notify_ = nullptr;
  void* notify_context_ = nullptr;

  uint16_t free_head_ = 0, free_count_ = 0, in_flight_ = 0;
  uint16_t avail_shadow_ = 0;    // our available index
  uint16_t kicked_at_ = 0;       // available index at the last kick
  uint32_t added_since_kick_ = 0;
  uint16_t last_used_ = 0;       // next used entry to consume
  bool interrupts_on_ = true;
  const char* broken_ = nullptr;

 public:
  Virtqueue() = default;
  ~Virtqueue();
  Virtqueue(const Virtqueue&) = delete;
  Virtqueue& operator=(const Virtqueue&) = delete;
};

}  // namespace virtio::guest
