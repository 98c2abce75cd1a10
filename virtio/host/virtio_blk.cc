#include "virtio/host/virtio_blk.h"

#include <fcntl.h>
#include <linux/fs.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <span>
#include <stdexcept>

namespace vmm {

using namespace virtio;

namespace {

VirtioPciDevice::Params blk_params(const VirtioBlkOptions& o) {
  VirtioPciDevice::Params p;
  p.name = "virtio-blk";
  p.device_type = VIRTIO_ID_BLOCK;
  p.class_code = 0x018000;  // mass storage, other (as Firecracker and crosvm)
  p.num_queues = 1;
  p.max_queue_size = VirtioBlkDevice::kQueueSize;
  p.device_features = feature_bit(VIRTIO_BLK_F_SIZE_MAX) | feature_bit(VIRTIO_BLK_F_SEG_MAX) |
                      feature_bit(VIRTIO_BLK_F_BLK_SIZE) | feature_bit(VIRTIO_BLK_F_FLUSH) |
                      (o.read_only ? feature_bit(VIRTIO_BLK_F_RO) : 0);
  p.config_size = sizeof(virtio_blk_config);
  return p;
}

// Gathers `total` bytes of `bufs`, starting `skip` bytes in, as iovecs;
// false if that needs more than kSegMax segments or one larger than
// kSizeMax (the limits the device advertises).
bool gather(std::span<const VirtqBuffer> bufs, uint64_t skip, uint64_t total, std::vector<iovec>& out) {
  out.clear();
  for (const VirtqBuffer& b : bufs) {
    if (total == 0) break;
    if (skip >= b.len) {
      skip -= b.len;
      continue;
    }
    const uint64_t take = std::min<uint64_t>(b.len - skip, total);
    if (take > VirtioBlkDevice::kSizeMax || out.size() == VirtioBlkDevice::kSegMax) return false;
    out.push_back(iovec{b.host + skip, static_cast<size_t>(take)});
    total -= take;
    skip = 0;
  }
  return total == 0;
}

std::string mib(uint64_t bytes) {
  char b[32];
  std::snprintf(b, sizeof b, "%.1f MiB", bytes / 1048576.0);
  return b;
}

}  // namespace

VirtioBlkDevice::VirtioBlkDevice(GuestMemory& mem, GsiRouter& router, const VirtioBlkOptions& options)
    : VirtioPciDevice(mem, router, blk_params(options)), options_(options) {
  if (options.serial.size() > VIRTIO_BLK_ID_BYTES)
    throw std::runtime_error("disk serial '" + options.serial + "' is longer than 20 bytes");
  const int fd = ::open(options.path.c_str(), (options.read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC);
  if (fd < 0) throw std::runtime_error("cannot open disk '" + options.path + "': " + std::strerror(errno));
  file_ = Fd(fd);
  struct stat st {};
  if (::fstat(fd, &st) < 0) throw std::runtime_error("cannot stat disk '" + options.path + "': " + std::strerror(errno));
  uint64_t bytes = 0;
  if (S_ISREG(st.st_mode)) {
    bytes = static_cast<uint64_t>(st.st_size);
  } else if (S_ISBLK(st.st_mode)) {
    if (::ioctl(fd, BLKGETSIZE64, &bytes) < 0)
      throw std::runtime_error("cannot size disk '" + options.path + "': " + std::strerror(errno));
  } else {
    throw std::runtime_error("disk '" + options.path + "' is not a regular file or block device");
  }
  // A trailing partial sector is not part of the disk.
  capacity_ = bytes / VIRTIO_BLK_SECTOR_SIZE;

  io_uring_params params{};
  params.flags = IORING_SETUP_CQSIZE;
  params.cq_entries = 4 * kQueueSize;
  int r = io_uring_queue_init_params(kQueueSize, &ring_, &params);
  if (r < 0)
    throw std::runtime_error("virtio-blk needs io_uring, which this host refuses: io_uring_queue_init: " +
                             std::string(std::strerror(-r)));
  r = io_uring_register_eventfd(&ring_, completion_.fd());
  if (r < 0) {
    io_uring_queue_exit(&ring_);
    throw std::runtime_error("virtio-blk: io_uring_register_eventfd: " + std::string(std::strerror(-r)));
  }
  ring_ready_ = true;

  reqs_.resize(kQueueSize);
  for (uint16_t i = kQueueSize; i-- > 0;) free_.push_back(i);
  config_.capacity = capacity_;
  config_.size_max = kSizeMax;
  config_.seg_max = kSegMax;
  config_.blk_size = VIRTIO_BLK_SECTOR_SIZE;
  add_io_fd(completion_.fd(), [this] {
    completion_.consume();
    reap(true);
  });
}

VirtioBlkDevice::~VirtioBlkDevice() {
  shutdown();
  if (!ring_ready_) return;
  {
    std::lock_guard lock(mu_);
    drain(false);  // the kernel must be done with guest memory and iovecs
  }
  io_uring_queue_exit(&ring_);
}

void VirtioBlkDevice::read_device_config(uint32_t offset, uint8_t* data, uint32_t size) {
  std::memcpy(data, reinterpret_cast<const uint8_t*>(&config_) + offset, size);
}

void VirtioBlkDevice::on_reset() { drain(false); }
void VirtioBlkDevice::on_queue_reset(uint16_t) { drain(false); }
void VirtioBlkDevice::on_queue_kick(uint16_t) { process_queue(); }

// Every request the kernel has is completed and returned to the driver
// (its data is in guest RAM and on the disk before RAM is saved or merged).
void VirtioBlkDevice::on_quiesce() {
  if (in_flight_ == 0) return;
  drain(true);
  if (queue(0).enabled()) notify_queue(0);
  // Requests left in the ring for want of a free slot are taken up as soon
  // as the I/O thread gets mu_ back.
  wake_io_thread();
}

// The vhost loop (virtqueue.h): takes requests until the ring is empty,
// then asks for kicks again and re-checks, so no request is left behind.
void VirtioBlkDevice::process_queue() {
  Virtqueue& vq = queue(0);
  for (;;) {
    vq.disable_notification();
    while (live_locked() && !free_.empty() && vq.pop(chain_) == PopResult::kChain) handle(chain_);
    flush_submissions();
    notify_queue(0);
    // Without a free slot, the next completion resumes this loop.
    if (!live_locked() || vq.broken() || free_.empty()) return;
    if (!vq.enable_notification()) return;
  }
}

void VirtioBlkDevice::finish(uint16_t head, uint8_t* status, uint8_t value, uint32_t used_len) {
  *status = value;
  if (value == VIRTIO_BLK_S_IOERR) stats_.io_errors.fetch_add(1, std::memory_order_relaxed);
  if (value == VIRTIO_BLK_S_UNSUPP) stats_.unsupported.fetch_add(1, std::memory_order_relaxed);
  queue(0).push_used(head, used_len);
}

void VirtioBlkDevice::handle(const VirtqChain& chain) {
  const uint16_t head = chain.head();
  // §5.2.6: without the header or the status byte there is nothing to
  // answer with; the driver is broken (QEMU: "virtio-blk missing headers").
  if (chain.readable_bytes() < sizeof(virtio_blk_req_hdr)) {
    device_error("request " + std::to_string(head) + ": " + std::to_string(chain.readable_bytes()) +
                 " readable bytes, the header needs 16");
    return;
  }
  if (chain.writable_bytes() < 1) {
    device_error("request " + std::to_string(head) + " has no writable status byte");
    return;
  }
  virtio_blk_req_hdr hdr;
  chain.read(0, &hdr, sizeof hdr);
  const VirtqBuffer& last = chain.writable().back();
  uint8_t* status = last.host + last.len - 1;
  const uint64_t readable_data = chain.readable_bytes() - sizeof hdr;
  const uint64_t writable_data = chain.writable_bytes() - 1;

  // Is [sector, sector + len / 512) inside the disk? No overflow: the
  // sector is compared with the capacity before any arithmetic.
  auto in_disk = [&](uint64_t len) {
    if (len % VIRTIO_BLK_SECTOR_SIZE) return false;
    const uint64_t n = len / VIRTIO_BLK_SECTOR_SIZE;
    return hdr.sector <= capacity_ && n <= capacity_ - hdr.sector;
  };

  switch (hdr.type) {
    case VIRTIO_BLK_T_IN:
    case VIRTIO_BLK_T_OUT: {
      const bool in = hdr.type == VIRTIO_BLK_T_IN;
      // IN: data is device-writable before the status byte; OUT: data is
      // device-readable after the header, and only the status is writable.
      const uint64_t len = in ? writable_data : readable_data;
      if ((in ? readable_data : writable_data) != 0 || !in_disk(len) || (!in && options_.read_only)) {
        finish(head, status, VIRTIO_BLK_S_IOERR, 1);
        return;
      }
      const uint16_t slot = free_.back();
      Request& r = reqs_[slot];
      if (!(in ? gather(chain.writable(), 0, len, r.iov) : gather(chain.readable(), sizeof hdr, len, r.iov))) {
        finish(head, status, VIRTIO_BLK_S_IOERR, 1);
        return;
      }
      free_.pop_back();
      r.head = head;
      r.type = hdr.type;
      r.status = status;
      r.offset = hdr.sector * VIRTIO_BLK_SECTOR_SIZE;
      r.expected = len;
      r.used_len = static_cast<uint32_t>(in ? len + 1 : 1);
      (in ? stats_.reads : stats_.writes).fetch_add(1, std::memory_order_relaxed);
      submit(slot);
      return;
    }
    case VIRTIO_BLK_T_FLUSH: {
      if (readable_data != 0 || writable_data != 0) {
        finish(head, status, VIRTIO_BLK_S_IOERR, 1);
        return;
      }
      const uint16_t slot = free_.back();
      free_.pop_back();
      Request& r = reqs_[slot];
      r.head = head;
      r.type = hdr.type;
      r.status = status;
      r.offset = 0;
      r.expected = 0;
      r.used_len = 1;
      r.iov.clear();
      stats_.flushes.fetch_add(1, std::memory_order_relaxed);
      submit(slot);
      return;
    }
    case VIRTIO_BLK_T_GET_ID: {
      if (readable_data != 0) {
        finish(head, status, VIRTIO_BLK_S_IOERR, 1);
        return;
      }
      // §5.2.6: a NUL-padded string of up to 20 bytes, as much as fits.
      char id[VIRTIO_BLK_ID_BYTES] = {};
      std::memcpy(id, options_.serial.data(), options_.serial.size());
      const uint32_t n = static_cast<uint32_t>(std::min<uint64_t>(writable_data, sizeof id));
      chain.write(0, id, n);
      stats_.get_ids.fetch_add(1, std::memory_order_relaxed);
      finish(head, status, VIRTIO_BLK_S_OK, n + 1);
      return;
    }
    default:
      finish(head, status, VIRTIO_BLK_S_UNSUPP, 1);
      return;
  }
}

void VirtioBlkDevice::submit(uint16_t slot) {
  Request& r = reqs_[slot];
  io_uring_sqe* sqe = io_uring_get_sqe(&ring_);
  if (!sqe) {
    flush_submissions();
    sqe = io_uring_get_sqe(&ring_);
  }
  if (!sqe) {
    // The ring is as large as the queue, so this means the host failed us.
    free_.push_back(slot);
    finish(r.head, r.status, VIRTIO_BLK_S_IOERR, 1);
    return;
  }
  const int fd = file_.get();
  switch (r.type) {
    case VIRTIO_BLK_T_IN:
      io_uring_prep_readv(sqe, fd, r.iov.data(), static_cast<unsigned>(r.iov.size()), r.offset);
      break;
    case VIRTIO_BLK_T_OUT:
      io_uring_prep_writev(sqe, fd, r.iov.data(), static_cast<unsigned>(r.iov.size()), r.offset);
      // A driver that did not take VIRTIO_BLK_F_FLUSH cannot ask for
      // durability, so every write is write-through (§5.2.5.1).
      if (!has_feature(VIRTIO_BLK_F_FLUSH)) sqe->rw_flags = RWF_DSYNC;
      break;
    default:
      io_uring_prep_fsync(sqe, fd, IORING_FSYNC_DATASYNC);
      break;
  }
  io_uring_sqe_set_data64(sqe, slot);
  ++in_flight_;
  ++unsubmitted_;
  uint64_t seen = stats_.max_in_flight.load(std::memory_order_relaxed);
  if (in_flight_ > seen) stats_.max_in_flight.store(in_flight_, std::memory_order_relaxed);
}

void VirtioBlkDevice::flush_submissions() {
  if (unsubmitted_ == 0) return;
  int r = io_uring_submit(&ring_);
  if (r == -EBUSY || r == -EAGAIN) {
    // The completion ring is full: make room, then try once more.
    reap(false);
    r = io_uring_submit(&ring_);
  }
  if (r < 0) {
    // The requests stay in the submission ring; drain() submits them.
    device_error(std::string("io_uring_submit: ") + std::strerror(-r));
    return;
  }
  unsubmitted_ = 0;
}

void VirtioBlkDevice::complete(io_uring_cqe* cqe, bool write_back) {
  const uint64_t slot = io_uring_cqe_get_data64(cqe);
  if (slot >= reqs_.size()) return;  // not ours: cannot happen
  Request& r = reqs_[slot];
  const int res = cqe->res;
  const bool ok = res >= 0 && static_cast<uint64_t>(res) == r.expected;
  if (ok && r.type == VIRTIO_BLK_T_IN) stats_.bytes_read.fetch_add(r.expected, std::memory_order_relaxed);
  if (ok && r.type == VIRTIO_BLK_T_OUT) stats_.bytes_written.fetch_add(r.expected, std::memory_order_relaxed);
  if (write_back) {
    // A short read still wrote what it read into the chain.
    const uint32_t used = ok ? r.used_len : (r.type == VIRTIO_BLK_T_IN && res > 0 ? static_cast<uint32_t>(res) + 1 : 1);
    finish(r.head, r.status, ok ? VIRTIO_BLK_S_OK : VIRTIO_BLK_S_IOERR, used);
  } else if (!ok) {
    stats_.io_errors.fetch_add(1, std::memory_order_relaxed);
  }
  r.iov.clear();
  free_.push_back(static_cast<uint16_t>(slot));
  --in_flight_;
}

void VirtioBlkDevice::reap(bool resume) {
  const bool was_starved = free_.empty();
  unsigned head, n = 0;
  io_uring_cqe* cqe;
  io_uring_for_each_cqe(&ring_, head, cqe) {
    complete(cqe, true);
    ++n;
  }
  io_uring_cq_advance(&ring_, n);
  if (n == 0) return;
  if (queue(0).enabled()) notify_queue(0);
  if (resume && was_starved && live_locked() && queue(0).enabled()) process_queue();
}

void VirtioBlkDevice::drain(bool write_back) {
  while (in_flight_ > 0) {
    // Submits anything still in the submission ring, then waits.
    const int r = io_uring_submit_and_wait(&ring_, 1);
    if (r < 0 && r != -EINTR && r != -EAGAIN && r != -EBUSY) {
      std::fprintf(stderr, "vmm: virtio-blk: waiting for in-flight requests: %s\n", std::strerror(-r));
      return;
    }
    unsubmitted_ = 0;
    unsigned head, n = 0;
    io_uring_cqe* cqe;
    io_uring_for_each_cqe(&ring_, head, cqe) {
      complete(cqe, write_back);
      ++n;
    }
    io_uring_cq_advance(&ring_, n);
  }
}

std::string VirtioBlkDevice::device_stats() const {
  auto get = [](const std::atomic<uint64_t>& a) { return a.load(std::memory_order_relaxed); };
  const uint64_t total = get(stats_.reads) + get(stats_.writes) + get(stats_.flushes) + get(stats_.get_ids);
  return std::to_string(total) + " requests (" + std::to_string(get(stats_.reads)) + " read, " +
         std::to_string(get(stats_.writes)) + " write, " + std::to_string(get(stats_.flushes)) + " flush, " +
         std::to_string(get(stats_.get_ids)) + " get-id), " + mib(get(stats_.bytes_read)) + " read, " +
         mib(get(stats_.bytes_written)) + " written, " + std::to_string(get(stats_.io_errors)) + " I/O errors, " +
         std::to_string(get(stats_.unsupported)) + " unsupported, at most " +
         std::to_string(get(stats_.max_in_flight)) + " in flight";
}

}  // namespace vmm
