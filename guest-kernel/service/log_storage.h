// sg::Storage for a service in the guest: the checksummed block log on the
// first virtio-blk disk, with large records and atomic rewrites framed by
// storage-guests/common/log_framing.h.
//
// append() and rewrite() only buffer; sync() hands everything buffered to
// the block log, then its flush, and reports the token durable through
// `on_durable` once the flush completed (the node's on_sync). The block log
// runs its operations in order, so tokens complete in order.
//
// A storage failure (I/O error, a full disk) panics the VM: a node that
// cannot persist must stop rather than acknowledge what it did not keep.
#pragma once

#include <stdint.h>

#include <functional>
#include <vector>

#include "guest-kernel/block/block_log.h"
#include "storage-guests/common/env.h"

namespace service {

class LogStorage final : public sg::Storage {
 public:
  LogStorage(block::BlockLog& log, std::vector<sg::Bytes> recovered, std::function<void(uint64_t)> on_durable)
      : log_(log), recovered_(std::move(recovered)), on_durable_(std::move(on_durable)) {}

  void append(const sg::Bytes& record) override;
  void rewrite(const std::vector<sg::Bytes>& records) override;
  uint64_t sync() override;
  std::vector<sg::Bytes> recover() override { return recovered_; }

  uint64_t bytes_written() const { return bytes_written_; }
  uint64_t syncs_completed() const { return syncs_completed_; }

 private:
  block::BlockLog& log_;
  std::vector<sg::Bytes> recovered_;
  std::function<void(uint64_t)> on_durable_;
  std::vector<sg::Bytes> pending_;  // framed log records not yet handed to the log
  uint64_t next_token_ = 0;
  uint64_t bytes_written_ = 0;
  uint64_t syncs_completed_ = 0;
};

// Opens the block log on the first block device and replays it into the
// logical records of the last durable state. Runs the event loop until the
// scan finished; panics if there is no disk or the log cannot be opened.
// Corruption past the last intact record is reported and left behind
// (appends continue after the intact records).
std::vector<sg::Bytes> open_and_replay(block::BlockLog*& log_out, uint64_t log_id);

}  // namespace service
