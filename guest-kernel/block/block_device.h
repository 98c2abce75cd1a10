// The contract between a guest block driver (virtio-blk) and its users (the
// block log in guest-kernel/block/). Requests are asynchronous: submit()
// queues one and returns; its completion runs later on the event loop
// (never in interrupt context) with the device's status.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <functional>

namespace block {

constexpr uint32_t kSectorSize = 512;

enum class Status {
  kOk,
  kIoError,      // the device reported an I/O error
  kUnsupported,  // the device does not do this (e.g. a write to a read-only disk)
  kBadRequest,   // refused by the driver: out of range, misaligned, too large
};
const char* to_string(Status s);

enum class Op { kRead, kWrite, kFlush };

struct Request {
  Op op = Op::kRead;
  uint64_t sector = 0;    // first 512-byte sector (ignored by kFlush)
  void* buffer = nullptr; // kernel memory; identity-mapped, so also physical
  size_t bytes = 0;       // a multiple of kSectorSize (0 for kFlush)
  std::function<void(Status)> done;
};

class BlockDevice {
 public:
  virtual ~BlockDevice() = default;
  virtual const char* name() const = 0;
  virtual uint64_t sectors() const = 0;
  virtual bool read_only() const = 0;
  // Largest `bytes` one request may carry.
  virtual size_t max_request_bytes() const = 0;
  // Queues `req`; the completion always runs exactly once (kBadRequest at
  // once, on the loop, if the driver refuses it). Many may be in flight.
  virtual void submit(Request req) = 0;
};

void register_block_device(BlockDevice* dev);
BlockDevice* block_device(size_t index);
size_t block_device_count();

}  // namespace block
