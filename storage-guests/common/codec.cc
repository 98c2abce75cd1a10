#include "storage-guests/common/codec.h"

namespace sg {

const char* to_string(DecodeError e) {
  switch (e) {
    case DecodeError::kNone: return "ok";
    case DecodeError::kTruncated: return "truncated input";
    case DecodeError::kTooLong: return "length or count over its limit";
    case DecodeError::kBadVarint: return "malformed varint";
    case DecodeError::kBadMagic: return "bad magic: not a storage-guests message";
    case DecodeError::kBadVersion: return "unsupported wire version";
    case DecodeError::kBadProtocol: return "message of another protocol";
    case DecodeError::kBadType: return "unknown message type";
    case DecodeError::kBadValue: return "field value out of range";
    case DecodeError::kTrailingBytes: return "trailing bytes after message";
  }
  return "unknown decode error";
}

// ---- Writer -------------------------------------------------------------------

void Writer::varint(uint64_t v) {
  while (v >= 0x80) {
    buf_.push_back(static_cast<uint8_t>(v | 0x80));
    v >>= 7;
  }
  buf_.push_back(static_cast<uint8_t>(v));
}

void Writer::bytes(const uint8_t* p, size_t n) {
  varint(n);
  raw(p, n);
}

// ---- Reader -------------------------------------------------------------------

void Reader::fail(DecodeError e) {
  if (err_ != DecodeError::kNone || e == DecodeError::kNone) return;
  err_ = e;
  err_off_ = off_;
}

bool Reader::need(size_t n) {
  if (!ok()) return false;
  if (n > n_ - off_) {
    fail(DecodeError::kTruncated);
    return false;
  }
  return true;
}

uint8_t Reader::u8() {
  if (!need(1)) return 0;
  return p_[off_++];
}

uint64_t Reader::fixed(int n) {
  if (!need(static_cast<size_t>(n))) return 0;
  uint64_t v = 0;
  for (int i = 0; i < n; ++i) v |= static_cast<uint64_t>(p_[off_ + i]) << (8 * i);
  off_ += static_cast<size_t>(n);
  return v;
}

bool Reader::boolean() {
  const uint8_t v = u8();
  if (v > 1) {
    fail(DecodeError::kBadValue);
    return false;
  }
  return v == 1;
}

uint64_t Reader::varint() {
  if (!ok()) return 0;
  const size_t start = off_;
  uint64_t v = 0;
  for (int i = 0; i < 10; ++i) {
    if (off_ >= n_) {
      off_ = start;
      fail(DecodeError::kTruncated);
      return 0;
    }
    const uint8_t b = p_[off_++];
    // The tenth byte holds bit 63 only.
    if (i == 9 && b > 1) break;
    v |= static_cast<uint64_t>(b & 0x7f) << (7 * i);
    if ((b & 0x80) == 0) {
      // A zero final byte after the first means a padded, non-minimal
      // encoding; refusing it keeps encodings unique.
      if (b == 0 && i > 0) break;
      return v;
    }
  }
  off_ = start;
  fail(DecodeError::kBadVarint);
  return 0;
}

uint64_t Reader::varint_max(uint64_t max) {
  const uint64_t v = varint();
  if (v > max) {
    fail(DecodeError::kBadValue);
    return 0;
  }
  return v;
}

bool Reader::bytes_view(const uint8_t** p, size_t* n, size_t max_len) {
  *p = nullptr;
  *n = 0;
  const uint64_t len = varint();
  if (!ok()) return false;
  if (len > max_len) {
    fail(DecodeError::kTooLong);
    return false;
  }
  if (!need(static_cast<size_t>(len))) return false;
  *p = p_ + off_;
  *n = static_cast<size_t>(len);
  off_ += *n;
  return true;
}

void Reader::bytes(Bytes& out, size_t max_len) {
  out.clear();
  const uint8_t* p;
  size_t n;
  if (bytes_view(&p, &n, max_len)) out.assign(p, p + n);
}

void Reader::str(std::string& out, size_t max_len) {
  out.clear();
  const uint8_t* p;
  size_t n;
  if (bytes_view(&p, &n, max_len)) out.assign(reinterpret_cast<const char*>(p), n);
}

size_t Reader::count(size_t max, size_t min_elem_size) {
  const uint64_t c = varint();
  if (!ok()) return 0;
  if (c > max) {
    fail(DecodeError::kTooLong);
    return 0;
  }
  // An element takes at least min_elem_size bytes, so a count the rest of
  // the input cannot hold is a lie told to make us allocate.
  if (min_elem_size != 0 && c > (n_ - off_) / min_elem_size) {
    fail(DecodeError::kTruncated);
    return 0;
  }
  return static_cast<size_t>(c);
}

bool Reader::finish() {
  if (ok() && off_ != n_) fail(DecodeError::kTrailingBytes);
  return ok();
}

// ---- envelope -----------------------------------------------------------------

void write_envelope(Writer& w, Protocol protocol, uint8_t type) {
  w.u16(kMagic);
  w.u8(kWireVersion);
  w.u8(static_cast<uint8_t>(protocol));
  w.u8(type);
}

uint8_t read_envelope(Reader& r, Protocol expected, uint8_t max_type) {
  if (r.u16() != kMagic) {
    r.fail(DecodeError::kBadMagic);
    return 0;
  }
  if (r.u8() != kWireVersion) {
    r.fail(DecodeError::kBadVersion);
    return 0;
  }
  if (r.u8() != static_cast<uint8_t>(expected)) {
    r.fail(DecodeError::kBadProtocol);
    return 0;
  }
  const uint8_t type = r.u8();
  if (type == 0 || type > max_type) {
    r.fail(DecodeError::kBadType);
    return 0;
  }
  return r.ok() ? type : 0;
}

}  // namespace sg
