// The virtio-blk driver (virtio 1.2 §5.2): a block::BlockDevice over one
// request queue. A request is a chain of a device-readable header, the data
// (split into segments within size_max / seg_max), and a device-writable
// status byte; as many are in flight as the ring holds, the rest wait in
// order. Completions run on the event loop.
//
// Probed through the PCI driver registry (1af4:1042); each device found is
// registered with block::register_block_device(), so users reach it as
// block::block_device(i) (name() == "virtio-blk").
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <deque>
#include <functional>
#include <vector>

#include "guest-kernel/block/block_device.h"
#include "guest-kernel/pci/pci.h"
#include "virtio/blk.h"
#include "virtio/guest/virtio_pci.h"
#include "virtio/guest/virtqueue.h"

namespace virtio::guest {

class VirtioBlk final : public block::BlockDevice {
 public:
  // The PCI registry's probe: brings the device up and registers it.
  static bool probe(const pci::Device& dev);

  const char* name() const override { return "virtio-blk"; }
  uint64_t sectors() const override { return capacity_; }
  bool read_only() const override { return read_only_; }
  size_t max_request_bytes() const override { return max_request_bytes_; }
  void submit(block::Request req) override;

  // The device's serial number (GET_ID), "" if it has none.
  const char* serial() const { return serial_; }
  bool has_flush() const { return flush_; }
  size_t requests_in_flight() const { return queue_.in_flight(); }
  size_t requests_waiting() const { return waiting_.size(); }
  const Virtqueue& queue() const { return queue_; }

 private:
  // One request as the device sees it: type, sector, data, completion.
  struct Io {
    uint32_t type = VIRTIO_BLK_T_IN;
    uint64_t sector = 0;
    uint8_t* data = nullptr;
    size_t bytes = 0;
    bool device_writes_data = false;
    std::function<void(block::Status)> done;
  };
  // Header and status of a request in flight, in device-visible memory.
  struct alignas(32) DmaSlot {
    virtio_blk_req_hdr hdr;
    volatile uint8_t status;
  };

  bool init(const pci::Device& dev);
  void issue(Io io);          // starts it, or queues it behind the others
  bool start(Io& io);         // onto the ring; false when the ring is full
  void complete(uint16_t slot, uint32_t written);
  void on_used();             // the queue's interrupt work, on the loop
  void fail_everything(const char* why);
  static void finish_later(std::function<void(block::Status)> done, block::Status s);

  PciTransport transport_;
  Virtqueue queue_;
  uint64_t capacity_ = 0;
  bool read_only_ = false, flush_ = false;
  size_t segment_bytes_ = 0, max_segments_ = 0, max_request_bytes_ = 0;
  char serial_[VIRTIO_BLK_ID_BYTES + 1] = {};

  DmaSlot* slots_ = nullptr;              // queue size of them
  std::vector<Io> in_flight_;             // by slot
  std::vector<uint16_t> free_slots_;
  std::deque<Io> waiting_;                // for ring space, in order
  bool failed_ = false;
};

}  // namespace virtio::guest
