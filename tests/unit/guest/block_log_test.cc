// The block log (guest-kernel/block/block_log.*) on an in-memory disk: the
// same code as in the guest, driven through the BlockDevice contract, with
// the failures a real disk has (torn writes, flipped bytes, I/O errors).
#include "guest-kernel/block/block_log.h"

#include <gtest/gtest.h>

#include <cstring>
#include <deque>
#include <string>

#include "guest-kernel/lib/crc32c.h"

namespace {

using block::LogRecovery;
using block::LogStatus;
using block::logfmt::RecordCheck;

// Completions are queued and run by run(), never inside submit(), as the
// contract demands.
class MemDisk : public block::BlockDevice {
 public:
  explicit MemDisk(uint64_t sectors, size_t max_request = 64 * 1024) : data(sectors * 512, 0), max_(max_request) {}
  const char* name() const override { return "memdisk"; }
  uint64_t sectors() const override { return data.size() / 512; }
  bool read_only() const override { return false; }
  size_t max_request_bytes() const override { return max_; }
  void submit(block::Request r) override { pending_.push_back(std::move(r)); }

  void run() {
    while (!pending_.empty()) {
      block::Request r = std::move(pending_.front());
      pending_.pop_front();
      block::Status s = block::Status::kOk;
      const bool data_op = r.op != block::Op::kFlush;
      if (data_op && (r.bytes % 512 || r.bytes > max_ || r.sector * 512 + r.bytes > data.size())) {
        s = block::Status::kBadRequest;
      } else if (r.op == block::Op::kWrite && fail_writes) {
        s = block::Status::kIoError;
      } else if (r.op == block::Op::kWrite) {
        size_t bytes = r.bytes;
        if (tear_next_write_sectors >= 0) {  // only a prefix reaches the disk
          bytes = std::min(bytes, size_t(tear_next_write_sectors) * 512);
          tear_next_write_sectors = -1;
        }
        std::memcpy(&data[r.sector * 512], r.buffer, bytes);
        ++writes;
      } else if (r.op == block::Op::kRead) {
        std::memcpy(r.buffer, &data[r.sector * 512], r.bytes);
      } else {
        ++flushes;
      }
      if (r.done) r.done(s);
    }
  }

  std::vector<uint8_t> data;
  bool fail_writes = false;
  int tear_next_write_sectors = -1;
  int writes = 0, flushes = 0;

 private:
  size_t max_;
  std::deque<block::Request> pending_;
};

std::string payload_for(uint64_t i) {
  // Distinct, of varied length: some records span several sectors.
  std::string s = "record " + std::to_string(i) + ":";
  s.resize(20 + (i * 397) % 1500, static_cast<char>('a' + i % 26));
  return s;
}

LogRecovery open_log(MemDisk& disk, uint64_t id = 0x1234) {
  block::BlockLog log(&disk, id);
  LogRecovery got;
  bool called = false;
  log.open([&](LogRecovery& r) {
    got = std::move(r);
    called = true;
  });
  disk.run();
  EXPECT_TRUE(called);
  return got;
}

// Opens, appends `count` records numbered from the recovered sequence,
// syncs. Returns the recovery of that open.
LogRecovery open_and_append(MemDisk& disk, int count) {
  block::BlockLog log(&disk, 0x1234);
  LogRecovery rec;
  log.open([&](LogRecovery& r) { rec = std::move(r); });
  disk.run();
  EXPECT_EQ(rec.status, LogStatus::kOk);
  for (int i = 0; i < count; ++i) {
    const uint64_t want = log.next_sequence() + i;
    const std::string p = payload_for(want);
    log.append(p.data(), p.size(), [want](LogStatus s, uint64_t seq) {
      EXPECT_EQ(s, LogStatus::kOk);
      EXPECT_EQ(seq, want);
    });
  }
  bool synced = false;
  log.sync([&](LogStatus s) { synced = s == LogStatus::kOk; });
  disk.run();
  EXPECT_TRUE(synced);
  return rec;
}

void expect_records(const LogRecovery& r, uint64_t count) {
  ASSERT_EQ(r.records.size(), count);
  for (uint64_t i = 0; i < count; ++i) {
    EXPECT_EQ(r.records[i].sequence, i);
    const std::string p = payload_for(i);
    EXPECT_EQ(std::string(r.records[i].payload.begin(), r.records[i].payload.end()), p) << "record " << i;
  }
}

TEST(Crc32c, KnownValueAndIncremental) {
  EXPECT_EQ(crc32c::value("123456789", 9), 0xE3069283u);
  EXPECT_EQ(crc32c::value("", 0), 0u);
  const uint8_t* s = reinterpret_cast<const uint8_t*>("hello, world");
  EXPECT_EQ(crc32c::extend(crc32c::extend(0, s, 5), s + 5, 7), crc32c::value(s, 12));
  static constexpr uint8_t kCheck[] = {'1', '2', '3', '4', '5', '6', '7', '8', '9'};
  static_assert(crc32c::extend(0, kCheck, 9) == 0xE3069283u);  // usable at compile time
}

TEST(BlockLog, FormatsABlankDiskAndRecoversWhatWasAppended) {
  MemDisk disk(2048);
  LogRecovery first = open_and_append(disk, 10);
  EXPECT_TRUE(first.formatted);
  EXPECT_TRUE(first.records.empty());
  EXPECT_EQ(first.epoch, 1u);
  LogRecovery again = open_log(disk);
  EXPECT_EQ(again.status, LogStatus::kOk);
  EXPECT_FALSE(again.formatted);
  EXPECT_FALSE(again.corruption());
  EXPECT_EQ(again.stop, RecordCheck::kUnwritten);
  EXPECT_EQ(again.epoch, 2u);
  expect_records(again, 10);
  // Appends continue after the last record, with the next sequence.
  open_and_append(disk, 5);
  LogRecovery third = open_log(disk);
  expect_records(third, 15);
  EXPECT_EQ(third.records[10].sector, again.stop_sector);
}

TEST(BlockLog, EveryFlippedByteOfARecordIsCaught) {
  MemDisk pristine(2048);
  open_and_append(pristine, 8);
  LogRecovery good = open_log(pristine);
  ASSERT_EQ(good.records.size(), 8u);
  const uint64_t at = good.records[5].sector;
  const size_t len = sizeof(block::logfmt::RecordHeader) + good.records[5].payload.size();
  for (size_t off = 0; off < len; ++off) {
    MemDisk disk = pristine;
    disk.data[at * 512 + off] ^= 0x20;
    LogRecovery r = open_log(disk);
    ASSERT_EQ(r.status, LogStatus::kOk);
    EXPECT_TRUE(r.corruption()) << "byte " << off << ": " << block::logfmt::to_string(r.stop);
    EXPECT_EQ(r.stop_sector, at) << "byte " << off;
    expect_records(r, 5);
  }
}

TEST(BlockLog, TornAppendIsReportedAndCut) {
  MemDisk disk(2048);
  open_and_append(disk, 3);
  // Record 3 (payload_for(3) spans 3 sectors) reaches the disk only in part.
  ASSERT_EQ(block::logfmt::record_sectors(payload_for(3).size()), 3u);
  {
    block::BlockLog log(&disk, 0x1234);
    log.open([](LogRecovery&) {});
    disk.run();
    disk.tear_next_write_sectors = 1;  // the append, not the superblock
    const std::string p = payload_for(3);
    log.append(p.data(), p.size(), [](LogStatus s, uint64_t) { EXPECT_EQ(s, LogStatus::kOk); });
    disk.run();
  }
  LogRecovery r = open_log(disk);
  EXPECT_TRUE(r.corruption());
  EXPECT_EQ(r.stop, RecordCheck::kChecksum);
  expect_records(r, 3);
  // Appending after recovery overwrites the torn record and goes on.
  open_and_append(disk, 2);
  LogRecovery after = open_log(disk);
  EXPECT_FALSE(after.corruption());
  expect_records(after, 5);
}

TEST(BlockLog, ACutTailNeverComesBack) {
  // Records 0..7; record 3 damaged: recovery returns 0..2 and appends a new
  // record 3 of the same size, whose end marker is lost (torn), so the old
  // record 4 sits intact right behind it with the next sequence number.
  // Its older epoch must end the log there.
  MemDisk disk(2048);
  open_and_append(disk, 8);
  LogRecovery r = open_log(disk);
  const uint64_t at3 = r.records[3].sector;
  const uint64_t old4 = r.records[4].sector;
  disk.data[at3 * 512 + 100] ^= 1;
  block::BlockLog log(&disk, 0x1234);
  LogRecovery cut;
  log.open([&](LogRecovery& x) { cut = std::move(x); });
  disk.run();
  ASSERT_EQ(cut.records.size(), 3u);
  ASSERT_EQ(log.tail_sector(), at3);
  const std::string p3 = payload_for(3);  // same size as the damaged one
  disk.tear_next_write_sectors = int(old4 - at3);  // the record, not the marker
  log.append(p3.data(), p3.size(), [](LogStatus s, uint64_t seq) {
    EXPECT_EQ(s, LogStatus::kOk);
    EXPECT_EQ(seq, 3u);
  });
  log.sync([](LogStatus s) { EXPECT_EQ(s, LogStatus::kOk); });
  disk.run();
  LogRecovery again = open_log(disk);
  EXPECT_FALSE(again.corruption());
  EXPECT_EQ(again.stop, RecordCheck::kStaleEpoch);
  EXPECT_EQ(again.stop_sector, old4);
  expect_records(again, 4);
}

TEST(BlockLog, GarbageBehindTheLogIsNotMistakenForRecords) {
  MemDisk disk(512);
  std::fill(disk.data.begin() + 512, disk.data.end(), 0xaa);  // a dirty disk, blank sector 0
  open_and_append(disk, 3);
  LogRecovery r = open_log(disk);
  EXPECT_FALSE(r.corruption());
  EXPECT_EQ(r.stop, RecordCheck::kUnwritten);  // the end marker
  expect_records(r, 3);
}

TEST(BlockLog, RecordsOfAnEarlierLogEndTheNewOne) {
  MemDisk disk(2048);
  open_and_append(disk, 6);
  // Re-format: zero the superblock only; the old records stay behind.
  std::fill(disk.data.begin(), disk.data.begin() + 512, 0);
  block::BlockLog log(&disk, 0x9999);
  LogRecovery fresh;
  log.open([&](LogRecovery& x) { fresh = std::move(x); });
  disk.run();
  EXPECT_TRUE(fresh.formatted);
  disk.tear_next_write_sectors = 1;  // lose the end marker of the first record
  log.append("x", 1, [](LogStatus s, uint64_t) { EXPECT_EQ(s, LogStatus::kOk); });
  disk.run();
  LogRecovery r = open_log(disk, 0x9999);
  ASSERT_EQ(r.records.size(), 1u);
  EXPECT_EQ(r.stop, RecordCheck::kOtherLog);
  EXPECT_FALSE(r.corruption());
}

TEST(BlockLog, SuperblockProblemsAreRefusedNotFormattedOver) {
  MemDisk foreign(64);
  std::memcpy(foreign.data.data(), "not a log", 9);
  const std::vector<uint8_t> before = foreign.data;
  EXPECT_EQ(open_log(foreign).status, LogStatus::kNotALog);
  EXPECT_EQ(foreign.data, before);

  MemDisk damaged(64);
  open_and_append(damaged, 1);
  damaged.data[20] ^= 1;  // inside the log id
  LogRecovery r = open_log(damaged);
  EXPECT_EQ(r.status, LogStatus::kBadSuperblock);
  EXPECT_TRUE(r.records.empty());
}

TEST(BlockLog, LimitsAndErrors) {
  MemDisk disk(15, 4096);  // 8-sector requests: payload up to 7 * 512 - 40
  block::BlockLog log(&disk, 1);
  LogStatus st = LogStatus::kOk;
  log.append("x", 1, [&](LogStatus s, uint64_t) { st = s; });
  disk.run();
  EXPECT_EQ(st, LogStatus::kNotOpen);
  log.open([](LogRecovery& r) { EXPECT_EQ(r.status, LogStatus::kOk); });
  disk.run();
  EXPECT_EQ(log.max_payload(), 7u * 512 - 40);
  std::vector<uint8_t> big(log.max_payload() + 1, 1);
  log.append(big.data(), big.size(), [&](LogStatus s, uint64_t) { st = s; });
  disk.run();
  EXPECT_EQ(st, LogStatus::kTooLarge);
  // 14 sectors after the superblock: 7-sector records fit twice (the second
  // ends the device, so it has no end marker), then full.
  big.resize(log.max_payload());
  int ok = 0;
  for (int i = 0; i < 3; ++i)
    log.append(big.data(), big.size(), [&](LogStatus s, uint64_t) {
      if (s == LogStatus::kOk) ++ok;
      st = s;
    });
  disk.run();
  EXPECT_EQ(ok, 2);
  EXPECT_EQ(st, LogStatus::kFull);
  LogRecovery r = open_log(disk, 1);
  EXPECT_EQ(r.records.size(), 2u);
  EXPECT_EQ(r.stop, RecordCheck::kEndOfDevice);

  // A failed write poisons the log until it is reopened.
  MemDisk bad(64);
  block::BlockLog l2(&bad, 2);
  l2.open([](LogRecovery&) {});
  bad.run();
  bad.fail_writes = true;
  l2.append("y", 1, [&](LogStatus s, uint64_t) { st = s; });
  bad.run();
  EXPECT_EQ(st, LogStatus::kIoError);
  bad.fail_writes = false;
  l2.append("y", 1, [&](LogStatus s, uint64_t) { st = s; });
  bad.run();
  EXPECT_EQ(st, LogStatus::kFailed);
}

}  // namespace
