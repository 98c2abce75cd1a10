// The snapshot file's framing (docs/architecture.md, "Snapshots"):
//
//   header   "VMMSNAP\0", u32 format version, u32 CRC-32C of the 12 bytes before
//   section  u32 tag (four ASCII bytes, e.g. "RAM "), u32 zero, u64 payload
//            length, the payload, u32 CRC-32C of tag, zero, length and payload
//   ...
//   section  "END " whose payload is the u64 number of sections before it
//
// All integers little-endian. A reader refuses, with the file name and the
// byte offset, a wrong magic, another version, a section whose CRC does not
// match (corruption), a file that stops inside a section or before END
// (truncation), and bytes after END. Payloads are at most kMaxSectionBytes,
// so a corrupt length cannot make the reader allocate absurd amounts.
//
// The writer writes PATH.tmp and renames it onto PATH in commit(), after
// fsync: a crash or an error never leaves a half-written PATH behind (nor
// destroys an older PATH that the new one was to replace).
#pragma once

#include <cstdint>
#include <cstdio>
#include <span>
#include <string>
#include <vector>

#include "vmm/snapshot/byte_io.h"

namespace vmm::snapshot {

constexpr char kMagic[8] = {'V', 'M', 'M', 'S', 'N', 'A', 'P', '\0'};
constexpr uint32_t kFormatVersion = 1;
constexpr size_t kFileHeaderBytes = 16;
constexpr size_t kSectionHeaderBytes = 16;
constexpr size_t kSectionTrailerBytes = 4;
constexpr uint64_t kMaxSectionBytes = 64ull << 20;

// "RAM " -> its u32 tag (first character in the lowest byte).
constexpr uint32_t tag(const char (&s)[5]) {
  return uint32_t(uint8_t(s[0])) | uint32_t(uint8_t(s[1])) << 8 | uint32_t(uint8_t(s[2])) << 16 |
         uint32_t(uint8_t(s[3])) << 24;
}
std::string tag_name(uint32_t t);  // "RAM " or, for non-ASCII tags, "0x..."

class FileWriter {
 public:
  // Opens PATH.tmp for writing; throws SnapshotError naming the path.
  explicit FileWriter(std::string path);
  ~FileWriter();  // without commit(): removes PATH.tmp
  FileWriter(const FileWriter&) = delete;
  FileWriter& operator=(const FileWriter&) = delete;

  void section(uint32_t t, std::span<const uint8_t> payload);
  // Writes END, flushes, fsyncs and renames PATH.tmp onto PATH.
  void commit();
  uint64_t bytes_written() const { return offset_; }
  const std::string& path() const { return path_; }

 private:
  void put(const void* p, size_t n);
  std::string path_, tmp_;
  FILE* f_ = nullptr;
  uint64_t offset_ = 0;
  uint64_t sections_ = 0;
  bool committed_ = false;
};

struct Section {
  uint32_t tag = 0;
  uint64_t offset = 0;  // of its header in the file, for messages
  std::vector<uint8_t> payload;
};

class FileReader {
 public:
  // Opens PATH and checks the header; throws SnapshotError.
  explicit FileReader(std::string path);
  ~FileReader();
  FileReader(const FileReader&) = delete;
  FileReader& operator=(const FileReader&) = delete;

  // The next section, CRC checked; false after END (which is checked too:
  // its count, and that nothing follows it).
  bool next(Section& out);
  const std::string& path() const { return path_; }

 private:
  [[noreturn]] void fail(const std::string& why) const;
  // Reads exactly n bytes or fails with "truncated" naming `where`.
  void get(void* p, size_t n, const std::string& where);
  std::string path_;
  FILE* f_ = nullptr;
  uint64_t offset_ = 0;
  uint64_t sections_ = 0;
  bool ended_ = false;
};

}  // namespace vmm::snapshot
