#include "vmm/snapshot/snapshot_file.h"

#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "guest-kernel/lib/crc32c.h"

namespace vmm::snapshot {
namespace {

void put_le(uint8_t* p, uint64_t v, int n) {
  for (int i = 0; i < n; ++i) p[i] = static_cast<uint8_t>(v >> (8 * i));
}
uint64_t get_le(const uint8_t* p, int n) {
  uint64_t v = 0;
  for (int i = 0; i < n; ++i) v |= uint64_t(p[i]) << (8 * i);
  return v;
}

}  // namespace

std::string tag_name(uint32_t t) {
  std::string s;
  for (int i = 0; i < 4; ++i) {
    const char c = static_cast<char>(t >> (8 * i));
    if (c < 0x20 || c > 0x7e) {
      char b[16];
      std::snprintf(b, sizeof b, "0x%08x", t);
      return b;
    }
    s += c;
  }
  return s;
}

FileWriter::FileWriter(std::string path) : path_(std::move(path)), tmp_(path_ + ".tmp") {
  f_ = std::fopen(tmp_.c_str(), "wb");
  if (!f_) throw SnapshotError("cannot create snapshot file '" + tmp_ + "': " + std::strerror(errno));
  uint8_t h[kFileHeaderBytes];
  std::memcpy(h, kMagic, 8);
  put_le(h + 8, kFormatVersion, 4);
  put_le(h + 12, crc32c::value(h, 12), 4);
  put(h, sizeof h);
}

FileWriter::~FileWriter() {
  if (f_) std::fclose(f_);
  if (!committed_) ::unlink(tmp_.c_str());
}

void FileWriter::put(const void* p, size_t n) {
  if (n == 0) return;  // an empty payload may have no buffer at all
  if (std::fwrite(p, 1, n, f_) != n)
    throw SnapshotError("cannot write snapshot file '" + tmp_ + "': " + std::strerror(errno));
  offset_ += n;
}

void FileWriter::section(uint32_t t, std::span<const uint8_t> payload) {
  if (committed_) throw SnapshotError("snapshot file '" + path_ + "' already committed");
  if (payload.size() > kMaxSectionBytes)
    throw SnapshotError("section " + tag_name(t) + " too large (" + std::to_string(payload.size()) + " bytes)");
  uint8_t h[kSectionHeaderBytes];
  put_le(h, t, 4);
  put_le(h + 4, 0, 4);
  put_le(h + 8, payload.size(), 8);
  uint32_t crc = crc32c::extend(0, h, sizeof h);
  if (!payload.empty()) crc = crc32c::extend(crc, payload.data(), payload.size());
  uint8_t c[kSectionTrailerBytes];
  put_le(c, crc, 4);
  put(h, sizeof h);
  put(payload.data(), payload.size());
  put(c, sizeof c);
  ++sections_;
}

void FileWriter::commit() {
  uint8_t count[8];
  put_le(count, sections_, 8);
  section(tag("END "), count);
  if (std::fflush(f_) != 0 || ::fsync(fileno(f_)) != 0)
    throw SnapshotError("cannot write snapshot file '" + tmp_ + "': " + std::strerror(errno));
  const int r = std::fclose(f_);
  f_ = nullptr;
  if (r != 0) throw SnapshotError("cannot write snapshot file '" + tmp_ + "': " + std::strerror(errno));
  if (::rename(tmp_.c_str(), path_.c_str()) != 0)
    throw SnapshotError("cannot rename '" + tmp_ + "' to '" + path_ + "': " + std::strerror(errno));
  committed_ = true;
}

FileReader::FileReader(std::string path) : path_(std::move(path)) {
  f_ = std::fopen(path_.c_str(), "rb");
  if (!f_) throw SnapshotError("cannot open snapshot '" + path_ + "': " + std::strerror(errno));
  uint8_t h[kFileHeaderBytes];
  get(h, sizeof h, "the file header");
  if (std::memcmp(h, kMagic, 8) != 0) fail("not a snapshot file (bad magic)");
  if (get_le(h + 12, 4) != crc32c::value(h, 12)) fail("the file header fails its CRC-32C check (corrupt)");
  const uint64_t version = get_le(h + 8, 4);
  if (version != kFormatVersion)
    fail("format version " + std::to_string(version) + ", this VMM reads version " + std::to_string(kFormatVersion));
}

FileReader::~FileReader() {
  if (f_) std::fclose(f_);
}

void FileReader::fail(const std::string& why) const { throw SnapshotError("snapshot '" + path_ + "': " + why); }

void FileReader::get(void* p, size_t n, const std::string& where) {
  if (n == 0) return;
  const size_t got = std::fread(p, 1, n, f_);
  if (got != n) {
    if (std::ferror(f_)) fail("read error in " + where + ": " + std::strerror(errno));
    fail("truncated in " + where + " (at byte " + std::to_string(offset_ + got) + ")");
  }
  offset_ += n;
}

bool FileReader::next(Section& out) {
  if (ended_) return false;
  const uint64_t at = offset_;
  uint8_t h[kSectionHeaderBytes];
  get(h, sizeof h, "a section header (no END section)");
  const uint32_t t = static_cast<uint32_t>(get_le(h, 4));
  const uint64_t len = get_le(h + 8, 8);
  const std::string name = "section " + tag_name(t) + " at byte " + std::to_string(at);
  if (len > kMaxSectionBytes || get_le(h + 4, 4) != 0)
    fail(name + " has a malformed header (corrupt)");
  out.tag = t;
  out.offset = at;
  out.payload.resize(len);
  get(out.payload.data(), len, name);
  uint8_t c[kSectionTrailerBytes];
  get(c, sizeof c, name);
  uint32_t crc = crc32c::extend(0, h, sizeof h);
  if (len) crc = crc32c::extend(crc, out.payload.data(), len);
  if (crc != get_le(c, 4)) fail(name + " fails its CRC-32C check (corrupt)");
  if (t == tag("END ")) {
    if (len != 8 || get_le(out.payload.data(), 8) != sections_)
      fail("the END section counts " + std::to_string(len == 8 ? get_le(out.payload.data(), 8) : 0) +
           " sections, the file has " + std::to_string(sections_));
    if (std::fgetc(f_) != EOF) fail("bytes after the END section");
    ended_ = true;
    return false;
  }
  ++sections_;
  return true;
}

}  // namespace vmm::snapshot
