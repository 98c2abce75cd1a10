// Wire encoding shared by every service: a Writer, a Reader that never
// trusts its input, and the message envelope.
//
// Every byte a node receives comes from the network (or from a disk that
// may hold a torn record), so the Reader checks every length against what is
// left and against a caller-given cap before it allocates or copies. It
// cannot throw (the guest builds with -fno-exceptions): the first problem
// puts it in a sticky error state, later reads return zero values, and the
// caller checks ok() once at the end of a message. That keeps decoders
// straight-line code without a check after every field.
//
// Integers are little-endian fixed width (u8..u64) or LEB128 varints
// (minimal encoding only, so that every value has exactly one encoding).
// Byte strings and strings are a varint length followed by the bytes.
//
// Freestanding-safe: no exceptions, RTTI, iostreams or libc formatting.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>

#include "storage-guests/common/env.h"

namespace sg {

enum class DecodeError : uint8_t {
  kNone = 0,
  kTruncated,      // a field runs past the end of the input
  kTooLong,        // a length or count exceeds the caller's cap
  kBadVarint,      // over 10 bytes, overflows 64 bits, or not minimal
  kBadMagic,       // not one of our messages
  kBadVersion,     // a wire version this build does not speak
  kBadProtocol,    // a message of another service
  kBadType,        // a message type the protocol does not know
  kBadValue,       // a field out of its range (set by decoders via fail())
  kTrailingBytes,  // input left over after a complete message
};

// A static, human-readable name ("truncated input", ...).
const char* to_string(DecodeError e);

class Writer {
 public:
  Writer() = default;
  explicit Writer(size_t reserve) { buf_.reserve(reserve); }

  void u8(uint8_t v) { buf_.push_back(v); }
  void u16(uint16_t v) { fixed(v, 2); }
  void u32(uint32_t v) { fixed(v, 4); }
  void u64(uint64_t v) { fixed(v, 8); }
  void i64(int64_t v) { u64(static_cast<uint64_t>(v)); }
  void boolean(bool v) { u8(v ? 1 : 0); }
  void varint(uint64_t v);
  // Length-prefixed (varint) byte string.
  void bytes(const uint8_t* p, size_t n);
  void bytes(const Bytes& b) { bytes(b.data(), b.size()); }
  void str(std::string_view s) {
    bytes(reinterpret_cast<const uint8_t*>(s.data()), s.size());
  }
  // No length prefix: for nesting an already encoded message.
  void raw(const uint8_t* p, size_t n) { buf_.insert(buf_.end(), p, p + n); }

  size_t size() const { return buf_.size(); }
  const Bytes& data() const { return buf_; }
  Bytes take() { return std::move(buf_); }

 private:
  void fixed(uint64_t v, int n) {
    for (int i = 0; i < n; ++i) buf_.push_back(static_cast<uint8_t>(v >> (8 * i)));
  }
  Bytes buf_;
};

// Caps the Reader applies when the caller gives none. A datagram is far
// smaller; the cap exists so that a corrupt length never asks for gigabytes.
constexpr size_t kMaxFieldBytes = 16u << 20;

class Reader {
 public:
  Reader(const uint8_t* p, size_t n) : p_(p), n_(n) {}
  explicit Reader(const Bytes& b) : p_(b.data()), n_(b.size()) {}
  // The Reader borrows its input; a temporary would dangle.
  explicit Reader(Bytes&&) = delete;

  uint8_t u8();
  uint16_t u16() { return static_cast<uint16_t>(fixed(2)); }
  uint32_t u32() { return static_cast<uint32_t>(fixed(4)); }
  uint64_t u64() { return fixed(8); }
  int64_t i64() { return static_cast<int64_t>(u64()); }
  // Only 0 and 1 are booleans; anything else is kBadValue.
  bool boolean();
  uint64_t varint();
  // A varint that must not exceed `max` (kBadValue otherwise); for enums,
  // ids and other bounded fields.
  uint64_t varint_max(uint64_t max);

  // Length-prefixed fields. On error `out` is left empty.
  void bytes(Bytes& out, size_t max_len = kMaxFieldBytes);
  void str(std::string& out, size_t max_len = kMaxFieldBytes);
  // A view into the input, valid while the input lives; no copy.
  bool bytes_view(const uint8_t** p, size_t* n, size_t max_len = kMaxFieldBytes);

  // The element count of a sequence that follows, capped by `max` and by
  // what the remaining input can hold at `min_elem_size` bytes per element,
  // so that `vec.reserve(count)` is always safe.
  size_t count(size_t max, size_t min_elem_size = 1);

  // Requires that the whole input was consumed.
  bool finish();

  // For decoders that find a semantic problem (unknown enum value, ...).
  // Keeps the first error.
  void fail(DecodeError e);

  bool ok() const { return err_ == DecodeError::kNone; }
  DecodeError error() const { return err_; }
  const char* error_string() const { return to_string(err_); }
  // Where the first error was detected: the start of a field that does not
  // fit or parse, just past one whose value is wrong.
  size_t error_offset() const { return err_off_; }
  size_t remaining() const { return ok() ? n_ - off_ : 0; }
  size_t offset() const { return off_; }

 private:
  uint64_t fixed(int n);
  bool need(size_t n);

  const uint8_t* p_;
  size_t n_;
  size_t off_ = 0;
  DecodeError err_ = DecodeError::kNone;
  size_t err_off_ = 0;
};

// ---- the envelope ---------------------------------------------------------
//
// Every message starts with: magic "SG" (u16 0x4753), wire version (u8),
// protocol (u8), message type (u8). The magic rejects stray datagrams, the
// version lets a future format be refused cleanly instead of misparsed, and
// the protocol keeps services that share a port or a test from decoding each
// other's messages.

constexpr uint16_t kMagic = 0x4753;  // "SG" on the wire
constexpr uint8_t kWireVersion = 1;
constexpr size_t kEnvelopeSize = 5;

enum class Protocol : uint8_t {
  kRpc = 1,  // the shared client request/response framing (rpc.h)
  kRaft = 2,
  kChain = 3,
  kZooKeeper = 4,
  kGfs = 5,
  kDynamo = 6,
  kBayou = 7,
  kSpanner = 8,
  kTest = 0xf0,  // protocols defined only in tests
};

void write_envelope(Writer& w, Protocol protocol, uint8_t type);

// Reads and checks the envelope. `max_type` is the largest type the
// protocol defines (types are 1..max_type; 0 is never valid, so that a
// zeroed buffer is rejected). Returns the type, or 0 with the Reader in
// error.
uint8_t read_envelope(Reader& r, Protocol expected, uint8_t max_type);

}  // namespace sg
