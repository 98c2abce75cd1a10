// The client side of the Raft key-value service, as an sg::Node so that it
// runs in the simulator next to the servers (and, through the gateway, on a
// host). One operation at a time (the session rule of
// storage-guests/common/rpc.h): it finds the leader, retries the same
// RequestId until a definite answer arrives or the operation's deadline
// passes, and reports exactly one outcome per operation:
//
//   kOk      the operation took effect (for get: with the value read);
//   kFail    it definitely did not: a cas mismatch;
//   kTimeout it may or may not have taken effect (history: info).
//
// kNotLeader answers are never final: an earlier attempt may already sit in
// some leader's log, so giving up on one would misreport a write that later
// commits. Freestanding-safe.
#pragma once

#include <functional>
#include <optional>
#include <string>

#include "storage-guests/common/env.h"
#include "storage-guests/common/rpc.h"
#include "storage-guests/raft/wire.h"

namespace sg::raft {

enum class KvOutcome : uint8_t { kOk, kFail, kTimeout };

struct KvClientConfig {
  std::vector<NodeId> servers;
  // Per attempt: how long to wait for an answer before asking another
  // server. A bit over an election timeout plus a commit round.
  TimeNs attempt_timeout = 400'000'000;
  // Back-off before retrying when nobody knows the leader.
  TimeNs retry_backoff = 50'000'000;
  // The whole operation; past it the outcome is kTimeout.
  TimeNs op_timeout = 3'000'000'000;
};

class KvClient : public Node {
 public:
  using Callback = std::function<void(KvOutcome, const std::optional<std::string>& value)>;

  KvClient(Env& env, KvClientConfig config);

  // Starts an operation; requires !busy(). `done` runs exactly once, from
  // inside a later handler of this node.
  void get(const std::string& key, Callback done);
  void put(const std::string& key, const std::string& value, Callback done);
  void del(const std::string& key, Callback done);
  void cas(const std::string& key, std::optional<std::string> expected,
           const std::string& value, Callback done);
  bool busy() const { return op_.has_value(); }
  NodeId leader_guess() const { return servers_[target_]; }

  void start() override {}
  void on_message(NodeId from, const Bytes& message) override;
  void on_timer(TimerId id) override;
  void on_sync(uint64_t) override {}

 private:
  struct Op {
    KvRequest q;
    Callback done;
    TimeNs deadline;
  };
  void submit(KvRequest q, Callback done);
  void attempt();
  void next_server();
  void complete(KvOutcome o, const std::optional<std::string>& v);

  Env& env_;
  KvClientConfig cfg_;
  std::vector<NodeId> servers_;
  size_t target_ = 0;
  ClientSession session_;
  std::optional<Op> op_;
  TimerId attempt_timer_ = 0;
  bool timer_armed_ = false;
};

}  // namespace sg::raft
