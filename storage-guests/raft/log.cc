#include "storage-guests/raft/log.h"

#include <algorithm>
#include <utility>

namespace sg::raft {

void RaftLog::restore_from_storage(Snapshot snapshot, std::vector<Entry> entries,
                                   Index commit) {
  snapshot_ = std::move(snapshot);
  entries_ = std::move(entries);
  for (size_t k = 0; k < entries_.size(); ++k)
    RAFT_INVARIANT(entries_[k].index == snapshot_.meta.index + 1 + k);
  // A durable commit index may run ahead of durable entries only if the
  // storage lost entries it had acknowledged, which the Ready contract rules
  // out; clamp defensively anyway, committing less is always safe.
  committed_ = std::max(snapshot_.meta.index, std::min(commit, last_index()));
  // The application rebuilds its state from the snapshot, then re-applies
  // the committed entries after it.
  applied_ = snapshot_.meta.index;
  stabled_ = last_index();
  pending_snapshot_ = false;
}

Term RaftLog::last_term() const {
  return entries_.empty() ? snapshot_.meta.term : entries_.back().term;
}

std::optional<Term> RaftLog::term(Index i) const {
  if (i == snapshot_.meta.index) return snapshot_.meta.term;
  if (i < snapshot_.meta.index || i > last_index()) return std::nullopt;
  return entries_[i - first_index()].term;
}

bool RaftLog::match_term(Index i, Term t) const {
  std::optional<Term> have = term(i);
  return have && *have == t;
}

bool RaftLog::is_up_to_date(Index last_index_, Term last_term_) const {
  return last_term_ > last_term() ||
         (last_term_ == last_term() && last_index_ >= last_index());
}

const Entry& RaftLog::at(Index i) const {
  RAFT_INVARIANT(i >= first_index() && i <= last_index());
  return entries_[i - first_index()];
}

std::vector<Entry> RaftLog::slice(Index lo, Index hi, size_t max_entries) const {
  RAFT_INVARIANT(lo >= first_index());
  hi = std::min(hi, last_index() + 1);
  std::vector<Entry> out;
  for (Index i = lo; i < hi && out.size() < max_entries; ++i) out.push_back(at(i));
  return out;
}

std::optional<Index> RaftLog::maybe_append(Index prev_index, Term prev_term,
                                           Index leader_commit,
                                           const std::vector<Entry>& entries) {
  if (!match_term(prev_index, prev_term)) return std::nullopt;
  Index last_new = prev_index + entries.size();
  // Rule 3: skip entries we already hold; the first one whose term differs
  // (or that we lack) starts the suffix to replace. Never truncate entries
  // that merely match: a stale, shorter AppendEntries arriving late must not
  // erase entries a newer one appended (and that we may have acked).
  for (size_t k = 0; k < entries.size(); ++k) {
    const Entry& e = entries[k];
    RAFT_INVARIANT(e.index == prev_index + 1 + k);
    if (!match_term(e.index, e.term)) {
      // A conflict inside the committed prefix would mean two different
      // entries were committed at one index: Log Matching is broken.
      RAFT_INVARIANT(e.index > committed_);
      append(std::vector<Entry>(entries.begin() + k, entries.end()));
      break;
    }
  }
  // Rule 5, with the "index of last new entry" bound: our entries beyond
  // last_new were not covered by this message, so they are not known to
  // match the leader's log and must not be committed on its word.
  commit_to(std::min(leader_commit, last_new));
  return last_new;
}

void RaftLog::append(const std::vector<Entry>& entries) {
  if (entries.empty()) return;
  Index from = entries.front().index;
  RAFT_INVARIANT(from > committed_ && from >= first_index() &&
                 from <= last_index() + 1);
  entries_.resize(from - first_index());
  // Entries we had handed out for persistence beyond this point are gone;
  // the next Ready re-sends from `from`, and the application's append of
  // those overwrites (truncates) what it had stored.
  stabled_ = std::min(stabled_, from - 1);
  for (const Entry& e : entries) entries_.push_back(e);
}

void RaftLog::append_one(Entry e) {
  RAFT_INVARIANT(e.index == last_index() + 1);
  entries_.push_back(std::move(e));
}

void RaftLog::commit_to(Index i) {
  if (i <= committed_) return;
  RAFT_INVARIANT(i <= last_index());
  committed_ = i;
}

Index RaftLog::last_index_of_term(Term t, Index hi) const {
  hi = std::min(hi, last_index());
  // Terms never decrease along the log, so scan down until we pass below t.
  for (Index i = hi; i >= first_index(); --i) {
    Term ti = entries_[i - first_index()].term;
    if (ti == t) return i;
    if (ti < t) return 0;
  }
  if (snapshot_.meta.term == t && snapshot_.meta.index <= hi) return snapshot_.meta.index;
  return 0;
}

Index RaftLog::first_index_of_term_at(Index i) const {
  std::optional<Term> t = term(i);
  RAFT_INVARIANT(t.has_value());
  while (i > first_index() && entries_[i - 1 - first_index()].term == *t) --i;
  return i;
}

void RaftLog::install_snapshot(Snapshot snapshot) {
  RAFT_INVARIANT(snapshot.meta.index > committed_);
  Index idx = snapshot.meta.index;
  snapshot_ = std::move(snapshot);
  entries_.clear();
  committed_ = idx;
  stabled_ = idx;
  pending_snapshot_ = true;
}

void RaftLog::compact(Index index, Bytes data, std::vector<NodeId> voters) {
  if (index <= snapshot_.meta.index) return;  // already covered
  RAFT_INVARIANT(index <= applied_);
  Term t = at(index).term;
  entries_.erase(entries_.begin(), entries_.begin() + (index - first_index() + 1));
  snapshot_.meta = SnapshotMeta{index, t, std::move(voters)};
  snapshot_.data = std::move(data);
}

std::vector<Entry> RaftLog::unstable_entries() const {
  if (stabled_ >= last_index()) return {};
  return slice(std::max(stabled_ + 1, first_index()), last_index() + 1,
               entries_.size());
}

std::vector<Entry> RaftLog::next_committed_entries(size_t max_entries) const {
  Index from = std::max(applied_, snapshot_.meta.index) + 1;
  if (from > committed_) return {};
  return slice(from, committed_ + 1, max_entries);
}

void RaftLog::mark_stable_and_applied(Index stabled_to, Index applied_to,
                                      bool snapshot_taken) {
  if (snapshot_taken) {
    pending_snapshot_ = false;
    applied_ = std::max(applied_, snapshot_.meta.index);
  }
  stabled_ = std::max(stabled_, stabled_to);
  applied_ = std::max(applied_, applied_to);
}

}  // namespace sg::raft
