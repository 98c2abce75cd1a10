// The snapshot file framing (vmm/snapshot/snapshot_file.h): round trip, and
// every kind of damage refused with a reason that says what is wrong.
#include "vmm/snapshot/snapshot_file.h"

#include "guest-kernel/lib/crc32c.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <iterator>

namespace vmm::snapshot {
namespace {

class SnapshotFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    char tmpl[] = "/tmp/snapfile-XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    dir_ = tmpl;
    path_ = dir_ + "/s.snap";
  }
  void TearDown() override {
    std::remove(path_.c_str());
    std::remove((path_ + ".tmp").c_str());
    ::rmdir(dir_.c_str());
  }
  void write_sample() {
    FileWriter w(path_);
    std::vector<uint8_t> a{1, 2, 3}, big(100000);
    for (size_t i = 0; i < big.size(); ++i) big[i] = static_cast<uint8_t>(i * 7);
    w.section(tag("CONF"), a);
    w.section(tag("RAM "), big);
    w.section(tag("NONE"), {});
    w.commit();
  }
  std::vector<uint8_t> bytes() {
    std::ifstream f(path_, std::ios::binary);
    return {std::istreambuf_iterator<char>(f), {}};
  }
  void put(const std::vector<uint8_t>& b) {
    std::ofstream f(path_, std::ios::binary | std::ios::trunc);
    f.write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
  }
  // Reads every section; returns the error, or "" when the file is good.
  std::string read_all(std::vector<Section>* out = nullptr) {
    try {
      FileReader r(path_);
      Section s;
      while (r.next(s))
        if (out) out->push_back(s);
      return "";
    } catch (const SnapshotError& e) {
      return e.what();
    }
  }
  std::string dir_, path_;
};

TEST_F(SnapshotFileTest, RoundTrip) {
  write_sample();
  std::vector<Section> got;
  ASSERT_EQ(read_all(&got), "");
  ASSERT_EQ(got.size(), 3u);
  EXPECT_EQ(tag_name(got[0].tag), "CONF");
  EXPECT_EQ(got[0].payload, (std::vector<uint8_t>{1, 2, 3}));
  EXPECT_EQ(tag_name(got[1].tag), "RAM ");
  ASSERT_EQ(got[1].payload.size(), 100000u);
  EXPECT_EQ(got[1].payload[99999], static_cast<uint8_t>(99999 * 7));
  EXPECT_TRUE(got[2].payload.empty());
  EXPECT_EQ(got[0].offset, kFileHeaderBytes);
  EXPECT_NE(access((path_ + ".tmp").c_str(), F_OK), 0) << "the temporary file is renamed away";
}

TEST_F(SnapshotFileTest, WithoutCommitNothingIsLeft) {
  {
    FileWriter w(path_);
    w.section(tag("CONF"), std::vector<uint8_t>{1});
  }
  EXPECT_NE(access(path_.c_str(), F_OK), 0);
  EXPECT_NE(access((path_ + ".tmp").c_str(), F_OK), 0);
}

TEST_F(SnapshotFileTest, TruncationAnywhereIsRefused) {
  write_sample();
  const auto good = bytes();
  // Every cut of the file, coarsely and at the boundaries that matter.
  for (size_t cut = 0; cut < good.size(); cut += (cut < 64 || good.size() - cut < 64) ? 1 : 997) {
    put(std::vector<uint8_t>(good.begin(), good.begin() + static_cast<long>(cut)));
    const std::string err = read_all();
    ASSERT_NE(err, "") << "cut at " << cut;
    EXPECT_TRUE(err.find("truncated") != std::string::npos) << "cut at " << cut << ": " << err;
  }
}

TEST_F(SnapshotFileTest, AFlippedBitIsRefusedAsCorrupt) {
  write_sample();
  const auto good = bytes();
  for (size_t at : {size_t{3}, size_t{13}, kFileHeaderBytes + 1, kFileHeaderBytes + 17, size_t{5000},
                    good.size() - 30, good.size() - 1}) {
    auto bad = good;
    bad[at] ^= 0x10;
    put(bad);
    const std::string err = read_all();
    ASSERT_NE(err, "") << "flip at " << at;
    EXPECT_TRUE(err.find("corrupt") != std::string::npos || err.find("bad magic") != std::string::npos ||
                err.find("version") != std::string::npos)
        << "flip at " << at << ": " << err;
  }
}

TEST_F(SnapshotFileTest, CorruptRamSectionNamesTheSection) {
  write_sample();
  auto b = bytes();
  b[kFileHeaderBytes + kSectionHeaderBytes + 3 + kSectionTrailerBytes + kSectionHeaderBytes + 500] ^= 1;
  put(b);
  const std::string err = read_all();
  EXPECT_NE(err.find("section RAM  at byte"), std::string::npos) << err;
  EXPECT_NE(err.find("CRC-32C"), std::string::npos) << err;
}

TEST_F(SnapshotFileTest, OtherVersionIsRefused) {
  write_sample();
  auto b = bytes();
  // Version 2 with a correct header CRC: refused for its version alone.
  b[8] = 2;
  const uint32_t crc = crc32c::value(b.data(), 12);
  for (int i = 0; i < 4; ++i) b[12 + i] = static_cast<uint8_t>(crc >> (8 * i));
  put(b);
  const std::string err = read_all();
  EXPECT_NE(err.find("format version 2, this VMM reads version 1"), std::string::npos) << err;
}

TEST_F(SnapshotFileTest, NotASnapshotAndMissingFile) {
  put({'h', 'e', 'l', 'l', 'o', ' ', 'w', 'o', 'r', 'l', 'd', '!', '!', '!', '!', '!'});
  EXPECT_NE(read_all().find("bad magic"), std::string::npos);
  std::remove(path_.c_str());
  EXPECT_NE(read_all().find("cannot open snapshot"), std::string::npos);
}

TEST_F(SnapshotFileTest, BytesAfterEndAreRefused) {
  write_sample();
  auto b = bytes();
  b.push_back(0);
  put(b);
  EXPECT_NE(read_all().find("bytes after the END section"), std::string::npos);
}

TEST_F(SnapshotFileTest, AbsurdSectionLengthIsRefusedBeforeAllocating) {
  write_sample();
  auto b = bytes();
  // Length field of the first section: 2^62, with the CRC unchanged.
  b[kFileHeaderBytes + 8 + 7] = 0x40;
  put(b);
  EXPECT_NE(read_all().find("malformed header"), std::string::npos);
}

TEST(ByteIoTest, RoundTripAndShortPayloads) {
  ByteWriter w;
  w.u8(7);
  w.u16(0xbeef);
  w.u32(0xdeadbeef);
  w.u64(0x0123456789abcdefull);
  w.i64(-5);
  w.str("hello");
  struct Pod {
    uint32_t a;
    uint16_t b;
  } pod{1, 2};
  w.raw(pod);
  auto data = w.take();
  ByteReader r(data, "test");
  EXPECT_EQ(r.u8(), 7);
  EXPECT_EQ(r.u16(), 0xbeef);
  EXPECT_EQ(r.u32(), 0xdeadbeefu);
  EXPECT_EQ(r.u64(), 0x0123456789abcdefull);
  EXPECT_EQ(r.i64(), -5);
  EXPECT_EQ(r.str(), "hello");
  EXPECT_EQ(r.raw<Pod>("pod").b, 2);
  EXPECT_NO_THROW(r.expect_end());
  ByteReader short_r(std::span<const uint8_t>(data.data(), 5), "short");
  short_r.u8();
  EXPECT_THROW(short_r.u64(), SnapshotError);
  ByteReader wrong_size(data, "sizes");
  wrong_size.bytes(data.size() - sizeof(Pod) - 4);
  static_assert(sizeof(Pod) != sizeof(uint32_t));
  EXPECT_THROW(wrong_size.raw<uint32_t>("u32"), SnapshotError);
}

}  // namespace
}  // namespace vmm::snapshot
