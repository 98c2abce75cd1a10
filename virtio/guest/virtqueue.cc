#include "virtio/guest/virtqueue.h"

namespace virtio::guest {
namespace {

// Memory ordering (x86 is TSO, so only store->load needs a fence; the
// __atomic forms also keep the compiler from reordering and stay correct on
// weaker hosts when this file runs in a unit test):
// - descriptors and the ring entry are written before the available index
//   (release store);
// - the used index is read before the used element behind it (acquire);
// - our index/event store before reading the device's event/flags or used
//   index (kick, enable_interrupts, get_used with interrupts on) needs a
//   full fence, or both sides can miss each other's update (the store-buffer
//   race) and a notification or an interrupt is lost.
inline void full_fence() { __atomic_thread_fence(__ATOMIC_SEQ_CST); }
inline uint16_t load_acquire(volatile uint16_t* p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
inline void store_release(volatile uint16_t* p, uint16_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }

}  // namespace

uint64_t Virtqueue::memory_bytes(uint32_t size, bool indirect) {
  return indirect_offset(size) + (indirect ? uint64_t(size) * kIndirectMax * sizeof(virtq_desc) : 0);
}

Virtqueue::~Virtqueue() {
  delete[] slots_;
  delete[] next_;
}

bool Virtqueue::init(uint16_t queue_index, uint16_t size, void* memory, uint64_t device_addr, bool event_idx,
                     bool indirect, NotifyFn notify, void* notify_context) {
  if (slots_ || !is_valid_queue_size(size) || !memory || reinterpret_cast<uintptr_t>(memory) % 16 ||
      device_addr % 16)
    return false;
  mem_ = static_cast<uint8_t*>(memory);
  device_addr_ = device_addr;
  desc_ = reinterpret_cast<virtq_desc*>(mem_);
  indirect_ = indirect ? reinterpret_cast<virtq_desc*>(mem_ + indirect_offset(size)) : nullptr;
  index_ = queue_index;
  size_ = size;
  event_idx_ = event_idx;
  indirect_ok_ = indirect;
  notify_ = notify;
  notify_context_ = notify_context;
  slots_ = new Slot[size];
  next_ = new uint16_t[size];
  for (uint16_t i = 0; i < size; ++i) next_[i] = static_cast<uint16_t>(i + 1);  // last one is never followed
  free_head_ = 0;
  free_count_ = size;
  return true;
}

volatile uint16_t* Virtqueue::avail_flags() const { return reinterpret_cast<volatile uint16_t*>(mem_ + avail_offset(size_)); }
volatile uint16_t* Virtqueue::avail_idx() const { return avail_flags() + 1; }
volatile uint16_t* Virtqueue::avail_ring(uint16_t i) const {
  return reinterpret_cast<volatile uint16_t*>(mem_ + avail_offset(size_) + avail_ring_entry_offset(i));
}
volatile uint16_t* Virtqueue::used_event() const {
  return reinterpret_cast<volatile uint16_t*>(mem_ + avail_offset(size_) + avail_used_event_offset(size_));
}
volatile uint16_t* Virtqueue::used_flags() const { return reinterpret_cast<volatile uint16_t*>(mem_ + used_offset(size_)); }
volatile uint16_t* Virtqueue::used_idx() const { return used_flags() + 1; }
volatile virtq_used_elem* Virtqueue::used_ring(uint16_t i) const {
  return reinterpret_cast<volatile virtq_used_elem*>(mem_ + used_offset(size_) + used_ring_entry_offset(i));
}
volatile uint16_t* Virtqueue::avail_event() const {
  return reinterpret_cast<volatile uint16_t*>(mem_ + used_offset(size_) + used_avail_event_offset(size_));
}

bool Virtqueue::add(const Buffer* out, size_t out_count, const Buffer* in, size_t in_count, void* token) {
  const size_t total = out_count + in_count;
  if (!token || total == 0 || total > size_ || broken_) return false;
  uint64_t writable = 0;
  for (size_t i = 0; i < total; ++i) {
    const Buffer& b = i < out_count ? out[i] : in[i - out_count];
    if (b.len == 0) return false;  // the device would see an empty buffer
    if (i >= out_count) writable += b.len;
  }
  const bool use_indirect = indirect_ok_ && total > 1 && total <= kIndirectMax;
  const uint16_t needed = use_indirect ? 1 : static_cast<uint16_t>(total);
  if (free_count_ < needed) return false;

  const uint16_t head = free_head_;
  uint16_t last = head;
  if (use_indirect) {
    // The table belongs to the head slot, so it is free exactly when the
    // head descriptor is.
    virtq_desc* table = indirect_ + uint64_t(head) * kIndirectMax;
    for (size_t i = 0; i < total; ++i) {
      const bool writable_buf = i >= out_count;
      const Buffer& b = writable_buf ? in[i - out_count] : out[i];
      table[i].addr = b.addr;
      table[i].len = b.len;
      table[i].flags = static_cast<uint16_t>((writable_buf ? VIRTQ_DESC_F_WRITE : 0) |
                                             (i + 1 < total ? VIRTQ_DESC_F_NEXT : 0));
      table[i].next = static_cast<uint16_t>(i + 1 < total ? i + 1 : 0);
    }
    desc_[head].addr = device_addr_ + indirect_offset(size_) + uint64_t(head) * kIndirectMax * sizeof(virtq_desc);
    desc_[head].len = static_cast<uint32_t>(total * sizeof(virtq_desc));
    desc_[head].flags = VIRTQ_DESC_F_INDIRECT;
    desc_[head].next = 0;
    free_head_ = next_[head];
    ++indirect_chains;
  } else {
    uint16_t d = head;
    for (size_t i = 0; i < total; ++i) {
      const bool writable_buf = i >= out_count;
      const Buffer& b = writable_buf ? in[i - out_count] : out[i];
      desc_[d].addr = b.addr;
      desc_[d].len = b.len;
      desc_[d].flags = static_cast<uint16_t>((writable_buf ? VIRTQ_DESC_F_WRITE : 0) |
                                             (i + 1 < total ? VIRTQ_DESC_F_NEXT : 0));
      desc_[d].next = i + 1 < total ? next_[d] : 0;
      last = d;
      d = next_[d];
    }
    free_head_ = d;
  }
  free_count_ = static_cast<uint16_t>(free_count_ - needed);
  slots_[head] = Slot{token, needed, last, writable};
  ++in_flight_;
  ++chains_added;

  *avail_ring(static_cast<uint16_t>(avail_shadow_ & (size_ - 1))) = head;
  ++avail_shadow_;
  ++added_since_kick_;
  store_release(avail_idx(), avail_shadow_);  // the entry (and descriptors) first
  return true;
}

bool Virtqueue::kick() {
  if (added_since_kick_ == 0) return false;
  full_fence();  // our available index before the device's event/flags
  const uint16_t old_idx = kicked_at_, new_idx = avail_shadow_;
  bool notify;
  if (added_since_kick_ >= 0xffff)
    notify = true;  // the 16-bit window cannot tell; a spare kick is harmless
  else if (event_idx_)
    notify = vring_need_event(*avail_event(), new_idx, old_idx);
  else
    notify = !(*used_flags() & VIRTQ_USED_F_NO_NOTIFY);
  kicked_at_ = new_idx;
  added_since_kick_ = 0;
  if (notify && notify_) {
    notify_(notify_context_, index_);
    ++kicks;
    return true;
  }
  ++kicks_suppressed;
  return false;
}

bool Virtqueue::has_used() const { return !broken_ && *used_idx() != last_used_; }

void* Virtqueue::get_used(uint32_t* written) {
  if (broken_) return nullptr;
  const uint16_t idx = load_acquire(used_idx());
  if (idx == last_used_) return nullptr;
  if (static_cast<uint16_t>(idx - last_used_) > in_flight_) {
    broken_ = "the device's used index ran ahead of the buffers in flight";
    return nullptr;
  }
  volatile virtq_used_elem* e = used_ring(static_cast<uint16_t>(last_used_ & (size_ - 1)));
  const uint32_t id = e->id, len = e->len;
  if (id >= size_ || !slots_[id].token) {
    broken_ = "the device returned a descriptor that is not the head of a chain in flight";
    return nullptr;
  }
  Slot& s = slots_[id];
  void* token = s.token;
  if (written) *written = len < s.writable ? len : static_cast<uint32_t>(s.writable);
  next_[s.last] = free_head_;
  free_head_ = static_cast<uint16_t>(id);
  free_count_ = static_cast<uint16_t>(free_count_ + s.descriptors);
  s = Slot{};
  --in_flight_;
  ++last_used_;
  ++chains_used;
  if (interrupts_on_ && event_idx_) {
    // Keep asking for an interrupt at the next entry; fenced against the
    // caller's next read of the used index (see the top of this file).
    *used_event() = last_used_;
    full_fence();
  }
  return token;
}

void Virtqueue::disable_interrupts() {
  interrupts_on_ = false;
  if (event_idx_) {
    // With EVENT_IDX the flags must stay 0 (§2.7.7.1); an event index the
    // device has already passed means "not before the index wraps", and it
    // cannot wrap while at most `size` buffers are outstanding.
    *used_event() = static_cast<uint16_t>(last_used_ - 1);
  } else {
    *avail_flags() = VIRTQ_AVAIL_F_NO_INTERRUPT;
  }
}

bool Virtqueue::enable_interrupts() {
  interrupts_on_ = true;
  if (event_idx_)
    *used_event() = last_used_;
  else
    *avail_flags() = 0;
  full_fence();  // the request before the re-check of the used index
  return load_acquire(used_idx()) == last_used_;
}

}  // namespace virtio::guest
