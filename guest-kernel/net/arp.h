// ARP for IPv4 over Ethernet (RFC 826): the neighbour cache of one
// interface, address resolution with retries, and answers for our address.
//
// Output: the IPv4 layer hands send() one datagram, as the frames it went
// out in (one, or its fragments), destination MAC still unknown. A fresh
// cache entry fills it in at once; otherwise the datagram waits in a small
// per-address queue while requests go out `max_requests` times,
// `retry_interval_ns` apart. A reply flushes the queue; silence after the
// last request drops it. The queue holds whole datagrams, never part of
// one: at most `max_pending` per address (the oldest dropped when full)
// and `max_queued_bytes` of frames over all addresses (the oldest of the
// same address dropped to make room; a datagram that cannot fit even then
// is refused). ARP's counters count datagrams.
//
// Input: a request for our address is answered; the sender of a request
// for us, and of any packet about an address already cached, is learned
// (RFC 826's merge rule), so a host that pings us can be answered without
// a round trip. Entries expire `entry_ttl_ns` after they were learned and
// are resolved again on next use.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <deque>
#include <map>
#include <optional>
#include <vector>

#include "guest-kernel/net/clock.h"
#include "guest-kernel/net/tx_result.h"
#include "guest-kernel/net/wire.h"

namespace net {

class Stack;

// The frames of one IPv4 datagram, in order: one, or its fragments.
using Frames = std::vector<std::vector<uint8_t>>;

struct ArpConfig {
  uint64_t entry_ttl_ns = 60 * kSecond;
  uint64_t retry_interval_ns = 1 * kSecond;
  unsigned max_requests = 3;
  size_t max_pending = 8;    // datagrams queued per unresolved address
  // Frame bytes queued over all addresses: seven 64 KiB datagrams. Also
  // bounds what a flood of large pings from unresolved sources can hold.
  size_t max_queued_bytes = 512 * 1024;
  size_t max_entries = 64;   // resolved and pending together
};

class Arp {
 public:
  Arp(Stack& stack, const ArpConfig& config);
  ~Arp();
  Arp(const Arp&) = delete;
  Arp& operator=(const Arp&) = delete;

  // Broadcasts a gratuitous ARP request for our address (at interface up),
  // so neighbours refresh stale entries.
  void announce();

  // An ARP packet (the Ethernet payload).
  void input(const uint8_t* data, size_t len);

  // Sends a datagram's `frames` (Ethernet headers written but for the
  // destination MAC) to the station at `next_hop`, resolving it first if
  // needed.
  TxResult send(Ipv4Address next_hop, Frames&& frames);

  // The cached MAC for `ip` if resolved and not expired.
  std::optional<MacAddress> lookup(Ipv4Address ip) const;
  size_t entry_count() const { return entries_.size(); }
  size_t pending_datagrams(Ipv4Address ip) const;
  size_t pending_frames(Ipv4Address ip) const;
  size_t queued_bytes() const { return queued_bytes_; }  // all addresses
  const ArpConfig& config() const { return config_; }     // as adjusted

 private:
  struct Entry {
    bool resolved = false;
    MacAddress mac{};
    uint64_t expires_ns = 0;       // resolved entries
    unsigned requests_sent = 0;    // pending entries
    Clock::TimerId timer = 0;      // pending entries: next retry
    std::deque<Frames> queue;
    size_t queued_bytes = 0;       // frame bytes in `queue`
  };

  void send_request(Ipv4Address target);
  void send_arp(uint16_t op, const MacAddress& eth_dst, const MacAddress& target_mac, Ipv4Address target_ip);
  void retry(Ipv4Address ip);
  // Records `mac` for `ip` and sends what waited for it.
  void learn(Ipv4Address ip, const MacAddress& mac, bool create);
  // Makes room for one more entry; false if every entry is pending.
  bool make_room();
  void erase(std::map<uint32_t, Entry>::iterator it);
  void drop_oldest_queued(Entry& e);
  static size_t bytes_of(const Frames& frames);

  Stack& stack_;
  ArpConfig config_;
  std::map<uint32_t, Entry> entries_;  // by IPv4 address
  size_t queued_bytes_ = 0;            // sum of the entries' queued_bytes
};

}  // namespace net
