// virtio-net (virtio 1.2 §5.1): the configuration layout and the per-packet
// header. Freestanding: shared by the host device model and the guest
// driver.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "virtio/ring.h"

namespace virtio {

// §5.1.4 device configuration (the fields we use).
struct virtio_net_config {
  uint8_t mac[6];  // VIRTIO_NET_F_MAC
  le16 status;     // VIRTIO_NET_F_STATUS: VIRTIO_NET_S_*
  le16 max_virtqueue_pairs;
  le16 mtu;
};
static_assert(offsetof(virtio_net_config, status) == 6 && offsetof(virtio_net_config, mtu) == 10);
inline constexpr uint16_t VIRTIO_NET_S_LINK_UP = 1;

// §5.1.6 the header before every frame. With VIRTIO_F_VERSION_1 it is always
// 12 bytes (num_buffers present even without MRG_RXBUF).
struct virtio_net_hdr {
  uint8_t flags;
  uint8_t gso_type;
  le16 hdr_len;
  le16 gso_size;
  le16 csum_start;
  le16 csum_offset;
  le16 num_buffers;
};
static_assert(sizeof(virtio_net_hdr) == 12);
inline constexpr uint8_t VIRTIO_NET_HDR_GSO_NONE = 0;

// Queue indices without VIRTIO_NET_F_MQ (§5.1.2).
inline constexpr uint16_t VIRTIO_NET_RX_QUEUE = 0;
inline constexpr uint16_t VIRTIO_NET_TX_QUEUE = 1;

}  // namespace virtio
