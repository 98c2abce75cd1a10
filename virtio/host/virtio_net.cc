#include "virtio/host/virtio_net.h"

#include <cstring>
#include <stdexcept>

namespace vmm {

using namespace virtio;

namespace {

VirtioPciDevice::Params net_params() {
  VirtioPciDevice::Params p;
  p.name = "virtio-net";
  p.device_type = VIRTIO_ID_NET;
  p.class_code = 0x020000;  // network, Ethernet
  p.num_queues = 2;
  p.max_queue_size = VirtioNetDevice::kQueueSize;
  p.device_features = feature_bit(VIRTIO_NET_F_MAC) | feature_bit(VIRTIO_NET_F_STATUS);
  p.config_size = sizeof(virtio_net_config);
  return p;
}

constexpr uint32_t kHdrLen = sizeof(virtio_net_hdr);

}  // namespace

VirtioNetDevice::VirtioNetDevice(GuestMemory& mem, GsiRouter& router, const net::MacAddress& mac,
                                 const Connector& connect)
    : VirtioPciDevice(mem, router, net_params()), mac_(mac), rx_(std::make_shared<FrameQueue>(kRxBacklog)) {
  port_ = connect ? connect(rx_) : nullptr;
  if (!port_) throw std::runtime_error("virtio-net: could not connect the NIC to a network port");
  std::memcpy(config_.mac, mac_.data(), sizeof config_.mac);
  config_.status = VIRTIO_NET_S_LINK_UP;
  tx_buf_.resize(net::kMaxFrameLen);
  add_io_fd(rx_->event().fd(), [this] {
    rx_->event().consume();
    if (live_locked() && queue(VIRTIO_NET_RX_QUEUE).enabled()) process_rx();
  });
}

VirtioNetDevice::~VirtioNetDevice() {
  shutdown();
  // The switch may keep the FrameQueue a little longer; it drops from now on.
  rx_->set_open(false);
}

void VirtioNetDevice::read_device_config(uint32_t offset, uint8_t* data, uint32_t size) {
  std::memcpy(data, reinterpret_cast<const uint8_t*>(&config_) + offset, size);
}

void VirtioNetDevice::on_driver_ok() { rx_->set_open(true); }
void VirtioNetDevice::on_reset() { rx_->set_open(false); }
// A restored NIC receives again exactly when the saved one did (frames that
// waited in the old process's backlog are lost, as on a real link).
void VirtioNetDevice::on_restored() { rx_->set_open(live_locked()); }
void VirtioNetDevice::on_queue_reset(uint16_t) {
  // Nothing is in flight outside the I/O thread's current pass, which ran
  // to completion under mu_; frames waiting for RX buffers keep waiting.
}

void VirtioNetDevice::on_queue_kick(uint16_t q) {
  if (q == VIRTIO_NET_RX_QUEUE) process_rx();
  else process_tx();
}

void VirtioNetDevice::process_rx() {
  Virtqueue& vq = queue(VIRTIO_NET_RX_QUEUE);
  // Kicks on the receive queue only matter when frames wait for buffers,
  // so they stay off unless the ring ran dry below.
  vq.disable_notification();
  net::Frame frame;
  int budget = kBudget;
  while (live_locked() && rx_->take(frame)) {
    if (budget-- == 0) {
      rx_->put_back(std::move(frame));
      wake_io_thread();  // let the transmit queue have a turn
      break;
    }
    const PopResult r = vq.pop(chain_);
    if (r != PopResult::kChain) {
      rx_->put_back(std::move(frame));
      // No buffer: ask for a kick when the guest posts some, unless it
      // already did meanwhile (then go on).
      if (r == PopResult::kEmpty && vq.enable_notification()) {
        vq.disable_notification();
        continue;
      }
      break;
    }
    const uint64_t need = kHdrLen + frame.size();
    if (chain_.writable_bytes() < need) {
      stats_.rx_too_big.fetch_add(1, std::memory_order_relaxed);
      vq.push_used(chain_.head(), 0);
      continue;
    }
    virtio_net_hdr hdr{};
    hdr.num_buffers = 1;
    chain_.write(0, &hdr, kHdrLen);
    chain_.write(kHdrLen, frame.data(), frame.size());
    vq.push_used(chain_.head(), static_cast<uint32_t>(need));
    stats_.rx_frames.fetch_add(1, std::memory_order_relaxed);
    stats_.rx_bytes.fetch_add(frame.size(), std::memory_order_relaxed);
  }
  notify_queue(VIRTIO_NET_RX_QUEUE);
}

void VirtioNetDevice::process_tx() {
  Virtqueue& vq = queue(VIRTIO_NET_TX_QUEUE);
  int budget = kBudget;
  for (;;) {
    vq.disable_notification();
    while (live_locked() && vq.pop(chain_) == PopResult::kChain) {
      transmit(chain_);
      vq.push_used(chain_.head(), 0);
      if (--budget == 0) {
        // Notifications stay off: the wake-up brings us back here.
        notify_queue(VIRTIO_NET_TX_QUEUE);
        wake_io_thread();
        return;
      }
    }
    notify_queue(VIRTIO_NET_TX_QUEUE);
    if (!live_locked() || vq.broken()) return;
    if (!vq.enable_notification()) return;
  }
}

void VirtioNetDevice::transmit(const VirtqChain& chain) {
  // §5.1.6.2: header, then the frame, all device-readable. We offer no
  // offloads, so the header carries nothing we need.
  if (chain.readable_bytes() < kHdrLen) {
    stats_.tx_errors.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  const size_t len = chain.readable_bytes() - kHdrLen;
  if (len < net::kEthHeaderLen || len > net::kMaxFrameLen) {
    stats_.tx_errors.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  chain.read(kHdrLen, tx_buf_.data(), len);
  if (!port_->transmit(std::span<const uint8_t>(tx_buf_.data(), len))) {
    stats_.tx_errors.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  stats_.tx_frames.fetch_add(1, std::memory_order_relaxed);
  stats_.tx_bytes.fetch_add(len, std::memory_order_relaxed);
}

std::string VirtioNetDevice::device_stats() const {
  auto get = [](const std::atomic<uint64_t>& a) { return std::to_string(a.load(std::memory_order_relaxed)); };
  return "tx " + get(stats_.tx_frames) + " frames (" + get(stats_.tx_bytes) + " bytes), " + get(stats_.tx_errors) +
         " errors; rx " + get(stats_.rx_frames) + " frames (" + get(stats_.rx_bytes) + " bytes), " +
         std::to_string(rx_->dropped()) + " dropped (backlog full or driver not running), " +
         get(stats_.rx_too_big) + " too big for their buffer";
}

}  // namespace vmm
