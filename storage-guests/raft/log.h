// The Raft log as the core sees it: the latest snapshot, the entries after
// it, and three cursors:
//
//   snapshot.index <= applied <= committed <= last_index()
//                     stabled <= last_index()
//
// `stabled` is the last entry already handed to the application for
// persistence (in a Ready); `applied` the last committed entry handed out for
// application. Both move when a Ready is taken, because the application
// promises to persist and apply everything in a Ready, in order, before it
// acts on a later one (see Ready in raft.h).
#pragma once

#include <optional>

#include "storage-guests/raft/types.h"

namespace sg::raft {

class RaftLog {
 public:
  RaftLog() = default;
  // State recovered from storage: the snapshot, the entries that follow it
  // (contiguous, starting at snapshot.meta.index + 1) and the durable commit.
  void restore_from_storage(Snapshot snapshot, std::vector<Entry> entries,
                            Index commit);

  Index first_index() const { return snapshot_.meta.index + 1; }
  Index last_index() const { return snapshot_.meta.index + entries_.size(); }
  Term last_term() const;
  // Term of entry i; nullopt when i is compacted into the snapshot (i below
  // the snapshot's index) or beyond the end of the log.
  std::optional<Term> term(Index i) const;
  bool match_term(Index i, Term t) const;
  // §5.4.1: is a log ending at (last_index, last_term) at least as
  // up-to-date as ours?
  bool is_up_to_date(Index last_index, Term last_term) const;

  // Entries [lo, hi) (hi clamped to last_index() + 1), at most max_entries.
  // Requires lo >= first_index().
  std::vector<Entry> slice(Index lo, Index hi, size_t max_entries) const;
  const Entry& at(Index i) const;

  // The AppendEntries receiver rules 2-5 of Figure 2: if our entry at
  // prev_index has prev_term, delete conflicting entries, append the new
  // ones and advance the commit index to min(leader_commit, index of the
  // last new entry). Returns that last new index, or nullopt on mismatch.
  std::optional<Index> maybe_append(Index prev_index, Term prev_term,
                                    Index leader_commit,
                                    const std::vector<Entry>& entries);
  // Appends after truncating anything at or beyond entries[0].index.
  // Committed entries are never truncated (RAFT_INVARIANT).
  void append(const std::vector<Entry>& entries);
  void append_one(Entry e);

  Index committed() const { return committed_; }
  void commit_to(Index i);  // only ever increases; i <= last_index()
  Index applied() const { return applied_; }
  Index stabled() const { return stabled_; }

  // The leader's search for the last entry of `term` at or below `hi`
  // (fast backtracking). 0 when there is none in the uncompacted log.
  Index last_index_of_term(Term term, Index hi) const;
  // The follower's side: the first index at or below `i` whose term equals
  // term(i), scanning down no further than the first uncompacted entry.
  Index first_index_of_term_at(Index i) const;

  // Install a snapshot received from the leader: everything in the log is
  // replaced; the snapshot becomes pending until handed out in a Ready.
  void install_snapshot(Snapshot snapshot);
  // Log compaction by the application: the state machine image `data`
  // covers every entry up to `index` (<= applied). Entries up to it are
  // dropped; the snapshot is kept to send to slow followers.
  void compact(Index index, Bytes data, std::vector<NodeId> voters);
  const Snapshot& snapshot() const { return snapshot_; }
  bool has_pending_snapshot() const { return pending_snapshot_; }

  // What the next Ready hands out, and marking it handed out.
  std::vector<Entry> unstable_entries() const;
  std::vector<Entry> next_committed_entries(size_t max_entries) const;
  void mark_stable_and_applied(Index stabled_to, Index applied_to,
                               bool snapshot_taken);

 private:
  Snapshot snapshot_;
  std::vector<Entry> entries_;  // entries_[k].index == first_index() + k
  Index committed_ = 0;
  Index applied_ = 0;
  Index stabled_ = 0;
  bool pending_snapshot_ = false;
};

}  // namespace sg::raft
