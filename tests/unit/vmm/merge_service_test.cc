#include "vmm/memory/merge_service.h"

#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <fstream>
#include <random>
#include <thread>

#include "vmm/guest_memory.h"
#include "vmm/memory/merge_report_json.h"

namespace vmm {
namespace {

constexpr uint64_t kPage = PageMerger::kPageSize;
constexpr auto kNoTicks = std::chrono::hours(1);  // the test drives scan_once()

void fill(GuestMemory& m, uint64_t p, uint32_t seed) {
  uint8_t buf[kPage];
  std::mt19937 rng(seed);
  for (auto& b : buf) b = static_cast<uint8_t>(rng() | 1);
  ASSERT_TRUE(m.write(p * kPage, buf, kPage));
}

// A member whose writers are a log of calls; `refuse` makes stop fail.
struct FakeVm {
  explicit FakeVm(std::string n) : name(std::move(n)), ram(1 << 20) {}
  std::string name;
  GuestMemory ram;
  bool refuse = false;
  bool stopped = false;
  std::vector<std::string>* log = nullptr;
  MergeMember member() {
    return MergeMember{&ram, name,
                       [this] {
                         if (log) log->push_back("stop " + name);
                         if (refuse) return false;
                         stopped = true;
                         return true;
                       },
                       [this] {
                         if (log) log->push_back("resume " + name);
                         EXPECT_TRUE(stopped) << "resumed without a stop";
                         stopped = false;
                       }};
  }
};

MergeConfig vmm_config(uint64_t rate = kDefaultMergeRate) { return MergeConfig{MergeMode::kVmm, rate}; }

TEST(MergeService, MergesAcrossVmsWithEveryVmStopped) {
  std::vector<std::string> log;
  FakeVm a("a"), b("b");
  a.log = b.log = &log;
  for (uint64_t p = 0; p < 8; ++p) {
    fill(a.ram, p, 100 + p);
    fill(b.ram, p, 100 + p);
  }
  MergeService s(vmm_config(), kNoTicks);
  s.add(a.member());
  s.add(b.member());
  s.scan_once(512);  // one pass over both: hashes only
  EXPECT_TRUE(log.empty()) << "nothing to merge yet, so nobody is stopped";
  s.scan_once(512);
  ASSERT_EQ(log, (std::vector<std::string>{"stop a", "stop b", "resume b", "resume a"}));
  const MergeReport r = s.report();
  EXPECT_EQ(r.vms, 2u);
  EXPECT_EQ(r.merger.merges, 16u);
  EXPECT_EQ(r.merger.pool_pages, 8u);
  EXPECT_EQ(r.pages_sharing, 16u);
  EXPECT_GE(r.bytes_saved, 8 * kPage);
  EXPECT_EQ(r.quiesce_failures, 0u);
  uint8_t want[kPage];
  std::mt19937 rng(103);
  for (auto& x : want) x = static_cast<uint8_t>(rng() | 1);
  EXPECT_EQ(std::memcmp(b.ram.ptr(3 * kPage, kPage), want, kPage), 0);
}

TEST(MergeService, AVmThatCannotStopMeansNoMergeAndTheOthersResume) {
  std::vector<std::string> log;
  FakeVm a("a"), b("b");
  a.log = b.log = &log;
  fill(a.ram, 0, 1);
  fill(b.ram, 0, 1);
  b.refuse = true;
  MergeService s(vmm_config(), kNoTicks);
  s.add(a.member());
  s.add(b.member());
  s.scan_once(512);
  s.scan_once(512);
  EXPECT_EQ(log, (std::vector<std::string>{"stop a", "stop b", "resume a"}));
  const MergeReport r = s.report();
  EXPECT_EQ(r.merger.merges, 0u);
  EXPECT_EQ(r.quiesce_failures, 1u);
  EXPECT_FALSE(a.stopped);
}

TEST(MergeService, ARemovedVmIsNeitherScannedNorStopped) {
  std::vector<std::string> log;
  FakeVm a("a"), b("b"), c("c");
  a.log = b.log = c.log = &log;
  for (FakeVm* vm : {&a, &b, &c}) fill(vm->ram, 0, 42);
  MergeService s(vmm_config(), kNoTicks);
  s.add(a.member());
  s.add(b.member());
  s.add(c.member());
  s.remove(b.ram);
  s.scan_once(512);
  s.scan_once(512);
  EXPECT_EQ(log, (std::vector<std::string>{"stop a", "stop c", "resume c", "resume a"}));
  EXPECT_EQ(s.report().vms, 2u);
  EXPECT_EQ(s.report().pages_sharing, 2u);
}

TEST(MergeService, TheScannerThreadMergesAtItsRateAndCountsItsCpu) {
  FakeVm a("a"), b("b");
  for (uint64_t p = 0; p < 16; ++p) {
    fill(a.ram, p, 7 + p);
    fill(b.ram, p, 7 + p);
  }
  // 256 pages each: 512 pages, so two full passes take 1024 visits; at
  // 10000 pages/s in 10 ms ticks (100 a tick) that is about 0.1 s.
  MergeService s(vmm_config(10000), std::chrono::milliseconds(10));
  s.add(a.member());
  s.add(b.member());
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(20);
  while (s.report().pages_sharing < 32 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  const MergeReport r = s.report();
  EXPECT_EQ(r.pages_sharing, 32u);
  EXPECT_GT(r.ticks, 0u);
  EXPECT_GT(r.scanner_cpu_seconds, 0.0);
  EXPECT_EQ(r.pages_per_second, 10000u);
  // The rate is an upper bound: visits never run ahead of ticks * budget.
  EXPECT_LE(r.merger.pages_scanned, (r.ticks + 1) * 100);
  s.remove(a.ram);
  s.remove(b.ram);
}

TEST(MergeService, BalloonReleaseGoesThroughTheMergerOnlyInVmmMode) {
  FakeVm a("a"), b("b");
  fill(a.ram, 0, 3);
  fill(b.ram, 0, 3);
  MergeService s(vmm_config(), kNoTicks);
  s.add(a.member());
  s.add(b.member());
  s.scan_once(512);
  s.scan_once(512);
  ASSERT_EQ(s.report().pages_sharing, 2u);
  auto release = s.balloon_release();
  ASSERT_TRUE(release);
  ASSERT_EQ(release(0, a.ram.ptr(0, kPage), kPage), 0);
  EXPECT_EQ(a.ram.ptr(0, kPage)[5], 0) << "a merged page released reads zeroes, not the pool page";
  EXPECT_EQ(s.report().pages_sharing, 1u);
  EXPECT_EQ(s.report().merger.pages_released, 1u);
  EXPECT_FALSE(MergeService(MergeConfig{MergeMode::kKsm, kDefaultMergeRate}).balloon_release());
}

TEST(MergeService, KsmModeMarksGuestRamMergeableOrSaysWhyNot) {
  FakeVm a("a");
  MergeService s(MergeConfig{MergeMode::kKsm, kDefaultMergeRate});
  s.add(a.member());
  const MergeReport r = s.report();
  EXPECT_EQ(r.mode, MergeMode::kKsm);
  if (r.ksm_error.empty()) {
    EXPECT_EQ(r.mergeable_bytes, a.ram.size());
    // The kernel agrees: the VMA carries the "mg" flag.
    std::ifstream smaps("/proc/self/smaps");
    std::string line, range;
    char want[32];
    std::snprintf(want, sizeof want, "%lx-", reinterpret_cast<unsigned long>(a.ram.ptr(0, 1)));
    bool in_vma = false, marked = false;
    while (std::getline(smaps, line)) {
      if (line.find('-') != std::string::npos && line.find(' ') > line.find('-') && isxdigit(line[0]))
        in_vma = line.rfind(want, 0) == 0;
      if (in_vma && line.rfind("VmFlags:", 0) == 0 && line.find(" mg") != std::string::npos) marked = true;
    }
    EXPECT_TRUE(marked);
  } else {
    EXPECT_NE(r.ksm_error.find("MADV_MERGEABLE"), std::string::npos);
  }
  const std::string line = s.summary();
  EXPECT_EQ(line.rfind("merge (ksm): ", 0), 0u) << line;
}

class KsmDir : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/ksm-test-XXXXXX";
    ASSERT_NE(::mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
  }
  void TearDown() override { std::system(("rm -rf " + dir_).c_str()); }
  void put(const std::string& name, const std::string& value) { std::ofstream(dir_ + "/" + name) << value << "\n"; }
  std::string dir_;
};

TEST_F(KsmDir, ReadsTheCountersAndSaysWhenKsmIsOffOrMissing) {
  KsmReading k = read_ksm(dir_ + "/nonexistent");
  EXPECT_FALSE(k.available);
  EXPECT_NE(k.note.find("not available"), std::string::npos);
  put("run", "0");
  k = read_ksm(dir_);
  EXPECT_FALSE(k.available) << "counters missing";
  EXPECT_NE(k.note.find("pages_shared"), std::string::npos) << k.note;
  put("pages_shared", "12");
  put("pages_sharing", "345");
  put("pages_unshared", "6");
  put("full_scans", "7");
  put("pages_to_scan", "100");
  put("sleep_millisecs", "20");
  k = read_ksm(dir_);
  EXPECT_TRUE(k.available);
  EXPECT_FALSE(k.running);
  EXPECT_NE(k.note.find("not running"), std::string::npos);
  put("run", "1");
  k = read_ksm(dir_);
  EXPECT_TRUE(k.running);
  EXPECT_TRUE(k.note.empty());
  EXPECT_EQ(k.pages_shared, 12u);
  EXPECT_EQ(k.pages_sharing, 345u);
  EXPECT_EQ(k.full_scans, 7u);
  EXPECT_EQ(k.pages_to_scan, 100u);
  EXPECT_EQ(k.sleep_millisecs, 20u);
  put("full_scans", "garbage");
  EXPECT_FALSE(read_ksm(dir_).available);
}

TEST(MergeReportJson, NamesTheCountersOfEachMode) {
  MergeReport r;
  r.mode = MergeMode::kVmm;
  r.vms = 4;
  r.merger.merges = 10;
  r.pages_sharing = 9;
  r.bytes_saved = 4096;
  r.scanner_cpu_seconds = 0.5;
  auto j = merge_report_json(r);
  EXPECT_EQ(j["mode"], "vmm");
  EXPECT_EQ(j["vms"], 4);
  EXPECT_EQ(j["merges"], 10);
  EXPECT_EQ(j["pages_sharing"], 9);
  EXPECT_EQ(j["bytes_saved"], 4096);
  EXPECT_DOUBLE_EQ(j["scanner_cpu_seconds"].get<double>(), 0.5);
  EXPECT_FALSE(j.contains("pages_shared"));
  r = MergeReport{};
  r.mode = MergeMode::kKsm;
  r.ksm.note = "KSM is not running";
  r.ksm.pages_sharing = 3;
  j = merge_report_json(r);
  EXPECT_EQ(j["mode"], "ksm");
  EXPECT_EQ(j["pages_sharing"], 3);
  EXPECT_EQ(j["note"], "KSM is not running");
  EXPECT_FALSE(j.contains("merges"));
}

}  // namespace
}  // namespace vmm
