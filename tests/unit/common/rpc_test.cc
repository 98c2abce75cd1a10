#include "storage-guests/common/rpc.h"

#include <gtest/gtest.h>

namespace sg {
namespace {

using V = DedupTable::Verdict;

Bytes reply(uint8_t v) { return Bytes{v}; }

TEST(RequestId, RoundTripAndRejectsZero) {
  Writer w;
  write_request_id(w, RequestId{42, 7});
  Reader r(w.data());
  EXPECT_EQ(read_request_id(r), (RequestId{42, 7}));
  EXPECT_TRUE(r.finish());

  for (const RequestId bad : {RequestId{0, 1}, RequestId{1, 0}}) {
    Writer wb;
    write_request_id(wb, bad);
    Reader rb(wb.data());
    EXPECT_EQ(read_request_id(rb), RequestId{});
    EXPECT_EQ(rb.error(), DecodeError::kBadValue);
  }
  const Bytes nothing;
  Reader empty(nothing);
  read_request_id(empty);
  EXPECT_EQ(empty.error(), DecodeError::kTruncated);
}

TEST(ClientSession, NumbersFromOne) {
  ClientSession s(9);
  EXPECT_EQ(s.next(), (RequestId{9, 1}));
  EXPECT_EQ(s.next(), (RequestId{9, 2}));
}

TEST(DedupTable, ExactlyOnceLifecycle) {
  DedupTable t;
  EXPECT_EQ(t.check({5, 1}).verdict, V::kNew);
  t.record({5, 1}, reply(10));
  auto dup = t.check({5, 1});
  ASSERT_EQ(dup.verdict, V::kDuplicate);
  EXPECT_EQ(*dup.reply, reply(10));
  EXPECT_EQ(t.check({5, 2}).verdict, V::kNew);
  t.record({5, 2}, reply(20));
  EXPECT_EQ(t.check({5, 1}).verdict, V::kStale);
  EXPECT_EQ(*t.check({5, 2}).reply, reply(20));
  // Clients are independent.
  EXPECT_EQ(t.check({6, 1}).verdict, V::kNew);
  EXPECT_EQ(t.size(), 1u);
}

TEST(DedupTable, UnknownClientPastFirstRequestIsExpired) {
  DedupTable t;
  EXPECT_EQ(t.check({5, 3}).verdict, V::kExpired);
}

TEST(DedupTable, RecordNeverGoesBackwards) {
  DedupTable t;
  t.record({1, 5}, reply(5));
  t.record({1, 4}, reply(4));  // a replayed older entry
  EXPECT_EQ(*t.check({1, 5}).reply, reply(5));
}

TEST(DedupTable, ExpireByStamp) {
  DedupTable t;
  t.record({1, 1}, reply(1), 10);
  t.record({2, 1}, reply(2), 20);
  t.record({3, 1}, reply(3), 30);
  EXPECT_EQ(t.expire_before(25), 2u);
  EXPECT_EQ(t.size(), 1u);
  EXPECT_EQ(t.check({1, 2}).verdict, V::kExpired);
  EXPECT_EQ(t.check({3, 1}).verdict, V::kDuplicate);
}

TEST(DedupTable, SnapshotRoundTripIsCanonical) {
  DedupTable a;
  a.record({30, 2}, reply(1), 7);
  a.record({10, 9}, Bytes{}, 8);
  a.record({20, 1}, Bytes(300, 0xab), 9);
  Writer w;
  a.encode(w);
  DedupTable b;
  Reader r(w.data());
  b.decode(r);
  ASSERT_TRUE(r.finish()) << r.error_string();
  EXPECT_EQ(a, b);
  Writer w2;
  b.encode(w2);
  EXPECT_EQ(w.data(), w2.data());
}

TEST(DedupTable, MalformedSnapshotsLeaveItEmpty) {
  DedupTable src;
  src.record({1, 1}, reply(1));
  src.record({2, 1}, reply(2));
  Writer w;
  src.encode(w);
  const Bytes good = w.data();

  for (size_t len = 0; len < good.size(); ++len) {
    DedupTable t;
    t.record({99, 1}, reply(9));
    Reader r(good.data(), len);
    t.decode(r);
    EXPECT_FALSE(r.ok()) << len;
    EXPECT_EQ(t.size(), 0u) << len;
  }

  // Clients out of order (or repeated) are not an encoding we produce.
  Writer dupw;
  dupw.varint(2);
  for (int i = 0; i < 2; ++i) {
    dupw.varint(1);
    dupw.varint(1);
    dupw.varint(0);
    dupw.bytes(Bytes{});
  }
  DedupTable t;
  Reader rd(dupw.data());
  t.decode(rd);
  EXPECT_EQ(rd.error(), DecodeError::kBadValue);
  EXPECT_EQ(t.size(), 0u);

  // A count far beyond what the input can hold.
  Writer huge;
  huge.varint(1ull << 40);
  Reader rh(huge.data());
  t.decode(rh);
  EXPECT_FALSE(rh.ok());
}

}  // namespace
}  // namespace sg
