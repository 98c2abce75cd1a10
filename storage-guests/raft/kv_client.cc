#include "storage-guests/raft/kv_client.h"

#include <utility>

namespace sg::raft {

KvClient::KvClient(Env& env, KvClientConfig config)
    : env_(env), cfg_(std::move(config)), servers_(cfg_.servers),
      // The node id doubles as the session id: unique in a cluster, and a
      // client process never outlives its id in our tests and tools.
      session_(ClientId(env.self())) {
  RAFT_INVARIANT(!servers_.empty());
  target_ = env_.random() % servers_.size();
}

void KvClient::get(const std::string& key, Callback done) {
  KvRequest q;
  q.op = KvOp::kGet;
  q.key = key;
  submit(std::move(q), std::move(done));
}

void KvClient::put(const std::string& key, const std::string& value, Callback done) {
  KvRequest q;
  q.op = KvOp::kPut;
  q.key = key;
  q.value = value;
  submit(std::move(q), std::move(done));
}

void KvClient::del(const std::string& key, Callback done) {
  KvRequest q;
  q.op = KvOp::kDel;
  q.key = key;
  submit(std::move(q), std::move(done));
}

void KvClient::cas(const std::string& key, std::optional<std::string> expected,
                   const std::string& value, Callback done) {
  KvRequest q;
  q.op = KvOp::kCas;
  q.key = key;
  q.value = value;
  q.expected = std::move(expected);
  submit(std::move(q), std::move(done));
}

void KvClient::submit(KvRequest q, Callback done) {
  RAFT_INVARIANT(!op_.has_value());
  q.id = session_.next();
  op_ = Op{std::move(q), std::move(done), env_.now() + cfg_.op_timeout};
  attempt();
}

void KvClient::attempt() {
  if (!op_) return;
  if (env_.now() >= op_->deadline) {
    complete(KvOutcome::kTimeout, std::nullopt);
    return;
  }
  env_.send(servers_[target_], encode_request(op_->q));
  if (timer_armed_) env_.cancel_timer(attempt_timer_);
  TimeNs left = op_->deadline - env_.now();
  attempt_timer_ = env_.set_timer(left < cfg_.attempt_timeout ? left : cfg_.attempt_timeout);
  timer_armed_ = true;
}

void KvClient::next_server() { target_ = (target_ + 1) % servers_.size(); }

void KvClient::on_timer(TimerId id) {
  if (!timer_armed_ || id != attempt_timer_) return;
  timer_armed_ = false;
  // No answer: the server may be down or partitioned, or merely slow. Ask
  // another one with the same RequestId.
  next_server();
  attempt();
}

void KvClient::on_message(NodeId from, const Bytes& message) {
  std::optional<KvResponse> p = decode_response(message);
  if (!p || !op_ || !(p->id == op_->q.id)) return;  // stale reply to a retry
  switch (p->status) {
    case KvStatus::kOk:
      complete(KvOutcome::kOk, p->value);
      return;
    case KvStatus::kFail:
      complete(KvOutcome::kFail, std::nullopt);
      return;
    case KvStatus::kNotLeader:
      break;
  }
  if (servers_[target_] != from) return;  // an old attempt's server
  bool hinted = false;
  if (p->leader_hint != kNoNode && p->leader_hint != from) {
    for (size_t i = 0; i < servers_.size(); ++i)
      if (servers_[i] == p->leader_hint) {
        target_ = i;
        hinted = true;
      }
  }
  if (hinted) {
    attempt();
    return;
  }
  // Nobody knows a leader (an election is on): back off, then ask the next
  // server (on_timer), instead of spinning through them.
  if (timer_armed_) env_.cancel_timer(attempt_timer_);
  attempt_timer_ = env_.set_timer(cfg_.retry_backoff);
  timer_armed_ = true;
}

void KvClient::complete(KvOutcome o, const std::optional<std::string>& v) {
  if (timer_armed_) env_.cancel_timer(attempt_timer_);
  timer_armed_ = false;
  Op op = std::move(*op_);
  op_.reset();
  op.done(o, v);
}

}  // namespace sg::raft
