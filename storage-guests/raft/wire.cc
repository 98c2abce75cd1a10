#include "storage-guests/raft/wire.h"

#include <utility>

#include "storage-guests/common/ids.h"

namespace sg::raft {

namespace {

// Storage records carry their own small header: they never travel on the
// wire, but a version byte lets a later format be recognised on disk.
constexpr uint8_t kRecordVersion = 1;

void write_entry(Writer& w, const Entry& e) {
  w.varint(e.term);
  w.varint(e.index);
  w.bytes(e.data);
}

void read_entry(Reader& r, Entry& e) {
  e.term = r.varint();
  e.index = r.varint();
  r.bytes(e.data, kMaxValueBytes + kMaxKeyBytes * 2 + 64);
}

void write_entries(Writer& w, const std::vector<Entry>& es) {
  w.varint(es.size());
  for (const Entry& e : es) write_entry(w, e);
}

void read_entries(Reader& r, std::vector<Entry>& es, size_t max) {
  size_t n = r.count(max, 3);
  es.clear();
  es.reserve(n);
  for (size_t i = 0; i < n && r.ok(); ++i) {
    Entry e;
    read_entry(r, e);
    // Entries of one message or record are consecutive.
    if (i > 0 && e.index != es.back().index + 1) r.fail(DecodeError::kBadValue);
    es.push_back(std::move(e));
  }
}

void write_snapshot(Writer& w, const Snapshot& s) {
  w.varint(s.meta.index);
  w.varint(s.meta.term);
  write_node_ids(w, s.meta.voters);
  w.bytes(s.data);
}

void read_snapshot(Reader& r, Snapshot& s) {
  s.meta.index = r.varint();
  s.meta.term = r.varint();
  read_node_ids(r, s.meta.voters);
  r.bytes(s.data);
}

void write_opt_str(Writer& w, const std::optional<std::string>& s) {
  w.boolean(s.has_value());
  if (s) w.str(*s);
}

void read_opt_str(Reader& r, std::optional<std::string>& s, size_t max) {
  s.reset();
  if (r.boolean()) {
    std::string v;
    r.str(v, max);
    s = std::move(v);
  }
}

}  // namespace

Bytes encode_message(const Message& m) {
  Writer w(64);
  write_envelope(w, Protocol::kRaft, static_cast<uint8_t>(m.type));
  w.varint(m.from);
  w.varint(m.to);
  w.varint(m.term);
  w.varint(m.log_term);
  w.varint(m.index);
  w.varint(m.commit);
  w.boolean(m.reject);
  w.varint(m.conflict_term);
  w.varint(m.reject_hint);
  w.varint(m.round);
  write_entries(w, m.entries);
  w.boolean(!m.snapshot.empty());
  if (!m.snapshot.empty()) write_snapshot(w, m.snapshot);
  return w.take();
}

std::optional<Message> decode_message(const Bytes& b, NodeId from) {
  Reader r(b);
  uint8_t type = read_envelope(r, Protocol::kRaft, kMaxMsgType);
  if (type == 0) return std::nullopt;
  Message m;
  m.type = static_cast<MsgType>(type);
  m.from = static_cast<NodeId>(r.varint_max(kNoNode));
  m.to = static_cast<NodeId>(r.varint_max(kNoNode));
  m.term = r.varint();
  m.log_term = r.varint();
  m.index = r.varint();
  m.commit = r.varint();
  m.reject = r.boolean();
  m.conflict_term = r.varint();
  m.reject_hint = r.varint();
  m.round = r.varint();
  read_entries(r, m.entries, kMaxEntriesPerMessage);
  if (r.boolean()) {
    read_snapshot(r, m.snapshot);
    if (r.ok() && m.snapshot.empty()) r.fail(DecodeError::kBadValue);
  }
  if (!r.finish()) return std::nullopt;
  if (m.from != from) return std::nullopt;
  // Entries must follow prevLogIndex; a message violating it would trip the
  // core's invariants, so it is malformed, not merely stale.
  if (!m.entries.empty() && m.entries.front().index != m.index + 1) return std::nullopt;
  if ((m.type == MsgType::kSnap) == m.snapshot.empty()) return std::nullopt;
  return m;
}

// ---- client protocol ---------------------------------------------------------

const char* to_string(KvOp op) {
  switch (op) {
    case KvOp::kGet: return "get";
    case KvOp::kPut: return "put";
    case KvOp::kDel: return "del";
    case KvOp::kCas: return "cas";
  }
  return "?";
}

void write_request_body(Writer& w, const KvRequest& q) {
  write_request_id(w, q.id);
  w.u8(static_cast<uint8_t>(q.op));
  w.str(q.key);
  write_opt_str(w, q.value);
  write_opt_str(w, q.expected);
}

void read_request_body(Reader& r, KvRequest& q) {
  q.id = read_request_id(r);
  uint8_t op = r.u8();
  if (op == 0 || op > kMaxKvOp) r.fail(DecodeError::kBadValue);
  q.op = static_cast<KvOp>(op);
  r.str(q.key, kMaxKeyBytes);
  read_opt_str(r, q.value, kMaxValueBytes);
  read_opt_str(r, q.expected, kMaxValueBytes);
  if (!r.ok()) return;
  // The fields each operation needs, and no others.
  bool want_value = q.op == KvOp::kPut || q.op == KvOp::kCas;
  if (q.value.has_value() != want_value) r.fail(DecodeError::kBadValue);
  if (q.op != KvOp::kCas && q.expected.has_value()) r.fail(DecodeError::kBadValue);
}

Bytes encode_request(const KvRequest& q) {
  Writer w(32 + q.key.size());
  write_envelope(w, Protocol::kRaft, kWireClientRequest);
  write_request_body(w, q);
  return w.take();
}

std::optional<KvRequest> decode_request(const Bytes& b) {
  Reader r(b);
  if (read_envelope(r, Protocol::kRaft, kWireMaxType) != kWireClientRequest) return std::nullopt;
  KvRequest q;
  read_request_body(r, q);
  if (!r.finish()) return std::nullopt;
  return q;
}

Bytes encode_response(const KvResponse& p) {
  Writer w(32);
  write_envelope(w, Protocol::kRaft, kWireClientResponse);
  write_request_id(w, p.id);
  w.u8(static_cast<uint8_t>(p.status));
  write_opt_str(w, p.value);
  w.varint(p.leader_hint);
  return w.take();
}

std::optional<KvResponse> decode_response(const Bytes& b) {
  Reader r(b);
  if (read_envelope(r, Protocol::kRaft, kWireMaxType) != kWireClientResponse) return std::nullopt;
  KvResponse p;
  p.id = read_request_id(r);
  uint8_t st = r.u8();
  if (st == 0 || st > kMaxKvStatus) r.fail(DecodeError::kBadValue);
  p.status = static_cast<KvStatus>(st);
  read_opt_str(r, p.value, kMaxValueBytes);
  p.leader_hint = static_cast<NodeId>(r.varint_max(kNoNode));
  if (!r.finish()) return std::nullopt;
  return p;
}

uint8_t peek_type(const Bytes& b) {
  Reader r(b);
  return read_envelope(r, Protocol::kRaft, kWireMaxType);
}

// ---- storage records -----------------------------------------------------------

Bytes encode_hard_state(const HardState& hs) {
  Writer w(16);
  w.u8(kRecordVersion);
  w.u8(static_cast<uint8_t>(RecordKind::kHardState));
  w.varint(hs.term);
  w.varint(hs.vote);
  w.varint(hs.commit);
  return w.take();
}

Bytes encode_entries(const std::vector<Entry>& entries) {
  Writer w(64);
  w.u8(kRecordVersion);
  w.u8(static_cast<uint8_t>(RecordKind::kEntries));
  write_entries(w, entries);
  return w.take();
}

Bytes encode_snapshot(const Snapshot& s) {
  Writer w(64 + s.data.size());
  w.u8(kRecordVersion);
  w.u8(static_cast<uint8_t>(RecordKind::kSnapshot));
  write_snapshot(w, s);
  return w.take();
}

std::optional<RecoveredState> recover_records(const std::vector<Bytes>& records) {
  RecoveredState st;
  for (const Bytes& rec : records) {
    Reader r(rec);
    if (r.u8() != kRecordVersion) return std::nullopt;
    uint8_t kind = r.u8();
    switch (static_cast<RecordKind>(kind)) {
      case RecordKind::kHardState:
        st.hard_state.term = r.varint();
        st.hard_state.vote = static_cast<NodeId>(r.varint_max(kNoNode));
        st.hard_state.commit = r.varint();
        break;
      case RecordKind::kEntries: {
        std::vector<Entry> es;
        read_entries(r, es, ~size_t(0));
        if (!r.ok() || es.empty()) break;
        Index snap = st.snapshot.meta.index;
        Index first = snap + 1;
        Index last = snap + st.entries.size();
        for (Entry& e : es) {
          if (e.index <= snap) continue;  // already inside the snapshot
          if (e.index > last + 1) return std::nullopt;  // a gap: corrupt
          last = e.index;
          st.entries.resize(e.index - first);           // truncate, then append
          st.entries.push_back(std::move(e));
        }
        break;
      }
      case RecordKind::kSnapshot: {
        Snapshot s;
        read_snapshot(r, s);
        if (!r.ok()) break;
        // Keep the entries that follow the snapshot if they agree with it
        // (they do whenever both came from one log); otherwise drop them.
        bool agree = false;
        for (const Entry& e : st.entries)
          if (e.index == s.meta.index && e.term == s.meta.term) agree = true;
        std::vector<Entry> keep;
        if (agree)
          for (Entry& e : st.entries)
            if (e.index > s.meta.index) keep.push_back(std::move(e));
        st.entries = std::move(keep);
        st.snapshot = std::move(s);
        break;
      }
      default:
        return std::nullopt;
    }
    if (!r.finish()) return std::nullopt;
  }
  return st;
}

}  // namespace sg::raft
