#include "guest-kernel/net/icmp.h"

#include <string.h>

#include <utility>

#include "guest-kernel/net/stack.h"

namespace net {

Icmp::Icmp(Stack& stack) : stack_(stack) {}

Icmp::~Icmp() {
  for (auto& [id, s] : sessions_)
    if (s.timer) stack_.clock().cancel_timer(s.timer);
}

void Icmp::input(Ipv4Address src, bool broadcast, const uint8_t* data, size_t len) {
  NetStats& st = stack_.stats();
  ++st.icmp_rx;
  IcmpMessage m;
  switch (parse_icmp(data, len, &m)) {
    case IcmpError::kNone: break;
    case IcmpError::kTruncated: ++st.icmp_drop_truncated; return;
    case IcmpError::kBadChecksum: ++st.icmp_drop_bad_checksum; return;
  }
  if (m.type == kIcmpEchoRequest && m.code == 0) {
    if (broadcast) {
      ++st.icmp_drop_broadcast_echo;  // a smurf amplifier we will not be
      return;
    }
    ++st.icmp_echo_requests;
    answer_echo(src, m);
  } else if (m.type == kIcmpEchoReply && m.code == 0) {
    echo_reply(src, m);
  } else {
    ++st.icmp_drop_other_type;
  }
}

void Icmp::answer_echo(Ipv4Address src, const IcmpMessage& m) {
  // The reply carries the request's identifier, sequence and data.
  std::vector<uint8_t> frame = Stack::new_ipv4_frame(kIcmpHeaderLen + m.data_len);
  uint8_t* icmp = frame.data() + Stack::kIpv4PayloadOffset;
  memcpy(icmp + kIcmpHeaderLen, m.data, m.data_len);
  write_icmp_echo(icmp, kIcmpEchoReply, m.id, m.seq, m.data_len);
  if (tx_ok(stack_.send_ipv4(src, kProtoIcmp, std::move(frame)))) ++stack_.stats().icmp_tx;
}

void Icmp::fill_payload(uint16_t id, uint16_t seq, uint8_t* out) {
  // A pattern unique to (id, seq), so that a reply echoing another
  // request's data does not count.
  for (size_t i = 0; i < kPingDataLen; ++i) out[i] = static_cast<uint8_t>(i + id * 7 + seq * 13);
}

void Icmp::echo_reply(Ipv4Address src, const IcmpMessage& m) {
  NetStats& st = stack_.stats();
  auto it = sessions_.find(m.id);
  if (it == sessions_.end() || !(it->second.dst == src) || m.seq == 0 || m.seq > it->second.sent_at.size() ||
      it->second.answered[m.seq - 1] || m.data_len != kPingDataLen) {
    ++st.icmp_drop_unmatched_reply;
    return;
  }
  uint8_t expect[kPingDataLen];
  fill_payload(m.id, m.seq, expect);
  if (memcmp(expect, m.data, kPingDataLen) != 0) {
    ++st.icmp_drop_unmatched_reply;
    return;
  }
  ++st.icmp_echo_replies;
  Session& s = it->second;
  s.answered[m.seq - 1] = true;
  ++s.received;
  const uint64_t rtt = stack_.clock().now_ns() - s.sent_at[m.seq - 1];
  const uint16_t id = m.id;
  const bool all = s.received == s.count;
  notify(id, PingEvent{false, src, m.seq, rtt, static_cast<unsigned>(s.sent_at.size()), s.received});
  if (all && sessions_.count(id)) finish(id);
}

uint16_t Icmp::ping(Ipv4Address dst, unsigned count, uint64_t interval_ns, PingHandler handler, uint64_t timeout_ns) {
  if (count == 0 || count > 0xffff || sessions_.size() >= 0xffff) return 0;
  while (next_id_ == 0 || sessions_.count(next_id_)) ++next_id_;
  const uint16_t id = next_id_++;
  Session& s = sessions_[id];
  s.dst = dst;
  s.count = count;
  s.interval_ns = interval_ns;
  s.timeout_ns = timeout_ns;
  s.handler = std::move(handler);
  s.serial = next_serial_++;
  s.sent_at.reserve(count);
  s.answered.reserve(count);
  send_next(id);
  return id;
}

void Icmp::send_next(uint16_t id) {
  Session& s = sessions_.at(id);
  s.timer = 0;
  const uint16_t seq = static_cast<uint16_t>(s.sent_at.size() + 1);
  std::vector<uint8_t> frame = Stack::new_ipv4_frame(kIcmpHeaderLen + kPingDataLen);
  uint8_t* icmp = frame.data() + Stack::kIpv4PayloadOffset;
  fill_payload(id, seq, icmp + kIcmpHeaderLen);
  write_icmp_echo(icmp, kIcmpEchoRequest, id, seq, kPingDataLen);
  // The request counts as sent even if the route or ARP fails: like
  // ping(8), the summary says how many were attempted.
  s.sent_at.push_back(stack_.clock().now_ns());
  s.answered.push_back(false);
  if (tx_ok(stack_.send_ipv4(s.dst, kProtoIcmp, std::move(frame)))) ++stack_.stats().icmp_tx;
  const bool last = s.sent_at.size() == s.count;
  s.timer = stack_.clock().add_timer(last ? s.timeout_ns : s.interval_ns, [this, id, last] {
    if (!sessions_.count(id)) return;
    if (last) {
      sessions_.at(id).timer = 0;
      finish(id);
    } else {
      send_next(id);
    }
  });
}

void Icmp::finish(uint16_t id) {
  auto it = sessions_.find(id);
  Session s = std::move(it->second);
  sessions_.erase(it);
  if (s.timer) stack_.clock().cancel_timer(s.timer);
  s.handler(PingEvent{true, s.dst, 0, 0, static_cast<unsigned>(s.sent_at.size()), s.received});
}

bool Icmp::cancel_ping(uint16_t id) {
  auto it = sessions_.find(id);
  if (it == sessions_.end()) return false;
  if (it->second.timer) stack_.clock().cancel_timer(it->second.timer);
  sessions_.erase(it);
  return true;
}

void Icmp::notify(uint16_t id, const PingEvent& e) {
  // Moved out for the call: a handler that cancels its session destroys
  // the session, which must not destroy the running handler.
  Session& s = sessions_.at(id);
  const uint64_t serial = s.serial;
  PingHandler h = std::move(s.handler);
  h(e);
  auto it = sessions_.find(id);
  if (it != sessions_.end() && it->second.serial == serial) it->second.handler = std::move(h);
}

}  // namespace net
