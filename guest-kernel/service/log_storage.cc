#include "guest-kernel/service/log_storage.h"

#include "guest-kernel/kernel/event_loop.h"
#include "guest-kernel/kernel/exit.h"
#include "guest-kernel/lib/print.h"
#include "storage-guests/common/log_framing.h"

namespace service {

void LogStorage::append(const sg::Bytes& record) {
  for (sg::Bytes& b : sg::frame_append(record, log_.max_payload())) pending_.push_back(std::move(b));
}

void LogStorage::rewrite(const std::vector<sg::Bytes>& records) {
  for (sg::Bytes& b : sg::frame_rewrite(records, log_.max_payload())) pending_.push_back(std::move(b));
}

uint64_t LogStorage::sync() {
  const uint64_t token = ++next_token_;
  for (const sg::Bytes& b : pending_) {
    bytes_written_ += b.size();
    log_.append(b.data(), b.size(), [](block::LogStatus s, uint64_t) {
      if (s != block::LogStatus::kOk) panic("service storage: append failed: %s", block::to_string(s));
    });
  }
  pending_.clear();
  log_.sync([this, token](block::LogStatus s) {
    if (s != block::LogStatus::kOk) panic("service storage: sync failed: %s", block::to_string(s));
    ++syncs_completed_;
    on_durable_(token);
  });
  return token;
}

std::vector<sg::Bytes> open_and_replay(block::BlockLog*& log_out, uint64_t log_id) {
  block::BlockDevice* disk = block::block_device(0);
  if (!disk) panic("service: no block device for the node's log (give the VM a disk)");
  auto* log = new block::BlockLog(disk, log_id);
  bool opened = false;
  std::vector<sg::Bytes> records;
  log->open([&](block::LogRecovery& r) {
    if (r.status != block::LogStatus::kOk) panic("service: cannot open the log: %s", block::to_string(r.status));
    sg::LogReplay replay;
    for (const block::LogRecord& rec : r.records) replay.feed(rec.payload.data(), rec.payload.size());
    records = replay.finish();
    kprintf("service: log %s, %zu log records, %zu storage records recovered%s\n",
            r.formatted ? "formatted (blank disk)" : "opened", r.records.size(), records.size(),
            r.corruption() ? ", corruption after the last intact record (left behind)" : "");
    if (replay.malformed()) kprintf("service: %zu malformed storage records ignored\n", replay.malformed());
    opened = true;
  });
  EventLoop::instance().run([&] { return opened; });
  log_out = log;
  return records;
}

}  // namespace service
