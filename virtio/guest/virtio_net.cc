#include "virtio/guest/virtio_net.h"

#include "guest-kernel/arch/x86/cpu.h"
#include "guest-kernel/kernel/event_loop.h"
#include "guest-kernel/lib/print.h"
#include "guest-kernel/lib/string.h"
#include "guest-kernel/mm/page_alloc.h"
#include "virtio/features.h"
#include "virtio/pci.h"

namespace virtio::guest {
namespace {

constexpr uint16_t kQueueSizeCap = 256;
constexpr size_t kHeaderBytes = sizeof(virtio_net_hdr);
static_assert(kHeaderBytes + VirtioNet::kMaxFrame <= VirtioNet::kBufferBytes);

struct Registrar {
  Registrar() {
    pci::register_driver({"virtio-net", VIRTIO_PCI_VENDOR_ID,
                          static_cast<uint16_t>(VIRTIO_PCI_DEVICE_ID_BASE + VIRTIO_ID_NET), &VirtioNet::probe});
  }
} registrar;

uint8_t* alloc_buffers(size_t count) {
  const size_t pages = (count * VirtioNet::kBufferBytes + mm::kPageSize - 1) / mm::kPageSize;
  return reinterpret_cast<uint8_t*>(mm::alloc_pages(pages));
}

}  // namespace

bool VirtioNet::probe(const pci::Device& dev) {
  // Never freed: its interrupt vectors and the net registry point at it.
  auto* nic = new VirtioNet;
  if (!nic->init(dev)) return false;
  net::register_net_device(nic);
  return true;
}

bool VirtioNet::init(const pci::Device& dev) {
  if (!transport_.init(dev, "virtio-net")) return false;
  // No checksum or segmentation offloads and no mergeable buffers: every
  // frame is whole, in one buffer, with a zero header.
  if (!transport_.negotiate(feature_bit(VIRTIO_NET_F_MAC) | feature_bit(VIRTIO_NET_F_STATUS))) return false;

  if (transport_.has(VIRTIO_NET_F_MAC)) {
    if (!transport_.read_config(offsetof(virtio_net_config, mac), mac_.b, sizeof mac_.b)) {
      transport_.fail("cannot read the MAC address");
      return false;
    }
  } else {
    // §5.1.5: without VIRTIO_NET_F_MAC the driver picks one. Locally
    // administered, unicast, varied by the TSC so two guests differ.
    const uint64_t r = x86::rdtsc() * 0x9e3779b97f4a7c15ull;
    mac_ = net::MacAddress{{0x02, uint8_t(r >> 8), uint8_t(r >> 16), uint8_t(r >> 24), uint8_t(r >> 32),
                            uint8_t(r >> 40)}};
  }
  if (transport_.has(VIRTIO_NET_F_STATUS)) {
    uint16_t status = 0;
    transport_.read_config(offsetof(virtio_net_config, status), &status, sizeof status);
    link_up_ = status & VIRTIO_NET_S_LINK_UP;
  }

  if (!transport_.setup_queue(VIRTIO_NET_RX_QUEUE, kQueueSizeCap, &rx_,
                              [](void* c) { static_cast<VirtioNet*>(c)->on_rx(); }, this) ||
      !transport_.setup_queue(VIRTIO_NET_TX_QUEUE, kQueueSizeCap, &tx_,
                              [](void* c) { static_cast<VirtioNet*>(c)->reclaim_tx(); }, this))
    return false;
  transport_.set_config_callback([](void* c) { static_cast<VirtioNet*>(c)->on_config(); }, this);

  rx_buffers_ = alloc_buffers(rx_.size());
  tx_buffers_ = alloc_buffers(tx_.size());
  tx_free_ = new uint16_t[tx_.size()];
  if (!rx_buffers_ || !tx_buffers_) {
    transport_.fail("no memory for packet buffers");
    return false;
  }
  for (uint16_t i = 0; i < tx_.size(); ++i) tx_free_[tx_free_count_++] = i;
  // Fill the receive ring before DRIVER_OK (§5.1.5 allows it), so the
  // device never sees an empty ring.
  for (uint16_t i = 0; i < rx_.size(); ++i)
    if (!post_rx(i)) {
      transport_.fail("cannot fill the receive ring");
      return false;
    }
  // Transmit completions are reclaimed at the next transmit: no interrupts.
  tx_.disable_interrupts();
  if (!transport_.driver_ok()) return false;
  rx_.kick();

  char where[16];
  format_pci_address(dev, where, sizeof where);
  kprintf("virtio-net: %s mac %02x:%02x:%02x:%02x:%02x:%02x%s, link %s, queues rx %u tx %u%s%s\n", where,
          mac_.b[0], mac_.b[1], mac_.b[2], mac_.b[3], mac_.b[4], mac_.b[5],
          transport_.has(VIRTIO_NET_F_MAC) ? "" : " (chosen by the driver)", link_up_ ? "up" : "down", rx_.size(),
          tx_.size(), transport_.has(VIRTIO_F_INDIRECT_DESC) ? ", indirect" : "",
          transport_.has(VIRTIO_F_EVENT_IDX) ? ", event-idx" : "");
  return true;
}

bool VirtioNet::post_rx(uint16_t buffer) {
  // One device-writable buffer: header and frame together (any framing is
  // allowed with VERSION_1, §2.6.4). Token = index + 1 (never null).
  const Buffer b{reinterpret_cast<uint64_t>(rx_buffer(buffer)), static_cast<uint32_t>(kBufferBytes)};
  return rx_.add(nullptr, 0, &b, 1, reinterpret_cast<void*>(uintptr_t(buffer) + 1));
}

void VirtioNet::on_rx() {
  interrupts = transport_.interrupts();
  if (failed_) return;
  for (;;) {
    rx_.disable_interrupts();
    unsigned handled = 0;
    uint32_t written;
    while (handled < kRxBudget) {
      void* token = rx_.get_used(&written);
      if (!token) break;
      const uint16_t i = static_cast<uint16_t>(uintptr_t(token) - 1);
      // get_used() already clamps `written` to the buffer; a frame shorter
      // than a header plus an Ethernet header is the device's error.
      if (written < kHeaderBytes + kMinFrame)
        ++rx_dropped;
      else
        receive(rx_buffer(i) + kHeaderBytes, written - kHeaderBytes);
      // Back into the ring at once: it was just taken, so there is room.
      post_rx(i);
      ++handled;
    }
    // Refill after each batch: one kick for the whole batch.
    if (handled) rx_.kick();
    if (rx_.broken() || transport_.broken()) {
      failed_ = true;
      kprintf("virtio-net: device broken (%s): receive stopped\n",
              rx_.broken() ? rx_.broken_reason() : "the device needs a reset");
      return;
    }
    if (handled == kRxBudget) {
      // More may be waiting: continue later, interrupts still off, so
      // timers and other devices get their turn.
      EventLoop::instance().defer([this] { on_rx(); });
      return;
    }
    if (rx_.enable_interrupts()) return;  // nothing slipped in: sleep
  }
}

void VirtioNet::reclaim_tx() {
  while (void* token = tx_.get_used(nullptr)) tx_free_[tx_free_count_++] = static_cast<uint16_t>(uintptr_t(token) - 1);
}

bool VirtioNet::transmit(const uint8_t* frame, size_t len) {
  if (failed_ || transport_.broken() || tx_.broken() || !frame || len < kMinFrame || len > kMaxFrame) {
    ++tx_dropped;
    return false;
  }
  reclaim_tx();
  if (tx_free_count_ == 0) {
    ++tx_dropped;
    return false;
  }
  const uint16_t i = tx_free_[--tx_free_count_];
  uint8_t* buf = tx_buffer(i);
  memset(buf, 0, kHeaderBytes);  // no offloads: flags 0, GSO_NONE
  memcpy(buf + kHeaderBytes, frame, len);
  const Buffer b{reinterpret_cast<uint64_t>(buf), static_cast<uint32_t>(kHeaderBytes + len)};
  if (!tx_.add(&b, 1, nullptr, 0, reinterpret_cast<void*>(uintptr_t(i) + 1))) {
    tx_free_[tx_free_count_++] = i;
    ++tx_dropped;
    return false;
  }
  tx_.kick();
  ++tx_frames;
  return true;
}

void VirtioNet::on_config() {
  if (transport_.broken()) {
    failed_ = true;
    return;
  }
  if (!transport_.has(VIRTIO_NET_F_STATUS)) return;
  uint16_t status = 0;
  if (!transport_.read_config(offsetof(virtio_net_config, status), &status, sizeof status)) return;
  const bool up = status & VIRTIO_NET_S_LINK_UP;
  if (up != link_up_) kprintf("virtio-net: link %s\n", up ? "up" : "down");
  link_up_ = up;
}

}  // namespace virtio::guest
