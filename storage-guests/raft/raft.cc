#include "storage-guests/raft/raft.h"

#include <algorithm>
#include <utility>

namespace sg::raft {

const char* to_string(MsgType t) {
  switch (t) {
    case MsgType::kApp: return "App";
    case MsgType::kAppResp: return "AppResp";
    case MsgType::kVote: return "Vote";
    case MsgType::kVoteResp: return "VoteResp";
    case MsgType::kPreVote: return "PreVote";
    case MsgType::kPreVoteResp: return "PreVoteResp";
    case MsgType::kHeartbeat: return "Heartbeat";
    case MsgType::kHeartbeatResp: return "HeartbeatResp";
    case MsgType::kSnap: return "Snap";
  }
  return "?";
}

const char* to_string(Role r) {
  switch (r) {
    case Role::kFollower: return "follower";
    case Role::kPreCandidate: return "pre-candidate";
    case Role::kCandidate: return "candidate";
    case Role::kLeader: return "leader";
  }
  return "?";
}

int Config::lease_ticks() const {
  // The leader's lease must end before any follower's vote refusal does,
  // measured on clocks whose rates differ by up to (1+rho)/(1-rho):
  // lease <= min * (1-rho)/(1+rho). Two ticks come off for tick granularity
  // (a follower's count starts up to one tick late, the leader's send tick
  // is rounded down).
  uint64_t rho = max_clock_drift_ppm;
  if (rho >= 1'000'000) return 0;
  uint64_t t = uint64_t(election_ticks_min) * (1'000'000 - rho) / (1'000'000 + rho);
  return t > 2 ? int(t - 2) : 0;
}

bool Progress::paused(size_t max_inflight) const {
  switch (state) {
    case State::kProbe: return probe_sent;
    case State::kReplicate: return inflight.size() >= max_inflight;
    case State::kSnapshot: return true;
  }
  return true;
}

Raft::Raft(Config config, HardState hs, Snapshot snapshot, std::vector<Entry> entries)
    : cfg_(std::move(config)) {
  RAFT_INVARIANT(cfg_.random != nullptr);
  RAFT_INVARIANT(cfg_.election_ticks_min > 0 &&
                 cfg_.election_ticks_max >= cfg_.election_ticks_min);
  RAFT_INVARIANT(cfg_.heartbeat_ticks > 0);
  RAFT_INVARIANT(!cfg_.lease_reads || cfg_.check_quorum);
  std::sort(cfg_.voters.begin(), cfg_.voters.end());
  log_.restore_from_storage(std::move(snapshot), std::move(entries), hs.commit);
  term_ = hs.term;
  vote_ = hs.vote;
  prev_hard_ = hard_state();
  boot_guard_ = cfg_.check_quorum;
  become_follower(term_, kNoNode);
  prev_soft_ = SoftState{lead_, role_};
}

bool Raft::is_voter(NodeId id) const {
  return std::binary_search(cfg_.voters.begin(), cfg_.voters.end(), id);
}

// ---- role transitions -------------------------------------------------------

void Raft::reset(Term term) {
  if (term_ != term) {
    term_ = term;
    vote_ = kNoNode;
  }
  lead_ = kNoNode;
  election_elapsed_ = 0;
  heartbeat_elapsed_ = 0;
  reset_randomized_timeout();
  votes_.clear();
  prs_.clear();
  for (NodeId id : cfg_.voters) {
    Progress& pr = prs_[id];
    pr.next = log_.last_index() + 1;
    if (id == cfg_.id) pr.match = log_.last_index();
  }
  pending_reads_.clear();
  reads_before_commit_.clear();
  committed_in_term_ = false;
  round_sent_tick_.clear();
  lease_held_ = false;
}

void Raft::reset_randomized_timeout() {
  uint64_t span = uint64_t(cfg_.election_ticks_max - cfg_.election_ticks_min) + 1;
  // Modulo bias is at most span / 2^64: irrelevant here.
  randomized_timeout_ = cfg_.election_ticks_min + int(cfg_.random() % span);
}

void Raft::become_follower(Term term, NodeId leader) {
  reset(term);
  lead_ = leader;
  role_ = Role::kFollower;
}

void Raft::become_pre_candidate() {
  RAFT_INVARIANT(role_ != Role::kLeader);
  // Unlike becoming a candidate, this changes neither term nor vote: a
  // pre-election that fails must leave no trace (thesis §9.6).
  votes_.clear();
  lead_ = kNoNode;
  role_ = Role::kPreCandidate;
}

void Raft::become_candidate() {
  RAFT_INVARIANT(role_ != Role::kLeader);
  reset(term_ + 1);  // §5.2: increment currentTerm
  vote_ = cfg_.id;   // vote for self
  role_ = Role::kCandidate;
}

void Raft::become_leader() {
  RAFT_INVARIANT(role_ == Role::kCandidate);
  reset(term_);
  lead_ = cfg_.id;
  role_ = Role::kLeader;
  // CheckQuorum grace: the votes just received prove a quorum was alive,
  // so the first check, an election timeout from now, must not fail for
  // want of answers to messages we have not even sent yet.
  for (auto& [id, pr] : prs_) pr.recent_active = true;
  // §8 and §5.4.2: a leader cannot know which earlier-term entries are
  // committed until it commits one of its own term, so it appends a no-op
  // at once instead of waiting for a client.
  append_entry({});
}

void Raft::campaign() {
  if (role_ == Role::kLeader || !is_voter(cfg_.id)) return;
  start_election(cfg_.pre_vote);
}

void Raft::start_election(bool pre) {
  if (pre) {
    become_pre_candidate();
  } else {
    become_candidate();
  }
  Term vote_term = pre ? term_ + 1 : term_;
  votes_[cfg_.id] = true;
  if (votes_.size() >= quorum()) {  // single-node cluster
    if (pre) {
      start_election(false);
    } else {
      become_leader();
    }
    return;
  }
  for (NodeId id : cfg_.voters) {
    if (id == cfg_.id) continue;
    Message m;
    m.type = pre ? MsgType::kPreVote : MsgType::kVote;
    m.to = id;
    m.term = vote_term;
    m.index = log_.last_index();
    m.log_term = log_.last_term();
    send(std::move(m));
  }
}

// ---- ticks ------------------------------------------------------------------

void Raft::tick() {
  if (role_ == Role::kLeader) {
    tick_heartbeat();
  } else {
    tick_election();
  }
}

void Raft::tick_election() {
  ++election_elapsed_;
  if (boot_guard_ && election_elapsed_ >= cfg_.election_ticks_min) boot_guard_ = false;
  if (election_elapsed_ >= randomized_timeout_ && is_voter(cfg_.id)) {
    election_elapsed_ = 0;
    start_election(cfg_.pre_vote);
  }
}

void Raft::tick_heartbeat() {
  ++ticks_;
  ++heartbeat_elapsed_;
  ++election_elapsed_;
  if (election_elapsed_ >= cfg_.election_ticks_min) {
    election_elapsed_ = 0;
    if (cfg_.check_quorum) {
      size_t active = 0;
      for (auto& [id, pr] : prs_) {
        if (pr.recent_active || id == cfg_.id) ++active;
        pr.recent_active = false;
      }
      if (active < quorum()) {
        // Thesis §6.2: a partitioned leader steps down so its clients look
        // elsewhere instead of waiting on a leader that cannot commit.
        become_follower(term_, kNoNode);
        return;
      }
    }
  }
  // A snapshot message may have been lost; after an election timeout
  // without an answer, go back to probing, which sends it again.
  for (auto& [id, pr] : prs_) {
    if (pr.state == ProgState::kSnapshot && ++pr.snapshot_ticks >= cfg_.election_ticks_min) {
      pr.state = ProgState::kProbe;
      pr.probe_sent = false;
      pr.next = pr.match + 1;
    }
  }
  if (heartbeat_elapsed_ >= cfg_.heartbeat_ticks) {
    heartbeat_elapsed_ = 0;
    bcast_heartbeat();
  }
}

// ---- messages in --------------------------------------------------------------

bool Raft::in_lease() const {
  return (lead_ != kNoNode || boot_guard_) &&
         election_elapsed_ < cfg_.election_ticks_min;
}

void Raft::step(const Message& m) {
  if (m.from == cfg_.id || !is_voter(m.from)) return;  // not a member

  // Figure 2, "Rules for Servers / All Servers": a higher term makes us a
  // follower of that term -- with the exceptions PreVote and stickiness need.
  if (m.term > term_) {
    bool vote_req = m.type == MsgType::kVote || m.type == MsgType::kPreVote;
    if (vote_req) {
      // Thesis §4.2.3 / §6.2: a node that has heard from a live leader
      // within the minimum election timeout neither grants a vote nor
      // bumps its term, so a removed or partitioned server cannot disrupt
      // the cluster. PreVote always gets this treatment (thesis §9.6); full
      // votes only with CheckQuorum, as in etcd, because without it a
      // candidate that legitimately won could be stalled by stale followers.
      if (in_lease() && (m.type == MsgType::kPreVote || cfg_.check_quorum)) return;
    }
    if (m.type == MsgType::kPreVote) {
      // Never change our term for a pre-vote: it is only a question.
    } else if (m.type == MsgType::kPreVoteResp && !m.reject) {
      // A grant carries the term we will campaign for; we bump it ourselves
      // when a quorum granted.
    } else if (m.type == MsgType::kApp || m.type == MsgType::kHeartbeat ||
               m.type == MsgType::kSnap) {
      become_follower(m.term, m.from);
    } else {
      become_follower(m.term, kNoNode);
    }
  } else if (m.term < term_) {
    if ((cfg_.check_quorum || cfg_.pre_vote) &&
        (m.type == MsgType::kHeartbeat || m.type == MsgType::kApp)) {
      // A stale leader: tell it our term so it steps down. Needed because
      // with PreVote / CheckQuorum we may have a higher term that the
      // stale leader would otherwise never learn (we would not campaign
      // against it), leaving it to believe it still leads.
      Message r;
      r.type = MsgType::kAppResp;
      r.to = m.from;
      send(std::move(r));
    } else if (m.type == MsgType::kPreVote) {
      // Let a lagging pre-candidate learn our term, so it can catch up
      // instead of pre-campaigning forever at a term nobody accepts.
      Message r;
      r.type = MsgType::kPreVoteResp;
      r.to = m.from;
      r.reject = true;
      send(std::move(r));
    }
    // Otherwise drop it: Figure 2 rejects every stale-term request, and a
    // stale response says nothing about the current term.
    return;
  }

  switch (m.type) {
    case MsgType::kVote:
    case MsgType::kPreVote:
      handle_vote_request(m);
      return;
    default:
      break;
  }
  switch (role_) {
    case Role::kLeader: step_leader(m); break;
    case Role::kCandidate:
    case Role::kPreCandidate: step_candidate(m); break;
    case Role::kFollower: step_follower(m); break;
  }
}

void Raft::handle_vote_request(const Message& m) {
  // §5.2: at most one vote per term, first come first served (a repeated
  // request from the one we voted for is granted again: the reply may have
  // been lost). A pre-vote for a future term commits us to nothing.
  bool can_vote = vote_ == m.from || (vote_ == kNoNode && lead_ == kNoNode) ||
                  (m.type == MsgType::kPreVote && m.term > term_);
  Message r;
  r.type = m.type == MsgType::kVote ? MsgType::kVoteResp : MsgType::kPreVoteResp;
  r.to = m.from;
  // §5.4.1, the election restriction: only for an at-least-as-up-to-date log.
  if (can_vote && log_.is_up_to_date(m.index, m.log_term)) {
    // A pre-vote grant names the term asked about, so the pre-candidate
    // counts it; our own term stays.
    r.term = m.term;
    if (m.type == MsgType::kVote) {
      // Granting a vote resets the election timer (Figure 2, Followers):
      // the candidate deserves a chance to win before we compete.
      election_elapsed_ = 0;
      vote_ = m.from;
    }
  } else {
    r.reject = true;
  }
  send(std::move(r));
}

void Raft::step_follower(const Message& m) {
  switch (m.type) {
    case MsgType::kApp:
      election_elapsed_ = 0;
      lead_ = m.from;
      handle_append(m);
      break;
    case MsgType::kHeartbeat:
      election_elapsed_ = 0;
      lead_ = m.from;
      handle_heartbeat(m);
      break;
    case MsgType::kSnap:
      election_elapsed_ = 0;
      lead_ = m.from;
      handle_snapshot(m);
      break;
    default:
      break;  // stray responses from an earlier role
  }
}

void Raft::step_candidate(const Message& m) {
  MsgType my_resp = role_ == Role::kPreCandidate ? MsgType::kPreVoteResp
                                                 : MsgType::kVoteResp;
  switch (m.type) {
    case MsgType::kApp:
    case MsgType::kHeartbeat:
    case MsgType::kSnap:
      // §5.2: a leader of our term (or higher, handled in step) exists.
      become_follower(m.term, m.from);
      step_follower(m);
      break;
    case MsgType::kVoteResp:
    case MsgType::kPreVoteResp: {
      if (m.type != my_resp) break;
      votes_.emplace(m.from, !m.reject);  // first answer counts
      size_t granted = 0, rejected = 0;
      for (auto& [id, g] : votes_) (g ? granted : rejected)++;
      if (granted >= quorum()) {
        if (role_ == Role::kPreCandidate) {
          start_election(false);
        } else {
          become_leader();
          bcast_append();
        }
      } else if (rejected >= quorum()) {
        // Lost: wait out a fresh timeout as a follower.
        become_follower(term_, kNoNode);
      }
      break;
    }
    default:
      break;
  }
}

void Raft::handle_append(const Message& m) {
  Message r;
  r.type = MsgType::kAppResp;
  r.to = m.from;
  if (m.index < log_.committed()) {
    // Everything up to our commit index matches the leader (Leader
    // Completeness); tell it so and let it resume from there. This also
    // covers prevLogIndex inside our snapshot, whose term we no longer know.
    r.index = log_.committed();
    send(std::move(r));
    return;
  }
  if (std::optional<Index> last = log_.maybe_append(m.index, m.log_term, m.commit, m.entries)) {
    r.index = *last;
    send(std::move(r));
    return;
  }
  // The consistency check failed (§5.3). Say where our log diverges so the
  // leader can skip a whole term per round trip instead of one entry.
  r.reject = true;
  r.index = m.index;
  if (m.index > log_.last_index()) {
    r.conflict_term = 0;
    r.reject_hint = log_.last_index() + 1;
  } else {
    r.conflict_term = *log_.term(m.index);
    r.reject_hint = log_.first_index_of_term_at(m.index);
  }
  send(std::move(r));
}

void Raft::handle_heartbeat(const Message& m) {
  // The leader clamps m.commit to what it knows we hold, so this never
  // commits an entry that might still conflict with its log.
  log_.commit_to(std::min(m.commit, log_.last_index()));
  Message r;
  r.type = MsgType::kHeartbeatResp;
  r.to = m.from;
  r.round = m.round;
  send(std::move(r));
}

void Raft::handle_snapshot(const Message& m) {
  const SnapshotMeta& meta = m.snapshot.meta;
  Message r;
  r.type = MsgType::kAppResp;
  r.to = m.from;
  if (meta.index <= log_.committed()) {
    // Stale or duplicate: we are already past it.
    r.index = log_.committed();
  } else if (log_.match_term(meta.index, meta.term)) {
    // §7: "If existing log entry has same index and term as snapshot's last
    // included entry, retain log entries following it". The prefix is
    // committed on the leader's word; our state machine catches up by
    // applying entries, no need to load the image.
    log_.commit_to(meta.index);
    r.index = log_.committed();
  } else {
    log_.install_snapshot(m.snapshot);
    r.index = log_.last_index();
  }
  send(std::move(r));
}

void Raft::step_leader(const Message& m) {
  auto it = prs_.find(m.from);
  if (it == prs_.end()) return;
  Progress& pr = it->second;
  switch (m.type) {
    case MsgType::kAppResp:
      pr.recent_active = true;
      handle_append_response(m, pr);
      break;
    case MsgType::kHeartbeatResp:
      pr.recent_active = true;
      handle_heartbeat_response(m, pr);
      break;
    default:
      break;  // e.g. a duplicated vote response after winning
  }
}

void Raft::handle_append_response(const Message& m, Progress& pr) {
  if (m.reject) {
    // Stale rejections (of an append we have since superseded) must not
    // move `next` backwards past what a newer reply established.
    if (pr.state == ProgState::kReplicate) {
      if (m.index <= pr.match) return;
    } else if (pr.state == ProgState::kProbe) {
      if (m.index != pr.next - 1) return;
    } else {
      return;  // kSnapshot: wait for the snapshot's answer
    }
    Index hint = m.reject_hint;
    if (m.conflict_term != 0) {
      // The follower has conflict_term at the rejected index. If we hold
      // entries of that term, our logs agree up to our last one of them
      // (Log Matching), so resume just after it; otherwise skip the
      // follower's whole run of that term.
      Index ours = log_.last_index_of_term(m.conflict_term, m.index);
      if (ours != 0) hint = ours + 1;
    }
    hint = std::min(hint, m.index);
    pr.next = std::max(pr.match + 1, std::max<Index>(hint, 1));
    pr.state = ProgState::kProbe;
    pr.probe_sent = false;
    pr.inflight.clear();
    send_append(m.from, true);
    return;
  }

  if (m.index > pr.match) {
    pr.match = m.index;
    pr.next = std::max(pr.next, m.index + 1);
    switch (pr.state) {
      case ProgState::kProbe:
        // Found the match point: switch to pipelining.
        pr.state = ProgState::kReplicate;
        pr.inflight.clear();
        pr.next = pr.match + 1;
        break;
      case ProgState::kSnapshot:
        if (pr.match >= pr.pending_snapshot) {
          pr.state = ProgState::kProbe;
          pr.probe_sent = false;
          pr.next = pr.match + 1;
        }
        break;
      case ProgState::kReplicate: {
        auto& f = pr.inflight;
        f.erase(f.begin(), std::find_if(f.begin(), f.end(),
                                        [&](Index i) { return i > m.index; }));
        break;
      }
    }
    if (maybe_commit()) {
      bcast_append();  // announce the new commit index
      return;
    }
  } else if (pr.state == ProgState::kProbe) {
    // A duplicate or stale acceptance still answers our probe.
    pr.probe_sent = false;
  }
  // Keep the pipeline full.
  while (send_append(m.from, false)) {
  }
}

void Raft::handle_heartbeat_response(const Message& m, Progress& pr) {
  if (pr.state == ProgState::kProbe) pr.probe_sent = false;
  // Acks can be lost; a heartbeat answer proves the follower is alive, so
  // free one slot of a full pipeline rather than stall until re-probing.
  if (pr.state == ProgState::kReplicate && pr.inflight.size() >= cfg_.max_inflight_msgs)
    pr.inflight.erase(pr.inflight.begin());
  if (pr.match < log_.last_index()) send_append(m.from, true);

  if (m.round > pr.acked_round) {
    pr.acked_round = m.round;
    release_reads();
  }
}

// ---- messages out -------------------------------------------------------------

void Raft::send(Message m) {
  m.from = cfg_.id;
  // Responses to pre-votes carry their own term (see handle_vote_request);
  // a pre-vote request carries term + 1; everything else our term.
  if (m.type != MsgType::kPreVote && !(m.type == MsgType::kPreVoteResp && !m.reject) &&
      !(m.type == MsgType::kVoteResp && !m.reject))
    m.term = term_;
  msgs_.push_back(std::move(m));
}

bool Raft::send_append(NodeId to, bool send_if_empty) {
  Progress& pr = prs_.at(to);
  if (pr.paused(cfg_.max_inflight_msgs)) return false;
  Index prev = pr.next - 1;
  std::optional<Term> prev_term = log_.term(prev);
  if (!prev_term || pr.next < log_.first_index()) {
    // §7: the entries this follower needs were compacted away.
    Message m;
    m.type = MsgType::kSnap;
    m.to = to;
    m.snapshot = log_.snapshot();
    pr.state = ProgState::kSnapshot;
    pr.pending_snapshot = m.snapshot.meta.index;
    pr.snapshot_ticks = 0;
    pr.inflight.clear();
    send(std::move(m));
    return false;
  }
  std::vector<Entry> ents = log_.slice(pr.next, log_.last_index() + 1, cfg_.max_entries_per_msg);
  if (ents.empty() && !send_if_empty) return false;
  Message m;
  m.type = MsgType::kApp;
  m.to = to;
  m.index = prev;
  m.log_term = *prev_term;
  m.commit = log_.committed();
  m.entries = std::move(ents);
  if (pr.state == ProgState::kReplicate) {
    if (!m.entries.empty()) {
      Index last = m.entries.back().index;
      pr.next = last + 1;  // optimistic: assume it lands
      pr.inflight.push_back(last);
    }
  } else {
    pr.probe_sent = true;
  }
  send(std::move(m));
  return true;
}

void Raft::bcast_append() {
  for (NodeId id : cfg_.voters)
    if (id != cfg_.id) send_append(id, true);
}

void Raft::bcast_heartbeat() {
  ++round_;
  round_sent_tick_[round_] = ticks_;
  for (NodeId id : cfg_.voters) {
    if (id == cfg_.id) continue;
    Message m;
    m.type = MsgType::kHeartbeat;
    m.to = id;
    // Never tell a follower to commit beyond what it is known to hold:
    // its entries past `match` may still be ones we will overwrite.
    m.commit = std::min(prs_.at(id).match, log_.committed());
    m.round = round_;
    send(std::move(m));
  }
  // Single-node cluster: our own "quorum" answers at once.
  release_reads();
}

bool Raft::maybe_commit() {
  std::vector<Index> matches;
  for (NodeId id : cfg_.voters) matches.push_back(prs_.at(id).match);
  std::sort(matches.begin(), matches.end(), std::greater<Index>());
  Index n = matches[quorum() - 1];  // replicated on a quorum
  // §5.4.2 / Figure 8: count replicas only for an entry of the current term;
  // earlier-term entries commit indirectly, by Log Matching, with it.
  if (n <= log_.committed() || !log_.match_term(n, term_)) return false;
  log_.commit_to(n);
  if (!committed_in_term_) on_committed_in_term();
  return true;
}

void Raft::on_committed_in_term() {
  committed_in_term_ = true;
  // Thesis §6.4 step 1: only now is our commit index known to be at least
  // every index committed by earlier leaders, so reads held back until
  // this moment can get a read index.
  std::vector<uint64_t> held = std::move(reads_before_commit_);
  reads_before_commit_.clear();
  for (uint64_t ctx : held) read_index(ctx);
}

void Raft::append_entry(Bytes data) {
  Entry e;
  e.term = term_;
  e.index = log_.last_index() + 1;
  e.data = std::move(data);
  log_.append_one(std::move(e));
  Progress& self = prs_.at(cfg_.id);
  self.match = log_.last_index();
  self.next = self.match + 1;
  maybe_commit();  // a single-node cluster commits on its own
}

std::optional<Index> Raft::propose(Bytes data) {
  if (role_ != Role::kLeader) return std::nullopt;
  append_entry(std::move(data));
  Index idx = log_.last_index();
  bcast_append();
  return idx;
}

// ---- reads ------------------------------------------------------------------------

bool Raft::lease_valid() const {
  return cfg_.lease_reads && role_ == Role::kLeader && lease_held_ &&
         ticks_ < lease_start_tick_ + uint64_t(cfg_.lease_ticks());
}

bool Raft::read_index(uint64_t ctx) {
  if (role_ != Role::kLeader) return false;
  if (!committed_in_term_) {
    reads_before_commit_.push_back(ctx);
    return true;
  }
  if (lease_valid()) {
    read_states_.push_back(ReadState{log_.committed(), ctx});
    return true;
  }
  // Thesis §6.4 steps 2-3: record the commit index, then confirm we are
  // still the leader with a fresh heartbeat round. Any round sent after
  // this point will do, so one broadcast serves every read queued so far.
  pending_reads_.push_back(PendingRead{ctx, log_.committed(), round_ + 1});
  bcast_heartbeat();
  return true;
}

void Raft::release_reads() {
  if (role_ != Role::kLeader) return;
  // The highest round echoed by a quorum (counting ourselves at round_).
  std::vector<uint64_t> acked;
  for (NodeId id : cfg_.voters)
    acked.push_back(id == cfg_.id ? round_ : prs_.at(id).acked_round);
  std::sort(acked.begin(), acked.end(), std::greater<uint64_t>());
  uint64_t confirmed = acked[quorum() - 1];
  if (confirmed == 0) return;

  if (cfg_.lease_reads) {
    auto it = round_sent_tick_.find(confirmed);
    if (it != round_sent_tick_.end()) {
      // The lease counts from when that round was *sent*: the followers
      // started their vote refusal no earlier than that.
      lease_start_tick_ = it->second;
      lease_held_ = true;
    }
  }
  round_sent_tick_.erase(round_sent_tick_.begin(), round_sent_tick_.lower_bound(confirmed));

  size_t done = 0;
  while (done < pending_reads_.size() && pending_reads_[done].round <= confirmed) {
    read_states_.push_back(ReadState{pending_reads_[done].index, pending_reads_[done].ctx});
    ++done;
  }
  pending_reads_.erase(pending_reads_.begin(), pending_reads_.begin() + done);
}

// ---- Ready ----------------------------------------------------------------------

bool Raft::has_ready() const {
  return SoftState{lead_, role_} != prev_soft_ || hard_state() != prev_hard_ ||
         log_.has_pending_snapshot() || log_.stabled() < log_.last_index() ||
         !msgs_.empty() || !read_states_.empty() ||
         std::max(log_.applied(), log_.snapshot().meta.index) < log_.committed();
}

Ready Raft::ready() {
  Ready rd;
  SoftState ss{lead_, role_};
  if (ss != prev_soft_) rd.soft_state = ss;
  HardState hs = hard_state();
  if (hs != prev_hard_) rd.hard_state = hs;
  if (log_.has_pending_snapshot()) rd.snapshot = log_.snapshot();
  rd.entries = log_.unstable_entries();
  rd.committed_entries = log_.next_committed_entries(cfg_.max_committed_per_ready);
  rd.messages = std::move(msgs_);
  msgs_.clear();
  rd.read_states = std::move(read_states_);
  read_states_.clear();

  // Count everything as handed out (see the header): the application owns
  // it now and performs it in order.
  prev_soft_ = ss;
  prev_hard_ = hs;
  log_.mark_stable_and_applied(
      rd.entries.empty() ? 0 : rd.entries.back().index,
      rd.committed_entries.empty() ? 0 : rd.committed_entries.back().index,
      !rd.snapshot.empty());
  return rd;
}

void Raft::advance(const Ready&) {
  // Nothing left to do: ready() already moved the cursors. Kept so callers
  // follow etcd's ready/advance protocol and a later change (e.g. async
  // apply acknowledgements) has a place to go.
}

void Raft::compact(Index index, Bytes data) {
  log_.compact(index, std::move(data), cfg_.voters);
}

}  // namespace sg::raft
