#include "guest-kernel/net/reassembly.h"

#include <string.h>

#include <iterator>

namespace net {

Reassembly::Reassembly(Clock& clock, NetStats& stats, const ReassemblyConfig& config)
    : clock_(clock), stats_(stats), config_(config) {
  if (config_.max_datagrams == 0) config_.max_datagrams = 1;
  // Room for at least one fragment of the largest size.
  if (config_.max_bytes < kFragmentPayload + kFragmentOverhead) config_.max_bytes = kFragmentPayload + kFragmentOverhead;
}

Reassembly::~Reassembly() {
  for (auto& [key, e] : entries_)
    if (e.timer) clock_.cancel_timer(e.timer);
}

void Reassembly::discard(Entry& e) {
  bytes_held_ -= e.charged;
  e.charged = 0;
  e.payload_held = 0;
  e.fragments.clear();
  e.discarded = true;
}

void Reassembly::erase(Map::iterator it) {
  if (it->second.timer) clock_.cancel_timer(it->second.timer);
  bytes_held_ -= it->second.charged;
  entries_.erase(it);
}

Reassembly::Map::iterator Reassembly::oldest(Map::iterator keep, bool discarded_first, bool live_only) {
  auto best = entries_.end();
  for (auto it = entries_.begin(); it != entries_.end(); ++it) {
    if (it == keep || (live_only && it->second.discarded)) continue;
    if (best == entries_.end()) {
      best = it;
      continue;
    }
    const bool it_first = discarded_first && it->second.discarded && !best->second.discarded;
    const bool best_first = discarded_first && best->second.discarded && !it->second.discarded;
    if (it_first || (!best_first && it->second.serial < best->second.serial)) best = it;
  }
  return best;
}

void Reassembly::expire(const Key& key) {
  auto it = entries_.find(key);
  if (it == entries_.end()) return;  // defensive: erase() cancels the timer
  it->second.timer = 0;
  if (!it->second.discarded) ++stats_.frag_timeouts;
  erase(it);
}

bool Reassembly::input(const Ipv4Packet& ip, std::vector<uint8_t>* out) {
  ++stats_.frag_rx;
  const uint32_t off = ip.fragment_offset;
  const uint32_t len = static_cast<uint32_t>(ip.payload_len);
  const uint32_t end = off + len;
  const bool last = !ip.more_fragments;
  // Every fragment but the last carries a multiple of 8 bytes, so that the
  // next offset can be expressed; an empty one adds nothing and is only
  // ever seen from a hostile or broken sender.
  if (len == 0 || (!last && len % 8 != 0)) {
    ++stats_.frag_drop_bad_length;
    return false;
  }
  if (kIpv4HeaderLen + end > kIpv4MaxTotal) {
    ++stats_.frag_drop_too_big;
    return false;
  }

  const Key key{ip.src.value, ip.dst.value, ip.id, ip.protocol};
  auto it = entries_.find(key);
  if (it == entries_.end()) {
    if (entries_.size() >= config_.max_datagrams) {
      erase(oldest(entries_.end(), /*discarded_first=*/true, /*live_only=*/false));
      ++stats_.frag_evicted_table_full;
    }
    it = entries_.emplace(key, Entry{}).first;
    it->second.serial = next_serial_++;
    it->second.timer = clock_.add_timer(config_.timeout_ns, [this, key] { expire(key); });
  } else if (it->second.discarded) {
    ++stats_.frag_drop_discarded;
    return false;
  }
  Entry& e = it->second;

  // The total length: fixed by the last fragment, and never contradicted.
  if (last ? (e.total_known && e.total != end) || e.end_seen > end : e.total_known && end > e.total) {
    discard(e);
    ++stats_.frag_drop_bad_total;
    return false;
  }

  // Neighbours in offset order: the first held at or after `off`, and the
  // one before it.
  auto next = e.fragments.lower_bound(off);
  if (next != e.fragments.end() && next->first == off && next->second.size() == len &&
      memcmp(next->second.data(), ip.payload, len) == 0) {
    ++stats_.frag_drop_duplicate;  // a retransmission or a duplicating link
    return false;
  }
  const bool overlaps_next = next != e.fragments.end() && next->first < end;
  const bool overlaps_prev = next != e.fragments.begin() && [&] {
    const auto prev = std::prev(next);
    return prev->first + prev->second.size() > off;
  }();
  if (overlaps_next || overlaps_prev) {
    discard(e);
    ++stats_.frag_drop_overlap;
    return false;
  }

  const size_t cost = len + kFragmentOverhead;
  if (e.charged + cost > config_.max_bytes) {
    discard(e);
    ++stats_.frag_drop_no_memory;
    return false;
  }
  // Room from the oldest other datagrams; there are enough, since this
  // one alone fits.
  while (bytes_held_ + cost > config_.max_bytes) {
    erase(oldest(it, /*discarded_first=*/false, /*live_only=*/true));
    ++stats_.frag_evicted_memory;
  }

  e.fragments.emplace_hint(next, off, std::vector<uint8_t>(ip.payload, ip.payload + len));
  e.payload_held += len;
  e.charged += cost;
  bytes_held_ += cost;
  if (end > e.end_seen) e.end_seen = end;
  if (last) {
    e.total_known = true;
    e.total = end;
  }
  // No overlaps and nothing past the total: the bytes held cover the
  // datagram exactly when they add up to its length.
  if (!e.total_known || e.payload_held != e.total) return false;
  out->resize(e.total);
  for (const auto& [at, data] : e.fragments) memcpy(out->data() + at, data.data(), data.size());
  erase(it);
  ++stats_.frag_reassembled;
  return true;
}

}  // namespace net
