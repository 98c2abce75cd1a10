// One test per rule of the Raft paper (Figure 2 and sections 5-7, plus the
// thesis sections our core implements), named after its section, stepping
// the pure core with scripted messages as etcd's raft_paper_test.go does.
#include <gtest/gtest.h>

#include <algorithm>

#include "tests/raft/raft_test_util.h"

namespace raft_test {
namespace {

std::vector<Message> of_type(const std::vector<Message>& ms, MsgType t) {
  std::vector<Message> out;
  for (const Message& m : ms)
    if (m.type == t) out.push_back(m);
  return out;
}

// ---- Figure 2: rules for all servers ----------------------------------------

// "If RPC request or response contains term T > currentTerm: set
// currentTerm = T, convert to follower" -- from every role.
TEST(RaftPaper, Fig2_AllServers_UpdateTermFromMessage) {
  for (int role = 0; role < 3; ++role) {
    auto r = new_raft(1, {1, 2, 3});
    if (role == 1) r->campaign();
    if (role == 2) make_leader(*r);
    read_messages(*r);
    Term before = r->term();
    r->step(app(2, 1, before + 5, 0, 0, {}, 0));
    EXPECT_EQ(r->term(), before + 5) << "role " << role;
    EXPECT_EQ(r->role(), Role::kFollower) << "role " << role;
    EXPECT_EQ(r->leader(), 2u) << "an AppendEntries names its sender leader";
  }
}

// "Reply false if term < currentTerm" (AppendEntries 1, RequestVote 1):
// stale requests change nothing and get no grant.
TEST(RaftPaper, Fig2_RejectStaleTermMessage) {
  auto r = raft_with_log(config(1, {1, 2, 3}), {1, 2}, 3);
  r->step(app(2, 1, 2, 2, 2, {Entry{2, 3, {}}}, 2));
  EXPECT_EQ(r->log().last_index(), 2u);
  EXPECT_EQ(r->log().committed(), 0u);
  Message v = msg(MsgType::kVote, 2, 1, 2);
  v.index = 9;
  v.log_term = 2;
  r->step(v);
  EXPECT_EQ(r->vote(), kNoNode);
  EXPECT_TRUE(of_type(read_messages(*r), MsgType::kVoteResp).empty());
  EXPECT_EQ(r->term(), 3u);
}

// ---- §5.2 Leader election -----------------------------------------------------

// "When servers start up, they begin as followers."
TEST(RaftPaper, Sec5_2_StartAsFollower) {
  auto r = new_raft(1, {1, 2, 3});
  EXPECT_EQ(r->role(), Role::kFollower);
  EXPECT_EQ(r->term(), 0u);
  EXPECT_EQ(r->leader(), kNoNode);
}

// "Leaders send periodic heartbeats (AppendEntries RPCs that carry no log
// entries) to all followers in order to maintain their authority."
TEST(RaftPaper, Sec5_2_LeaderBcastBeat) {
  int hb = 2;
  auto r = new_raft(1, {1, 2, 3}, 10, hb);
  make_leader(*r);
  tick_n(*r, hb);
  auto beats = of_type(read_messages(*r), MsgType::kHeartbeat);
  ASSERT_EQ(beats.size(), 2u);
  std::set<NodeId> to;
  for (auto& m : beats) {
    to.insert(m.to);
    EXPECT_EQ(m.term, r->term());
    EXPECT_TRUE(m.entries.empty());
  }
  EXPECT_EQ(to, (std::set<NodeId>{2, 3}));
}

// "If a follower receives no communication over a period of time called the
// election timeout, then it ... begins an election": it increments its term,
// transitions to candidate, votes for itself and issues RequestVote RPCs.
TEST(RaftPaper, Sec5_2_FollowerStartsElectionOnTimeout) {
  auto r = new_raft(1, {1, 2, 3});
  tick_n(*r, r->randomized_election_timeout());
  EXPECT_EQ(r->role(), Role::kCandidate);
  EXPECT_EQ(r->term(), 1u);
  auto votes = of_type(read_messages(*r), MsgType::kVote);
  ASSERT_EQ(votes.size(), 2u);
  for (auto& m : votes) {
    EXPECT_EQ(m.term, 1u);
    EXPECT_EQ(m.index, 0u);
    EXPECT_EQ(m.log_term, 0u);
  }
}

// "A candidate ... votes for itself".
TEST(RaftPaper, Sec5_2_CandidateVotesForItself) {
  auto r = new_raft(1, {1, 2, 3});
  r->campaign();
  EXPECT_EQ(r->vote(), 1u);
  Ready rd = take_ready(*r);
  ASSERT_TRUE(rd.hard_state.has_value());
  EXPECT_EQ(rd.hard_state->vote, 1u) << "the self-vote is persisted";
}

// "If the election timeout elapses [as candidate]: start new election" with
// a higher term.
TEST(RaftPaper, Sec5_2_CandidateStartsNewElectionOnTimeout) {
  auto r = new_raft(1, {1, 2, 3});
  r->campaign();
  read_messages(*r);
  tick_n(*r, r->randomized_election_timeout());
  EXPECT_EQ(r->role(), Role::kCandidate);
  EXPECT_EQ(r->term(), 2u);
  EXPECT_EQ(of_type(read_messages(*r), MsgType::kVote).size(), 2u);
}

// "A candidate wins an election if it receives votes from a majority of the
// servers"; it loses (back to follower) once a majority refused; otherwise
// it stays candidate. Table over cluster sizes and answers.
TEST(RaftPaper, Sec5_2_LeaderElectionInOneRoundRPC) {
  struct Case {
    size_t size;
    std::map<NodeId, bool> votes;
    Role want;
  } cases[] = {
      {1, {}, Role::kLeader},
      {3, {{2, true}, {3, true}}, Role::kLeader},
      {3, {{2, true}}, Role::kLeader},
      {5, {{2, true}, {3, true}, {4, true}, {5, true}}, Role::kLeader},
      {5, {{2, true}, {3, true}, {4, true}}, Role::kLeader},
      {5, {{2, true}, {3, true}}, Role::kLeader},
      {3, {{2, false}, {3, false}}, Role::kFollower},
      {5, {{2, false}, {3, false}, {4, false}, {5, false}}, Role::kFollower},
      {5, {{2, true}, {3, false}, {4, false}, {5, false}}, Role::kFollower},
      {3, {}, Role::kCandidate},
      {5, {{2, true}}, Role::kCandidate},
      {5, {{2, false}, {3, false}}, Role::kCandidate},
      {5, {}, Role::kCandidate},
  };
  for (const Case& c : cases) {
    std::vector<NodeId> ids;
    for (NodeId i = 1; i <= c.size; ++i) ids.push_back(i);
    auto r = new_raft(1, ids);
    r->campaign();
    for (auto& [id, granted] : c.votes) r->step(vote_resp(id, 1, r->term(), !granted));
    EXPECT_EQ(r->role(), c.want) << "size " << c.size << " answers " << c.votes.size();
    EXPECT_EQ(r->term(), 1u);
  }
}

// "Each server will vote for at most one candidate in a given term, on a
// first-come-first-served basis."
TEST(RaftPaper, Sec5_2_FollowerVotesOncePerTerm) {
  struct Case {
    NodeId voted;
    NodeId candidate;
    bool reject;
  } cases[] = {
      {kNoNode, 2, false}, {kNoNode, 3, false}, {2, 2, false},
      {3, 3, false},       {2, 3, true},        {3, 2, true},
  };
  for (const Case& c : cases) {
    Config cfg = config(1, {1, 2, 3});
    auto r = std::make_unique<Raft>(cfg, HardState{1, c.voted, 0});
    Message v = msg(MsgType::kVote, c.candidate, 1, 1);
    r->step(v);
    auto resp = of_type(read_messages(*r), MsgType::kVoteResp);
    ASSERT_EQ(resp.size(), 1u);
    EXPECT_EQ(resp[0].reject, c.reject) << "voted " << c.voted << " cand " << c.candidate;
    EXPECT_EQ(resp[0].to, c.candidate);
  }
}

// "While waiting for votes, a candidate may receive an AppendEntries RPC from
// another server claiming to be leader. If the leader's term is at least as
// large as the candidate's current term, then the candidate ... returns to
// follower state."
TEST(RaftPaper, Sec5_2_CandidateFallsBackOnAppendFromLeader) {
  for (Term t : {Term(1), Term(2)}) {
    auto r = new_raft(1, {1, 2, 3});
    r->campaign();
    r->step(app(2, 1, t, 0, 0, {}, 0));
    EXPECT_EQ(r->role(), Role::kFollower);
    EXPECT_EQ(r->term(), t);
    EXPECT_EQ(r->leader(), 2u);
  }
}

// "Raft uses randomized election timeouts ... chosen randomly from a fixed
// interval": a follower's timeouts spread over [min, max].
TEST(RaftPaper, Sec5_2_ElectionTimeoutRandomized) {
  auto r = new_raft(1, {1, 2, 3}, 10);
  std::set<int> seen;
  for (int round = 0; round < 200; ++round) {
    r->step(app(2, 1, r->term() + 1, 0, 0, {}, 0));  // resets the timer
    read_messages(*r);
    int t = 0;
    while (r->role() == Role::kFollower) {
      r->tick();
      ++t;
    }
    EXPECT_GE(t, 10);
    EXPECT_LE(t, 19);
    seen.insert(t);
  }
  EXPECT_EQ(seen.size(), 10u) << "every timeout in [10, 19] occurs";
}

// "...in most cases only a single server will time out": with randomized
// timeouts, followers of a dead leader rarely time out on the same tick.
TEST(RaftPaper, Sec5_2_FollowersElectionTimeoutsMostlyNonConflicting) {
  int conflicts = 0, rounds = 1000;
  std::vector<std::unique_ptr<Raft>> rs;
  // Node 6 plays the leader that keeps resetting everyone's timer.
  for (NodeId id = 1; id <= 5; ++id) {
    Config c = config(id, {1, 2, 3, 4, 5, 6});
    c.random = seeded(id * 1000003);
    rs.push_back(std::make_unique<Raft>(c));
  }
  for (int i = 0; i < rounds; ++i) {
    Term t = 0;
    for (auto& r : rs) t = std::max(t, r->term() + 1);
    for (auto& r : rs) r->step(app(6, r->id(), t, 0, 0, {}, 0));
    int fired = 0;
    while (fired == 0) {
      for (auto& r : rs) {
        r->tick();
        if (r->role() != Role::kFollower) ++fired;
      }
    }
    if (fired > 1) ++conflicts;
    for (auto& r : rs) read_messages(*r);
  }
  // etcd's bound for this test: conflicts in under 30% of rounds.
  EXPECT_LT(conflicts, rounds * 3 / 10);
}

// ---- §5.3 Log replication -----------------------------------------------------

// "The leader appends the command to its log as a new entry, then issues
// AppendEntries RPCs in parallel to each of the other servers."
TEST(RaftPaper, Sec5_3_LeaderStartReplication) {
  auto r = new_raft(1, {1, 2, 3});
  make_leader(*r);
  // Get both followers into the pipelined state first.
  Index li = r->log().last_index();
  r->step(app_resp(2, 1, r->term(), li));
  r->step(app_resp(3, 1, r->term(), li));
  read_messages(*r);
  auto idx = r->propose(data("some data"));
  ASSERT_TRUE(idx.has_value());
  EXPECT_EQ(*idx, li + 1);
  Ready rd = take_ready(*r);
  ASSERT_EQ(rd.entries.size(), 1u) << "the new entry is handed out for persistence";
  auto apps = of_type(rd.messages, MsgType::kApp);
  ASSERT_EQ(apps.size(), 2u);
  for (auto& m : apps) {
    EXPECT_EQ(m.index, li);
    EXPECT_EQ(m.log_term, r->term());
    ASSERT_EQ(m.entries.size(), 1u);
    EXPECT_EQ(m.entries[0].data, data("some data"));
  }
}

// "When the entry has been safely replicated [on a majority], the leader
// applies the entry to its state machine" -- and the Ready hands it out.
TEST(RaftPaper, Sec5_3_LeaderCommitEntry) {
  auto r = new_raft(1, {1, 2, 3});
  make_leader(*r);
  Index li = r->log().last_index();
  r->step(app_resp(2, 1, r->term(), li));
  read_messages(*r);
  r->propose(data("x"));
  read_messages(*r);
  r->step(app_resp(2, 1, r->term(), li + 1));
  EXPECT_EQ(r->log().committed(), li + 1);
  Ready rd = take_ready(*r);
  ASSERT_FALSE(rd.committed_entries.empty());
  EXPECT_EQ(rd.committed_entries.back().data, data("x"));
  // "...the leader ... includes [the commit index] in future AppendEntries".
  for (auto& m : of_type(rd.messages, MsgType::kApp)) EXPECT_EQ(m.commit, li + 1);
}

// "A log entry is committed once the leader that created the entry has
// replicated it on a majority of the servers."
TEST(RaftPaper, Sec5_3_LeaderAcknowledgeCommitNeedsMajority) {
  struct Case {
    size_t size;
    std::set<NodeId> acks;
    bool commit;
  } cases[] = {
      {1, {}, true},         {3, {}, false},         {3, {2}, true},
      {3, {2, 3}, true},     {5, {}, false},         {5, {2}, false},
      {5, {2, 3}, true},     {5, {2, 3, 4}, true},   {5, {2, 3, 4, 5}, true},
  };
  for (const Case& c : cases) {
    std::vector<NodeId> ids;
    for (NodeId i = 1; i <= c.size; ++i) ids.push_back(i);
    auto r = new_raft(1, ids);
    make_leader(*r);
    Index li = r->log().last_index();
    r->propose(data("x"));
    read_messages(*r);
    for (NodeId id : c.acks) r->step(app_resp(id, 1, r->term(), li + 1));
    EXPECT_EQ(r->log().committed() >= li + 1, c.commit)
        << "size " << c.size << " acks " << c.acks.size();
  }
}

// "When the leader commits an entry, it also commits all preceding entries
// in its log, including entries created by previous leaders."
TEST(RaftPaper, Sec5_3_LeaderCommitPrecedingEntries) {
  for (auto terms : std::vector<std::vector<Term>>{{}, {2}, {1, 1}, {1, 2}}) {
    auto r = raft_with_log(config(1, {1, 2, 3}), terms, 2);
    make_leader(*r);
    r->propose(data("x"));
    read_messages(*r);
    Index li = r->log().last_index();
    r->step(app_resp(2, 1, r->term(), li));
    EXPECT_EQ(r->log().committed(), li);
    Ready rd = take_ready(*r);
    EXPECT_EQ(rd.committed_entries.size(), li) << "all of 1.." << li;
  }
}

// "Once a follower learns that a log entry is committed, it applies the
// entry to its local state machine (in log order)."
TEST(RaftPaper, Sec5_3_FollowerCommitEntry) {
  auto r = new_raft(1, {1, 2, 3});
  r->step(app(2, 1, 1, 0, 0, {Entry{1, 1, data("a")}, Entry{1, 2, data("b")}}, 1));
  EXPECT_EQ(r->log().committed(), 1u);
  Ready rd = take_ready(*r);
  ASSERT_EQ(rd.committed_entries.size(), 1u);
  EXPECT_EQ(rd.committed_entries[0].data, data("a"));
  r->step(app(2, 1, 1, 2, 1, {}, 2));
  EXPECT_EQ(take_ready(*r).committed_entries.size(), 1u);
}

// "If a follower does not find an entry in its log with the same index and
// term [as prevLogIndex/prevLogTerm], then it refuses the new entries."
TEST(RaftPaper, Sec5_3_FollowerCheckMsgApp) {
  struct Case {
    Term prev_term;
    Index prev;
    bool reject;
  } cases[] = {
      {0, 0, false},  // the empty prefix always matches
      {1, 1, false},
      {2, 2, false},
      {1, 2, true},  // wrong term at an existing index
      {3, 3, true},  // beyond the end of the log
  };
  for (const Case& c : cases) {
    auto r = raft_with_log(config(1, {1, 2, 3}), {1, 2}, 2);
    r->step(app(2, 1, 2, c.prev, c.prev_term, {}, 1));
    auto resp = of_type(read_messages(*r), MsgType::kAppResp);
    ASSERT_EQ(resp.size(), 1u);
    EXPECT_EQ(resp[0].reject, c.reject) << "prev " << c.prev << " term " << c.prev_term;
    if (!c.reject) {
      EXPECT_EQ(resp[0].index, c.prev);
    }
  }
}

// "If an existing entry conflicts with a new one (same index but different
// terms), delete the existing entry and all that follow it; append any new
// entries not already in the log." Entries that match are kept.
TEST(RaftPaper, Sec5_3_FollowerAppendEntries) {
  struct Case {
    Index prev;
    Term prev_term;
    std::vector<Entry> ents;
    std::vector<Term> want;
  } cases[] = {
      {2, 2, {Entry{3, 3, {}}}, {1, 2, 3}},
      {1, 1, {Entry{3, 2, {}}, Entry{4, 3, {}}}, {1, 3, 4}},
      {0, 0, {Entry{1, 1, {}}}, {1, 2}},  // a stale, shorter append truncates nothing
      {0, 0, {Entry{3, 1, {}}}, {3}},
  };
  for (const Case& c : cases) {
    auto r = raft_with_log(config(1, {1, 2, 3}), {1, 2}, 2);
    r->step(app(2, 1, 2, c.prev, c.prev_term, c.ents, 0));
    std::vector<Term> got;
    for (Index i = 1; i <= r->log().last_index(); ++i) got.push_back(*r->log().term(i));
    EXPECT_EQ(got, c.want);
  }
}

// Figure 7: whatever a follower's log looks like (missing entries, extra
// uncommitted entries, both), the leader brings it into line with its own.
TEST(RaftPaper, Sec5_3_Figure7LeaderSyncsFollowerLog) {
  const std::vector<Term> leader_log = {1, 1, 1, 4, 4, 5, 5, 6, 6, 6};
  const std::vector<std::vector<Term>> followers = {
      {1, 1, 1, 4, 4, 5, 5, 6, 6},              // (a)
      {1, 1, 1, 4},                             // (b)
      {1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6},        // (c)
      {1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7},     // (d)
      {1, 1, 1, 4, 4, 4, 4},                    // (e)
      {1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3},        // (f)
  };
  for (size_t k = 0; k < followers.size(); ++k) {
    std::vector<std::unique_ptr<Raft>> nodes;
    nodes.push_back(raft_with_log(config(1, {1, 2, 3}), leader_log, 8));
    nodes.push_back(raft_with_log(config(2, {1, 2, 3}), followers[k], 8));
    // Node 3 votes for the leader but stays out of replication.
    nodes.push_back(raft_with_log(config(3, {1, 2, 3}), {}, 8));
    Network net(std::move(nodes));
    net.campaign(1);
    ASSERT_EQ(net[1].role(), Role::kLeader) << "follower (" << char('a' + k) << ")";
    net.cut(1, 3);
    net.propose(1, "x");
    std::vector<Term> a, b;
    for (Index i = 1; i <= net[1].log().last_index(); ++i) a.push_back(*net[1].log().term(i));
    for (Index i = 1; i <= net[2].log().last_index(); ++i) b.push_back(*net[2].log().term(i));
    EXPECT_EQ(a, b) << "follower (" << char('a' + k) << ")";
    EXPECT_EQ(net[2].log().committed(), net[1].log().committed());
  }
}

// Extended paper §5.3 ("the follower can include the term of the
// conflicting entry and the first index it stores for that term"): a
// rejection carries that hint, and the leader skips a whole term per round
// trip -- Figure 7 (f) needs 3 probes instead of 8.
TEST(RaftPaper, Sec5_3_FastBacktrackingByConflictTerm) {
  auto f = raft_with_log(config(2, {1, 2, 3}), {1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3}, 8);
  f->step(app(1, 2, 8, 10, 6, {}, 0));
  auto resp = of_type(read_messages(*f), MsgType::kAppResp);
  ASSERT_EQ(resp.size(), 1u);
  EXPECT_TRUE(resp[0].reject);
  EXPECT_EQ(resp[0].conflict_term, 3u);
  EXPECT_EQ(resp[0].reject_hint, 7u) << "first index of term 3";

  // Too short a log: no conflict term, hint = its length + 1.
  auto b = raft_with_log(config(2, {1, 2, 3}), {1, 1, 1, 4}, 8);
  b->step(app(1, 2, 8, 10, 6, {}, 0));
  resp = of_type(read_messages(*b), MsgType::kAppResp);
  ASSERT_EQ(resp.size(), 1u);
  EXPECT_EQ(resp[0].conflict_term, 0u);
  EXPECT_EQ(resp[0].reject_hint, 5u);

  // Count the probes the leader needs for (f).
  auto leader = raft_with_log(config(1, {1, 2, 3}), {1, 1, 1, 4, 4, 5, 5, 6, 6, 6}, 7);
  auto follower = raft_with_log(config(2, {1, 2, 3}), {1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3}, 7);
  make_leader(*leader);  // term 8, no-op at 11
  int rejects = 0;
  Message out = app(1, 2, leader->term(), 10, 6, {Entry{8, 11, {}}}, 0);
  for (int i = 0; i < 20; ++i) {
    follower->step(out);
    auto rs = of_type(read_messages(*follower), MsgType::kAppResp);
    ASSERT_EQ(rs.size(), 1u);
    if (!rs[0].reject) break;
    ++rejects;
    leader->step(rs[0]);
    auto apps = of_type(read_messages(*leader), MsgType::kApp);
    ASSERT_EQ(apps.size(), 1u);
    out = apps[0];
  }
  EXPECT_EQ(follower->log().last_index(), 11u);
  EXPECT_LE(rejects, 3) << "one round trip per conflicting term, not per entry";
}

// ---- §5.4 Safety -------------------------------------------------------------------

// §5.4.1, the election restriction: "the voter denies its vote if its own
// log is more up-to-date than that of the candidate".
TEST(RaftPaper, Sec5_4_1_ElectionRestriction) {
  // Voter's log: terms {1, 2, 3}.
  struct Case {
    Term last_term;
    Index last_index;
    bool reject;
  } cases[] = {
      {2, 3, true},  {2, 4, true},   // older last term, however long
      {3, 2, true},                  // same term, shorter
      {3, 3, false}, {3, 4, false},  // same term, at least as long
      {4, 1, false}, {4, 3, false},  // newer last term wins even if shorter
  };
  for (const Case& c : cases) {
    auto r = raft_with_log(config(1, {1, 2, 3}), {1, 2, 3}, 3);
    Message v = msg(MsgType::kVote, 2, 1, 4);
    v.index = c.last_index;
    v.log_term = c.last_term;
    r->step(v);
    auto resp = of_type(read_messages(*r), MsgType::kVoteResp);
    ASSERT_EQ(resp.size(), 1u);
    EXPECT_EQ(resp[0].reject, c.reject) << "cand (" << c.last_term << "," << c.last_index << ")";
  }
}

// §5.4.1 end to end: a candidate missing a committed entry cannot win.
TEST(RaftPaper, Sec5_4_1_CandidateMissingCommittedEntryLoses) {
  std::vector<std::unique_ptr<Raft>> nodes;
  for (NodeId id = 1; id <= 3; ++id) nodes.push_back(new_raft(id, {1, 2, 3}));
  Network net(std::move(nodes));
  net.campaign(1);
  net.isolate(3);
  net.propose(1, "committed");  // on 1 and 2 only
  ASSERT_EQ(net[1].log().committed(), 2u);
  net.recover();
  net.isolate(1);  // the leader goes away; 3 (stale log) campaigns first
  net[3].campaign();
  net.settle();
  EXPECT_NE(net[3].role(), Role::kLeader);
  net[2].campaign();
  net.settle();
  EXPECT_EQ(net[2].role(), Role::kLeader);
}

// §5.4.2 and Figure 8: "Raft never commits log entries from previous terms by
// counting replicas. Only log entries from the leader's current term are
// committed by counting replicas."
TEST(RaftPaper, Sec5_4_2_Figure8CommitOnlyCurrentTerm) {
  // S1 leads term 4 with an entry of term 2 at index 2 (Figure 8 (c)), and
  // has just replicated it to a majority. Its own term-4 entry is not yet
  // replicated.
  auto r = raft_with_log(config(1, {1, 2, 3, 4, 5}), {1, 2}, 3, 1);
  make_leader(*r);  // term 4; no-op at index 3
  ASSERT_EQ(r->term(), 4u);
  r->step(app_resp(2, 1, 4, 2));
  r->step(app_resp(3, 1, 4, 2));
  EXPECT_EQ(r->log().committed(), 1u) << "index 2 (term 2) is on a majority but must not commit";
  // Once the term-4 entry reaches a majority, both commit.
  r->step(app_resp(2, 1, 4, 3));
  r->step(app_resp(3, 1, 4, 3));
  EXPECT_EQ(r->log().committed(), 3u);
}

// Figure 8 (d): why the rule matters. S5 can overwrite the term-2 entry that
// S1 had on a majority, so counting it committed would have been unsafe.
TEST(RaftPaper, Sec5_4_2_Figure8EntryOnMajorityCanBeOverwritten) {
  std::vector<std::unique_ptr<Raft>> nodes;
  nodes.push_back(raft_with_log(config(1, {1, 2, 3, 4, 5}), {1, 2, 4}, 4, 1));
  nodes.push_back(raft_with_log(config(2, {1, 2, 3, 4, 5}), {1, 2}, 4, 1));
  nodes.push_back(raft_with_log(config(3, {1, 2, 3, 4, 5}), {1, 2}, 4, 1));
  nodes.push_back(raft_with_log(config(4, {1, 2, 3, 4, 5}), {1}, 4, 1));
  nodes.push_back(raft_with_log(config(5, {1, 2, 3, 4, 5}), {1, 3}, 4, 1));
  Network net(std::move(nodes));
  net.isolate(1);  // S1 crashes
  net[5].campaign();  // S5 (last term 3) beats S2, S3, S4 (last term <= 2)
  net.settle();
  ASSERT_EQ(net[5].role(), Role::kLeader);
  for (NodeId id : {2, 3, 4}) EXPECT_EQ(*net[id].log().term(2), 3u) << "S" << id;
}

// A new leader commits the entries of earlier terms by committing its no-op.
TEST(RaftPaper, Sec5_4_2_NewLeaderCommitsNoopOfItsTerm) {
  std::vector<std::unique_ptr<Raft>> nodes;
  for (NodeId id = 1; id <= 3; ++id)
    nodes.push_back(raft_with_log(config(id, {1, 2, 3}), {1, 1}, 1));
  Network net(std::move(nodes));
  net.campaign(1);
  EXPECT_EQ(net[1].log().last_index(), 3u);
  EXPECT_EQ(*net[1].log().term(3), net[1].term());
  EXPECT_EQ(net[1].log().committed(), 3u);
  EXPECT_EQ(net[2].log().committed(), 3u);
}

// §5.4.3 Leader Completeness, by construction: whatever leader is elected
// after a commit holds the committed entry.
TEST(RaftPaper, Sec5_4_3_LeaderCompleteness) {
  std::vector<std::unique_ptr<Raft>> nodes;
  for (NodeId id = 1; id <= 5; ++id) nodes.push_back(new_raft(id, {1, 2, 3, 4, 5}));
  Network net(std::move(nodes));
  net.campaign(1);
  net.isolate(4);
  net.isolate(5);
  net.propose(1, "v");
  Index committed = net[1].log().committed();
  ASSERT_GE(committed, 2u);
  for (NodeId next : {2, 3, 4, 5}) {
    net.recover();
    net.isolate(1);
    net[next].campaign();
    net.settle();
    for (NodeId id = 2; id <= 5; ++id) {
      if (net[id].role() == Role::kLeader) {
        EXPECT_EQ(net[id].log().at(2).data, data("v")) << "leader S" << id;
      }
    }
  }
}

// ---- §5.5 Follower and candidate crashes --------------------------------------

// "Raft RPCs are idempotent": a repeated AppendEntries changes nothing, and
// a delayed duplicate of an older one truncates nothing.
TEST(RaftPaper, Sec5_5_AppendEntriesIdempotent) {
  auto r = new_raft(1, {1, 2, 3});
  Message a1 = app(2, 1, 1, 0, 0, {Entry{1, 1, data("a")}}, 0);
  Message a2 = app(2, 1, 1, 1, 1, {Entry{1, 2, data("b")}}, 0);
  r->step(a1);
  r->step(a2);
  r->step(a1);
  r->step(a2);
  EXPECT_EQ(r->log().last_index(), 2u);
  auto resps = of_type(read_messages(*r), MsgType::kAppResp);
  ASSERT_EQ(resps.size(), 4u);
  EXPECT_EQ(resps[2].index, 1u) << "the duplicate of a1 acknowledges only what it covers";
}

// Figure 2, "Persistent state ... updated on stable storage before
// responding to RPCs": the vote and the appended entries travel in the same
// Ready as the replies that depend on them, so the application persists
// them before it sends.
TEST(RaftPaper, Fig2_PersistBeforeReply) {
  auto r = new_raft(1, {1, 2, 3});
  Message v = msg(MsgType::kVote, 2, 1, 5);
  r->step(v);
  Ready rd = take_ready(*r);
  ASSERT_TRUE(rd.hard_state.has_value());
  EXPECT_EQ(rd.hard_state->term, 5u);
  EXPECT_EQ(rd.hard_state->vote, 2u);
  EXPECT_TRUE(rd.must_sync());
  ASSERT_EQ(of_type(rd.messages, MsgType::kVoteResp).size(), 1u);

  r->step(app(2, 1, 5, 0, 0, {Entry{5, 1, data("x")}}, 0));
  rd = take_ready(*r);
  ASSERT_EQ(rd.entries.size(), 1u);
  EXPECT_TRUE(rd.must_sync());
  ASSERT_EQ(of_type(rd.messages, MsgType::kAppResp).size(), 1u);
}

// After a restart from persisted state, the node remembers its term and
// vote, and does not vote twice in that term.
TEST(RaftPaper, Fig2_RestartKeepsVote) {
  auto r = std::make_unique<Raft>(config(1, {1, 2, 3}), HardState{5, 2, 0});
  r->step(msg(MsgType::kVote, 3, 1, 5));
  auto resp = of_type(read_messages(*r), MsgType::kVoteResp);
  ASSERT_EQ(resp.size(), 1u);
  EXPECT_TRUE(resp[0].reject);
}

// ---- §7 Log compaction ------------------------------------------------------------

// "The leader uses a new RPC called InstallSnapshot to send snapshots to
// followers that are too far behind."
TEST(RaftPaper, Sec7_LeaderSendsSnapshotToLaggingFollower) {
  auto r = new_raft(1, {1, 2, 3});
  make_leader(*r);
  r->step(app_resp(2, 1, r->term(), r->log().last_index()));
  for (int i = 0; i < 5; ++i) r->propose(data("x"));
  r->step(app_resp(2, 1, r->term(), r->log().last_index()));
  read_messages(*r);  // applied up to 6
  r->compact(5, data("image"));
  // Follower 3 never answered; its probe must now be a snapshot.
  r->step(app_resp(3, 1, r->term(), 0));
  tick_n(*r, 1);
  auto ms = read_messages(*r);
  r->step(msg(MsgType::kHeartbeatResp, 3, 1, r->term()));
  for (auto& m : read_messages(*r)) ms.push_back(m);
  auto snaps = of_type(ms, MsgType::kSnap);
  ASSERT_FALSE(snaps.empty());
  EXPECT_EQ(snaps[0].to, 3u);
  EXPECT_EQ(snaps[0].snapshot.meta.index, 5u);
  EXPECT_EQ(snaps[0].snapshot.data, data("image"));
}

// "If existing log entry has same index and term as snapshot's last included
// entry, retain log entries following it and reply"; otherwise "discard the
// entire log" and "reset state machine using snapshot contents".
TEST(RaftPaper, Sec7_FollowerInstallsSnapshot) {
  Snapshot s;
  s.meta = SnapshotMeta{3, 2, {1, 2, 3}};
  s.data = data("image");

  auto keep = raft_with_log(config(1, {1, 2, 3}), {1, 2, 2, 2, 2}, 2);
  Message m = msg(MsgType::kSnap, 2, 1, 2);
  m.snapshot = s;
  keep->step(m);
  EXPECT_EQ(keep->log().last_index(), 5u) << "matching prefix: entries after it kept";
  EXPECT_EQ(keep->log().committed(), 3u);
  EXPECT_TRUE(take_ready(*keep).snapshot.empty());

  auto replace = raft_with_log(config(1, {1, 2, 3}), {1, 1, 1, 1, 1}, 2);
  replace->step(m);
  EXPECT_EQ(replace->log().last_index(), 3u);
  EXPECT_EQ(replace->log().committed(), 3u);
  Ready rd = take_ready(*replace);
  EXPECT_EQ(rd.snapshot, s) << "handed out to persist and restore";
  auto resp = of_type(rd.messages, MsgType::kAppResp);
  ASSERT_EQ(resp.size(), 1u);
  EXPECT_EQ(resp[0].index, 3u);
  // The log continues after the snapshot.
  replace->step(app(2, 1, 2, 3, 2, {Entry{2, 4, data("y")}}, 4));
  EXPECT_EQ(replace->log().committed(), 4u);
}

// ---- thesis: PreVote, CheckQuorum, ReadIndex, leases ----------------------------

// Thesis §9.6: a pre-candidate does not bump its term, so a node returning
// from a partition cannot depose a stable leader.
TEST(RaftPaper, Thesis9_6_PreVoteDoesNotDisrupt) {
  std::vector<std::unique_ptr<Raft>> nodes;
  for (NodeId id = 1; id <= 3; ++id) {
    Config c = config(id, {1, 2, 3});
    c.pre_vote = true;
    nodes.push_back(std::make_unique<Raft>(c));
  }
  Network net(std::move(nodes));
  net.campaign(1);
  net.settle();
  ASSERT_EQ(net[1].role(), Role::kLeader);
  Term t = net[1].term();
  net.isolate(3);
  for (int i = 0; i < 100; ++i) {  // many election timeouts alone
    net[3].tick();
    net.settle();
  }
  EXPECT_EQ(net[3].term(), t) << "pre-elections that fail leave the term alone";
  EXPECT_EQ(net[3].role(), Role::kPreCandidate);
  net.recover();
  net[3].campaign();
  net.settle();
  EXPECT_EQ(net[1].role(), Role::kLeader);
  EXPECT_EQ(net[1].term(), t);
}

// Thesis §6.2: with CheckQuorum a leader that cannot reach a majority for an
// election timeout steps down.
TEST(RaftPaper, Thesis6_2_CheckQuorumStepsDown) {
  Config c = config(1, {1, 2, 3});
  c.check_quorum = true;
  auto r = std::make_unique<Raft>(c);
  tick_n(*r, c.election_ticks_min);  // out of the boot guard
  make_leader(*r);
  tick_n(*r, c.election_ticks_min);
  EXPECT_EQ(r->role(), Role::kLeader) << "a new leader gets one timeout of grace";
  tick_n(*r, c.election_ticks_min);
  EXPECT_EQ(r->role(), Role::kFollower);
}

// Thesis §6.4: ReadIndex. The read point is the commit index, but only once
// the leader has committed an entry of its term and a quorum answered a
// heartbeat sent after the request.
TEST(RaftPaper, Thesis6_4_ReadIndexNeedsQuorumHeartbeat) {
  auto r = new_raft(1, {1, 2, 3});
  make_leader(*r);
  EXPECT_TRUE(r->read_index(7));
  EXPECT_TRUE(take_ready(*r).read_states.empty()) << "no-op of the term not committed";
  r->step(app_resp(2, 1, r->term(), r->log().last_index()));  // commits it
  auto beats = of_type(read_messages(*r), MsgType::kHeartbeat);
  ASSERT_FALSE(beats.empty());
  uint64_t round = beats.back().round;
  Message hb = msg(MsgType::kHeartbeatResp, 3, 1, r->term());
  hb.round = round - 1;  // an answer to an earlier round proves nothing
  r->step(hb);
  EXPECT_TRUE(take_ready(*r).read_states.empty());
  hb.round = round;
  r->step(hb);
  Ready rd = take_ready(*r);
  ASSERT_EQ(rd.read_states.size(), 1u);
  EXPECT_EQ(rd.read_states[0], (ReadState{r->log().committed(), 7}));
  EXPECT_FALSE(new_raft(2, {1, 2, 3})->read_index(1)) << "followers refuse";
}

// Thesis §6.4.1: with a lease, reads are answered without a heartbeat round
// while the lease, counted from the confirmed round's send time, lasts.
TEST(RaftPaper, Thesis6_4_1_LeaseReads) {
  Config c = config(1, {1, 2, 3}, 20, 2);
  c.check_quorum = true;
  c.lease_reads = true;
  c.max_clock_drift_ppm = 0;
  auto r = std::make_unique<Raft>(c);
  make_leader(*r);
  r->step(app_resp(2, 1, r->term(), r->log().last_index()));
  read_messages(*r);
  EXPECT_FALSE(r->lease_valid());
  tick_n(*r, 2);  // heartbeat round 1
  auto beats = of_type(read_messages(*r), MsgType::kHeartbeat);
  ASSERT_FALSE(beats.empty());
  Message hb = msg(MsgType::kHeartbeatResp, 2, 1, r->term());
  hb.round = beats.back().round;
  r->step(hb);
  EXPECT_TRUE(r->lease_valid());
  ASSERT_TRUE(r->read_index(9));
  Ready rd = take_ready(*r);
  ASSERT_EQ(rd.read_states.size(), 1u);
  EXPECT_TRUE(of_type(rd.messages, MsgType::kHeartbeat).empty()) << "no extra round";
  // Without fresh acknowledgements the lease runs out before a follower
  // could vote for anyone else.
  tick_n(*r, c.lease_ticks());
  EXPECT_FALSE(r->lease_valid());
  EXPECT_LT(c.lease_ticks(), c.election_ticks_min);
}

// Thesis §6.2 / §4.2.3: with CheckQuorum, a follower that heard from the
// leader within the minimum election timeout ignores vote requests -- the
// other half of the lease argument.
TEST(RaftPaper, Thesis6_2_FollowerInLeaseIgnoresVotes) {
  Config c = config(1, {1, 2, 3});
  c.check_quorum = true;
  auto r = std::make_unique<Raft>(c);
  Message v = msg(MsgType::kVote, 3, 1, 1);
  r->step(v);
  EXPECT_EQ(r->term(), 0u) << "boot guard: we may have promised a leader before a crash";
  EXPECT_TRUE(read_messages(*r).empty());
  r->step(app(2, 1, 1, 0, 0, {}, 0));
  v.term = 2;
  r->step(v);
  EXPECT_EQ(r->term(), 1u);
  EXPECT_EQ(r->vote(), kNoNode);
  EXPECT_EQ(r->leader(), 2u);
}

}  // namespace
}  // namespace raft_test
