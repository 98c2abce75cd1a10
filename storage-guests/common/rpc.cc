#include "storage-guests/common/rpc.h"

#include <utility>

namespace sg {

void write_request_id(Writer& w, const RequestId& id) {
  w.varint(id.client);
  w.varint(id.seq);
}

RequestId read_request_id(Reader& r) {
  RequestId id;
  id.client = r.varint();
  id.seq = r.varint();
  if (r.ok() && (id.client == 0 || id.seq == 0)) r.fail(DecodeError::kBadValue);
  if (!r.ok()) return RequestId{};
  return id;
}

DedupTable::Lookup DedupTable::check(const RequestId& id) const {
  auto it = entries_.find(id.client);
  if (it == entries_.end()) {
    return Lookup{id.seq <= 1 ? Verdict::kNew : Verdict::kExpired, nullptr};
  }
  const Entry& e = it->second;
  if (id.seq > e.seq) return Lookup{Verdict::kNew, nullptr};
  if (id.seq == e.seq) return Lookup{Verdict::kDuplicate, &e.reply};
  return Lookup{Verdict::kStale, nullptr};
}

void DedupTable::record(const RequestId& id, Bytes reply, uint64_t stamp) {
  Entry& e = entries_[id.client];
  // A replayed log may record the same request again; never go backwards.
  if (id.seq < e.seq) return;
  e.seq = id.seq;
  e.stamp = stamp;
  e.reply = std::move(reply);
}

size_t DedupTable::expire_before(uint64_t stamp) {
  size_t dropped = 0;
  for (auto it = entries_.begin(); it != entries_.end();) {
    if (it->second.stamp < stamp) {
      it = entries_.erase(it);
      ++dropped;
    } else {
      ++it;
    }
  }
  return dropped;
}

void DedupTable::encode(Writer& w) const {
  w.varint(entries_.size());
  for (const auto& [client, e] : entries_) {
    w.varint(client);
    w.varint(e.seq);
    w.varint(e.stamp);
    w.bytes(e.reply);
  }
}

void DedupTable::decode(Reader& r, size_t max_sessions) {
  entries_.clear();
  // client, seq, stamp and an empty reply take at least 4 bytes.
  const size_t n = r.count(max_sessions, 4);
  ClientId prev = 0;
  for (size_t i = 0; i < n && r.ok(); ++i) {
    const ClientId client = r.varint();
    Entry e;
    e.seq = r.varint();
    e.stamp = r.varint();
    r.bytes(e.reply);
    if (!r.ok()) break;
    // Strictly ascending: the one encoding encode() produces, and no
    // duplicate sessions.
    if (client <= prev || e.seq == 0) {
      r.fail(DecodeError::kBadValue);
      break;
    }
    prev = client;
    entries_.emplace_hint(entries_.end(), client, std::move(e));
  }
  if (!r.ok()) entries_.clear();
}

}  // namespace sg
