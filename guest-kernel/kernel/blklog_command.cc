#include "guest-kernel/kernel/blklog_command.h"

#include <string>

#include "guest-kernel/arch/x86/cpu.h"
#include "guest-kernel/block/block_device.h"
#include "guest-kernel/block/block_log.h"
#include "guest-kernel/kernel/event_loop.h"
#include "guest-kernel/lib/crc32c.h"
#include "guest-kernel/lib/print.h"
#include "guest-kernel/lib/string.h"

namespace {

constexpr uint64_t kTimeoutNs = 30'000'000'000ull;

// Runs the loop until *flag or the timeout; the timer also wakes the loop.
bool wait_for(const bool* flag) {
  EventLoop& loop = EventLoop::instance();
  bool timed_out = false;
  const EventLoop::TimerId t = loop.add_timer(kTimeoutNs, [&timed_out] { timed_out = true; });
  loop.run([&] { return *flag || timed_out; });
  loop.cancel_timer(t);
  return *flag;
}

// Distinct for each sequence number, of varied length (1 to 4 sectors), so
// records straddle sectors and windows.
std::string payload_for(uint64_t seq) {
  char head[48];
  ksnprintf(head, sizeof head, "blklog record %lu:", seq);
  std::string s = head;
  const size_t len = 24 + (seq * 397) % 1500;
  for (size_t i = s.size(); i < len; ++i) s.push_back(static_cast<char>('a' + (seq + i) % 26));
  return s;
}

void print_record(const block::LogRecord& r) {
  char first[25] = {};
  for (size_t i = 0; i < 24 && i < r.payload.size(); ++i)
    first[i] = (r.payload[i] >= 0x20 && r.payload[i] < 0x7f) ? static_cast<char>(r.payload[i]) : '.';
  kprintf("blklog: record seq=%lu sector=%lu bytes=%zu crc32c=%08x \"%s\"\n", r.sequence, r.sector, r.payload.size(),
          crc32c::value(r.payload.data(), r.payload.size()), first);
}

}  // namespace

uint32_t run_blklog_command(const char* arg) {
  unsigned long count = 0;
  const bool check = strcmp(arg, "check") == 0;
  bool hold = false;
  if (!check) {
    if (strncmp(arg, "append:", 7) != 0 || !arg[7]) {
      kprintf("blklog: unknown command '%s' (append:N[,hold] or check)\n", arg);
      return 1;
    }
    const char* end = arg + strlen(arg);
    if (end - arg > 12 && strcmp(end - 5, ",hold") == 0) {
      hold = true;
      end -= 5;
    }
    for (const char* p = arg + 7; p < end; ++p) {
      if (*p < '0' || *p > '9' || count > 1000000) {
        kprintf("blklog: bad record count in '%s'\n", arg);
        return 1;
      }
      count = count * 10 + (*p - '0');
    }
  }
  block::BlockDevice* dev = block::block_device(0);
  if (!dev) {
    kprintf("blklog: no block device\n");
    return 1;
  }
  // The id only matters when a blank disk is formatted: any value that
  // differs between formats will do.
  block::BlockLog log(dev, x86::rdtsc() * 0x9e3779b97f4a7c15ull);
  block::LogRecovery rec;
  bool opened = false;
  log.open([&](block::LogRecovery& r) {
    rec = std::move(r);
    opened = true;
  });
  if (!wait_for(&opened)) {
    kprintf("blklog: open timed out\n");
    return 1;
  }
  if (rec.status != block::LogStatus::kOk) {
    kprintf("blklog: cannot open the log on %s: %s\n", dev->name(), block::to_string(rec.status));
    return 1;
  }
  if (rec.formatted) kprintf("blklog: formatted a blank disk (log id %016lx)\n", rec.log_id);
  kprintf("blklog: recovered %zu records (epoch %lu)\n", rec.records.size(), rec.epoch);
  if (check)
    for (const block::LogRecord& r : rec.records) print_record(r);
  if (rec.corruption())
    kprintf("blklog: corruption detected at sector %lu (%s)\n", rec.stop_sector,
            block::logfmt::to_string(rec.stop));
  else
    kprintf("blklog: end of log at sector %lu (%s)\n", rec.stop_sector, block::logfmt::to_string(rec.stop));
  if (check) return 0;

  unsigned long appended = 0;
  bool failed = false;
  for (unsigned long i = 0; i < count; ++i) {
    const std::string p = payload_for(log.next_sequence() + i);
    log.append(p.data(), p.size(), [&](block::LogStatus s, uint64_t) {
      if (s == block::LogStatus::kOk) {
        ++appended;
      } else if (!failed) {
        failed = true;
        kprintf("blklog: append failed: %s\n", block::to_string(s));
      }
    });
  }
  bool synced = false;
  block::LogStatus sync_status = block::LogStatus::kIoError;
  log.sync([&](block::LogStatus s) {
    sync_status = s;
    synced = true;
  });
  if (!wait_for(&synced)) {
    kprintf("blklog: appends timed out (%lu of %lu done)\n", appended, count);
    return 1;
  }
  if (failed || sync_status != block::LogStatus::kOk) {
    kprintf("blklog: appended %lu of %lu records, sync %s\n", appended, count, block::to_string(sync_status));
    return 1;
  }
  kprintf("blklog: appended %lu records, synced\n", appended);
  if (hold) {
    // For crash tests: the records are durable; stay up until killed.
    kprintf("blklog: holding (kill the VM now)\n");
    for (;;) EventLoop::instance().run();
  }
  return 0;
}
