// virtio-net wire layouts (virtio 1.2 §5.1): the per-packet header and the
// device configuration. Freestanding: shared by the host device model and
// the guest driver.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "virtio/ring.h"

namespace virtio {

// §5.1.2 queues (without VIRTIO_NET_F_MQ / CTRL_VQ).
inline constexpr uint16_t VIRTIO_NET_RX_QUEUE = 0;
inline constexpr uint16_t VIRTIO_NET_TX_QUEUE = 1;

// §5.1.4 status field bits.
inline constexpr uint16_t VIRTIO_NET_S_LINK_UP = 1;
inline constexpr uint16_t VIRTIO_NET_S_ANNOUNCE = 2;

// §5.1.6 header flags and GSO types (we offer no offloads, so a device
// writes zeroes and a driver must send zeroes).
inline constexpr uint8_t VIRTIO_NET_HDR_F_NEEDS_CSUM = 1;
inline constexpr uint8_t VIRTIO_NET_HDR_F_DATA_VALID = 2;
inline constexpr uint8_t VIRTIO_NET_HDR_GSO_NONE = 0;

// §5.1.6 the header in front of every packet, in its VERSION_1 form (with
// num_buffers, which is 1 unless VIRTIO_NET_F_MRG_RXBUF merges buffers).
struct virtio_net_hdr {
  uint8_t flags;
  uint8_t gso_type;
  le16 hdr_len;
  le16 gso_size;
  le16 csum_start;
  le16 csum_offset;
  le16 num_buffers;
};
static_assert(sizeof(virtio_net_hdr) == 12 && offsetof(virtio_net_hdr, num_buffers) == 10);

// §5.1.4 device configuration.
struct virtio_net_config {
  uint8_t mac[6];              // VIRTIO_NET_F_MAC
  le16 status;                 // VIRTIO_NET_F_STATUS
  le16 max_virtqueue_pairs;    // VIRTIO_NET_F_MQ
  le16 mtu;                    // VIRTIO_NET_F_MTU
};
static_assert(offsetof(virtio_net_config, status) == 6 && offsetof(virtio_net_config, mtu) == 10);
static_assert(sizeof(virtio_net_config) == 12);

}  // namespace virtio
