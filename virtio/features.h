// Feature bits, device status and device IDs (virtio 1.2 §2.1, §2.2, §5,
// §6). Freestanding: shared by the host device models and the guest drivers.
#pragma once

#include <stdint.h>

namespace virtio {

// Feature bits are numbers, masks come from feature_bit().
constexpr uint64_t feature_bit(unsigned bit) { return 1ull << bit; }

// §6 reserved (device-independent) feature bits.
inline constexpr unsigned VIRTIO_F_INDIRECT_DESC = 28;
inline constexpr unsigned VIRTIO_F_EVENT_IDX = 29;
inline constexpr unsigned VIRTIO_F_VERSION_1 = 32;
inline constexpr unsigned VIRTIO_F_ACCESS_PLATFORM = 33;
inline constexpr unsigned VIRTIO_F_RING_PACKED = 34;
inline constexpr unsigned VIRTIO_F_IN_ORDER = 35;
inline constexpr unsigned VIRTIO_F_ORDER_PLATFORM = 36;
inline constexpr unsigned VIRTIO_F_SR_IOV = 37;
inline constexpr unsigned VIRTIO_F_NOTIFICATION_DATA = 38;
inline constexpr unsigned VIRTIO_F_RING_RESET = 40;

// §5.1.3 network device.
inline constexpr unsigned VIRTIO_NET_F_CSUM = 0;
inline constexpr unsigned VIRTIO_NET_F_GUEST_CSUM = 1;
inline constexpr unsigned VIRTIO_NET_F_MTU = 3;
inline constexpr unsigned VIRTIO_NET_F_MAC = 5;
inline constexpr unsigned VIRTIO_NET_F_MRG_RXBUF = 15;
inline constexpr unsigned VIRTIO_NET_F_STATUS = 16;

// §5.2.3 block device.
inline constexpr unsigned VIRTIO_BLK_F_SIZE_MAX = 1;
inline constexpr unsigned VIRTIO_BLK_F_SEG_MAX = 2;
inline constexpr unsigned VIRTIO_BLK_F_GEOMETRY = 4;
inline constexpr unsigned VIRTIO_BLK_F_RO = 5;
inline constexpr unsigned VIRTIO_BLK_F_BLK_SIZE = 6;
inline constexpr unsigned VIRTIO_BLK_F_FLUSH = 9;
inline constexpr unsigned VIRTIO_BLK_F_TOPOLOGY = 10;
inline constexpr unsigned VIRTIO_BLK_F_CONFIG_WCE = 11;

// §5.5.3 traditional memory balloon.
inline constexpr unsigned VIRTIO_BALLOON_F_MUST_TELL_HOST = 0;
inline constexpr unsigned VIRTIO_BALLOON_F_STATS_VQ = 1;
inline constexpr unsigned VIRTIO_BALLOON_F_DEFLATE_ON_OOM = 2;
inline constexpr unsigned VIRTIO_BALLOON_F_FREE_PAGE_HINT = 3;
inline constexpr unsigned VIRTIO_BALLOON_F_PAGE_REPORTING = 5;

// §2.1 device status field.
inline constexpr uint8_t VIRTIO_STATUS_ACKNOWLEDGE = 1;
inline constexpr uint8_t VIRTIO_STATUS_DRIVER = 2;
inline constexpr uint8_t VIRTIO_STATUS_DRIVER_OK = 4;
inline constexpr uint8_t VIRTIO_STATUS_FEATURES_OK = 8;
inline constexpr uint8_t VIRTIO_STATUS_DEVICE_NEEDS_RESET = 64;
inline constexpr uint8_t VIRTIO_STATUS_FAILED = 128;

// §5 device IDs (the PCI device ID is 0x1040 + this, §4.1.2).
inline constexpr uint16_t VIRTIO_ID_NET = 1;
inline constexpr uint16_t VIRTIO_ID_BLOCK = 2;
inline constexpr uint16_t VIRTIO_ID_BALLOON = 5;

}  // namespace virtio
