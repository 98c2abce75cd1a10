// The key-value state machine (client sessions, thesis §6.3) and Raft's
// encodings: round trips, and rejection of every malformed input.
#include <gtest/gtest.h>

#include "storage-guests/raft/kv.h"
#include "storage-guests/raft/wire.h"

namespace {

using namespace sg::raft;
using sg::Bytes;

KvRequest req(uint64_t client, uint64_t seq, KvOp op, std::string key,
              std::optional<std::string> value = std::nullopt,
              std::optional<std::string> expected = std::nullopt) {
  KvRequest q;
  q.id = sg::RequestId{client, seq};
  q.op = op;
  q.key = std::move(key);
  q.value = std::move(value);
  q.expected = std::move(expected);
  return q;
}

TEST(RaftKv, PutGetDelCas) {
  KvStore s;
  EXPECT_EQ(s.apply(req(1, 1, KvOp::kPut, "a", "1"), 1)->status, KvStatus::kOk);
  EXPECT_EQ(s.read(req(1, 2, KvOp::kGet, "a")).value, "1");
  EXPECT_EQ(s.apply(req(1, 3, KvOp::kCas, "a", "2", "1"), 2)->status, KvStatus::kOk);
  EXPECT_EQ(s.apply(req(1, 4, KvOp::kCas, "a", "3", "1"), 3)->status, KvStatus::kFail);
  EXPECT_EQ(s.read(req(1, 5, KvOp::kGet, "a")).value, "2");
  // cas with no expected value: create-if-absent.
  EXPECT_EQ(s.apply(req(1, 6, KvOp::kCas, "b", "x"), 4)->status, KvStatus::kOk);
  EXPECT_EQ(s.apply(req(1, 7, KvOp::kCas, "b", "y"), 5)->status, KvStatus::kFail);
  EXPECT_EQ(s.apply(req(1, 8, KvOp::kDel, "a"), 6)->status, KvStatus::kOk);
  EXPECT_FALSE(s.read(req(1, 9, KvOp::kGet, "a")).value.has_value());
}

// Thesis §6.3: a retried write that was already applied returns the first
// reply and is not executed again, on every replica and after a snapshot.
TEST(RaftKv, Thesis6_3_ExactlyOnceSessions) {
  KvStore s;
  ASSERT_EQ(s.apply(req(7, 1, KvOp::kCas, "k", "v1"), 1)->status, KvStatus::kOk);
  s.apply(req(8, 1, KvOp::kPut, "k", "other"), 2);
  // Client 7's retry of seq 1 (committed twice): the cached success, even
  // though running it again now would fail.
  auto again = s.apply(req(7, 1, KvOp::kCas, "k", "v1"), 3);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->status, KvStatus::kOk);
  EXPECT_EQ(s.data().at("k"), "other");
  // An older request of a client that moved on: nobody to answer.
  s.apply(req(7, 2, KvOp::kPut, "k", "seq2"), 4);
  EXPECT_FALSE(s.apply(req(7, 1, KvOp::kCas, "k", "v1"), 5).has_value());
  EXPECT_EQ(s.data().at("k"), "seq2");
  // The first request of a client whose earlier requests were reads.
  EXPECT_EQ(s.apply(req(9, 5, KvOp::kPut, "z", "1"), 6)->status, KvStatus::kOk);

  KvStore copy;
  ASSERT_TRUE(copy.restore(s.snapshot()));
  EXPECT_EQ(copy.data(), s.data());
  EXPECT_EQ(copy.snapshot(), s.snapshot());
  auto dup = copy.apply(req(7, 2, KvOp::kPut, "k", "seq2"), 7);
  ASSERT_TRUE(dup);
  EXPECT_EQ(dup->status, KvStatus::kOk);
}

TEST(RaftKv, RestoreRejectsGarbage) {
  KvStore s;
  s.apply(req(1, 1, KvOp::kPut, "a", "1"), 1);
  Bytes snap = s.snapshot();
  for (size_t n = 0; n < snap.size(); ++n) {
    KvStore t;
    EXPECT_FALSE(t.restore(Bytes(snap.begin(), snap.begin() + n))) << "prefix " << n;
  }
  Bytes longer = snap;
  longer.push_back(0);
  KvStore t;
  EXPECT_FALSE(t.restore(longer));
}

Message full_message() {
  Message m;
  m.type = MsgType::kApp;
  m.from = 1;
  m.to = 2;
  m.term = 7;
  m.log_term = 6;
  m.index = 41;
  m.commit = 40;
  m.reject = true;
  m.conflict_term = 5;
  m.reject_hint = 30;
  m.round = 99;
  m.entries = {Entry{7, 42, Bytes{1, 2, 3}}, Entry{7, 43, {}}};
  return m;
}

TEST(RaftWire, MessageRoundTrip) {
  Message m = full_message();
  auto d = decode_message(encode_message(m), 1);
  ASSERT_TRUE(d);
  EXPECT_EQ(*d, m);

  Message s;
  s.type = MsgType::kSnap;
  s.from = 3;
  s.to = 1;
  s.term = 2;
  s.snapshot.meta = SnapshotMeta{10, 2, {1, 2, 3}};
  s.snapshot.data = Bytes(1000, 0xab);
  auto ds = decode_message(encode_message(s), 3);
  ASSERT_TRUE(ds);
  EXPECT_EQ(*ds, s);
}

TEST(RaftWire, MessageRejectsMalformed) {
  Bytes b = encode_message(full_message());
  for (size_t n = 0; n < b.size(); ++n)
    EXPECT_FALSE(decode_message(Bytes(b.begin(), b.begin() + n), 1)) << "prefix " << n;
  Bytes trailing = b;
  trailing.push_back(0);
  EXPECT_FALSE(decode_message(trailing, 1));
  EXPECT_FALSE(decode_message(b, 2)) << "a node cannot speak for another";
  Message gap = full_message();
  gap.entries[0].index = 50;  // does not follow prevLogIndex
  gap.entries[1].index = 51;
  EXPECT_FALSE(decode_message(encode_message(gap), 1));
  Message snapless;
  snapless.type = MsgType::kSnap;
  snapless.from = 1;
  EXPECT_FALSE(decode_message(encode_message(snapless), 1));
  // Flip every byte in turn: never a crash, never a sanitizer report.
  for (size_t i = 0; i < b.size(); ++i) {
    Bytes c = b;
    c[i] ^= 0x5a;
    (void)decode_message(c, 1);
  }
}

TEST(RaftWire, ClientRoundTripAndValidation) {
  KvRequest q = req(5, 9, KvOp::kCas, "key", "new", "old");
  auto d = decode_request(encode_request(q));
  ASSERT_TRUE(d);
  EXPECT_EQ(*d, q);
  EXPECT_EQ(peek_type(encode_request(q)), kWireClientRequest);

  KvResponse p;
  p.id = q.id;
  p.status = KvStatus::kNotLeader;
  p.leader_hint = 3;
  auto dp = decode_response(encode_response(p));
  ASSERT_TRUE(dp);
  EXPECT_EQ(*dp, p);

  // Fields an operation does not take are malformed, as are missing ones.
  EXPECT_FALSE(decode_request(encode_request(req(5, 9, KvOp::kPut, "k"))));
  EXPECT_FALSE(decode_request(encode_request(req(5, 9, KvOp::kGet, "k", "v"))));
  EXPECT_FALSE(decode_request(encode_request(req(5, 9, KvOp::kPut, "k", "v", "e"))));
  EXPECT_FALSE(decode_request(encode_request(req(0, 9, KvOp::kGet, "k")))) << "client 0";
  EXPECT_FALSE(decode_request(encode_response(p))) << "a response is not a request";
  Bytes b = encode_request(q);
  for (size_t n = 0; n < b.size(); ++n)
    EXPECT_FALSE(decode_request(Bytes(b.begin(), b.begin() + n))) << "prefix " << n;
}

TEST(RaftWire, RecoverRecords) {
  std::vector<Bytes> recs;
  recs.push_back(encode_hard_state(HardState{1, 2, 0}));
  recs.push_back(encode_entries({Entry{1, 1, {}}, Entry{1, 2, {}}, Entry{1, 3, {}}}));
  // A new leader overwrote index 3 onwards.
  recs.push_back(encode_entries({Entry{2, 3, {}}, Entry{2, 4, {}}}));
  recs.push_back(encode_hard_state(HardState{2, 3, 2}));
  auto st = recover_records(recs);
  ASSERT_TRUE(st);
  EXPECT_EQ(st->hard_state, (HardState{2, 3, 2}));
  ASSERT_EQ(st->entries.size(), 4u);
  EXPECT_EQ(st->entries[2].term, 2u);

  // A compaction rewrite: snapshot, hard state, the entries after it.
  Snapshot s;
  s.meta = SnapshotMeta{3, 2, {1, 2, 3}};
  s.data = Bytes{9};
  std::vector<Bytes> rewritten{encode_snapshot(s), encode_hard_state(HardState{2, 3, 3}),
                               encode_entries({Entry{2, 4, {}}})};
  rewritten.push_back(encode_entries({Entry{2, 5, {}}}));
  st = recover_records(rewritten);
  ASSERT_TRUE(st);
  EXPECT_EQ(st->snapshot, s);
  ASSERT_EQ(st->entries.size(), 2u);
  EXPECT_EQ(st->entries[0].index, 4u);

  // A gap is corruption.
  EXPECT_FALSE(recover_records({encode_entries({Entry{1, 5, {}}})}));
  // So is a torn record.
  Bytes torn = encode_hard_state(HardState{1, 2, 0});
  torn.pop_back();
  EXPECT_FALSE(recover_records({torn}));
}

}  // namespace
