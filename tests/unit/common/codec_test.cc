#include "storage-guests/common/codec.h"

#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <string>

#include "storage-guests/common/ids.h"

namespace sg {
namespace {

TEST(Codec, FixedWidthIsLittleEndian) {
  Writer w;
  w.u16(0x0102);
  w.u32(0x03040506);
  w.u64(0x0708090a0b0c0d0eull);
  const Bytes expect = {0x02, 0x01, 0x06, 0x05, 0x04, 0x03, 0x0e, 0x0d,
                        0x0c, 0x0b, 0x0a, 0x09, 0x08, 0x07};
  EXPECT_EQ(w.data(), expect);
  Reader r(w.data());
  EXPECT_EQ(r.u16(), 0x0102);
  EXPECT_EQ(r.u32(), 0x03040506u);
  EXPECT_EQ(r.u64(), 0x0708090a0b0c0d0eull);
  EXPECT_TRUE(r.finish());
}

TEST(Codec, RoundTripsEveryFieldKind) {
  Writer w;
  w.u8(0xff);
  w.boolean(true);
  w.boolean(false);
  w.i64(-5);
  w.varint(0);
  w.varint(127);
  w.varint(128);
  w.varint(std::numeric_limits<uint64_t>::max());
  w.str("hello");
  w.bytes(Bytes{1, 2, 3});
  w.str("");
  Reader r(w.data());
  EXPECT_EQ(r.u8(), 0xff);
  EXPECT_TRUE(r.boolean());
  EXPECT_FALSE(r.boolean());
  EXPECT_EQ(r.i64(), -5);
  EXPECT_EQ(r.varint(), 0u);
  EXPECT_EQ(r.varint(), 127u);
  EXPECT_EQ(r.varint(), 128u);
  EXPECT_EQ(r.varint(), std::numeric_limits<uint64_t>::max());
  std::string s;
  r.str(s);
  EXPECT_EQ(s, "hello");
  Bytes b;
  r.bytes(b);
  EXPECT_EQ(b, (Bytes{1, 2, 3}));
  r.str(s);
  EXPECT_EQ(s, "");
  EXPECT_TRUE(r.finish()) << r.error_string();
}

TEST(Codec, VarintSizes) {
  for (int bits = 0; bits <= 64; ++bits) {
    const uint64_t v = bits == 64 ? ~0ull : (1ull << bits) - 1;
    Writer w;
    w.varint(v);
    EXPECT_EQ(w.size(), bits == 0 ? 1u : static_cast<size_t>((bits + 6) / 7)) << bits;
    Reader r(w.data());
    EXPECT_EQ(r.varint(), v);
    EXPECT_TRUE(r.finish());
  }
}

// Every proper prefix of a valid message must be rejected as truncated,
// never read past its end (ASan watches) and never accepted.
TEST(Codec, EveryTruncationIsRejected) {
  Writer w;
  write_envelope(w, Protocol::kTest, 3);
  w.u32(7);
  w.varint(1u << 30);
  w.str("payload");
  w.u64(9);
  const Bytes full = w.data();
  for (size_t len = 0; len < full.size(); ++len) {
    Bytes cut(full.begin(), full.begin() + static_cast<long>(len));
    Reader r(cut);
    read_envelope(r, Protocol::kTest, 5);
    r.u32();
    r.varint();
    std::string s;
    r.str(s);
    r.u64();
    EXPECT_FALSE(r.finish()) << "prefix of " << len << " bytes accepted";
    EXPECT_EQ(r.error(), DecodeError::kTruncated) << len;
    EXPECT_TRUE(s.empty() || len >= full.size() - 8);
  }
}

TEST(Codec, ErrorsAreStickyAndReadsReturnZero) {
  const Bytes in = {0x01};
  Reader r(in);
  EXPECT_EQ(r.u32(), 0u);
  EXPECT_EQ(r.error(), DecodeError::kTruncated);
  EXPECT_EQ(r.error_offset(), 0u);
  // The byte that is there is not consumed by later reads either.
  EXPECT_EQ(r.u8(), 0u);
  EXPECT_EQ(r.varint(), 0u);
  r.fail(DecodeError::kBadValue);
  EXPECT_EQ(r.error(), DecodeError::kTruncated) << "first error wins";
  EXPECT_STREQ(r.error_string(), "truncated input");
  EXPECT_EQ(r.remaining(), 0u);
}

TEST(Codec, HugeLengthIsRejectedWithoutAllocating) {
  Writer w;
  w.varint(std::numeric_limits<uint64_t>::max());  // a length no input holds
  w.u8('x');
  Bytes out = {9};
  Reader r(w.data());
  r.bytes(out);
  EXPECT_EQ(r.error(), DecodeError::kTooLong);
  EXPECT_TRUE(out.empty());

  Writer w2;
  w2.varint(1000);  // under the cap, over the input
  w2.str("short");
  Reader r2(w2.data());
  std::string s;
  r2.str(s);
  EXPECT_EQ(r2.error(), DecodeError::kTruncated);
}

TEST(Codec, CallerLengthCap) {
  Writer w;
  w.str("0123456789");
  Reader ok(w.data());
  std::string s;
  ok.str(s, 10);
  EXPECT_TRUE(ok.finish());
  Reader over(w.data());
  over.str(s, 9);
  EXPECT_EQ(over.error(), DecodeError::kTooLong);
  EXPECT_TRUE(s.empty());
}

TEST(Codec, CountIsBoundedByRemainingInput) {
  Writer w;
  w.varint(1000000);  // claims a million 8-byte elements
  w.u64(1);
  Reader r(w.data());
  EXPECT_EQ(r.count(std::numeric_limits<size_t>::max(), 8), 0u);
  EXPECT_EQ(r.error(), DecodeError::kTruncated);

  Writer w2;
  w2.varint(3);
  Reader r2(w2.data());
  EXPECT_EQ(r2.count(2), 0u);
  EXPECT_EQ(r2.error(), DecodeError::kTooLong);

  Writer w3;
  w3.varint(2);
  w3.u8(1);
  w3.u8(2);
  Reader r3(w3.data());
  EXPECT_EQ(r3.count(10, 1), 2u);
  EXPECT_TRUE(r3.ok());
}

TEST(Codec, MalformedVarints) {
  struct Case {
    Bytes in;
    DecodeError want;
  };
  const Case cases[] = {
      {{}, DecodeError::kTruncated},
      {{0x80}, DecodeError::kTruncated},
      {{0xff, 0xff}, DecodeError::kTruncated},
      // Eleven bytes: longer than any 64-bit value.
      {{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}, DecodeError::kBadVarint},
      // Ten bytes whose last carries bits beyond 63.
      {{0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02}, DecodeError::kBadVarint},
      // Non-minimal: 0 padded to two bytes, 1 padded to three.
      {{0x80, 0x00}, DecodeError::kBadVarint},
      {{0x81, 0x80, 0x00}, DecodeError::kBadVarint},
  };
  for (const Case& c : cases) {
    Reader r(c.in);
    EXPECT_EQ(r.varint(), 0u);
    EXPECT_EQ(r.error(), c.want) << "input of " << c.in.size() << " bytes";
    EXPECT_EQ(r.error_offset(), 0u);
  }
}

TEST(Codec, VarintMaxAndBoolean) {
  Writer w;
  w.varint(5);
  w.varint(6);
  w.u8(2);
  Reader r(w.data());
  EXPECT_EQ(r.varint_max(5), 5u);
  EXPECT_EQ(r.varint_max(5), 0u);
  EXPECT_EQ(r.error(), DecodeError::kBadValue);
  const Bytes two = {2};
  Reader b(two);
  b.boolean();
  EXPECT_EQ(b.error(), DecodeError::kBadValue);
}

TEST(Codec, TrailingBytesAreRejected) {
  Writer w;
  w.u32(1);
  w.u8(0);
  Reader r(w.data());
  r.u32();
  EXPECT_FALSE(r.finish());
  EXPECT_EQ(r.error(), DecodeError::kTrailingBytes);
  EXPECT_EQ(r.error_offset(), 4u);
}

TEST(Envelope, RoundTrip) {
  Writer w;
  write_envelope(w, Protocol::kRaft, 4);
  EXPECT_EQ(w.size(), kEnvelopeSize);
  EXPECT_EQ(w.data(), (Bytes{'S', 'G', kWireVersion, 2, 4}));
  Reader r(w.data());
  EXPECT_EQ(read_envelope(r, Protocol::kRaft, 4), 4);
  EXPECT_TRUE(r.finish());
}

TEST(Envelope, RejectsEachBadHeaderField) {
  const Bytes good = {0x53, 0x47, kWireVersion, static_cast<uint8_t>(Protocol::kRaft), 1};
  struct Case {
    size_t index;
    uint8_t value;
    DecodeError want;
  };
  const Case cases[] = {
      {0, 0x00, DecodeError::kBadMagic},
      {1, 0x48, DecodeError::kBadMagic},
      {2, 0, DecodeError::kBadVersion},
      {2, kWireVersion + 1, DecodeError::kBadVersion},
      {3, static_cast<uint8_t>(Protocol::kChain), DecodeError::kBadProtocol},
      {4, 0, DecodeError::kBadType},
      {4, 9, DecodeError::kBadType},
  };
  {
    Reader r(good);
    EXPECT_EQ(read_envelope(r, Protocol::kRaft, 8), 1);
  }
  for (const Case& c : cases) {
    Bytes in = good;
    in[c.index] = c.value;
    Reader r(in);
    EXPECT_EQ(read_envelope(r, Protocol::kRaft, 8), 0);
    EXPECT_EQ(r.error(), c.want) << "byte " << c.index << " = " << int(c.value);
    EXPECT_NE(std::string(r.error_string()), "ok");
  }
  for (size_t len = 0; len < good.size(); ++len) {
    Reader r(good.data(), len);
    EXPECT_EQ(read_envelope(r, Protocol::kRaft, 8), 0);
    EXPECT_EQ(r.error(), DecodeError::kTruncated);
  }
}

TEST(Codec, EveryErrorHasAName) {
  for (int e = 0; e <= static_cast<int>(DecodeError::kTrailingBytes); ++e) {
    EXPECT_STRNE(to_string(static_cast<DecodeError>(e)), "unknown decode error") << e;
  }
}

// Random garbage through a decoder of every field kind: must end in a clean
// error or success, never a sanitizer report.
TEST(Codec, GarbageNeverCrashes) {
  uint64_t x = 88172645463325252ull;
  auto next = [&x] {
    x ^= x << 13;
    x ^= x >> 7;
    x ^= x << 17;
    return x;
  };
  int rejected = 0;
  for (int iter = 0; iter < 20000; ++iter) {
    Bytes in(next() % 40);
    for (auto& b : in) b = static_cast<uint8_t>(next());
    if (iter % 2 == 0 && in.size() >= 5) {
      in[0] = 0x53;
      in[1] = 0x47;
      in[2] = kWireVersion;
      in[3] = static_cast<uint8_t>(Protocol::kTest);
    }
    Reader r(in);
    read_envelope(r, Protocol::kTest, 255);
    std::string s;
    Bytes b;
    std::vector<NodeId> ids;
    r.varint();
    r.str(s, 16);
    r.bytes(b);
    read_node_ids(r, ids);
    r.boolean();
    r.u64();
    if (!r.finish()) ++rejected;
    EXPECT_LE(s.size(), 16u);
  }
  EXPECT_GT(rejected, 19000);
}

TEST(Ids, Conventions) {
  EXPECT_TRUE(is_server_id(1));
  EXPECT_FALSE(is_server_id(0));
  EXPECT_FALSE(is_server_id(kFirstClientId));
  EXPECT_TRUE(is_client_id(kFirstClientId));
  EXPECT_FALSE(is_client_id(kNoNode));
  EXPECT_EQ(quorum(1), 1u);
  EXPECT_EQ(quorum(3), 2u);
  EXPECT_EQ(quorum(4), 3u);
  EXPECT_EQ(quorum(5), 3u);
}

TEST(Ids, NodeIdListRoundTripAndLimits) {
  Writer w;
  write_node_ids(w, {1, 2, kFirstClientId});
  Reader r(w.data());
  std::vector<NodeId> ids;
  read_node_ids(r, ids);
  EXPECT_TRUE(r.finish());
  EXPECT_EQ(ids, (std::vector<NodeId>{1, 2, kFirstClientId}));

  Writer big;
  big.varint(kMaxClusterSize + 1);
  for (size_t i = 0; i <= kMaxClusterSize; ++i) big.varint(1);
  Reader rb(big.data());
  read_node_ids(rb, ids);
  EXPECT_EQ(rb.error(), DecodeError::kTooLong);
  EXPECT_TRUE(ids.empty());

  for (const std::vector<uint64_t>& bad_ids :
       {std::vector<uint64_t>{kNoNode}, std::vector<uint64_t>{0},
        std::vector<uint64_t>{3, 4, 3}, std::vector<uint64_t>{1ull << 32}}) {
    Writer bad;
    bad.varint(bad_ids.size());
    for (uint64_t id : bad_ids) bad.varint(id);
    Reader rn(bad.data());
    read_node_ids(rn, ids);
    EXPECT_EQ(rn.error(), DecodeError::kBadValue) << bad_ids.size();
    EXPECT_TRUE(ids.empty());
  }
}

}  // namespace
}  // namespace sg
