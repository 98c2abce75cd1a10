// sg::Storage on an append-only log of bounded records (the guest's block
// log): how logical storage records, of any size, and atomic rewrites are
// laid out as log records, and how recovery reads them back.
//
// Each log record starts with a kind byte:
//   kWhole  a complete logical record
//   kFirst  the first piece of a large one: u32 total length, then bytes
//   kMore   a middle piece            kLast  the final piece
//   kRewrite  u32 count: the start of a rewrite; the next `count` logical
//           records replace everything before the header
// Recovery replays the log in order. A logical record that was not
// finished, or a rewrite whose records did not all arrive, can only sit at
// the end of the log (appends are sequential and the block log stops at the
// first torn record), and is dropped: that is the crash that lost unsynced
// writes, never a mix of old and new state. Anything malformed ends the
// replay the same way, counted in `malformed`.
//
// Freestanding-safe: the guest runtime uses it, host tests check it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "storage-guests/common/env.h"

namespace sg {

enum class LogRecordKind : uint8_t { kWhole = 1, kFirst = 2, kMore = 3, kLast = 4, kRewrite = 5 };

// The log records for one appended logical record; none longer than
// `max_log_record` bytes (at least 16).
std::vector<Bytes> frame_append(const Bytes& record, size_t max_log_record);
// The log records of an atomic rewrite to `records`.
std::vector<Bytes> frame_rewrite(const std::vector<Bytes>& records, size_t max_log_record);

class LogReplay {
 public:
  // One log record, in log order. Returns false once the replay has ended
  // (malformed input); later records are ignored.
  bool feed(const uint8_t* data, size_t len);
  // The logical records the log holds, dropping an unfinished tail.
  std::vector<Bytes> finish();
  size_t malformed() const { return malformed_; }

 private:
  void complete(Bytes record);
  bool fail();

  std::vector<Bytes> records_;     // the state so far
  // A rewrite in progress: its records and how many are still missing.
  bool in_rewrite_ = false;
  std::vector<Bytes> rewrite_;
  uint32_t rewrite_left_ = 0;
  // A large record in progress.
  bool in_pieces_ = false;
  Bytes pieces_;
  uint32_t pieces_total_ = 0;
  bool ended_ = false;
  size_t malformed_ = 0;
};

}  // namespace sg
