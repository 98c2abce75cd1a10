// The stack's counters, per protocol: what came in, what went out, and
// every reason a packet was dropped. One list (NET_COUNTERS) defines the
// fields and their printed names, so a new counter cannot be forgotten in
// the report. Naming: `drop_*` is an input packet refused for that reason,
// `tx_fail_*` an output packet that never left; the rest are events.
#pragma once

#include <stdint.h>

namespace net {

// The `frag` group: rx and tx count fragments, tx_datagrams the datagrams
// sent in fragments, reassembled the datagrams put back together. Each
// drop_* counts the fragment refused (overlap, bad_total and no_memory
// also discard what its datagram held, see reassembly.h); timeouts and
// evicted_* count whole datagrams given up; tx_fail_cut counts datagrams
// whose later fragments the NIC refused after earlier ones had left.
//
// X(protocol, name): counter `protocol_name`, printed as "protocol name=N".
#define NET_COUNTERS(X)                                                        \
  /* Ethernet */                                                               \
  X(eth, rx) X(eth, tx) X(eth, drop_runt) X(eth, drop_oversize)                \
  X(eth, drop_not_for_us) X(eth, drop_unknown_type) X(eth, tx_fail_device_busy) \
  /* ARP */                                                                    \
  X(arp, rx) X(arp, drop_truncated) X(arp, drop_unsupported)                   \
  X(arp, drop_bad_operation) X(arp, drop_bad_sender) X(arp, conflicts)         \
  X(arp, tx_requests) X(arp, tx_replies) X(arp, tx_announcements)              \
  X(arp, learned) X(arp, resolved) X(arp, resolve_failed) X(arp, expired)      \
  X(arp, queued) X(arp, tx_fail_queue_full) X(arp, tx_fail_unresolved)         \
  X(arp, tx_fail_cache_full)                                                   \
  /* IPv4 */                                                                   \
  X(ip, rx) X(ip, tx) X(ip, drop_truncated) X(ip, drop_bad_version)            \
  X(ip, drop_bad_header_length) X(ip, drop_bad_total_length)                   \
  X(ip, drop_bad_checksum) X(ip, drop_bad_ttl)                                 \
  X(ip, drop_not_for_us) X(ip, drop_bad_source) X(ip, drop_unknown_protocol)   \
  X(ip, tx_fail_no_route) X(ip, tx_fail_too_big)                               \
  /* IPv4 fragments (see the note above) */                                    \
  X(frag, rx) X(frag, tx) X(frag, reassembled) X(frag, tx_datagrams)           \
  X(frag, drop_bad_length) X(frag, drop_too_big) X(frag, drop_duplicate)       \
  X(frag, drop_overlap) X(frag, drop_bad_total) X(frag, drop_no_memory)        \
  X(frag, drop_discarded) X(frag, timeouts) X(frag, evicted_table_full)        \
  X(frag, evicted_memory) X(frag, tx_fail_cut)                                 \
  /* ICMP */                                                                   \
  X(icmp, rx) X(icmp, tx) X(icmp, drop_truncated) X(icmp, drop_bad_checksum)   \
  X(icmp, drop_broadcast_echo) X(icmp, drop_unmatched_reply)                   \
  X(icmp, drop_other_type) X(icmp, echo_requests) X(icmp, echo_replies)        \
  /* UDP */                                                                    \
  X(udp, rx) X(udp, tx) X(udp, drop_truncated) X(udp, drop_bad_length)         \
  X(udp, drop_bad_checksum) X(udp, drop_bad_port) X(udp, drop_no_socket)       \
  X(udp, delivered) X(udp, tx_fail_too_big) X(udp, tx_fail_bad_port)

struct NetStats {
#define NET_COUNTER_FIELD(proto, name) uint64_t proto##_##name = 0;
  NET_COUNTERS(NET_COUNTER_FIELD)
#undef NET_COUNTER_FIELD

  // Calls fn(protocol, name, value) for every counter, in the list's order.
  template <typename Fn>
  void for_each(Fn&& fn) const {
#define NET_COUNTER_VISIT(proto, name) fn(#proto, #name, proto##_##name);
    NET_COUNTERS(NET_COUNTER_VISIT)
#undef NET_COUNTER_VISIT
  }

  // Input packets refused, all reasons together (the drop_* counters).
  uint64_t total_drops() const;
};

}  // namespace net
