// The benchmark's measurement window: the mark port, counter differences,
// the window's order rules and its report.
#include "vmm/bench_window.h"

#include <linux/kvm.h>

#include <gtest/gtest.h>

#include <cstring>
#include <vector>

#include "boot/platform.h"
#include "vmm/devices/bench_mark.h"

namespace vmm {
namespace {

TEST(BenchMark, ReportsMarksAndIgnoresAnythingElse) {
  std::vector<uint32_t> marks;
  BenchMark dev([&](uint32_t what) { marks.push_back(what); });
  auto write32 = [&](uint64_t offset, uint32_t v) { dev.write(offset, reinterpret_cast<uint8_t*>(&v), 4); };
  write32(0, platform::kBenchMarkStart);
  write32(0, platform::kBenchMarkEnd);
  EXPECT_EQ(marks, (std::vector<uint32_t>{platform::kBenchMarkStart, platform::kBenchMarkEnd}));
  // Other values, offsets and widths: counted, not delivered.
  write32(0, 0);
  write32(0, 3);
  write32(0, 0xffffffff);
  uint8_t one = platform::kBenchMarkStart;
  dev.write(0, &one, 1);
  uint16_t two = platform::kBenchMarkStart;
  dev.write(2, reinterpret_cast<uint8_t*>(&two), 2);
  EXPECT_EQ(marks.size(), 2u);
  EXPECT_EQ(dev.ignored_writes(), 5u);

  uint32_t v = 0;
  dev.read(0, reinterpret_cast<uint8_t*>(&v), 4);
  EXPECT_EQ(v, platform::kBenchMarkPresent);
  uint8_t b = 0;
  dev.read(1, &b, 1);
  EXPECT_EQ(b, static_cast<uint8_t>(platform::kBenchMarkPresent >> 8));
  uint16_t w = 0xffff;
  dev.read(3, reinterpret_cast<uint8_t*>(&w), 1);
  EXPECT_EQ(w & 0xff, platform::kBenchMarkPresent >> 24);
}

TEST(CounterDelta, NonzeroDifferencesOnly) {
  const Counters before{{"exits", 100}, {"io_exits", 5}, {"same", 7}, {"reset", 50}};
  const Counters after{{"exits", 150}, {"io_exits", 6}, {"same", 7}, {"reset", 3}, {"new", 4}};
  EXPECT_EQ(counter_delta(after, before), (Counters{{"exits", 50}, {"io_exits", 1}, {"new", 4}}));
  EXPECT_EQ(format_counters(counter_delta(after, before)), "exits=50 io_exits=1 new=4");
  EXPECT_EQ(format_counters({}), "(none)");
}

TEST(CounterDelta, UserspaceExitsByName) {
  ExitStats s;
  s.record(KVM_EXIT_IO, 10);
  s.record(KVM_EXIT_IO, 10);
  s.record(KVM_EXIT_MMIO, 10);
  s.record(1000, 10);  // beyond the table: "other"
  EXPECT_EQ(userspace_exit_counters(s.snapshot()), (Counters{{"io", 2}, {"mmio", 1}, {"other", 1}}));
}

CounterSnapshot snap(uint64_t t_ns, uint64_t exits, uint64_t io, uint64_t irqs) {
  CounterSnapshot s;
  s.t_ns = t_ns;
  s.kvm = {{"exits", exits}, {"halt_exits", exits / 2}};
  s.userspace = {{"io", io}};
  s.nic = {{"interrupts", irqs}};
  return s;
}

TEST(MeasurementWindow, ReportsTheMarkedDifference) {
  MeasurementWindow w;
  EXPECT_EQ(w.report("vmm: "), "");  // never marked: nothing to say
  w.start(snap(1'000'000'000, 1000, 10, 0));
  EXPECT_FALSE(w.complete());
  EXPECT_NE(w.report("vmm: ").find("never closed"), std::string::npos);
  w.end(snap(3'500'000'000, 5000, 12, 40));
  ASSERT_TRUE(w.complete());
  const std::string r = w.report("vmm: vm 1: ");
  EXPECT_NE(r.find("vmm: vm 1: measurement window: 2.500000 s"), std::string::npos) << r;
  EXPECT_NE(r.find("vmm: vm 1: window kvm: exits=4000 halt_exits=2000\n"), std::string::npos) << r;
  EXPECT_NE(r.find("vmm: vm 1: window userspace: io=2\n"), std::string::npos) << r;
  EXPECT_NE(r.find("vmm: vm 1: window nic: interrupts=40\n"), std::string::npos) << r;
}

TEST(MeasurementWindow, OrderRules) {
  MeasurementWindow w;
  w.end(snap(1, 1, 1, 1));  // no window open: ignored
  EXPECT_FALSE(w.complete());
  EXPECT_NE(w.report("").find("never opened (1 end marks"), std::string::npos);
  w.start(snap(10, 100, 0, 0));
  w.start(snap(20, 200, 0, 0));  // restarts
  w.end(snap(30, 250, 0, 0));
  w.end(snap(40, 900, 0, 0));    // the window is closed: ignored
  EXPECT_NE(w.report("").find("window kvm: exits=50 "), std::string::npos) << w.report("");
  EXPECT_NE(w.report("").find("2 stray end marks ignored"), std::string::npos) << w.report("");
  // A new start replaces the completed window.
  w.start(snap(50, 1000, 0, 0));
  EXPECT_FALSE(w.complete());
  w.end(snap(60, 1003, 0, 0));
  EXPECT_NE(w.report("").find("window kvm: exits=3 halt_exits=1"), std::string::npos) << w.report("");
  EXPECT_NE(w.report("").find("(2 windows, the last shown"), std::string::npos) << w.report("");
}

TEST(NicCounters, CommonNames) {
  E1000::Stats e;
  e.mmio_exits = 9;
  e.mmio_tdt = 4;
  e.interrupts = 3;
  e.rx_fifo_drops = 1;
  e.rx_dropped = 2;
  const Counters c = nic_counters(e);
  EXPECT_EQ(c.at("mmio_exits"), 9u);
  EXPECT_EQ(c.at("mmio_tdt"), 4u);
  EXPECT_EQ(c.at("interrupts"), 3u);
  EXPECT_EQ(c.at("rx_drops"), 3u);
  VirtioTransportStats t;
  VirtioNetStats n;
  t.kicks = 5;
  t.interrupts = 6;
  n.rx_frames = 7;
  const Counters v = nic_counters(t, n, 8);
  EXPECT_EQ(v.at("kicks"), 5u);
  EXPECT_EQ(v.at("interrupts"), 6u);
  EXPECT_EQ(v.at("rx_frames"), 7u);
  EXPECT_EQ(v.at("rx_drops"), 8u);
}

TEST(TakeSnapshot, WithoutKvmStatistics) {
  ExitStats s;
  s.record(KVM_EXIT_MMIO, 1);
  CounterSources src;
  src.userspace = [&] { return s.snapshot(); };
  src.nic = [] { return Counters{{"kicks", 2}}; };
  const CounterSnapshot a = take_snapshot(src);
  EXPECT_TRUE(a.kvm.empty());
  EXPECT_EQ(a.userspace, (Counters{{"mmio", 1}}));
  EXPECT_EQ(a.nic, (Counters{{"kicks", 2}}));
  EXPECT_GT(a.t_ns, 0u);
}

}  // namespace
}  // namespace vmm
