// The on-disk format of the block log (block_log.h): a superblock in
// sector 0, then records, each starting on a sector boundary. Pure
// functions over byte buffers, no I/O, freestanding: the guest kernel and
// the host unit tests share them.
//
//   sector 0:  Superblock  {magic "BLKLOG\0\1", version, crc, log_id,
//                           epoch, first_sector, sectors}
//   record:    RecordHeader {magic, crc, log_id, epoch, sequence,
//                            payload_bytes, reserved} + payload, zero-padded
//                            to whole sectors
//   after the last record: one zeroed sector (the end marker), written in
//                          the same request as the record
//
// The record CRC-32C covers the header (with crc = 0) and the payload.
// `log_id` (chosen at format) rejects records left by an earlier log on
// the same disk; `epoch` (bumped in the superblock at every open, before
// any append) rejects records beyond a tail that an earlier recovery cut:
// after recovery truncates at record N, new records carry a higher epoch,
// so an old record N+1 that survives behind them cannot rejoin the log.
#pragma once

#include <stddef.h>
#include <stdint.h>

namespace block::logfmt {

constexpr uint32_t kSector = 512;
constexpr uint64_t kSuperMagic = 0x0100474f4c4b4c42ull;  // "BLKLOG\0\1" little-endian
constexpr uint32_t kVersion = 1;
constexpr uint32_t kRecordMagic = 0x4345524c;  // "LREC"

struct Superblock {
  uint64_t magic;
  uint32_t version;
  uint32_t crc;          // CRC-32C of the whole sector with this field 0
  uint64_t log_id;       // random, chosen at format
  uint64_t epoch;        // >= 1; bumped at each open
  uint64_t first_sector; // where the first record goes
  uint64_t sectors;      // device size at format
};
static_assert(sizeof(Superblock) == 48);

struct RecordHeader {
  uint32_t magic;
  uint32_t crc;  // CRC-32C of header (crc = 0) + payload
  uint64_t log_id;
  uint64_t epoch;
  uint64_t sequence;  // 0, 1, 2, ... without gaps
  uint32_t payload_bytes;
  uint32_t reserved;  // 0
};
static_assert(sizeof(RecordHeader) == 40);

// Sectors a record with `payload_bytes` of payload occupies.
constexpr uint64_t record_sectors(uint64_t payload_bytes) {
  return (sizeof(RecordHeader) + payload_bytes + kSector - 1) / kSector;
}

// Writes a superblock into `sector` (kSector bytes, fully overwritten).
void encode_superblock(const Superblock& sb, uint8_t* sector);

enum class SuperCheck {
  kValid,
  kBlank,        // all zero: a fresh disk, to be formatted
  kForeign,      // neither blank nor our magic: not a log, left alone
  kBadVersion,
  kCorrupt,      // our magic, CRC mismatch or impossible fields
};
SuperCheck decode_superblock(const uint8_t* sector, uint64_t device_sectors, Superblock* out);
const char* to_string(SuperCheck c);

// Encodes header + payload + zero padding into `out`, which must hold
// record_sectors(len) * kSector bytes. Fills in magic and crc.
void encode_record(RecordHeader h, const uint8_t* payload, uint8_t* out);

// What the record at `sector` is, given the scan so far.
enum class RecordCheck {
  kValid,            // header plausible and CRC matches: part of the log
  // The log ends here (not an error):
  kUnwritten,        // an all-zero sector: the end marker or never written
  kOtherLog,         // a record of a log formatted earlier on this disk
  kStaleEpoch,       // behind a tail an earlier recovery cut off
  kEndOfDevice,      // the log fills the device
  // Corruption (a torn write or damaged data): the log is cut here.
  kBadMagic,
  kBadSequence,
  kBadLength,        // payload length beyond the limit or the device
  kFutureEpoch,      // epoch newer than the superblock's
  kBadReserved,
  kChecksum,
};
bool is_end_of_log(RecordCheck c);
const char* to_string(RecordCheck c);

// Checks the header at the start of `first_sector` (kSector bytes) before
// the rest is read: zero sector, magic, reserved field, and a length that
// fits the limit and the device. On kValid, *out holds the header; the
// caller reads record_sectors(out->payload_bytes) sectors and calls
// check_record().
struct ScanState {
  uint64_t log_id;
  uint64_t super_epoch;     // the superblock's epoch at open
  uint64_t min_epoch;       // the previous record's epoch (1 at the start)
  uint64_t next_sequence;
  uint64_t sector;          // where this record starts
  uint64_t device_sectors;
  uint64_t max_payload;
};
RecordCheck check_record_header(const uint8_t* first_sector, const ScanState& s, RecordHeader* out);
// The whole record (header + payload in `record`): CRC, then whether it
// belongs to this log at this place (log id, epoch, sequence).
RecordCheck check_record(const uint8_t* record, const RecordHeader& h, const ScanState& s);

}  // namespace block::logfmt
