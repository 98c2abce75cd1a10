// The traditional memory balloon (virtio 1.2 §5.5). Freestanding: shared
// by the host device model and the guest driver.
#pragma once

#include <stddef.h>
#include <stdint.h>

namespace virtio {

// §5.5.2: inflateq and deflateq always; the statsq only when
// VIRTIO_BALLOON_F_STATS_VQ is negotiated, and then it is the next index.
// (Queues of features that were not negotiated are skipped, so a later
// free_page_vq would be 2 without STATS_VQ; we offer neither
// FREE_PAGE_HINT nor PAGE_REPORTING, so the stats queue is 2 or absent.)
inline constexpr uint16_t VIRTIO_BALLOON_INFLATE_QUEUE = 0;
inline constexpr uint16_t VIRTIO_BALLOON_DEFLATE_QUEUE = 1;
inline constexpr uint16_t VIRTIO_BALLOON_STATS_QUEUE = 2;

// §5.5.6: page frame numbers are 32-bit and always count 4 KiB pages,
// whatever the page size of the guest or the host.
inline constexpr uint32_t VIRTIO_BALLOON_PFN_SHIFT = 12;
inline constexpr uint64_t VIRTIO_BALLOON_PAGE_SIZE = 1ull << VIRTIO_BALLOON_PFN_SHIFT;

// §5.5.4 device configuration. The spec's structure continues with
// free_page_hint_cmd_id and poison_val, which exist only with
// FREE_PAGE_HINT and PAGE_POISON; our device exposes these two fields.
struct virtio_balloon_config {
  uint32_t num_pages;  // the device's target, in 4 KiB pages
  uint32_t actual;     // written by the driver: pages in the balloon now
};
static_assert(sizeof(virtio_balloon_config) == 8);
static_assert(offsetof(virtio_balloon_config, num_pages) == 0);
static_assert(offsetof(virtio_balloon_config, actual) == 4);

// §5.5.6.3 memory statistics: the stats buffer is an array of these,
// packed (10 bytes each), little-endian.
struct __attribute__((packed)) virtio_balloon_stat {
  uint16_t tag;
  uint64_t val;
};
static_assert(sizeof(virtio_balloon_stat) == 10);
static_assert(offsetof(virtio_balloon_stat, val) == 2);

inline constexpr uint16_t VIRTIO_BALLOON_S_SWAP_IN = 0;   // pages swapped in
inline constexpr uint16_t VIRTIO_BALLOON_S_SWAP_OUT = 1;  // pages swapped out
inline constexpr uint16_t VIRTIO_BALLOON_S_MAJFLT = 2;    // major page faults
inline constexpr uint16_t VIRTIO_BALLOON_S_MINFLT = 3;    // minor page faults
inline constexpr uint16_t VIRTIO_BALLOON_S_MEMFREE = 4;   // bytes of unused memory
inline constexpr uint16_t VIRTIO_BALLOON_S_MEMTOT = 5;    // bytes of memory in total
inline constexpr uint16_t VIRTIO_BALLOON_S_AVAIL = 6;     // bytes available without swapping
inline constexpr uint16_t VIRTIO_BALLOON_S_CACHES = 7;    // bytes of reclaimable caches
inline constexpr uint16_t VIRTIO_BALLOON_S_HTLB_PGALLOC = 8;
inline constexpr uint16_t VIRTIO_BALLOON_S_HTLB_PGFAIL = 9;
inline constexpr uint16_t VIRTIO_BALLOON_S_NR = 10;       // tags the spec defines

// Tags of this project, not of the spec: pages the driver has put into and
// taken out of the balloon since boot. Placed far above the spec's range
// so a future spec tag cannot collide with them; §5.5.6.3 has devices
// ignore tags they do not know, so other devices (QEMU) simply skip them.
inline constexpr uint16_t VIRTIO_BALLOON_S_PRIV_INFLATED = 0x8000;
inline constexpr uint16_t VIRTIO_BALLOON_S_PRIV_DEFLATED = 0x8001;

}  // namespace virtio
