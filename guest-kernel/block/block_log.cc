#include "guest-kernel/block/block_log.h"

#include <utility>

namespace block {

using logfmt::kSector;
using logfmt::RecordCheck;

namespace {
// The scan reads this much at a time; it also bounds a record (plus the
// end marker), so every record can be read and written in one request.
constexpr size_t kWindowBytes = 128 * 1024;
}  // namespace

const char* to_string(LogStatus s) {
  switch (s) {
    case LogStatus::kOk: return "ok";
    case LogStatus::kIoError: return "I/O error";
    case LogStatus::kNotALog: return "sector 0 is not a block log (not formatting over it)";
    case LogStatus::kBadSuperblock: return "superblock damaged or of another version";
    case LogStatus::kFull: return "log full";
    case LogStatus::kTooLarge: return "payload too large";
    case LogStatus::kNotOpen: return "log not open";
    case LogStatus::kFailed: return "log failed after an I/O error";
  }
  return "?";
}

BlockLog::BlockLog(BlockDevice* dev, uint64_t new_log_id) : dev_(dev), new_log_id_(new_log_id) {
  size_t window = dev->max_request_bytes() < kWindowBytes ? dev->max_request_bytes() : kWindowBytes;
  window_sectors_ = window / kSector;
  // One sector of the window is kept for the end marker written with a record.
  max_payload_ = window_sectors_ >= 2 ? (window_sectors_ - 1) * kSector - sizeof(logfmt::RecordHeader) : 0;
}

void BlockLog::enqueue(Op op) {
  ops_.push_back(std::move(op));
  pump();
}

void BlockLog::pump() {
  if (busy_ || ops_.empty()) return;
  busy_ = true;
  Op& op = ops_.front();
  switch (op.kind) {
    case Op::kOpen: open_read_superblock(); break;
    case Op::kAppend: start_append(op); break;
    case Op::kSync: start_sync(op); break;
  }
}

void BlockLog::finish_op() {
  ops_.pop_front();
  busy_ = false;
  pump();
}

void BlockLog::read(uint64_t sector, size_t sectors, std::function<void(Status)> done) {
  buf_.assign(sectors * kSector, 0);
  dev_->submit(Request{block::Op::kRead, sector, buf_.data(), buf_.size(), std::move(done)});
}

// ---- open -------------------------------------------------------------------

void BlockLog::open(std::function<void(LogRecovery&)> done) {
  Op op{Op::kOpen, {}, std::move(done), {}, {}};
  enqueue(std::move(op));
}

void BlockLog::open_read_superblock() {
  open_ = false;
  failed_ = false;
  recovery_ = LogRecovery{};
  if (window_sectors_ < 2 || dev_->sectors() < 2) {
    open_done(LogStatus::kTooLarge);  // a device this small holds no record
    return;
  }
  read(0, 1, [this](Status s) {
    if (s != Status::kOk) return open_done(LogStatus::kIoError);
    switch (logfmt::decode_superblock(buf_.data(), dev_->sectors(), &sb_)) {
      case logfmt::SuperCheck::kValid: break;
      case logfmt::SuperCheck::kBlank:
        // A fresh disk: format it. Epoch 0 becomes 1 below, before any
        // record is written; nothing to scan.
        sb_ = logfmt::Superblock{logfmt::kSuperMagic, logfmt::kVersion, 0, new_log_id_, 0, 1, dev_->sectors()};
        recovery_.formatted = true;
        recovery_.stop = RecordCheck::kUnwritten;
        recovery_.stop_sector = sb_.first_sector;
        tail_ = sb_.first_sector;
        next_sequence_ = 0;
        return open_write_superblock();
      case logfmt::SuperCheck::kForeign: return open_done(LogStatus::kNotALog);
      case logfmt::SuperCheck::kBadVersion:
      case logfmt::SuperCheck::kCorrupt: return open_done(LogStatus::kBadSuperblock);
    }
    scan_ = logfmt::ScanState{sb_.log_id, sb_.epoch, 1, 0, sb_.first_sector, dev_->sectors(), max_payload_};
    window_count_ = 0;
    open_scan(sb_.first_sector);
  });
}

void BlockLog::open_scan(uint64_t sector) {
  // Walks the records held in the window; reads the next window when the
  // record at `sector` is not wholly inside it. Each read's completion
  // re-enters here from the event loop, so the stack does not grow.
  for (;;) {
    if (sector >= dev_->sectors()) return open_stop(RecordCheck::kEndOfDevice, sector);
    const bool in_window = sector >= window_start_ && sector < window_start_ + window_count_;
    if (!in_window) {
      const uint64_t left = dev_->sectors() - sector;
      const size_t n = left < window_sectors_ ? static_cast<size_t>(left) : window_sectors_;
      read(sector, n, [this, sector, n](Status s) {
        if (s != Status::kOk) return open_done(LogStatus::kIoError);
        window_start_ = sector;
        window_count_ = n;
        open_scan(sector);
      });
      return;
    }
    const uint8_t* at = buf_.data() + (sector - window_start_) * kSector;
    scan_.sector = sector;
    logfmt::RecordHeader h;
    RecordCheck c = logfmt::check_record_header(at, scan_, &h);
    if (c != RecordCheck::kValid) return open_stop(c, sector);
    const uint64_t n = logfmt::record_sectors(h.payload_bytes);
    if (sector + n > window_start_ + window_count_) {
      // Straddles the window's end: re-read from the record's start (it
      // fits a window: check_record_header bounds its length).
      window_count_ = 0;
      continue;
    }
    c = logfmt::check_record(at, h, scan_);
    if (c != RecordCheck::kValid) return open_stop(c, sector);
    recovery_.records.push_back(
        LogRecord{h.sequence, sector, std::vector<uint8_t>(at + sizeof h, at + sizeof h + h.payload_bytes)});
    scan_.next_sequence = h.sequence + 1;
    scan_.min_epoch = h.epoch;
    sector += n;
  }
}

void BlockLog::open_stop(RecordCheck why, uint64_t sector) {
  recovery_.stop = why;
  recovery_.stop_sector = sector;
  tail_ = sector;
  next_sequence_ = scan_.next_sequence;
  buf_.clear();
  buf_.shrink_to_fit();
  window_count_ = 0;
  open_write_superblock();
}

void BlockLog::open_write_superblock() {
  // A new epoch, durable before any record of it is written (see the
  // format's header: this is what keeps a cut tail from coming back).
  ++sb_.epoch;
  buf_.assign(kSector, 0);
  logfmt::encode_superblock(sb_, buf_.data());
  dev_->submit(Request{block::Op::kWrite, 0, buf_.data(), kSector, [this](Status s) {
                         if (s != Status::kOk) return open_done(LogStatus::kIoError);
                         dev_->submit(Request{block::Op::kFlush, 0, nullptr, 0, [this](Status f) {
                                                open_done(f == Status::kOk ? LogStatus::kOk : LogStatus::kIoError);
                                              }});
                       }});
}

void BlockLog::open_done(LogStatus s) {
  buf_.clear();
  recovery_.status = s;
  recovery_.log_id = sb_.log_id;
  recovery_.epoch = sb_.epoch;
  open_ = s == LogStatus::kOk;
  if (!open_) recovery_.records.clear();
  auto done = std::move(ops_.front().opened);
  LogRecovery result = std::move(recovery_);
  recovery_ = LogRecovery{};
  if (done) done(result);
  finish_op();
}

// ---- append and sync ---------------------------------------------------------

void BlockLog::append(const void* payload, size_t len, std::function<void(LogStatus, uint64_t)> done) {
  const uint8_t* p = static_cast<const uint8_t*>(payload);
  Op op{Op::kAppend, std::vector<uint8_t>(p, p + len), {}, std::move(done), {}};
  enqueue(std::move(op));
}

void BlockLog::sync(std::function<void(LogStatus)> done) {
  Op op{Op::kSync, {}, {}, {}, std::move(done)};
  enqueue(std::move(op));
}

void BlockLog::start_append(Op& op) {
  auto fail = [this](LogStatus s) {
    auto done = std::move(ops_.front().appended);
    if (done) done(s, 0);
    finish_op();
  };
  if (!open_) return fail(LogStatus::kNotOpen);
  if (failed_) return fail(LogStatus::kFailed);
  if (op.payload.size() > max_payload_) return fail(LogStatus::kTooLarge);
  const uint64_t n = logfmt::record_sectors(op.payload.size());
  if (tail_ + n > dev_->sectors()) return fail(LogStatus::kFull);
  // The record and, where the device goes on, a zeroed end marker after it,
  // in one request: the scan then always finds a clean end behind the last
  // record, whatever the disk held before.
  const uint64_t with_marker = tail_ + n < dev_->sectors() ? n + 1 : n;
  buf_.assign(with_marker * kSector, 0);
  logfmt::RecordHeader h{};
  h.log_id = sb_.log_id;
  h.epoch = sb_.epoch;
  h.sequence = next_sequence_;
  h.payload_bytes = static_cast<uint32_t>(op.payload.size());
  logfmt::encode_record(h, op.payload.data(), buf_.data());
  dev_->submit(Request{block::Op::kWrite, tail_, buf_.data(), buf_.size(), [this, n](Status s) {
                         auto done = std::move(ops_.front().appended);
                         buf_.clear();
                         if (s != Status::kOk) {
                           failed_ = true;
                           if (done) done(LogStatus::kIoError, 0);
                         } else {
                           const uint64_t seq = next_sequence_++;
                           tail_ += n;
                           if (done) done(LogStatus::kOk, seq);
                         }
                         finish_op();
                       }});
}

void BlockLog::start_sync(Op&) {
  if (!open_ || failed_) {
    auto done = std::move(ops_.front().synced);
    if (done) done(open_ ? LogStatus::kFailed : LogStatus::kNotOpen);
    return finish_op();
  }
  dev_->submit(Request{block::Op::kFlush, 0, nullptr, 0, [this](Status s) {
                         auto done = std::move(ops_.front().synced);
                         if (s != Status::kOk) failed_ = true;
                         if (done) done(s == Status::kOk ? LogStatus::kOk : LogStatus::kIoError);
                         finish_op();
                       }});
}

}  // namespace block
