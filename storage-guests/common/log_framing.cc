#include "storage-guests/common/log_framing.h"

#include <cstring>

namespace sg {
namespace {

// Logical records above this are refused on replay: far more than any
// service writes, far less than would exhaust a guest's memory.
constexpr uint32_t kMaxLogicalRecord = 64u << 20;

void put_u32(Bytes& b, uint32_t v) {
  for (int i = 0; i < 4; ++i) b.push_back(static_cast<uint8_t>(v >> (8 * i)));
}
uint32_t get_u32(const uint8_t* p) {
  return static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8 | static_cast<uint32_t>(p[2]) << 16 |
         static_cast<uint32_t>(p[3]) << 24;
}

}  // namespace

std::vector<Bytes> frame_append(const Bytes& record, size_t max_log_record) {
  std::vector<Bytes> out;
  if (record.size() + 1 <= max_log_record) {
    Bytes b{static_cast<uint8_t>(LogRecordKind::kWhole)};
    b.insert(b.end(), record.begin(), record.end());
    out.push_back(std::move(b));
    return out;
  }
  size_t at = 0;
  while (at < record.size()) {
    Bytes b;
    if (at == 0) {
      b.push_back(static_cast<uint8_t>(LogRecordKind::kFirst));
      put_u32(b, static_cast<uint32_t>(record.size()));
    }
    const size_t room = max_log_record - (at == 0 ? 5 : 1);
    const size_t n = record.size() - at < room ? record.size() - at : room;
    if (at != 0) {
      b.push_back(static_cast<uint8_t>(at + n == record.size() ? LogRecordKind::kLast : LogRecordKind::kMore));
    }
    b.insert(b.end(), record.begin() + static_cast<long>(at), record.begin() + static_cast<long>(at + n));
    at += n;
    out.push_back(std::move(b));
  }
  return out;
}

std::vector<Bytes> frame_rewrite(const std::vector<Bytes>& records, size_t max_log_record) {
  Bytes header{static_cast<uint8_t>(LogRecordKind::kRewrite)};
  put_u32(header, static_cast<uint32_t>(records.size()));
  std::vector<Bytes> out{std::move(header)};
  for (const Bytes& r : records) {
    for (Bytes& b : frame_append(r, max_log_record)) out.push_back(std::move(b));
  }
  return out;
}

bool LogReplay::fail() {
  ++malformed_;
  ended_ = true;
  return false;
}

void LogReplay::complete(Bytes record) {
  if (!in_rewrite_) {
    records_.push_back(std::move(record));
    return;
  }
  rewrite_.push_back(std::move(record));
  if (--rewrite_left_ == 0) {
    records_ = std::move(rewrite_);
    rewrite_.clear();
    in_rewrite_ = false;
  }
}

bool LogReplay::feed(const uint8_t* data, size_t len) {
  if (ended_) return false;
  if (len == 0) return fail();
  const auto kind = static_cast<LogRecordKind>(data[0]);
  const uint8_t* body = data + 1;
  const size_t n = len - 1;
  switch (kind) {
    case LogRecordKind::kWhole:
      if (in_pieces_) return fail();
      complete(Bytes(body, body + n));
      return true;
    case LogRecordKind::kFirst: {
      if (in_pieces_ || n < 4) return fail();
      pieces_total_ = get_u32(body);
      if (pieces_total_ > kMaxLogicalRecord || n - 4 >= pieces_total_) return fail();
      pieces_.assign(body + 4, body + n);
      in_pieces_ = true;
      return true;
    }
    case LogRecordKind::kMore:
    case LogRecordKind::kLast: {
      if (!in_pieces_) return fail();
      if (n > pieces_total_ - pieces_.size()) return fail();
      pieces_.insert(pieces_.end(), body, body + n);
      const bool full = pieces_.size() == pieces_total_;
      if (full != (kind == LogRecordKind::kLast)) return fail();
      if (full) {
        in_pieces_ = false;
        complete(std::move(pieces_));
        pieces_.clear();
      }
      return true;
    }
    case LogRecordKind::kRewrite: {
      if (in_pieces_ || in_rewrite_ || n != 4) return fail();
      const uint32_t count = get_u32(body);
      if (count == 0) {
        records_.clear();
      } else {
        in_rewrite_ = true;
        rewrite_left_ = count;
        rewrite_.clear();
      }
      return true;
    }
  }
  return fail();
}

std::vector<Bytes> LogReplay::finish() {
  // An unfinished piece or rewrite is the crash's lost tail: the state is
  // what the last complete records made it.
  in_pieces_ = false;
  pieces_.clear();
  in_rewrite_ = false;
  rewrite_.clear();
  return std::move(records_);
}

}  // namespace sg
