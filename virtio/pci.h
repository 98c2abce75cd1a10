// The virtio-pci modern transport's layouts (virtio 1.2 §4.1): IDs, the
// vendor-specific capabilities that locate each structure in a BAR, and the
// common configuration structure. Freestanding: shared by the host transport
// and the guest's PCI discovery.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "virtio/ring.h"

namespace virtio {

// §4.1.2 PCI IDs: non-transitional devices are 0x1040 + device ID, rev >= 1.
inline constexpr uint16_t VIRTIO_PCI_VENDOR_ID = 0x1af4;
inline constexpr uint16_t VIRTIO_PCI_DEVICE_ID_BASE = 0x1040;
inline constexpr uint8_t VIRTIO_PCI_MIN_REVISION = 1;

// §4.1.4 cfg_type of a virtio_pci_cap.
inline constexpr uint8_t VIRTIO_PCI_CAP_COMMON_CFG = 1;
inline constexpr uint8_t VIRTIO_PCI_CAP_NOTIFY_CFG = 2;
inline constexpr uint8_t VIRTIO_PCI_CAP_ISR_CFG = 3;
inline constexpr uint8_t VIRTIO_PCI_CAP_DEVICE_CFG = 4;
inline constexpr uint8_t VIRTIO_PCI_CAP_PCI_CFG = 5;
inline constexpr uint8_t VIRTIO_PCI_CAP_SHARED_MEMORY_CFG = 8;
inline constexpr uint8_t VIRTIO_PCI_CAP_VENDOR_CFG = 9;

// §4.1.4.5 ISR status bits (the register is read-to-clear).
inline constexpr uint8_t VIRTIO_PCI_ISR_QUEUE = 1;
inline constexpr uint8_t VIRTIO_PCI_ISR_CONFIG = 2;

// §4.1.5.1.2 "no MSI-X vector" for config_msix_vector / queue_msix_vector.
inline constexpr uint16_t VIRTIO_MSI_NO_VECTOR = 0xffff;

// §4.1.4: the generic capability (PCI capability ID 0x09, vendor-specific).
struct virtio_pci_cap {
  uint8_t cap_vndr;    // 0x09
  uint8_t cap_next;    // next capability pointer
  uint8_t cap_len;     // length of this capability, including extra fields
  uint8_t cfg_type;    // VIRTIO_PCI_CAP_*
  uint8_t bar;         // BAR holding the structure (0-5)
  uint8_t id;          // distinguishes several caps of one type
  uint8_t padding[2];
  le32 offset;         // in the BAR
  le32 length;         // of the structure
};
static_assert(sizeof(virtio_pci_cap) == 16);
static_assert(offsetof(virtio_pci_cap, cfg_type) == 3 && offsetof(virtio_pci_cap, bar) == 4);
static_assert(offsetof(virtio_pci_cap, offset) == 8 && offsetof(virtio_pci_cap, length) == 12);

// §4.1.4: for structures above 4 GiB in a BAR (shared memory regions).
struct virtio_pci_cap64 {
  virtio_pci_cap cap;
  le32 offset_hi;
  le32 length_hi;
};
static_assert(sizeof(virtio_pci_cap64) == 24);

// §4.1.4.4: queue q is notified at cap.offset + queue_notify_off(q) *
// notify_off_multiplier inside the BAR.
struct virtio_pci_notify_cap {
  virtio_pci_cap cap;
  le32 notify_off_multiplier;
};
static_assert(sizeof(virtio_pci_notify_cap) == 20);
static_assert(offsetof(virtio_pci_notify_cap, notify_off_multiplier) == 16);

// §4.1.4.9: a window into the BARs through configuration space.
struct virtio_pci_cfg_cap {
  virtio_pci_cap cap;
  uint8_t pci_cfg_data[4];
};
static_assert(sizeof(virtio_pci_cfg_cap) == 20);

// §4.1.4.3 common configuration structure. The 64-bit queue addresses are
// split into 32-bit halves (as in Linux's header) because drivers access
// them as two 32-bit registers, and so the struct has no tail padding.
struct virtio_pci_common_cfg {
  // About the whole device.
  le32 device_feature_select;  // read-write
  le32 device_feature;         // read-only for driver
  le32 driver_feature_select;  // read-write
  le32 driver_feature;         // read-write
  le16 config_msix_vector;     // read-write
  le16 num_queues;             // read-only for driver
  uint8_t device_status;       // read-write
  uint8_t config_generation;   // read-only for driver
  // About the queue selected by queue_select.
  le16 queue_select;       // read-write
  le16 queue_size;         // read-write
  le16 queue_msix_vector;  // read-write
  le16 queue_enable;       // read-write
  le16 queue_notify_off;   // read-only for driver
  le32 queue_desc_lo;      // descriptor table
  le32 queue_desc_hi;
  le32 queue_driver_lo;    // available ring
  le32 queue_driver_hi;
  le32 queue_device_lo;    // used ring
  le32 queue_device_hi;
  le16 queue_notify_data;  // read-only for driver (VIRTIO_F_NOTIFICATION_DATA)
  le16 queue_reset;        // read-write (VIRTIO_F_RING_RESET)
};
static_assert(offsetof(virtio_pci_common_cfg, config_msix_vector) == 16);
static_assert(offsetof(virtio_pci_common_cfg, num_queues) == 18);
static_assert(offsetof(virtio_pci_common_cfg, device_status) == 20);
static_assert(offsetof(virtio_pci_common_cfg, config_generation) == 21);
static_assert(offsetof(virtio_pci_common_cfg, queue_select) == 22);
static_assert(offsetof(virtio_pci_common_cfg, queue_size) == 24);
static_assert(offsetof(virtio_pci_common_cfg, queue_msix_vector) == 26);
static_assert(offsetof(virtio_pci_common_cfg, queue_enable) == 28);
static_assert(offsetof(virtio_pci_common_cfg, queue_notify_off) == 30);
static_assert(offsetof(virtio_pci_common_cfg, queue_desc_lo) == 32);
static_assert(offsetof(virtio_pci_common_cfg, queue_driver_lo) == 40);
static_assert(offsetof(virtio_pci_common_cfg, queue_device_lo) == 48);
static_assert(offsetof(virtio_pci_common_cfg, queue_notify_data) == 56);
static_assert(offsetof(virtio_pci_common_cfg, queue_reset) == 58);
static_assert(sizeof(virtio_pci_common_cfg) == 60);

}  // namespace virtio
