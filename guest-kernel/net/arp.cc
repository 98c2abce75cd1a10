#include "guest-kernel/net/arp.h"

#include <string.h>

#include "guest-kernel/net/stack.h"

namespace net {

Arp::Arp(Stack& stack, const ArpConfig& config) : stack_(stack), config_(config) {
  if (config_.max_requests == 0) config_.max_requests = 1;
  if (config_.max_pending == 0) config_.max_pending = 1;
  if (config_.max_entries == 0) config_.max_entries = 1;
  // Room for one datagram of the largest size, whatever was asked.
  constexpr size_t kLargest = (kIpv4MaxPayload / kFragmentPayload + 1) * kEthMaxFrame;
  if (config_.max_queued_bytes < kLargest) config_.max_queued_bytes = kLargest;
}

Arp::~Arp() {
  for (auto& [ip, e] : entries_)
    if (e.timer) stack_.clock().cancel_timer(e.timer);
}

void Arp::send_arp(uint16_t op, const MacAddress& eth_dst, const MacAddress& target_mac, Ipv4Address target_ip) {
  std::vector<uint8_t> frame(kEthHeaderLen + kArpLen);
  write_eth(frame.data(), eth_dst, stack_.mac(), kEtherTypeArp);
  write_arp(frame.data() + kEthHeaderLen, ArpPacket{op, stack_.mac(), target_mac, stack_.address(), target_ip});
  stack_.transmit(frame);
}

void Arp::announce() {
  // RFC 5227's announcement: a request with our address as both sender
  // and target.
  ++stack_.stats().arp_tx_announcements;
  send_arp(kArpRequest, kBroadcastMac, kZeroMac, stack_.address());
}

void Arp::send_request(Ipv4Address target) {
  ++stack_.stats().arp_tx_requests;
  send_arp(kArpRequest, kBroadcastMac, kZeroMac, target);
}

std::optional<MacAddress> Arp::lookup(Ipv4Address ip) const {
  auto it = entries_.find(ip.value);
  if (it == entries_.end() || !it->second.resolved || stack_.clock().now_ns() >= it->second.expires_ns)
    return std::nullopt;
  return it->second.mac;
}

size_t Arp::pending_datagrams(Ipv4Address ip) const {
  auto it = entries_.find(ip.value);
  return it == entries_.end() ? 0 : it->second.queue.size();
}

size_t Arp::pending_frames(Ipv4Address ip) const {
  auto it = entries_.find(ip.value);
  if (it == entries_.end()) return 0;
  size_t n = 0;
  for (const Frames& d : it->second.queue) n += d.size();
  return n;
}

size_t Arp::bytes_of(const Frames& frames) {
  size_t n = 0;
  for (const auto& f : frames) n += f.size();
  return n;
}

void Arp::erase(std::map<uint32_t, Entry>::iterator it) {
  if (it->second.timer) stack_.clock().cancel_timer(it->second.timer);
  queued_bytes_ -= it->second.queued_bytes;
  entries_.erase(it);
}

void Arp::drop_oldest_queued(Entry& e) {
  const size_t n = bytes_of(e.queue.front());
  e.queued_bytes -= n;
  queued_bytes_ -= n;
  e.queue.pop_front();  // the oldest is the least useful by now
  ++stack_.stats().arp_tx_fail_queue_full;
}

bool Arp::make_room() {
  if (entries_.size() < config_.max_entries) return true;
  // Evict the resolved entry closest to expiry; pending ones hold queued
  // packets and a running retry, so they stay.
  auto victim = entries_.end();
  for (auto it = entries_.begin(); it != entries_.end(); ++it)
    if (it->second.resolved && (victim == entries_.end() || it->second.expires_ns < victim->second.expires_ns))
      victim = it;
  if (victim == entries_.end()) return false;
  erase(victim);
  return true;
}

TxResult Arp::send(Ipv4Address next_hop, Frames&& frames) {
  NetStats& st = stack_.stats();
  auto it = entries_.find(next_hop.value);
  if (it != entries_.end() && it->second.resolved) {
    if (stack_.clock().now_ns() < it->second.expires_ns) return stack_.transmit_frames(frames, it->second.mac);
    // Expired: resolve again, this datagram first in the queue.
    ++st.arp_expired;
    it->second = Entry{};
  }
  // A datagram that would not fit even with this address's queue emptied
  // is refused before anything changes.
  const size_t bytes = bytes_of(frames);
  const size_t own = it == entries_.end() ? 0 : it->second.queued_bytes;
  if (queued_bytes_ - own + bytes > config_.max_queued_bytes) {
    ++st.arp_tx_fail_queue_full;
    return TxResult::kNoResources;
  }
  if (it == entries_.end()) {
    if (!make_room()) {
      ++st.arp_tx_fail_cache_full;
      return TxResult::kNoResources;
    }
    it = entries_.emplace(next_hop.value, Entry{}).first;
  }
  Entry& e = it->second;
  while (!e.queue.empty() && (e.queue.size() >= config_.max_pending || queued_bytes_ + bytes > config_.max_queued_bytes))
    drop_oldest_queued(e);
  e.queue.push_back(std::move(frames));
  e.queued_bytes += bytes;
  queued_bytes_ += bytes;
  ++st.arp_queued;
  if (e.requests_sent == 0) {
    e.requests_sent = 1;
    send_request(next_hop);
    e.timer = stack_.clock().add_timer(config_.retry_interval_ns, [this, next_hop] { retry(next_hop); });
  }
  return TxResult::kQueued;
}

void Arp::retry(Ipv4Address ip) {
  auto it = entries_.find(ip.value);
  if (it == entries_.end() || it->second.resolved) return;  // defensive: erase() cancels the timer
  Entry& e = it->second;
  e.timer = 0;
  if (e.requests_sent < config_.max_requests) {
    ++e.requests_sent;
    send_request(ip);
    e.timer = stack_.clock().add_timer(config_.retry_interval_ns, [this, ip] { retry(ip); });
    return;
  }
  ++stack_.stats().arp_resolve_failed;
  stack_.stats().arp_tx_fail_unresolved += e.queue.size();
  erase(it);
}

void Arp::learn(Ipv4Address ip, const MacAddress& mac, bool create) {
  auto it = entries_.find(ip.value);
  if (it == entries_.end()) {
    if (!create || !make_room()) return;
    it = entries_.emplace(ip.value, Entry{}).first;
  }
  Entry& e = it->second;
  const bool was_pending = !e.resolved;
  if (e.timer) stack_.clock().cancel_timer(e.timer);
  e.timer = 0;
  e.resolved = true;
  e.requests_sent = 0;
  e.mac = mac;
  e.expires_ns = stack_.clock().now_ns() + config_.entry_ttl_ns;
  ++stack_.stats().arp_learned;
  if (was_pending && !e.queue.empty()) ++stack_.stats().arp_resolved;
  // Take the queue out first: transmit() cannot reach the ARP table, but
  // the entry must not be relied upon across calls out of this class.
  std::deque<Frames> queue;
  queue.swap(e.queue);
  queued_bytes_ -= e.queued_bytes;
  e.queued_bytes = 0;
  for (Frames& frames : queue) stack_.transmit_frames(frames, mac);
}

void Arp::input(const uint8_t* data, size_t len) {
  NetStats& st = stack_.stats();
  ++st.arp_rx;
  ArpPacket p;
  switch (parse_arp(data, len, &p)) {
    case ArpError::kNone: break;
    case ArpError::kTruncated: ++st.arp_drop_truncated; return;
    case ArpError::kUnsupported: ++st.arp_drop_unsupported; return;
    case ArpError::kBadOperation: ++st.arp_drop_bad_operation; return;
    case ArpError::kBadSender: ++st.arp_drop_bad_sender; return;
  }
  const Ipv4Address us = stack_.address();
  if (p.sender_ip == us) {
    // Someone else claims our address (our own frames never come back).
    if (!(p.sender_mac == stack_.mac())) ++st.arp_conflicts;
    return;
  }
  const bool for_us = p.target_ip == us;
  // A probe (sender 0.0.0.0) teaches nothing; otherwise RFC 826: update
  // an existing entry, create one if the packet is addressed to us.
  if (!p.sender_ip.is_zero()) learn(p.sender_ip, p.sender_mac, for_us);
  if (p.op == kArpRequest && for_us) {
    ++st.arp_tx_replies;
    send_arp(kArpReply, p.sender_mac, p.sender_mac, p.sender_ip);
  }
}

}  // namespace net
