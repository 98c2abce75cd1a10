// virtio-blk (virtio 1.2 §5.2): the configuration layout and the request
// header. Freestanding: shared by the host device model and the guest
// driver. Sectors are always 512 bytes, whatever blk_size says.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "virtio/ring.h"

namespace virtio {

inline constexpr uint32_t VIRTIO_BLK_SECTOR_SIZE = 512;

// §5.2.4 device configuration (the fields we use; more follow).
struct virtio_blk_config {
  le64 capacity;  // in 512-byte sectors
  le32 size_max;  // VIRTIO_BLK_F_SIZE_MAX: largest segment
  le32 seg_max;   // VIRTIO_BLK_F_SEG_MAX: most data segments per request
  le16 cylinders;
  uint8_t heads;
  uint8_t sectors;
  le32 blk_size;  // VIRTIO_BLK_F_BLK_SIZE: optimal logical block size
};
static_assert(offsetof(virtio_blk_config, size_max) == 8 && offsetof(virtio_blk_config, seg_max) == 12);
static_assert(offsetof(virtio_blk_config, blk_size) == 20);

// §5.2.6 request types and status.
inline constexpr uint32_t VIRTIO_BLK_T_IN = 0;
inline constexpr uint32_t VIRTIO_BLK_T_OUT = 1;
inline constexpr uint32_t VIRTIO_BLK_T_FLUSH = 4;
inline constexpr uint32_t VIRTIO_BLK_T_GET_ID = 8;
inline constexpr uint8_t VIRTIO_BLK_S_OK = 0;
inline constexpr uint8_t VIRTIO_BLK_S_IOERR = 1;
inline constexpr uint8_t VIRTIO_BLK_S_UNSUPP = 2;
inline constexpr uint32_t VIRTIO_BLK_ID_BYTES = 20;  // GET_ID: not NUL-terminated when 20 long

// §5.2.6 the device-readable header that starts every request; data
// follows, then one device-writable status byte.
struct virtio_blk_req_hdr {
  le32 type;
  le32 reserved;
  le64 sector;
};
static_assert(sizeof(virtio_blk_req_hdr) == 16);

}  // namespace virtio
