// IPv4 reassembly (RFC 791, with RFC 5722's rule on overlaps): puts the
// fragments of a datagram back together, keyed by (source, destination,
// protocol, identification).
//
// Each datagram in progress keeps its fragments in a map by offset. A
// fragment is refused (and counted, frag.drop_*) if it
//   - is empty, or is not the last one and not a multiple of 8 bytes long;
//   - ends past what a datagram can hold (65535 with a 20-byte header);
//   - is an exact copy of one held (tolerated: dropped, nothing else);
//   - overlaps one held in any other way, or disagrees with the total
//     length the last fragment (MF=0) fixed: the whole datagram is then
//     discarded, and later fragments with its key are dropped until its
//     timeout (an attacker cannot splice data into it: RFC 5722).
//
// Bounds (ReassemblyConfig): at most `max_datagrams` in progress; a new
// one evicts the oldest (a discarded one first), as a stale datagram is
// the least likely to complete and new traffic must not be locked out for
// the timeout. At most `max_bytes` held in all, each fragment charged its
// length plus kFragmentOverhead (so that floods of 8-byte fragments are
// bounded by their real cost); a fragment that does not fit evicts the
// oldest other datagrams, and one whose own datagram would exceed the
// bound discards that datagram. `timeout_ns` after its first fragment an
// incomplete datagram is freed (frag.timeouts).
//
// Threading: none (the event loop). The destructor cancels every timer.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <compare>
#include <map>
#include <vector>

#include "guest-kernel/net/clock.h"
#include "guest-kernel/net/stats.h"
#include "guest-kernel/net/wire.h"

namespace net {

struct ReassemblyConfig {
  size_t max_datagrams = 16;
  size_t max_bytes = 256 * 1024;
  uint64_t timeout_ns = 5 * kSecond;
};

class Reassembly {
 public:
  // What a held fragment costs beyond its bytes (map node, vector, heap).
  static constexpr size_t kFragmentOverhead = 64;

  Reassembly(Clock& clock, NetStats& stats, const ReassemblyConfig& config);
  ~Reassembly();
  Reassembly(const Reassembly&) = delete;
  Reassembly& operator=(const Reassembly&) = delete;

  // One fragment (ip.is_fragment()) that passed the IPv4 input checks.
  // Returns true when it completes its datagram: `*out` then holds the
  // datagram's whole payload, for the protocol's input.
  bool input(const Ipv4Packet& ip, std::vector<uint8_t>* out);

  size_t datagrams() const { return entries_.size(); }  // discarded ones included
  size_t bytes_held() const { return bytes_held_; }      // as charged
  const ReassemblyConfig& config() const { return config_; }

 private:
  struct Key {
    uint32_t src, dst;
    uint16_t id;
    uint8_t protocol;
    auto operator<=>(const Key&) const = default;
  };
  struct Entry {
    std::map<uint32_t, std::vector<uint8_t>> fragments;  // by offset
    size_t payload_held = 0;   // bytes of payload in `fragments`
    size_t charged = 0;        // against max_bytes
    uint32_t end_seen = 0;     // the furthest fragment end so far
    uint32_t total = 0;        // payload length, once total_known
    bool total_known = false;
    bool discarded = false;    // given up: its fragments are refused
    uint64_t serial = 0;       // creation order: lower is older
    Clock::TimerId timer = 0;
  };
  using Map = std::map<Key, Entry>;

  // Frees what `e` holds and marks it so its later fragments are refused.
  void discard(Entry& e);
  void erase(Map::iterator it);
  // The oldest entry other than `keep`; discarded ones first if asked.
  Map::iterator oldest(Map::iterator keep, bool discarded_first, bool live_only);
  void expire(const Key& key);

  Clock& clock_;
  NetStats& stats_;
  ReassemblyConfig config_;
  Map entries_;
  size_t bytes_held_ = 0;
  uint64_t next_serial_ = 1;
};

}  // namespace net
