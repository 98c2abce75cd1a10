// The split virtqueue (virtio 1.2 §2.7): one definition of its memory layout,
// shared by the host device models and the guest drivers.
//
// Freestanding: only <stdint.h> and <stddef.h>, no standard library, no
// exceptions, so the guest kernel includes it as it is. All fields are
// little-endian (virtio 1.x, "leN" below); both our host and our guest are
// x86-64, so the structs are read and written as they are, and the static
// asserts pin every offset the spec fixes.
//
// The rings have a trailing array whose length is the queue size, followed
// by an event field, so they are not C++ structs with a fixed size: the
// headers are structs, the rest is reached through the offset helpers.
#pragma once

#include <stddef.h>
#include <stdint.h>

namespace virtio {

typedef uint16_t le16;
typedef uint32_t le32;
typedef uint64_t le64;

// The largest queue size of a split virtqueue; sizes are powers of two.
inline constexpr uint32_t kMaxQueueSize = 32768;

// §2.7.5 descriptor flags.
inline constexpr uint16_t VIRTQ_DESC_F_NEXT = 1;      // `next` is valid
inline constexpr uint16_t VIRTQ_DESC_F_WRITE = 2;     // device writes (else reads)
inline constexpr uint16_t VIRTQ_DESC_F_INDIRECT = 4;  // buffer is a descriptor table

// §2.7.7: the driver asks the device not to interrupt (without EVENT_IDX).
inline constexpr uint16_t VIRTQ_AVAIL_F_NO_INTERRUPT = 1;
// §2.7.10: the device asks the driver not to notify (without EVENT_IDX).
inline constexpr uint16_t VIRTQ_USED_F_NO_NOTIFY = 1;

// §2.7.5 descriptor table entry.
struct virtq_desc {
  le64 addr;   // guest physical address of the buffer
  le32 len;    // its length in bytes
  le16 flags;  // VIRTQ_DESC_F_*
  le16 next;   // next descriptor of the chain when flags & NEXT
};
static_assert(sizeof(virtq_desc) == 16);
static_assert(offsetof(virtq_desc, addr) == 0 && offsetof(virtq_desc, len) == 8);
static_assert(offsetof(virtq_desc, flags) == 12 && offsetof(virtq_desc, next) == 14);

// §2.7.6 available ring (driver area): this header, then le16 ring[N], then
// le16 used_event (meaningful with VIRTIO_F_EVENT_IDX).
struct virtq_avail {
  le16 flags;  // VIRTQ_AVAIL_F_*
  le16 idx;    // where the driver puts the next entry (free-running, mod 2^16)
};
static_assert(sizeof(virtq_avail) == 4 && offsetof(virtq_avail, idx) == 2);

// §2.7.8 used ring element.
struct virtq_used_elem {
  le32 id;   // head index of the chain
  le32 len;  // bytes written by the device into the chain's writable part
};
static_assert(sizeof(virtq_used_elem) == 8 && offsetof(virtq_used_elem, len) == 4);

// §2.7.8 used ring (device area): this header, then virtq_used_elem ring[N],
// then le16 avail_event (meaningful with VIRTIO_F_EVENT_IDX).
struct virtq_used {
  le16 flags;  // VIRTQ_USED_F_*
  le16 idx;    // where the device puts the next entry (free-running, mod 2^16)
};
static_assert(sizeof(virtq_used) == 4 && offsetof(virtq_used, idx) == 2);

// Alignment the driver must give each part (§2.7, table "Virtqueue Part
// Alignment Size").
inline constexpr uint64_t kDescTableAlign = 16;
inline constexpr uint64_t kAvailRingAlign = 2;
inline constexpr uint64_t kUsedRingAlign = 4;

// Sizes in bytes of the three parts for a queue of `n` entries.
constexpr uint64_t desc_table_size(uint32_t n) { return 16ull * n; }
constexpr uint64_t avail_ring_size(uint32_t n) { return 6ull + 2ull * n; }
constexpr uint64_t used_ring_size(uint32_t n) { return 6ull + 8ull * n; }

// Byte offsets inside the available and used rings.
constexpr uint64_t avail_ring_entry_offset(uint32_t i) { return 4ull + 2ull * i; }
constexpr uint64_t avail_used_event_offset(uint32_t n) { return 4ull + 2ull * n; }
constexpr uint64_t used_ring_entry_offset(uint32_t i) { return 4ull + 8ull * i; }
constexpr uint64_t used_avail_event_offset(uint32_t n) { return 4ull + 8ull * n; }

static_assert(desc_table_size(256) == 4096);
static_assert(avail_ring_size(256) == 518 && avail_used_event_offset(256) == 516);
static_assert(used_ring_size(256) == 2054 && used_avail_event_offset(256) == 2052);

constexpr bool is_valid_queue_size(uint32_t n) { return n != 0 && n <= kMaxQueueSize && (n & (n - 1)) == 0; }
static_assert(is_valid_queue_size(1) && is_valid_queue_size(32768));
static_assert(!is_valid_queue_size(0) && !is_valid_queue_size(3) && !is_valid_queue_size(65536));

constexpr uint64_t align_up(uint64_t v, uint64_t a) { return (v + a - 1) & ~(a - 1); }

// The legacy contiguous layout (§2.7.2 for transitional devices): handy for
// a driver that allocates one block per queue. Descriptors at 0, avail right
// after, used at the next `used_align` boundary (4096 in legacy virtio-pci).
constexpr uint64_t vring_used_offset(uint32_t n, uint64_t used_align) {
  return align_up(desc_table_size(n) + avail_ring_size(n), used_align);
}
constexpr uint64_t vring_size(uint32_t n, uint64_t used_align) {
  return vring_used_offset(n, used_align) + used_ring_size(n);
}
static_assert(vring_used_offset(256, 4096) == 8192 && vring_size(256, 4096) == 10246);

// §2.7.10 / §2.7.7 with VIRTIO_F_EVENT_IDX: should the side that moved its
// index from `old_idx` to `new_idx` notify, given the other side asked to be
// told once `event_idx` is passed? True when event_idx lies in
// [old_idx, new_idx) modulo 2^16, exactly as Linux's vring_need_event().
constexpr bool vring_need_event(uint16_t event_idx, uint16_t new_idx, uint16_t old_idx) {
  return static_cast<uint16_t>(new_idx - event_idx - 1) < static_cast<uint16_t>(new_idx - old_idx);
}
static_assert(vring_need_event(0, 1, 0) && !vring_need_event(1, 1, 0));
static_assert(vring_need_event(0xffff, 0, 0xfffe) && vring_need_event(0xffff, 1, 0xffff));
static_assert(!vring_need_event(5, 5, 5));

}  // namespace virtio
