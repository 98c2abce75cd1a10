// Helpers for stepping the pure Raft core directly, in the scripted style of
// etcd's raft_paper_test.go: build a node, feed it messages, look at the
// messages and state it produces. No simulator, no encoding, no disk: a
// Ready is "persisted" by taking it.
#pragma once

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <set>
#include <vector>

#include "storage-guests/raft/raft.h"

namespace raft_test {

using namespace sg::raft;
using sg::Bytes;
using sg::NodeId;
using sg::kNoNode;

// A fixed, seedable stream (splitmix64) so elections are reproducible.
inline std::function<uint64_t()> seeded(uint64_t seed) {
  auto state = std::make_shared<uint64_t>(seed);
  return [state] {
    uint64_t z = (*state += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
  };
}

inline Config config(NodeId id, std::vector<NodeId> voters, int election = 10,
                     int heartbeat = 1) {
  Config c;
  c.id = id;
  c.voters = std::move(voters);
  c.election_ticks_min = election;
  c.election_ticks_max = 2 * election - 1;  // etcd: [election, 2*election)
  c.heartbeat_ticks = heartbeat;
  c.random = seeded(id * 7919 + 1);
  c.pre_vote = false;  // the paper's algorithm unless a test opts in
  return c;
}

inline std::unique_ptr<Raft> new_raft(NodeId id, std::vector<NodeId> voters,
                                      int election = 10, int heartbeat = 1) {
  return std::make_unique<Raft>(config(id, std::move(voters), election, heartbeat));
}

// A node whose log holds entries with the given terms (index 1, 2, ...) and
// whose hard state has `term`, as if recovered from disk.
inline std::unique_ptr<Raft> raft_with_log(Config c, const std::vector<Term>& terms,
                                           Term term, Index commit = 0) {
  std::vector<Entry> es;
  for (size_t i = 0; i < terms.size(); ++i) es.push_back(Entry{terms[i], i + 1, {}});
  HardState hs{term, kNoNode, commit};
  return std::make_unique<Raft>(std::move(c), hs, Snapshot{}, std::move(es));
}

// Takes everything the node has to say (and "persists" it).
inline std::vector<Message> read_messages(Raft& r) {
  std::vector<Message> out;
  while (r.has_ready()) {
    Ready rd = r.ready();
    for (Message& m : rd.messages) out.push_back(std::move(m));
    r.advance(rd);
  }
  return out;
}

inline Ready take_ready(Raft& r) {
  Ready rd = r.ready();
  r.advance(rd);
  return rd;
}

inline Message msg(MsgType type, NodeId from, NodeId to, Term term) {
  Message m;
  m.type = type;
  m.from = from;
  m.to = to;
  m.term = term;
  return m;
}

inline Message app(NodeId from, NodeId to, Term term, Index prev, Term prev_term,
                   std::vector<Entry> entries, Index commit) {
  Message m = msg(MsgType::kApp, from, to, term);
  m.index = prev;
  m.log_term = prev_term;
  m.entries = std::move(entries);
  m.commit = commit;
  return m;
}

inline Message vote_resp(NodeId from, NodeId to, Term term, bool reject = false) {
  Message m = msg(MsgType::kVoteResp, from, to, term);
  m.reject = reject;
  return m;
}

inline Message app_resp(NodeId from, NodeId to, Term term, Index index) {
  Message m = msg(MsgType::kAppResp, from, to, term);
  m.index = index;
  return m;
}

inline Bytes data(const char* s) { return Bytes(s, s + __builtin_strlen(s)); }

inline void tick_n(Raft& r, int n) {
  for (int i = 0; i < n; ++i) r.tick();
}

// Campaign and collect a quorum of votes: returns a leader of term+1 whose
// outgoing messages have been drained.
inline void make_leader(Raft& r) {
  r.campaign();
  for (const Message& m : read_messages(r)) {
    if (m.type == MsgType::kVote) r.step(vote_resp(m.to, r.id(), m.term));
    if (r.role() == Role::kLeader) break;
  }
  read_messages(r);
}

// etcd's `network`: delivers messages among in-memory nodes until quiet,
// with optional drops and cut links.
class Network {
 public:
  explicit Network(std::vector<std::unique_ptr<Raft>> nodes) {
    for (auto& n : nodes) {
      NodeId id = n->id();
      nodes_[id] = std::move(n);
    }
  }
  Raft& operator[](NodeId id) { return *nodes_.at(id); }
  void isolate(NodeId id) {
    for (auto& [other, _] : nodes_)
      if (other != id) {
        cut_.insert({id, other});
        cut_.insert({other, id});
      }
  }
  void cut(NodeId a, NodeId b) {
    cut_.insert({a, b});
    cut_.insert({b, a});
  }
  void recover() { cut_.clear(); }
  // Crash: drop its messages until restored (the node keeps its state,
  // which is what a crash with a synced disk looks like to the protocol).
  void down(NodeId id) { down_.insert(id); }
  void up(NodeId id) { down_.erase(id); }

  // Runs every node's pending output, then delivers until no message is
  // left.
  void settle() {
    for (;;) {
      std::vector<Message> q;
      for (auto& [id, n] : nodes_) {
        if (down_.count(id)) {
          read_messages(*n);
          continue;
        }
        for (Message& m : read_messages(*n)) q.push_back(std::move(m));
      }
      if (q.empty()) return;
      for (Message& m : q) {
        if (cut_.count({m.from, m.to}) || down_.count(m.to) || !nodes_.count(m.to)) continue;
        nodes_[m.to]->step(m);
      }
    }
  }
  void campaign(NodeId id) {
    nodes_.at(id)->campaign();
    settle();
  }
  void propose(NodeId id, const char* s) {
    nodes_.at(id)->propose(data(s));
    settle();
  }

 private:
  std::map<NodeId, std::unique_ptr<Raft>> nodes_;
  std::set<std::pair<NodeId, NodeId>> cut_;
  std::set<NodeId> down_;
};

}  // namespace raft_test
