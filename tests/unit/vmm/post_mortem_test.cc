#include "vmm/post_mortem.h"

#include <gtest/gtest.h>

#include <cstddef>
#include <cstring>
#include <string>

#include "vmm/devices/post_mortem_port.h"

namespace vmm {
namespace {

// A guest laid out as our kernel lays itself out: identity-mapped, 2 MiB
// pages except the first 2 MiB (split so that page 0 and the stack guard
// pages can be unmapped), an IDT whose 256 gates point at 16-byte stubs,
// a GDT with a TSS descriptor, guarded stacks, and the report structure.
constexpr uint64_t kRam = 16 << 20;
constexpr uint64_t kPml4 = 0x10000, kPdpt = 0x11000, kPd = 0x12000, kPt = 0x13000;
constexpr uint64_t kIdt = 0x100000, kGdt = 0x101000, kTss = 0x102000, kInfo = 0x103000;
constexpr uint64_t kStubs = 0x110000;
constexpr uint64_t kIstPages = 4, kMainPages = 16;
// Stack s's guard page; the stack is the pages above it.
constexpr uint64_t guard_of(unsigned s) { return 0x140000 + s * 0x20000; }
constexpr uint64_t top_of(unsigned s) { return guard_of(s) + ((s == 0 ? kMainPages : kIstPages) + 1) * 4096; }

class PostMortemTest : public ::testing::Test {
 protected:
  GuestMemory mem{kRam};
  PostMortem pm{mem};

  template <typename T>
  T get(uint64_t gpa) {
    T v;
    EXPECT_TRUE(mem.read(gpa, &v, sizeof v));
    return v;
  }
  template <typename T>
  void put(uint64_t gpa, T v) {
    ASSERT_TRUE(mem.write(gpa, &v, sizeof v));
  }

  platform::PostMortemInfo info() { return get<platform::PostMortemInfo>(kInfo); }
  void set_info(const platform::PostMortemInfo& i) { put(kInfo, i); }

  void SetUp() override {
    put<uint64_t>(kPml4, kPdpt | 3);
    put<uint64_t>(kPdpt, kPd | 3);
    put<uint64_t>(kPd, kPt | 3);
    for (uint64_t i = 1; i < 512; ++i) put<uint64_t>(kPt + 8 * i, i * 4096 | 3);
    for (uint64_t i = 1; i < 8; ++i) put<uint64_t>(kPd + 8 * i, (i << 21) | 0x83);
    for (unsigned v = 0; v < 256; ++v) {
      const uint64_t target = kStubs + 16 * v;
      uint8_t gate[16] = {};
      gate[0] = target & 0xff;
      gate[1] = (target >> 8) & 0xff;
      gate[2] = 0x08;
      gate[4] = v == 8 ? 1 : 4;
      gate[5] = 0x8e;
      gate[6] = (target >> 16) & 0xff;
      gate[7] = (target >> 24) & 0xff;
      ASSERT_TRUE(mem.write(kIdt + 16 * v, gate, sizeof gate));
    }
    put<uint64_t>(kGdt + 8, 0x00af9a000000ffffull);
    put<uint64_t>(kGdt + 16, 0x00cf92000000ffffull);
    put<uint64_t>(kGdt + 24, 0x67 | ((kTss & 0xffffff) << 16) | (0x8bull << 40));
    platform::PostMortemInfo i{};
    i.magic = platform::kPostMortemMagic;
    i.size = sizeof i;
    i.idt_base = kIdt;
    i.idt_limit = 256 * 16 - 1;
    i.gdt_base = kGdt;
    i.gdt_limit = 5 * 8 - 1;
    i.tr = 0x18;
    i.tss_base = kTss;
    i.cr3 = kPml4;
    for (unsigned s = 0; s < platform::kPostMortemStacks; ++s) {
      i.stacks[s] = {guard_of(s), top_of(s)};
      put<uint64_t>(kPt + 8 * (guard_of(s) >> 12), 0);  // the guard, unmapped
      if (s) put<uint64_t>(kTss + 36 + 8 * (s - 1), top_of(s));
    }
    set_info(i);
  }
};

TEST_F(PostMortemTest, NothingToSayWithoutAReport) { EXPECT_EQ(pm.report("x: "), ""); }

TEST_F(PostMortemTest, IntactLayoutBlamesWhatIsNotInRam) {
  ASSERT_TRUE(pm.take(kInfo));
  // What the CPU sets as the guest runs is not a change: accessed and
  // dirty bits in the tables, the accessed bit of a descriptor.
  put<uint64_t>(kPt + 8 * 0x110, 0x110000 | 3 | 0x60);
  put<uint64_t>(kPd + 8, (1 << 21) | 0x83 | 0x20);
  put<uint64_t>(kGdt + 8, 0x00af9b000000ffffull);
  const std::string r = pm.report("vmm: vm 1: ");
  EXPECT_NE(r.find("vmm: vm 1: post-mortem:"), std::string::npos) << r;
  EXPECT_NE(r.find("IDT, GDT, TSS and the 4 page-table pages: unchanged"), std::string::npos) << r;
  EXPECT_NE(r.find("all 256 handlers and every stack are mapped"), std::string::npos) << r;
  EXPECT_NE(r.find("IST1 (#DF) [0x161000, 0x165000): deepest use 0 of 16384 bytes"), std::string::npos) << r;
  EXPECT_NE(r.find("verdict: every structure double-fault delivery needs is intact"), std::string::npos) << r;
}

TEST_F(PostMortemTest, ChangedIdtGateIsShownWithOldAndNewBytes) {
  ASSERT_TRUE(pm.take(kInfo));
  put<uint8_t>(kIdt + 14 * 16 + 5, 0x0e);  // #PF's gate no longer present
  const std::string r = pm.report("");
  EXPECT_NE(r.find("IDT at 0x100000 [14] (+0xe0): was 000000000000000000118e04000800e0 now "
                   "000000000000000000110e04000800e0"),
            std::string::npos)
      << r;
  EXPECT_NE(r.find("verdict: the guest's delivery structures were changed"), std::string::npos) << r;
}

TEST_F(PostMortemTest, UnmappedIstStackPageIsFoundThroughTheCurrentTables) {
  ASSERT_TRUE(pm.take(kInfo));
  const uint64_t page = top_of(1) - 4096;
  put<uint64_t>(kPt + 8 * (page >> 12), 0);
  const std::string r = pm.report("");
  EXPECT_NE(r.find("IST1 (#DF): page 0x164000 not present: PT 0x13000[356] = 0"), std::string::npos) << r;
  EXPECT_NE(r.find("PT at 0x13000 [356]"), std::string::npos) << r;  // and the diff says so too
}

TEST_F(PostMortemTest, ChangedTssIstPointerAndMappedGuardAreProblems) {
  ASSERT_TRUE(pm.take(kInfo));
  put<uint64_t>(kTss + 36, 0x1234000);
  put<uint64_t>(kPt + 8 * (guard_of(3) >> 12), guard_of(3) | 3);
  const std::string r = pm.report("");
  EXPECT_NE(r.find("the TSS's IST1 is now 0x1234000"), std::string::npos) << r;
  EXPECT_NE(r.find("IST3 (exceptions): its guard page 0x1a0000 is mapped"), std::string::npos) << r;
}

TEST_F(PostMortemTest, NoExecuteHandlerAndHugeUnmappedRegion) {
  ASSERT_TRUE(pm.take(kInfo));
  put<uint64_t>(kPd, kPt | 3 | (1ull << 63));  // the first 2 MiB: no-execute
  const std::string r = pm.report("");
  EXPECT_NE(r.find("handler of vector 0: page 0x110000 no-execute: PD 0x12000[0]"), std::string::npos) << r;
  EXPECT_NE(r.find("(256 handlers unmapped in all)"), std::string::npos) << r;
}

TEST_F(PostMortemTest, StackDepthAndOverflowAreMeasured) {
  ASSERT_TRUE(pm.take(kInfo));
  put<uint64_t>(top_of(4) - 256, 0xdead);
  put<uint8_t>(guard_of(0) + 4096, 1);  // the main stack's lowest byte
  const std::string r = pm.report("");
  EXPECT_NE(r.find("IST4 (interrupts) [0x1c1000, 0x1c5000): deepest use 256 of 16384 bytes"), std::string::npos)
      << r;
  EXPECT_NE(r.find("main stack [0x141000, 0x151000): deepest use 65536 of 65536 bytes (reached its guard page"),
            std::string::npos)
      << r;
}

TEST_F(PostMortemTest, BreadcrumbsOldestFirstAndInsideAHandler) {
  ASSERT_TRUE(pm.take(kInfo));
  platform::PostMortemInfo i = info();
  for (uint64_t n = 0; n < 40; ++n) {
    platform::PostMortemCrumb& c = i.crumbs[n % platform::kPostMortemCrumbs];
    c = {1000 + n, 48 + (n % 2), 0x101000 + n, 0x190000 - 8 * n};
  }
  i.crumbs[39 % platform::kPostMortemCrumbs].vector = 14 | (2ull << 32);
  i.crumb_count = 40;
  i.crumb_done = 39;
  set_info(i);
  const std::string r = pm.report("");
  EXPECT_NE(r.find("breadcrumbs: 40 interrupt/exception entries, 39 returned (inside a handler at the end)"),
            std::string::npos)
      << r;
  const size_t oldest = r.find("-31 vector  48 irq      err 0 rip 0x101008"), newest = r.find("-0  vector  14 #PF      err 0x2 rip 0x101027");
  EXPECT_NE(oldest, std::string::npos) << r;
  EXPECT_NE(newest, std::string::npos) << r;
  EXPECT_LT(oldest, newest);
  EXPECT_NE(r.find("tsc last-31"), std::string::npos) << r;
}

TEST_F(PostMortemTest, HostileReportsAreRefusedAndTheLastGoodOneKept) {
  EXPECT_FALSE(pm.take(kRam - 8));  // runs off RAM
  EXPECT_NE(pm.report("").find("report 1 refused: its report at 0xfffff8 is not in RAM"), std::string::npos);
  EXPECT_FALSE(pm.take(0xffffffff));

  platform::PostMortemInfo i = info();
  i.idt_limit = 0xffff;
  set_info(i);
  EXPECT_FALSE(pm.take(kInfo));
  i = info();
  i.idt_limit = 0xfff;
  i.gdt_base = kRam - 8;
  set_info(i);
  EXPECT_FALSE(pm.take(kInfo));
  SetUp();
  i = info();
  i.stacks[2].guard = i.stacks[2].top + 4096;
  set_info(i);
  EXPECT_FALSE(pm.take(kInfo));
  i.stacks[2] = {0, 0x200000};
  set_info(i);
  EXPECT_FALSE(pm.take(kInfo));
  i.stacks[2] = {0x1c0000, 0x1c1000};  // a guard and no stack
  set_info(i);
  EXPECT_FALSE(pm.take(kInfo));
  i.magic = 0;
  set_info(i);
  EXPECT_FALSE(pm.take(kInfo));
  EXPECT_EQ(pm.report("").find("post-mortem: guest RAM"), std::string::npos);

  SetUp();
  ASSERT_TRUE(pm.take(kInfo));
  i = info();
  i.cr3 = kRam + 0x1000;  // tables outside RAM: kept, found at the crash
  i.tss_base = kRam;
  set_info(i);
  EXPECT_FALSE(pm.take(kInfo));
  const std::string r = pm.report("");
  EXPECT_NE(r.find("report 10 refused: its TSS [0x1000000, +0x68) is not in RAM"), std::string::npos) << r;
  EXPECT_NE(r.find("CR3 0x10000"), std::string::npos) << r;  // the good copy
}

TEST_F(PostMortemTest, SelfReferencingTablesStayBounded) {
  for (uint64_t e = 0; e < 512; ++e) put<uint64_t>(kPml4 + 8 * e, kPml4 | 3);
  ASSERT_TRUE(pm.take(kInfo));
  const std::string r = pm.report("");
  EXPECT_NE(r.find("256 page-table pages copied (more not copied): unchanged"), std::string::npos) << r;
}

TEST(PostMortemPortTest, ReadsTheMagicAndTakesAlignedWrites) {
  GuestMemory mem(1 << 20);
  PostMortem pm(mem);
  PostMortemPort port(pm);
  uint32_t v = 0;
  port.read(0, reinterpret_cast<uint8_t*>(&v), 4);
  EXPECT_EQ(v, platform::kPostMortemMagic);
  uint8_t b = 0;
  port.read(3, &b, 1);
  EXPECT_EQ(b, platform::kPostMortemMagic >> 24);
  const uint32_t gpa = 0x1000;
  port.write(1, reinterpret_cast<const uint8_t*>(&gpa), 2);
  EXPECT_EQ(port.ignored_writes(), 1u);
  port.write(0, reinterpret_cast<const uint8_t*>(&gpa), 4);  // zeroes there: refused, but taken
  EXPECT_NE(pm.report("").find("report 1 refused: its report at 0x1000 has magic 0"), std::string::npos);
}

}  // namespace
}  // namespace vmm
