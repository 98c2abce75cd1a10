#include "storage-guests/raft/kv_node.h"

#include <utility>

#include "storage-guests/common/ids.h"

namespace sg::raft {

RaftKvNode::RaftKvNode(Env& env, KvNodeConfig config)
    : env_(env), cfg_(std::move(config)) {}

void RaftKvNode::start() {
  std::optional<RecoveredState> st = recover_records(env_.storage().recover());
  // Our own records, written by this code and made durable by a completed
  // sync: failing to read them back is a bug or a corrupt disk, and a Raft
  // node that forgot its vote or its log may break safety. Stop.
  RAFT_INVARIANT(st.has_value());

  Config rc;
  rc.id = env_.self();
  rc.voters = cfg_.servers;
  rc.election_ticks_min = cfg_.election_ticks_min;
  rc.election_ticks_max = cfg_.election_ticks_max;
  rc.heartbeat_ticks = cfg_.heartbeat_ticks;
  rc.pre_vote = cfg_.pre_vote;
  rc.check_quorum = cfg_.check_quorum || cfg_.lease_reads;
  rc.lease_reads = cfg_.lease_reads;
  rc.max_clock_drift_ppm = cfg_.max_clock_drift_ppm;
  rc.random = [this] { return env_.random(); };

  if (!st->snapshot.empty()) {
    RAFT_INVARIANT(store_.restore(st->snapshot.data));
    applied_ = st->snapshot.meta.index;
  }
  raft_.emplace(std::move(rc), st->hard_state, std::move(st->snapshot),
                std::move(st->entries));
  arm_tick();
  // Re-apply the committed prefix recovered from disk.
  pump();
}

void RaftKvNode::arm_tick() { tick_timer_ = env_.set_timer(cfg_.tick_interval); }

void RaftKvNode::on_timer(TimerId id) {
  if (id != tick_timer_) return;
  raft_->tick();
  arm_tick();
  pump();
}

void RaftKvNode::on_message(NodeId from, const Bytes& message) {
  uint8_t type = peek_type(message);
  if (type == 0) {
    ++rejected_;
    return;
  }
  if (type == kWireClientRequest) {
    std::optional<KvRequest> q = decode_request(message);
    if (!q) {
      ++rejected_;
      return;
    }
    handle_client(from, *q);
  } else if (type <= kMaxMsgType) {
    std::optional<Message> m = decode_message(message, from);
    if (!m || m->to != env_.self()) {
      ++rejected_;
      return;
    }
    raft_->step(*m);
  } else {
    ++rejected_;  // a response: servers never get those
    return;
  }
  pump();
}

void RaftKvNode::on_sync(uint64_t token) {
  if (!synced_token_ || token > *synced_token_) synced_token_ = token;
  drain_synced();
  pump();
}

// ---- the Ready loop ----------------------------------------------------------

void RaftKvNode::pump() {
  while (raft_->has_ready()) {
    InFlight f;
    f.rd = raft_->ready();
    persist(f.rd);
    if (f.rd.must_sync()) {
      f.wait_for = env_.storage().sync();
    } else if (!inflight_.empty()) {
      f.wait_for = inflight_.back().wait_for;
    }
    inflight_.push_back(std::move(f));
    raft_->advance(inflight_.back().rd);
    drain_synced();
  }
}

void RaftKvNode::persist(const Ready& rd) {
  Storage& disk = env_.storage();
  if (!rd.snapshot.empty()) {
    // An installed snapshot replaces the whole log. The rewrite must carry
    // the hard state too (our vote!), since it drops every earlier record.
    disk.rewrite({encode_snapshot(rd.snapshot), encode_hard_state(raft_->hard_state())});
  }
  if (!rd.entries.empty()) disk.append(encode_entries(rd.entries));
  if (rd.hard_state) disk.append(encode_hard_state(*rd.hard_state));
}

void RaftKvNode::drain_synced() {
  while (!inflight_.empty()) {
    const std::optional<uint64_t>& w = inflight_.front().wait_for;
    if (w && !(synced_token_ && *w <= *synced_token_)) return;
    Ready rd = std::move(inflight_.front().rd);
    inflight_.pop_front();
    finish(rd);
  }
  maybe_compact();
}

void RaftKvNode::finish(Ready& rd) {
  // Everything in rd is durable now: our promises may go out.
  for (const Message& m : rd.messages) env_.send(m.to, encode_message(m));

  if (!rd.snapshot.empty() && rd.snapshot.meta.index > applied_) {
    RAFT_INVARIANT(store_.restore(rd.snapshot.data));
    applied_ = rd.snapshot.meta.index;
    ++snapshots_installed_;
  }
  for (const Entry& e : rd.committed_entries) apply_entry(e);

  for (const ReadState& rs : rd.read_states) {
    auto it = reads_.find(rs.ctx);
    if (it != reads_.end()) it->second.index = rs.index;
  }

  if (rd.soft_state && rd.soft_state->role != Role::kLeader) {
    // Reads not yet confirmed will never be (the core dropped them with
    // its leadership): refuse them, which is definite -- a read has no
    // effect. Confirmed ones stay: their read index was valid when the
    // quorum confirmed it, so serving them later is still linearizable.
    for (auto it = reads_.begin(); it != reads_.end();) {
      if (it->second.index) {
        ++it;
        continue;
      }
      KvResponse p;
      p.id = it->second.q.id;
      p.status = KvStatus::kNotLeader;
      p.leader_hint = rd.soft_state->leader;
      reply(it->second.reply_to, p);
      it = reads_.erase(it);
    }
  }
  serve_reads();
}

void RaftKvNode::apply_entry(const Entry& e) {
  if (e.index <= applied_) return;  // covered by a restored snapshot
  RAFT_INVARIANT(e.index == applied_ + 1);
  applied_ = e.index;
  if (cfg_.on_apply) cfg_.on_apply(env_.self(), e);
  if (e.data.empty()) return;  // a leader's no-op
  Reader r(e.data);
  KvRequest q;
  read_request_body(r, q);
  // We encoded it ourselves before proposing; the log is checksummed and
  // replicated verbatim, so a decode failure is a bug. Replicas must apply
  // identical sequences, so skipping it on some nodes only is not an option.
  RAFT_INVARIANT(r.finish());
  std::optional<KvResponse> p = store_.apply(q, e.index);
  auto it = writes_.find(Rid{q.id.client, q.id.seq});
  if (it != writes_.end()) {
    if (p) reply(it->second.reply_to, *p);
    writes_.erase(it);
  }
}

void RaftKvNode::serve_reads() {
  for (auto it = reads_.begin(); it != reads_.end();) {
    if (it->second.index && *it->second.index <= applied_) {
      reply(it->second.reply_to, store_.read(it->second.q));
      it = reads_.erase(it);
    } else {
      ++it;
    }
  }
}

void RaftKvNode::maybe_compact() {
  // Only between Readys: then everything the core handed out has been
  // appended, and the rewrite below may replace it wholesale.
  if (!inflight_.empty()) return;
  Index snap = raft_->log().snapshot().meta.index;
  if (applied_ < snap + cfg_.snapshot_threshold || applied_ == 0) return;
  raft_->compact(applied_, store_.snapshot());
  const RaftLog& log = raft_->log();
  std::vector<Bytes> records{encode_snapshot(log.snapshot()),
                             encode_hard_state(raft_->hard_state())};
  if (log.last_index() > applied_)
    records.push_back(encode_entries(log.slice(applied_ + 1, log.last_index() + 1,
                                               log.last_index() - applied_)));
  // Crash before this sync completes: the old, longer log is still there,
  // which is equally correct. Nothing waits for this sync.
  env_.storage().rewrite(records);
  env_.storage().sync();
}

std::optional<Index> RaftKvNode::propose(const KvRequest& q) {
  Writer w(32 + q.key.size());
  write_request_body(w, q);
  std::optional<Index> idx = raft_->propose(w.take());
  pump();
  return idx;
}

// ---- clients -------------------------------------------------------------------

void RaftKvNode::reply(NodeId to, const KvResponse& p) { env_.send(to, encode_response(p)); }

void RaftKvNode::handle_client(NodeId from, const KvRequest& q) {
  if (raft_->role() != Role::kLeader) {
    KvResponse p;
    p.id = q.id;
    p.status = KvStatus::kNotLeader;
    p.leader_hint = raft_->leader();
    reply(from, p);
    return;
  }
  if (q.op == KvOp::kGet) {
    uint64_t ctx = ++next_read_ctx_;
    reads_[ctx] = WaitingRead{q, from, std::nullopt};
    raft_->read_index(ctx);
    return;
  }
  // Already applied here (a retry whose reply was lost): answer from the
  // session table. Applied implies committed, so this answer is final.
  DedupTable::Lookup l = store_.sessions().check(q.id);
  if (l.verdict == DedupTable::Verdict::kDuplicate) {
    std::optional<KvResponse> p = decode_response(*l.reply);
    RAFT_INVARIANT(p.has_value());
    reply(from, *p);
    return;
  }
  if (l.verdict == DedupTable::Verdict::kStale) return;  // the client moved on

  Rid rid{q.id.client, q.id.seq};
  auto it = writes_.find(rid);
  if (it != writes_.end() && it->second.term == raft_->term()) {
    // Proposed in this term already: it is in our log and will commit or
    // we will lose leadership. Just remember where to answer.
    it->second.reply_to = from;
    return;
  }
  // Not proposed, or proposed in an earlier term of ours and possibly
  // overwritten since: propose (again). If both copies commit, the session
  // table makes the second a no-op that returns the first's reply.
  Writer w(32 + q.key.size());
  write_request_body(w, q);
  std::optional<Index> idx = raft_->propose(w.take());
  RAFT_INVARIANT(idx.has_value());  // we are the leader
  writes_[rid] = WaitingWrite{from, raft_->term()};
}

}  // namespace sg::raft
