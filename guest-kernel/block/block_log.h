// An append-only, checksummed record log on a BlockDevice (format in
// block_log_format.h). open() reads the superblock (formatting a blank
// disk), scans the records in order and stops at the first one that is
// unwritten, not ours, torn or corrupted, saying which; it returns only
// intact records, and appends continue right after the last of them.
//
// Operations are asynchronous and run one at a time in the order they were
// called; each completion runs on the event loop. A record is durable once
// a later sync() has completed. After an I/O error the log refuses further
// writes (kFailed): what reached the disk is unknown until the next open.
//
// Uses only the BlockDevice contract (no kernel services), so host unit
// tests drive it with an in-memory device.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <deque>
#include <functional>
#include <vector>

#include "guest-kernel/block/block_device.h"
#include "guest-kernel/block/block_log_format.h"

namespace block {

enum class LogStatus {
  kOk,
  kIoError,            // the device failed a request
  kNotALog,            // sector 0 holds something else: left alone
  kBadSuperblock,      // our superblock, damaged or of another version
  kFull,               // the record does not fit before the end of the device
  kTooLarge,           // payload above max_payload()
  kNotOpen,            // open() has not succeeded
  kFailed,             // an earlier write failed; reopen to continue
};
const char* to_string(LogStatus s);

struct LogRecord {
  uint64_t sequence;
  uint64_t sector;  // where it starts
  std::vector<uint8_t> payload;
};

struct LogRecovery {
  LogStatus status = LogStatus::kOk;  // kOk: the log is open
  bool formatted = false;             // a blank disk got a fresh superblock
  std::vector<LogRecord> records;     // intact, in order
  // Why the scan stopped, and where (appends continue there):
  // is_end_of_log(stop) is the clean end; anything else is corruption.
  logfmt::RecordCheck stop = logfmt::RecordCheck::kUnwritten;
  uint64_t stop_sector = 0;
  bool corruption() const { return !logfmt::is_end_of_log(stop); }
  uint64_t log_id = 0, epoch = 0;  // epoch of this open (records written now carry it)
};

class BlockLog {
 public:
  // `new_log_id` identifies the log if open() formats a blank disk (choose
  // it at random: it tells this log's records from an earlier one's).
  BlockLog(BlockDevice* dev, uint64_t new_log_id);

  void open(std::function<void(LogRecovery&)> done);
  // Appends one record; `done(status, sequence)`.
  void append(const void* payload, size_t len, std::function<void(LogStatus, uint64_t)> done);
  // Completes once every earlier append is on stable storage.
  void sync(std::function<void(LogStatus)> done);

  bool is_open() const { return open_; }
  size_t max_payload() const { return max_payload_; }
  uint64_t next_sequence() const { return next_sequence_; }
  uint64_t tail_sector() const { return tail_; }

 private:
  struct Op {
    enum Kind { kOpen, kAppend, kSync } kind;
    std::vector<uint8_t> payload;
    std::function<void(LogRecovery&)> opened;
    std::function<void(LogStatus, uint64_t)> appended;
    std::function<void(LogStatus)> synced;
  };
  void enqueue(Op op);
  void pump();
  void finish_op();
  void start_append(Op& op);
  void start_sync(Op& op);
  // open(), step by step.
  void open_read_superblock();
  void open_scan(uint64_t sector);
  void open_stop(logfmt::RecordCheck why, uint64_t sector);
  void open_write_superblock();
  void open_done(LogStatus s);
  void read(uint64_t sector, size_t sectors, std::function<void(Status)> done);

  BlockDevice* dev_;
  uint64_t new_log_id_;
  size_t window_sectors_ = 0, max_payload_ = 0;
  bool open_ = false, failed_ = false, busy_ = false;
  std::deque<Op> ops_;

  logfmt::Superblock sb_{};
  uint64_t tail_ = 0, next_sequence_ = 0;
  LogRecovery recovery_;
  logfmt::ScanState scan_{};
  std::vector<uint8_t> buf_;     // the request in flight
  uint64_t window_start_ = 0;   // sectors of the device held in buf_ while scanning
  size_t window_count_ = 0;
};

}  // namespace block
