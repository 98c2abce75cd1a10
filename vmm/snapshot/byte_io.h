// Little-endian encoding of snapshot payloads: ByteWriter appends fixed-size
// integers, byte strings and length-prefixed blobs; ByteReader takes them
// back and throws SnapshotError on a payload that ends early, so a short or
// malformed section is refused with a reason, never read past its end.
// Only used between two VMMs on the same x86-64 host, but the encoding is
// explicit anyway: the file format does not depend on struct padding of
// our own types (KVM's structs are stored as KVM defines them, with their
// size, and checked against the size this build expects).
#pragma once

#include <cstdint>
#include <cstring>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

namespace vmm::snapshot {

class SnapshotError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

class ByteWriter {
 public:
  void u8(uint8_t v) { out_.push_back(v); }
  void u16(uint16_t v) { le(v, 2); }
  void u32(uint32_t v) { le(v, 4); }
  void u64(uint64_t v) { le(v, 8); }
  void i64(int64_t v) { le(static_cast<uint64_t>(v), 8); }
  void bytes(const void* p, size_t n) {
    const auto* b = static_cast<const uint8_t*>(p);
    out_.insert(out_.end(), b, b + n);
  }
  // A u32 length, then the bytes.
  void blob(const void* p, size_t n) {
    u32(static_cast<uint32_t>(n));
    bytes(p, n);
  }
  void str(const std::string& s) { blob(s.data(), s.size()); }
  // A KVM struct as a blob: its size is checked when it is read back.
  template <typename T>
  void raw(const T& v) {
    blob(&v, sizeof v);
  }
  std::vector<uint8_t>& data() { return out_; }
  std::vector<uint8_t> take() { return std::move(out_); }

 private:
  void le(uint64_t v, int n) {
    for (int i = 0; i < n; ++i) out_.push_back(static_cast<uint8_t>(v >> (8 * i)));
  }
  std::vector<uint8_t> out_;
};

class ByteReader {
 public:
  // `what` names the payload in errors ("section VCPU").
  ByteReader(std::span<const uint8_t> in, std::string what) : in_(in), what_(std::move(what)) {}
  uint8_t u8() { return static_cast<uint8_t>(le(1)); }
  uint16_t u16() { return static_cast<uint16_t>(le(2)); }
  uint32_t u32() { return static_cast<uint32_t>(le(4)); }
  uint64_t u64() { return le(8); }
  int64_t i64() { return static_cast<int64_t>(le(8)); }
  std::span<const uint8_t> bytes(size_t n) {
    need(n);
    auto s = in_.subspan(pos_, n);
    pos_ += n;
    return s;
  }
  std::span<const uint8_t> blob() { return bytes(u32()); }
  std::string str() {
    auto b = blob();
    return std::string(b.begin(), b.end());
  }
  template <typename T>
  T raw(const char* name) {
    auto b = blob();
    if (b.size() != sizeof(T))
      throw SnapshotError(what_ + ": " + name + " is " + std::to_string(b.size()) + " bytes, this VMM expects " +
                          std::to_string(sizeof(T)));
    T v;
    std::memcpy(&v, b.data(), sizeof v);
    return v;
  }
  size_t remaining() const { return in_.size() - pos_; }
  bool done() const { return pos_ == in_.size(); }
  // Throws unless every byte was consumed (a payload longer than its
  // version defines is as wrong as a short one).
  void expect_end() const {
    if (!done()) throw SnapshotError(what_ + ": " + std::to_string(remaining()) + " unexpected trailing bytes");
  }
  const std::string& what() const { return what_; }

 private:
  void need(size_t n) const {
    if (n > remaining())
      throw SnapshotError(what_ + " ends early (" + std::to_string(n) + " more bytes needed, " +
                          std::to_string(remaining()) + " left)");
  }
  uint64_t le(int n) {
    need(static_cast<size_t>(n));
    uint64_t v = 0;
    for (int i = 0; i < n; ++i) v |= uint64_t(in_[pos_ + i]) << (8 * i);
    pos_ += static_cast<size_t>(n);
    return v;
  }
  std::span<const uint8_t> in_;
  size_t pos_ = 0;
  std::string what_;
};

}  // namespace vmm::snapshot
