// virtio-blk wire layouts (virtio 1.2 §5.2): the request header, status
// values, request types and the device configuration. Freestanding: shared
// by the host device model and the guest driver.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "virtio/ring.h"

namespace virtio {

// §5.2.6 request types.
inline constexpr uint32_t VIRTIO_BLK_T_IN = 0;
inline constexpr uint32_t VIRTIO_BLK_T_OUT = 1;
inline constexpr uint32_t VIRTIO_BLK_T_FLUSH = 4;
inline constexpr uint32_t VIRTIO_BLK_T_GET_ID = 8;

// §5.2.6 status byte, the last device-writable byte of a request.
inline constexpr uint8_t VIRTIO_BLK_S_OK = 0;
inline constexpr uint8_t VIRTIO_BLK_S_IOERR = 1;
inline constexpr uint8_t VIRTIO_BLK_S_UNSUPP = 2;

// Sectors are always 512 bytes, whatever blk_size says (§5.2.6).
inline constexpr uint32_t VIRTIO_BLK_SECTOR_SIZE = 512;
// GET_ID answers a NUL-padded string of at most this many bytes.
inline constexpr uint32_t VIRTIO_BLK_ID_BYTES = 20;

// §5.2.6: the device-readable header that starts every request.
struct virtio_blk_req_hdr {
  le32 type;      // VIRTIO_BLK_T_*
  le32 reserved;
  le64 sector;    // in 512-byte units, for IN and OUT
};
static_assert(sizeof(virtio_blk_req_hdr) == 16 && offsetof(virtio_blk_req_hdr, sector) == 8);

// §5.2.4 device configuration layout (the fields up to `writeback`; later
// ones belong to features we do not offer). Packed as the spec lays it out.
struct virtio_blk_config {
  le64 capacity;   // in 512-byte sectors
  le32 size_max;   // VIRTIO_BLK_F_SIZE_MAX: largest segment
  le32 seg_max;    // VIRTIO_BLK_F_SEG_MAX: most data segments per request
  le16 cylinders;  // VIRTIO_BLK_F_GEOMETRY
  uint8_t heads;
  uint8_t sectors;
  le32 blk_size;   // VIRTIO_BLK_F_BLK_SIZE
  uint8_t physical_block_exp;  // VIRTIO_BLK_F_TOPOLOGY
  uint8_t alignment_offset;
  le16 min_io_size;
  le32 opt_io_size;
  uint8_t writeback;  // VIRTIO_BLK_F_CONFIG_WCE
  uint8_t unused0[7];  // up to the discard fields (features not offered)
};
static_assert(offsetof(virtio_blk_config, size_max) == 8 && offsetof(virtio_blk_config, seg_max) == 12);
static_assert(offsetof(virtio_blk_config, blk_size) == 20 && offsetof(virtio_blk_config, writeback) == 32);
static_assert(sizeof(virtio_blk_config) == 40);

}  // namespace virtio
