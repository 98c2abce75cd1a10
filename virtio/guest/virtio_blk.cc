#include "virtio/guest/virtio_blk.h"

#include "guest-kernel/kernel/event_loop.h"
#include "guest-kernel/lib/print.h"
#include "guest-kernel/lib/string.h"
#include "guest-kernel/mm/page_alloc.h"
#include "virtio/features.h"
#include "virtio/pci.h"

namespace virtio::guest {
namespace {

constexpr uint16_t kQueueSizeCap = 256;
// Upper bound on one request, whatever the device allows: keeps a single
// request from monopolizing the device and bounds our segment arrays.
constexpr size_t kMaxRequestBytes = 1 << 20;
// Without VIRTIO_BLK_F_SIZE_MAX a segment may be any length; one segment of
// up to kMaxRequestBytes then covers a request.
constexpr size_t kMaxDataSegments = Virtqueue::kIndirectMax - 2;  // header and status take two
constexpr uint64_t kGetIdTimeoutNs = 5'000'000'000ull;

block::Status map_status(uint8_t s) {
  switch (s) {
    case VIRTIO_BLK_S_OK: return block::Status::kOk;
    case VIRTIO_BLK_S_UNSUPP: return block::Status::kUnsupported;
    default: return block::Status::kIoError;  // IOERR, or a value the spec does not define
  }
}

struct Registrar {
  Registrar() {
    pci::register_driver({"virtio-blk", VIRTIO_PCI_VENDOR_ID,
                          static_cast<uint16_t>(VIRTIO_PCI_DEVICE_ID_BASE + VIRTIO_ID_BLOCK), &VirtioBlk::probe});
  }
} registrar;

}  // namespace

bool VirtioBlk::probe(const pci::Device& dev) {
  // Never freed: its interrupt vectors and the block registry point at it.
  auto* blk = new VirtioBlk;
  if (!blk->init(dev)) return false;
  block::register_block_device(blk);
  return true;
}

bool VirtioBlk::init(const pci::Device& dev) {
  if (!transport_.init(dev, "virtio-blk")) return false;
  if (!transport_.negotiate(feature_bit(VIRTIO_BLK_F_SIZE_MAX) | feature_bit(VIRTIO_BLK_F_SEG_MAX) |
                            feature_bit(VIRTIO_BLK_F_RO) | feature_bit(VIRTIO_BLK_F_FLUSH) |
                            feature_bit(VIRTIO_BLK_F_BLK_SIZE)))
    return false;
  if (!transport_.read_config(offsetof(virtio_blk_config, capacity), &capacity_, sizeof capacity_)) {
    transport_.fail("cannot read the capacity");
    return false;
  }
  read_only_ = transport_.has(VIRTIO_BLK_F_RO);
  flush_ = transport_.has(VIRTIO_BLK_F_FLUSH);

  if (!transport_.setup_queue(0, kQueueSizeCap, &queue_, [](void* c) { static_cast<VirtioBlk*>(c)->on_used(); },
                              this))
    return false;

  // Segment limits: what the device allows, within what one indirect table
  // (or the ring) holds.
  segment_bytes_ = kMaxRequestBytes;
  if (transport_.has(VIRTIO_BLK_F_SIZE_MAX)) {
    uint32_t size_max = 0;
    transport_.read_config(offsetof(virtio_blk_config, size_max), &size_max, sizeof size_max);
    if (size_max < block::kSectorSize) {
      transport_.fail("size_max is smaller than a sector");
      return false;
    }
    if (size_max < segment_bytes_) segment_bytes_ = size_max;
  }
  max_segments_ = kMaxDataSegments;
  if (queue_.size() < max_segments_ + 2) max_segments_ = queue_.size() > 2 ? queue_.size() - 2 : 0;
  if (transport_.has(VIRTIO_BLK_F_SEG_MAX)) {
    uint32_t seg_max = 0;
    transport_.read_config(offsetof(virtio_blk_config, seg_max), &seg_max, sizeof seg_max);
    if (seg_max < max_segments_) max_segments_ = seg_max;
  }
  if (max_segments_ == 0) {
    transport_.fail("no room for a data segment in a request");
    return false;
  }
  // Segments never straddle a sector boundary, so round each down.
  segment_bytes_ -= segment_bytes_ % block::kSectorSize;
  max_request_bytes_ = segment_bytes_ * max_segments_;
  if (max_request_bytes_ > kMaxRequestBytes) max_request_bytes_ = kMaxRequestBytes;

  const size_t slot_pages = (sizeof(DmaSlot) * queue_.size() + mm::kPageSize - 1) / mm::kPageSize;
  slots_ = reinterpret_cast<DmaSlot*>(mm::alloc_pages(slot_pages));
  if (!slots_) {
    transport_.fail("no memory for request headers");
    return false;
  }
  in_flight_.resize(queue_.size());
  for (uint16_t i = queue_.size(); i > 0; --i) free_slots_.push_back(static_cast<uint16_t>(i - 1));
  if (!transport_.driver_ok()) return false;

  // GET_ID (§5.2.6): the serial, up to 20 bytes, NUL-padded when shorter.
  // A device that does not support it answers UNSUPP: no serial then. The
  // state lives on the heap: after a timeout the completion may still come.
  struct GetId {
    char id[VIRTIO_BLK_ID_BYTES] = {};
    bool done = false;
    block::Status status = block::Status::kIoError;
  };
  auto* get_id = new GetId;
  issue(Io{VIRTIO_BLK_T_GET_ID, 0, reinterpret_cast<uint8_t*>(get_id->id), sizeof get_id->id, true,
           [get_id](block::Status s) {
             get_id->status = s;
             get_id->done = true;
           }});
  if (!run_loop_until(&get_id->done, kGetIdTimeoutNs)) {
    transport_.fail("GET_ID did not complete in 5 s");
    failed_ = true;
    return false;  // get_id is left to the late completion, if any
  }
  if (get_id->status == block::Status::kOk)
    for (size_t i = 0; i < sizeof get_id->id && get_id->id[i]; ++i)
      serial_[i] = (get_id->id[i] >= 0x20 && get_id->id[i] < 0x7f) ? get_id->id[i] : '?';
  delete get_id;

  char where[16];
  format_pci_address(dev, where, sizeof where);
  kprintf("virtio-blk: %s capacity %lu sectors (%lu KiB), serial \"%s\", %s, %s, queue %u, %zu x %zu-byte segments%s%s\n",
          where, capacity_, capacity_ / 2, serial_, read_only_ ? "read-only" : "read-write",
          flush_ ? "flush" : "write-through (no flush)", queue_.size(), max_segments_, segment_bytes_,
          transport_.has(VIRTIO_F_INDIRECT_DESC) ? ", indirect" : "",
          transport_.has(VIRTIO_F_EVENT_IDX) ? ", event-idx" : "");
  return true;
}

void VirtioBlk::finish_later(std::function<void(block::Status)> done, block::Status s) {
  // The contract: a completion never runs inside submit().
  EventLoop::instance().defer([done = std::move(done), s] {
    if (done) done(s);
  });
}

void VirtioBlk::submit(block::Request req) {
  const bool data_op = req.op == block::Op::kRead || req.op == block::Op::kWrite;
  if (failed_ || transport_.broken()) {
    finish_later(std::move(req.done), block::Status::kIoError);
    return;
  }
  if (data_op) {
    const uint64_t count = req.bytes / block::kSectorSize;
    if (!req.buffer || req.bytes == 0 || req.bytes % block::kSectorSize || req.bytes > max_request_bytes_ ||
        req.sector > capacity_ || count > capacity_ - req.sector) {
      finish_later(std::move(req.done), block::Status::kBadRequest);
      return;
    }
    if (req.op == block::Op::kWrite && read_only_) {
      finish_later(std::move(req.done), block::Status::kUnsupported);
      return;
    }
    issue(Io{req.op == block::Op::kRead ? VIRTIO_BLK_T_IN : VIRTIO_BLK_T_OUT, req.sector,
             static_cast<uint8_t*>(req.buffer), req.bytes, req.op == block::Op::kRead, std::move(req.done)});
    return;
  }
  if (req.op != block::Op::kFlush) {
    finish_later(std::move(req.done), block::Status::kBadRequest);
    return;
  }
  if (!flush_) {
    // Without VIRTIO_BLK_F_FLUSH the device offers no volatile cache to
    // flush (§5.2.6.2: writes are then durable when they complete).
    finish_later(std::move(req.done), block::Status::kOk);
    return;
  }
  issue(Io{VIRTIO_BLK_T_FLUSH, 0, nullptr, 0, false, std::move(req.done)});
}

void VirtioBlk::issue(Io io) {
  // Keep submission order: nothing overtakes a request already waiting.
  if (!waiting_.empty() || !start(io)) {
    waiting_.push_back(std::move(io));
    return;
  }
  queue_.kick();
}

bool VirtioBlk::start(Io& io) {
  if (free_slots_.empty()) return false;
  const uint16_t slot = free_slots_.back();
  DmaSlot& s = slots_[slot];
  s.hdr.type = io.type;
  s.hdr.reserved = 0;
  s.hdr.sector = io.sector;
  s.status = 0xff;  // not a status the device can write: catches a silent device

  Buffer out[1 + kMaxDataSegments], in[1 + kMaxDataSegments];
  size_t out_count = 0, in_count = 0;
  out[out_count++] = Buffer{reinterpret_cast<uint64_t>(&s.hdr), sizeof s.hdr};
  for (size_t off = 0; off < io.bytes;) {
    const size_t n = io.bytes - off < segment_bytes_ ? io.bytes - off : segment_bytes_;
    const Buffer b{reinterpret_cast<uint64_t>(io.data + off), static_cast<uint32_t>(n)};
    if (io.device_writes_data)
      in[in_count++] = b;
    else
      out[out_count++] = b;
    off += n;
  }
  in[in_count++] = Buffer{reinterpret_cast<uint64_t>(&s.status), 1};
  void* token = reinterpret_cast<void*>(uintptr_t(slot) + 1);
  if (!queue_.add(out, out_count, in, in_count, token)) return false;
  free_slots_.pop_back();
  in_flight_[slot] = std::move(io);
  return true;
}

void VirtioBlk::complete(uint16_t slot, uint32_t written) {
  Io io = std::move(in_flight_[slot]);
  in_flight_[slot] = Io{};
  free_slots_.push_back(slot);
  const uint8_t raw = slots_[slot].status;
  block::Status st = map_status(raw);
  if (written == 0) {
    // The status byte is the last writable byte: a device that wrote
    // nothing did not finish the request.
    st = block::Status::kIoError;
  } else if (raw != VIRTIO_BLK_S_OK && io.type != VIRTIO_BLK_T_GET_ID) {
    kprintf("virtio-blk: request type %u sector %lu (%zu bytes) failed: status %u (%s)\n", io.type, io.sector,
            io.bytes, raw, block::to_string(st));
  }
  if (io.done) io.done(st);
}

void VirtioBlk::on_used() {
  for (;;) {
    // Interrupts off while this batch is drained; on again with the re-check
    // so an entry that lands in between is not left for a lost interrupt.
    queue_.disable_interrupts();
    uint32_t written;
    while (void* token = queue_.get_used(&written)) complete(static_cast<uint16_t>(uintptr_t(token) - 1), written);
    // Completions freed ring space: start what waited, in order.
    bool started = false;
    while (!waiting_.empty() && start(waiting_.front())) {
      waiting_.pop_front();
      started = true;
    }
    if (started) queue_.kick();
    if (queue_.broken()) {
      fail_everything(queue_.broken_reason());
      return;
    }
    if (transport_.broken()) {
      fail_everything("the device needs a reset");
      return;
    }
    if (queue_.enable_interrupts()) return;
  }
}

void VirtioBlk::fail_everything(const char* why) {
  if (!failed_) kprintf("virtio-blk: device broken (%s): failing every request\n", why);
  failed_ = true;
  for (uint16_t i = 0; i < in_flight_.size(); ++i)
    if (in_flight_[i].done) finish_later(std::move(in_flight_[i].done), block::Status::kIoError);
  for (Io& io : waiting_) finish_later(std::move(io.done), block::Status::kIoError);
  waiting_.clear();
}

}  // namespace virtio::guest
