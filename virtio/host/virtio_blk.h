// virtio-blk (virtio 1.2 §5.2), host side: one request queue served from a
// host file (or block device) through io_uring.
//
// Every request is one io_uring submission (readv, writev or fdatasync)
// straight on the guest's buffers, so many requests are in flight at once;
// completions come back on the device's I/O thread through an eventfd
// registered with the ring. Status is honest: VIRTIO_BLK_S_IOERR for a
// failed or short transfer, a request outside the disk, a malformed data
// layout or a write to a read-only disk (§5.2.6.2); VIRTIO_BLK_S_UNSUPP for
// request types we do not implement. A request without a readable 16-byte
// header or without a writable status byte cannot be answered at all: the
// device then sets DEVICE_NEEDS_RESET (as QEMU does).
//
// Reset (device or queue) waits for every in-flight request to finish
// before the rings are forgotten, so the kernel never writes into a ring
// the driver has taken back.
#pragma once

#include <liburing.h>
#include <sys/uio.h>

#include <atomic>
#include <cstdint>
#include <string>
#include <vector>

#include "virtio/blk.h"
#include "virtio/host/virtio_pci.h"

namespace vmm {

struct VirtioBlkOptions {
  std::string path;        // a regular file or a block device
  bool read_only = false;  // opened O_RDONLY and VIRTIO_BLK_F_RO offered
  std::string serial;      // the GET_ID answer, at most 20 bytes
};

struct VirtioBlkStats {
  std::atomic<uint64_t> reads{0}, writes{0}, flushes{0}, get_ids{0};
  std::atomic<uint64_t> bytes_read{0};     // from the disk into the guest
  std::atomic<uint64_t> bytes_written{0};  // from the guest onto the disk
  std::atomic<uint64_t> io_errors{0};      // requests answered VIRTIO_BLK_S_IOERR
  std::atomic<uint64_t> unsupported{0};    // requests answered VIRTIO_BLK_S_UNSUPP
  std::atomic<uint64_t> max_in_flight{0};  // most io_uring requests outstanding at once
};

class VirtioBlkDevice final : public VirtioPciDevice {
 public:
  static constexpr uint16_t kQueueSize = 256;
  // Advertised and enforced: data segments per request, bytes per segment.
  static constexpr uint32_t kSegMax = kQueueSize - 2;
  static constexpr uint32_t kSizeMax = 1u << 20;

  // Opens the disk and sets up io_uring. Throws std::runtime_error with a
  // one-line reason (file missing, not a file or block device, serial too
  // long, io_uring unavailable).
  VirtioBlkDevice(GuestMemory& mem, GsiRouter& router, const VirtioBlkOptions& options);
  ~VirtioBlkDevice() override;

  uint64_t capacity_sectors() const { return capacity_; }
  const VirtioBlkStats& stats() const { return stats_; }

 protected:
  void read_device_config(uint32_t offset, uint8_t* data, uint32_t size) override;
  void on_reset() override;
  void on_queue_reset(uint16_t q) override;
  void on_queue_kick(uint16_t q) override;
  // Snapshots and same-page merging: the kernel writes a read's data into
  // guest RAM whenever it completes (even from a worker), outside our
  // lock, so every in-flight request is finished and returned to the
  // driver first; new ones wait for mu_.
  void on_quiesce() override;
  std::string device_stats() const override;

 private:
  struct Request {
    uint16_t head = 0;
    uint32_t type = 0;
    uint8_t* status = nullptr;  // host address of the status byte
    uint64_t offset = 0;        // byte offset in the disk
    uint64_t expected = 0;      // bytes the transfer must move
    uint32_t used_len = 0;      // bytes written into the chain on success
    std::vector<iovec> iov;     // kept until the completion (the kernel reads it)
  };

  void process_queue();
  void handle(const VirtqChain& chain);
  // Answers at once (no I/O): writes the status and returns the chain.
  void finish(uint16_t head, uint8_t* status, uint8_t value, uint32_t used_len);
  // Queues one io_uring submission for `r` (a slot of reqs_).
  void submit(uint16_t slot);
  void flush_submissions();
  void complete(io_uring_cqe* cqe, bool write_back);
  // Completes what the kernel finished; with `resume`, also restarts a
  // queue scan that stopped for want of a free request slot.
  void reap(bool resume);
  // Waits for every in-flight request; with `write_back` false their
  // results are not written to guest memory (the device is being reset).
  void drain(bool write_back);

  const VirtioBlkOptions options_;
  Fd file_;
  uint64_t capacity_ = 0;  // in 512-byte sectors
  io_uring ring_{};
  bool ring_ready_ = false;
  EventFd completion_;
  virtio::virtio_blk_config config_{};

  // I/O thread state (mu_).
  VirtqChain chain_;
  std::vector<Request> reqs_;
  std::vector<uint16_t> free_;
  uint32_t in_flight_ = 0;
  uint32_t unsubmitted_ = 0;

  VirtioBlkStats stats_;
};

}  // namespace vmm
