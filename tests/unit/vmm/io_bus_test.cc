#include "vmm/io_bus.h"

#include <gtest/gtest.h>

#include <cstring>

#include "vmm/devices/debug_exit.h"
#include "vmm/guest_memory.h"

namespace vmm {
namespace {

struct Recorder : IoDevice {
  uint64_t last_offset = ~0ull;
  uint32_t last_size = 0;
  void read(uint64_t offset, uint8_t* data, uint32_t size) override {
    last_offset = offset, last_size = size;
    std::memset(data, 0x42, size);
  }
  void write(uint64_t offset, const uint8_t*, uint32_t size) override { last_offset = offset, last_size = size; }
};

TEST(IoBusTest, DispatchesByRangeWithRelativeOffset) {
  IoBus bus;
  auto dev = std::make_shared<Recorder>();
  bus.add(0x100, 8, dev, "dev");
  uint8_t v[4];
  EXPECT_TRUE(bus.read(0x104, v, 4));
  EXPECT_EQ(dev->last_offset, 4u);
  EXPECT_EQ(v[0], 0x42);
}

TEST(IoBusTest, UnclaimedReadsReturnAllOnes) {
  IoBus bus;
  uint8_t v[2] = {0, 0};
  EXPECT_FALSE(bus.read(0x80, v, 2));
  EXPECT_EQ(v[0], 0xff);
  EXPECT_EQ(v[1], 0xff);
  EXPECT_FALSE(bus.write(0x80, v, 2));
}

TEST(IoBusTest, AccessCrossingTheEndIsNotDispatched) {
  IoBus bus;
  auto dev = std::make_shared<Recorder>();
  bus.add(0x100, 8, dev, "dev");
  uint8_t v[4];
  EXPECT_FALSE(bus.read(0x106, v, 4));
  EXPECT_EQ(dev->last_size, 0u);
  EXPECT_FALSE(bus.read(0xfe, v, 4));
}

TEST(IoBusTest, RejectsOverlapsAndEmptyRanges) {
  IoBus bus;
  bus.add(0x100, 8, std::make_shared<Recorder>(), "a");
  EXPECT_THROW(bus.add(0x104, 8, std::make_shared<Recorder>(), "b"), std::logic_error);
  EXPECT_THROW(bus.add(0xfc, 8, std::make_shared<Recorder>(), "c"), std::logic_error);
  EXPECT_THROW(bus.add(0x200, 0, std::make_shared<Recorder>(), "d"), std::logic_error);
  EXPECT_THROW(bus.add(~0ull - 1, 8, std::make_shared<Recorder>(), "e"), std::logic_error);
  EXPECT_NO_THROW(bus.add(0x108, 8, std::make_shared<Recorder>(), "f"));
}

TEST(DebugExitTest, ReportsTheWrittenStatus) {
  uint32_t got = ~0u;
  DebugExit dev([&](uint32_t s) { got = s; });
  const uint32_t status = 42;
  dev.write(0, reinterpret_cast<const uint8_t*>(&status), 4);
  EXPECT_EQ(got, 42u);
  const uint8_t byte = 7;
  dev.write(0, &byte, 1);
  EXPECT_EQ(got, 7u);
}

TEST(GuestMemoryTest, RangeChecks) {
  GuestMemory mem(16 << 20);
  EXPECT_NE(mem.ptr(0, 16 << 20), nullptr);
  EXPECT_NE(mem.ptr((16 << 20) - 1, 1), nullptr);
  EXPECT_EQ(mem.ptr((16 << 20) - 1, 2), nullptr);
  EXPECT_EQ(mem.ptr(16 << 20, 0), nullptr);
  EXPECT_EQ(mem.ptr(~0ull, 2), nullptr);
  EXPECT_EQ(mem.ptr(8, ~0ull), nullptr);
  uint32_t v = 0xdeadbeef, r = 0;
  EXPECT_TRUE(mem.write(0x1000, &v, 4));
  EXPECT_TRUE(mem.read(0x1000, &r, 4));
  EXPECT_EQ(r, v);
  EXPECT_FALSE(mem.write((16 << 20) - 2, &v, 4));
}

TEST(GuestMemoryTest, RejectsBadSizes) {
  EXPECT_THROW(GuestMemory(0), std::invalid_argument);
  EXPECT_THROW(GuestMemory(4097), std::invalid_argument);
  EXPECT_THROW(GuestMemory(4ull << 30), std::invalid_argument);
}

}  // namespace
}  // namespace vmm
