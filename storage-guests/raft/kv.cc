#include "storage-guests/raft/kv.h"

#include <utility>

namespace sg::raft {

namespace {
constexpr uint8_t kSnapshotVersion = 1;
constexpr size_t kMaxKeys = 1u << 24;
}  // namespace

KvResponse KvStore::execute(const KvRequest& q) {
  KvResponse p;
  p.id = q.id;
  p.status = KvStatus::kOk;
  auto it = data_.find(q.key);
  switch (q.op) {
    case KvOp::kGet:
      if (it != data_.end()) p.value = it->second;
      break;
    case KvOp::kPut:
      data_[q.key] = *q.value;
      break;
    case KvOp::kDel:
      if (it != data_.end()) data_.erase(it);
      break;
    case KvOp::kCas: {
      std::optional<std::string> cur;
      if (it != data_.end()) cur = it->second;
      if (cur == q.expected) {
        data_[q.key] = *q.value;
      } else {
        // A mismatch is a definite "did not happen": the client may record
        // it as a failure. Reporting the current value would let it retry
        // smarter, but the history model has no place for it.
        p.status = KvStatus::kFail;
      }
      break;
    }
  }
  return p;
}

std::optional<KvResponse> KvStore::apply(const KvRequest& q, Index index) {
  DedupTable::Lookup l = sessions_.check(q.id);
  switch (l.verdict) {
    case DedupTable::Verdict::kDuplicate: {
      // Already ran (an earlier copy of this request was committed too):
      // answer exactly as the first time.
      std::optional<KvResponse> cached = decode_response(*l.reply);
      RAFT_INVARIANT(cached.has_value());
      return cached;
    }
    case DedupTable::Verdict::kStale:
      return std::nullopt;
    case DedupTable::Verdict::kNew:
    case DedupTable::Verdict::kExpired:
      // kExpired means "no session, yet seq > 1". We never expire sessions,
      // so this is a client whose earlier requests were all reads (served
      // by ReadIndex, outside the log): a new session, not a lost one.
      break;
  }
  KvResponse p = execute(q);
  sessions_.record(q.id, encode_response(p), index);
  return p;
}

KvResponse KvStore::read(const KvRequest& q) const {
  KvResponse p;
  p.id = q.id;
  p.status = KvStatus::kOk;
  auto it = data_.find(q.key);
  if (it != data_.end()) p.value = it->second;
  return p;
}

Bytes KvStore::snapshot() const {
  Writer w(64);
  w.u8(kSnapshotVersion);
  w.varint(data_.size());
  for (const auto& [k, v] : data_) {
    w.str(k);
    w.str(v);
  }
  sessions_.encode(w);
  return w.take();
}

bool KvStore::restore(const Bytes& bytes) {
  Reader r(bytes);
  if (r.u8() != kSnapshotVersion) return false;
  std::map<std::string, std::string> data;
  size_t n = r.count(kMaxKeys, 2);
  for (size_t i = 0; i < n && r.ok(); ++i) {
    std::string k, v;
    r.str(k, kMaxKeyBytes);
    r.str(v, kMaxValueBytes);
    data.emplace(std::move(k), std::move(v));
  }
  DedupTable sessions;
  sessions.decode(r);
  if (!r.finish()) return false;
  data_ = std::move(data);
  sessions_ = std::move(sessions);
  return true;
}

}  // namespace sg::raft
