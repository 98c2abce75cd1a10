#include "virtio/host/virtqueue.h"

#include <algorithm>
#include <atomic>
#include <cstdarg>
#include <cstdio>
#include <cstring>

namespace vmm {

using namespace virtio;

namespace {

// The ring fields the guest updates concurrently are read and written with
// single atomic accesses (the addresses were checked for alignment at enable
// time), so neither compiler nor CPU tears or re-reads them. Little-endian
// host: the values are used as they are.
uint16_t load16(const uint8_t* p, int order) { return __atomic_load_n(reinterpret_cast<const uint16_t*>(p), order); }
void store16(uint8_t* p, uint16_t v, int order) { __atomic_store_n(reinterpret_cast<uint16_t*>(p), v, order); }

// Reads one descriptor once. The compiler barrier makes the local copy the
// only source of truth: checks made on it cannot be undone by the guest
// rewriting the table (no double fetch). memcpy because an indirect table
// need not be aligned.
virtq_desc read_desc(const uint8_t* p) {
  virtq_desc d;
  std::memcpy(&d, p, sizeof d);
  std::atomic_signal_fence(std::memory_order_seq_cst);
  return d;
}

std::string format(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
std::string format(const char* fmt, ...) {
  char buf[256];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  return buf;
}

}  // namespace

const char* to_string(VirtqueueConfigError e) {
  switch (e) {
    case VirtqueueConfigError::kNone: return "ok";
    case VirtqueueConfigError::kBadSize: return "queue size is not a power of two in [1, 32768]";
    case VirtqueueConfigError::kDescMisaligned: return "descriptor table is not 16-byte aligned";
    case VirtqueueConfigError::kDescOutsideRam: return "descriptor table is not inside guest RAM";
    case VirtqueueConfigError::kAvailMisaligned: return "available ring is not 2-byte aligned";
    case VirtqueueConfigError::kAvailOutsideRam: return "available ring is not inside guest RAM";
    case VirtqueueConfigError::kUsedMisaligned: return "used ring is not 4-byte aligned";
    case VirtqueueConfigError::kUsedOutsideRam: return "used ring is not inside guest RAM";
  }
  return "?";
}

const char* to_string(VirtqueueError e) {
  switch (e) {
    case VirtqueueError::kNone: return "ok";
    case VirtqueueError::kAvailIdxAhead: return "available index ran ahead by more than the queue size";
    case VirtqueueError::kHeadOutOfRange: return "head index out of range";
    case VirtqueueError::kNextOutOfRange: return "next index out of range";
    case VirtqueueError::kChainTooLong: return "descriptor chain longer than the queue size";
    case VirtqueueError::kBufferOutsideRam: return "buffer not inside guest RAM";
    case VirtqueueError::kChainTooLarge: return "descriptor chain longer than 4 GiB";
    case VirtqueueError::kReadableAfterWritable: return "readable descriptor after a writable one";
    case VirtqueueError::kIndirectNotNegotiated: return "indirect descriptor without VIRTIO_F_INDIRECT_DESC";
    case VirtqueueError::kIndirectWithNext: return "indirect descriptor with NEXT";
    case VirtqueueError::kNestedIndirect: return "indirect descriptor inside an indirect table";
    case VirtqueueError::kIndirectBadLength: return "indirect table length is 0 or not a multiple of 16";
    case VirtqueueError::kIndirectTooLong: return "indirect table larger than the queue size";
    case VirtqueueError::kIndirectOutsideRam: return "indirect table not inside guest RAM";
    case VirtqueueError::kTooManyInFlight: return "more chains in flight than the queue size";
  }
  return "?";
}

size_t VirtqChain::read(size_t offset, void* dst, size_t len) const {
  size_t done = 0;
  for (const VirtqBuffer& b : readable()) {
    if (done == len) break;
    if (offset >= b.len) {
      offset -= b.len;
      continue;
    }
    const size_t n = std::min<size_t>(b.len - offset, len - done);
    std::memcpy(static_cast<uint8_t*>(dst) + done, b.host + offset, n);
    done += n;
    offset = 0;
  }
  return done;
}

size_t VirtqChain::write(size_t offset, const void* src, size_t len) const {
  size_t done = 0;
  for (const VirtqBuffer& b : writable()) {
    if (done == len) break;
    if (offset >= b.len) {
      offset -= b.len;
      continue;
    }
    const size_t n = std::min<size_t>(b.len - offset, len - done);
    std::memcpy(b.host + offset, static_cast<const uint8_t*>(src) + done, n);
    done += n;
    offset = 0;
  }
  return done;
}

VirtqueueConfigError Virtqueue::enable(const VirtqueueConfig& cfg) {
  reset();
  using E = VirtqueueConfigError;
  const uint32_t n = cfg.size;
  if (!is_valid_queue_size(n)) return E::kBadSize;
  if (cfg.desc % kDescTableAlign) return E::kDescMisaligned;
  if (cfg.avail % kAvailRingAlign) return E::kAvailMisaligned;
  if (cfg.used % kUsedRingAlign) return E::kUsedMisaligned;
  // Each part must lie inside one RAM region (GuestMemory::ptr also rejects
  // address arithmetic that wraps). The host pointers stay valid for the
  // life of the GuestMemory, so the rings are never looked up again.
  uint8_t* desc = mem_.ptr(cfg.desc, desc_table_size(n));
  if (!desc) return E::kDescOutsideRam;
  uint8_t* avail = mem_.ptr(cfg.avail, avail_ring_size(n));
  if (!avail) return E::kAvailOutsideRam;
  uint8_t* used = mem_.ptr(cfg.used, used_ring_size(n));
  if (!used) return E::kUsedOutsideRam;
  // Overlapping parts are not refused: they can only confuse the guest's own
  // driver, since every value read from them is checked anyway.
  size_ = static_cast<uint16_t>(n);
  desc_ = desc;
  avail_ = avail;
  used_ = used;
  used_gpa_ = cfg.used;
  event_idx_ = cfg.event_idx;
  indirect_desc_ = cfg.indirect_desc;
  enabled_ = true;
  return E::kNone;
}

void Virtqueue::reset() {
  enabled_ = false;
  size_ = 0;
  event_idx_ = indirect_desc_ = false;
  desc_ = avail_ = used_ = nullptr;
  used_gpa_ = 0;
  last_avail_ = used_idx_ = signalled_used_ = 0;
  notify_enabled_ = true;
  in_flight_ = 0;
  error_ = VirtqueueError::kNone;
  reason_.clear();
}

uint16_t Virtqueue::load_avail_idx() const {
  // Acquire: the ring entries and descriptors the driver wrote before
  // publishing this index are read after it (pairs with the driver's
  // write barrier before its idx store).
  return load16(avail_ + offsetof(virtq_avail, idx), __ATOMIC_ACQUIRE);
}
uint16_t Virtqueue::load_avail_flags() const { return load16(avail_ + offsetof(virtq_avail, flags), __ATOMIC_RELAXED); }
uint16_t Virtqueue::load_used_event() const { return load16(avail_ + avail_used_event_offset(size_), __ATOMIC_RELAXED); }
uint16_t Virtqueue::avail_ring_entry(uint16_t idx) const {
  return load16(avail_ + avail_ring_entry_offset(idx & (size_ - 1u)), __ATOMIC_RELAXED);
}
// Every store into the used ring is a host write KVM does not log: mark it.
void Virtqueue::store_avail_event(uint16_t v) {
  store16(used_ + used_avail_event_offset(size_), v, __ATOMIC_RELAXED);
  mem_.mark_dirty(used_gpa_, used_ring_size(size_));
}
void Virtqueue::store_used_flags(uint16_t v) {
  store16(used_ + offsetof(virtq_used, flags), v, __ATOMIC_RELAXED);
  mem_.mark_dirty(used_gpa_, used_ring_size(size_));
}

PopResult Virtqueue::fail(VirtqueueError e, std::string reason) {
  // Only the first broken rule is kept: it is the one worth logging.
  if (error_ == VirtqueueError::kNone) {
    error_ = e;
    reason_ = std::string(to_string(e)) + ": " + reason;
  }
  return PopResult::kBroken;
}

PopResult Virtqueue::pop(VirtqChain& chain) {
  if (!enabled_) return PopResult::kEmpty;
  if (broken()) return PopResult::kBroken;

  uint16_t avail_idx = load_avail_idx();
  uint16_t pending = static_cast<uint16_t>(avail_idx - last_avail_);
  if (pending == 0 && event_idx_ && notify_enabled_) {
    // We published avail_event = last_avail_ earlier and are about to report
    // "empty" and wait for a kick. The driver stores idx, then reads
    // avail_event; we stored avail_event, then read idx. Without a full
    // fence both may see the old value and the kick is lost (store->load
    // ordering is the one x86 does not give for free).
    std::atomic_thread_fence(std::memory_order_seq_cst);
    avail_idx = load_avail_idx();
    pending = static_cast<uint16_t>(avail_idx - last_avail_);
  }
  if (pending == 0) return PopResult::kEmpty;
  if (pending > size_)
    return fail(VirtqueueError::kAvailIdxAhead,
                format("avail idx %u, last seen %u, queue size %u", avail_idx, last_avail_, size_));
  if (in_flight_ >= size_)
    return fail(VirtqueueError::kTooManyInFlight,
                format("%u chains in flight, queue size %u (descriptors reused before use)", in_flight_, size_));

  const uint16_t head = avail_ring_entry(last_avail_);
  if (head >= size_)
    return fail(VirtqueueError::kHeadOutOfRange,
                format("avail ring[%u] = %u, queue size %u", last_avail_ & (size_ - 1u), head, size_));
  if (!walk(head, chain)) return PopResult::kBroken;

  ++last_avail_;
  ++in_flight_;
  // Ask for a kick when the driver makes the next entry available; without
  // this a device that never disables notifications would stall once the
  // driver's index passed a stale avail_event.
  if (event_idx_ && notify_enabled_) store_avail_event(last_avail_);
  return PopResult::kChain;
}

bool Virtqueue::add_buffer(const virtq_desc& d, bool& seen_writable, uint64_t& total, VirtqChain& chain,
                           const char* table, uint32_t index) {
  // §2.7.5.3.1: no chain longer than the queue size. Counting every data
  // descriptor also bounds a loop through `next` (direct or indirect).
  if (++chain.descriptors_ > size_) {
    fail(VirtqueueError::kChainTooLong,
         format("head %u: more than %u descriptors (at %s[%u])", chain.head_, size_, table, index));
    return false;
  }
  const bool writable = d.flags & VIRTQ_DESC_F_WRITE;
  // §2.7.4.2: device-readable descriptors come before device-writable ones.
  if (!writable && seen_writable) {
    fail(VirtqueueError::kReadableAfterWritable, format("head %u: %s[%u]", chain.head_, table, index));
    return false;
  }
  seen_writable |= writable;
  // Zero-length descriptors are legal (the spec does not forbid them) and
  // carry no data: they are counted and ordered like the others, but their
  // address is never used, so it is neither checked nor handed to devices.
  if (d.len == 0) return true;
  uint8_t* host = mem_.ptr(d.addr, d.len);
  if (!host) {
    fail(VirtqueueError::kBufferOutsideRam,
         format("head %u: %s[%u] addr 0x%llx len %u", chain.head_, table, index,
                static_cast<unsigned long long>(d.addr), d.len));
    return false;
  }
  // Devices report lengths in 32 bits (used elem len), so must chains.
  total += d.len;
  if (total > UINT32_MAX) {
    fail(VirtqueueError::kChainTooLarge, format("head %u: %llu bytes at %s[%u]", chain.head_,
                                                static_cast<unsigned long long>(total), table, index));
    return false;
  }
  chain.bufs_.push_back(VirtqBuffer{d.addr, d.len, host});
  // The device may write any writable buffer from a host thread, which
  // KVM's dirty log does not see: mark it now, while the chain is popped
  // (snapshots wait until nothing is in flight, so the write is done by
  // the time the page is saved).
  if (writable) mem_.mark_dirty(d.addr, d.len);
  if (writable) {
    chain.writable_bytes_ += d.len;
  } else {
    ++chain.n_readable_;
    chain.readable_bytes_ += d.len;
  }
  return true;
}

bool Virtqueue::walk(uint16_t head, VirtqChain& chain) {
  chain.clear();
  chain.head_ = head;
  bool seen_writable = false;
  uint64_t total = 0;
  uint16_t idx = head;
  for (;;) {
    const virtq_desc d = read_desc(desc_ + 16u * idx);
    if (d.flags & VIRTQ_DESC_F_INDIRECT) {
      // §2.7.5.3: a single table, as the last descriptor of the chain; its
      // own WRITE flag means nothing and is ignored.
      if (!indirect_desc_) {
        fail(VirtqueueError::kIndirectNotNegotiated, format("head %u: desc[%u]", head, idx));
        return false;
      }
      if (d.flags & VIRTQ_DESC_F_NEXT) {
        fail(VirtqueueError::kIndirectWithNext, format("head %u: desc[%u]", head, idx));
        return false;
      }
      if (d.len == 0 || d.len % sizeof(virtq_desc)) {
        fail(VirtqueueError::kIndirectBadLength, format("head %u: desc[%u] len %u", head, idx, d.len));
        return false;
      }
      const uint32_t entries = d.len / sizeof(virtq_desc);
      if (entries > size_) {
        fail(VirtqueueError::kIndirectTooLong,
             format("head %u: desc[%u] has %u entries, queue size %u", head, idx, entries, size_));
        return false;
      }
      const uint8_t* table = mem_.ptr(d.addr, d.len);
      if (!table) {
        fail(VirtqueueError::kIndirectOutsideRam, format("head %u: desc[%u] addr 0x%llx len %u", head, idx,
                                                         static_cast<unsigned long long>(d.addr), d.len));
        return false;
      }
      uint32_t i = 0;
      for (uint32_t walked = 1;; ++walked) {
        // A loop inside the table: more steps than it has entries.
        if (walked > entries) {
          fail(VirtqueueError::kChainTooLong, format("head %u: loop in indirect table of %u entries", head, entries));
          return false;
        }
        const virtq_desc e = read_desc(table + 16u * i);
        if (e.flags & VIRTQ_DESC_F_INDIRECT) {
          fail(VirtqueueError::kNestedIndirect, format("head %u: indirect[%u]", head, i));
          return false;
        }
        if (!add_buffer(e, seen_writable, total, chain, "indirect", i)) return false;
        if (!(e.flags & VIRTQ_DESC_F_NEXT)) break;
        if (e.next >= entries) {
          fail(VirtqueueError::kNextOutOfRange,
               format("head %u: indirect[%u].next = %u, table has %u entries", head, i, e.next, entries));
          return false;
        }
        i = e.next;
      }
      return true;
    }
    if (!add_buffer(d, seen_writable, total, chain, "desc", idx)) return false;
    if (!(d.flags & VIRTQ_DESC_F_NEXT)) return true;
    if (d.next >= size_) {
      fail(VirtqueueError::kNextOutOfRange,
           format("head %u: desc[%u].next = %u, queue size %u", head, idx, d.next, size_));
      return false;
    }
    idx = d.next;
  }
}

bool Virtqueue::push_used(uint16_t head, uint32_t bytes_written) {
  // A device bug (not the guest's) if nothing is in flight or head is
  // bogus: refuse rather than corrupt the ring, but do not break the queue.
  if (!enabled_ || broken() || in_flight_ == 0 || head >= size_) return false;
  const virtq_used_elem elem{head, bytes_written};
  std::memcpy(used_ + used_ring_entry_offset(used_idx_ & (size_ - 1u)), &elem, sizeof elem);
  ++used_idx_;
  --in_flight_;
  // Release: the element (and the data written into the buffers) is visible
  // before the index that hands it to the driver.
  store16(used_ + offsetof(virtq_used, idx), used_idx_, __ATOMIC_RELEASE);
  mem_.mark_dirty(used_gpa_, used_ring_size(size_));
  return true;
}

bool Virtqueue::should_notify() {
  if (!enabled_ || broken()) return false;
  // Our used idx store must be visible before we read the driver's
  // suppression state, or the driver may re-enable interrupts after
  // checking an old used idx while we read the old (suppressed) state:
  // a lost interrupt. Store->load needs a full fence.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  const uint16_t old = signalled_used_;
  const uint16_t now = used_idx_;
  signalled_used_ = now;
  if (event_idx_) return vring_need_event(load_used_event(), now, old);
  // Without EVENT_IDX: interrupt for new used entries unless suppressed.
  return now != old && !(load_avail_flags() & VIRTQ_AVAIL_F_NO_INTERRUPT);
}

void Virtqueue::disable_notification() {
  notify_enabled_ = false;
  if (!enabled_ || broken()) return;
  // With EVENT_IDX the driver ignores the flag (§2.7.10); leaving avail_event
  // where it is suffices: the driver's index has already passed it, so it
  // will not kick again (short of 2^16 more entries: one spurious kick).
  if (!event_idx_) store_used_flags(VIRTQ_USED_F_NO_NOTIFY);
}

VirtqueueState Virtqueue::state() const {
  return {last_avail_, used_idx_, signalled_used_, notify_enabled_, in_flight_};
}

bool Virtqueue::restore_state(const VirtqueueState& s) {
  // Only an enabled, healthy queue with nothing in flight takes indices:
  // a snapshot is taken with nothing in flight, so in_flight is 0 too.
  if (!enabled_ || broken() || in_flight_ != 0 || s.in_flight != 0) return false;
  last_avail_ = s.last_avail;
  used_idx_ = s.used_idx;
  signalled_used_ = s.signalled_used;
  notify_enabled_ = s.notify_enabled;
  return true;
}

bool Virtqueue::enable_notification() {
  notify_enabled_ = true;
  if (!enabled_ || broken()) return false;
  if (event_idx_)
    store_avail_event(last_avail_);
  else
    store_used_flags(0);
  // As in pop(): our store, then the driver's idx; a full fence in between.
  std::atomic_thread_fence(std::memory_order_seq_cst);
  return load_avail_idx() != last_avail_;
}

}  // namespace vmm
