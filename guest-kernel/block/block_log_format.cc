#include "guest-kernel/block/block_log_format.h"

#include "guest-kernel/lib/crc32c.h"

namespace block::logfmt {
namespace {

// Freestanding: the compiler's builtins, no libc.
void copy(void* dst, const void* src, size_t n) { __builtin_memcpy(dst, src, n); }

bool all_zero(const uint8_t* p, size_t n) {
  for (size_t i = 0; i < n; ++i)
    if (p[i]) return false;
  return true;
}

uint32_t superblock_crc(const uint8_t* sector) {
  // The whole sector, with the crc field taken as zero.
  uint8_t copy_of[kSector];
  copy(copy_of, sector, kSector);
  __builtin_memset(copy_of + offsetof(Superblock, crc), 0, sizeof(uint32_t));
  return crc32c::value(copy_of, kSector);
}

uint32_t record_crc(const uint8_t* record, const RecordHeader& h) {
  RecordHeader zeroed = h;
  zeroed.crc = 0;
  const uint32_t c = crc32c::extend(0, reinterpret_cast<const uint8_t*>(&zeroed), sizeof zeroed);
  return crc32c::extend(c, record + sizeof(RecordHeader), h.payload_bytes);
}

}  // namespace

void encode_superblock(const Superblock& sb, uint8_t* sector) {
  __builtin_memset(sector, 0, kSector);
  Superblock s = sb;
  s.magic = kSuperMagic;
  s.version = kVersion;
  s.crc = 0;
  copy(sector, &s, sizeof s);
  s.crc = superblock_crc(sector);
  copy(sector + offsetof(Superblock, crc), &s.crc, sizeof s.crc);
}

SuperCheck decode_superblock(const uint8_t* sector, uint64_t device_sectors, Superblock* out) {
  if (all_zero(sector, kSector)) return SuperCheck::kBlank;
  Superblock s;
  copy(&s, sector, sizeof s);
  if (s.magic != kSuperMagic) return SuperCheck::kForeign;
  if (s.version != kVersion) return SuperCheck::kBadVersion;
  if (s.crc != superblock_crc(sector)) return SuperCheck::kCorrupt;
  // A CRC-valid superblock with impossible fields was written by a buggy
  // or different program: refuse it rather than guess.
  if (s.epoch == 0 || s.first_sector == 0 || s.first_sector >= device_sectors || s.sectors > device_sectors)
    return SuperCheck::kCorrupt;
  *out = s;
  return SuperCheck::kValid;
}

const char* to_string(SuperCheck c) {
  switch (c) {
    case SuperCheck::kValid: return "valid";
    case SuperCheck::kBlank: return "blank (all zero)";
    case SuperCheck::kForeign: return "not a block log (unknown magic)";
    case SuperCheck::kBadVersion: return "unsupported format version";
    case SuperCheck::kCorrupt: return "superblock corrupted (checksum or fields)";
  }
  return "?";
}

void encode_record(RecordHeader h, const uint8_t* payload, uint8_t* out) {
  const uint64_t bytes = record_sectors(h.payload_bytes) * kSector;
  __builtin_memset(out, 0, bytes);
  h.magic = kRecordMagic;
  h.reserved = 0;
  h.crc = 0;
  copy(out, &h, sizeof h);
  if (h.payload_bytes) copy(out + sizeof h, payload, h.payload_bytes);
  h.crc = record_crc(out, h);
  copy(out + offsetof(RecordHeader, crc), &h.crc, sizeof h.crc);
}

bool is_end_of_log(RecordCheck c) {
  return c == RecordCheck::kUnwritten || c == RecordCheck::kOtherLog || c == RecordCheck::kStaleEpoch ||
         c == RecordCheck::kEndOfDevice;
}

const char* to_string(RecordCheck c) {
  switch (c) {
    case RecordCheck::kValid: return "valid";
    case RecordCheck::kUnwritten: return "unwritten sector";
    case RecordCheck::kOtherLog: return "record of an earlier log on this disk";
    case RecordCheck::kStaleEpoch: return "record beyond a tail cut by an earlier recovery";
    case RecordCheck::kEndOfDevice: return "end of the device";
    case RecordCheck::kBadMagic: return "bad record magic";
    case RecordCheck::kBadSequence: return "sequence number out of order";
    case RecordCheck::kBadLength: return "payload length out of range";
    case RecordCheck::kFutureEpoch: return "epoch newer than the superblock";
    case RecordCheck::kBadReserved: return "reserved header field not zero";
    case RecordCheck::kChecksum: return "checksum mismatch";
  }
  return "?";
}

RecordCheck check_record_header(const uint8_t* first_sector, const ScanState& s, RecordHeader* out) {
  if (all_zero(first_sector, kSector)) return RecordCheck::kUnwritten;
  RecordHeader h;
  copy(&h, first_sector, sizeof h);
  if (h.magic != kRecordMagic) return RecordCheck::kBadMagic;
  if (h.reserved != 0) return RecordCheck::kBadReserved;
  if (h.payload_bytes > s.max_payload || s.sector >= s.device_sectors ||
      record_sectors(h.payload_bytes) > s.device_sectors - s.sector)
    return RecordCheck::kBadLength;
  *out = h;
  return RecordCheck::kValid;
}

RecordCheck check_record(const uint8_t* record, const RecordHeader& h, const ScanState& s) {
  // The checksum first: a damaged identity field must read as damage, not
  // as the clean end of the log.
  if (record_crc(record, h) != h.crc) return RecordCheck::kChecksum;
  // An intact record that is not ours (an earlier log, or a tail an earlier
  // recovery cut) marks the end of the log.
  if (h.log_id != s.log_id) return RecordCheck::kOtherLog;
  if (h.epoch < s.min_epoch) return RecordCheck::kStaleEpoch;
  if (h.epoch > s.super_epoch) return RecordCheck::kFutureEpoch;
  if (h.sequence != s.next_sequence) return RecordCheck::kBadSequence;
  return RecordCheck::kValid;
}

}  // namespace block::logfmt
