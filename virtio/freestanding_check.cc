// Compiled with the guest kernel's flags by `make freestanding-check` (part
// of `make test`): the shared virtio headers must stay freestanding, since
// the guest drivers include them. Nothing here is linked anywhere.
#include "virtio/balloon.h"
#include "virtio/blk.h"
#include "virtio/features.h"
#include "virtio/net.h"
#include "virtio/pci.h"
#include "virtio/ring.h"

namespace virtio {

// Uses a little of everything so the compiler looks at it all.
bool freestanding_check(const virtq_desc* d, const virtio_pci_common_cfg* c) {
  return (d->flags & VIRTQ_DESC_F_NEXT) && c->device_status == VIRTIO_STATUS_DRIVER_OK &&
         vring_need_event(1, 2, 0) && feature_bit(VIRTIO_F_VERSION_1) && is_valid_queue_size(256) &&
         sizeof(virtio_blk_req_hdr) + sizeof(virtio_net_hdr) == 28 &&
         sizeof(virtio_balloon_stat) + sizeof(virtio_balloon_config) == 18;
}

}  // namespace virtio
