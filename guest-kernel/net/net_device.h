// The contract between a guest NIC driver (virtio-net, e1000) and the
// network stack (guest-kernel/net/). One Ethernet frame at a time, no FCS,
// the 14-byte header included.
//
//   stack -> driver: transmit() copies the frame into the driver's TX ring
//     and returns at once; false when the ring is full (the frame is
//     dropped, as a real NIC would, and the stack counts it).
//   driver -> stack: the driver calls the receiver set with
//     set_receiver() from the event loop (never from interrupt context),
//     once per received frame; the frame is only valid during the call.
#pragma once

#include <stddef.h>
#include <stdint.h>

namespace net {

struct MacAddress {
  uint8_t b[6];
  bool operator==(const MacAddress&) const = default;
};

class NetDevice {
 public:
  using Receiver = void (*)(void* context, const uint8_t* frame, size_t len);

  virtual ~NetDevice() = default;
  virtual const char* name() const = 0;  // "virtio-net", "e1000"
  virtual MacAddress mac() const = 0;
  virtual bool transmit(const uint8_t* frame, size_t len) = 0;

  void set_receiver(Receiver fn, void* context) {
    receiver_ = fn;
    receiver_context_ = context;
  }

  // Counters every driver keeps; the stack and tests print them.
  uint64_t tx_frames = 0, tx_dropped = 0, rx_frames = 0, rx_dropped = 0, interrupts = 0;

 protected:
  // For drivers: hands one received frame to the stack (dropped if none).
  void receive(const uint8_t* frame, size_t len) {
    ++rx_frames;
    if (receiver_) receiver_(receiver_context_, frame, len);
  }

 private:
  Receiver receiver_ = nullptr;
  void* receiver_context_ = nullptr;
};

// Drivers register the NICs they bring up; the stack takes the first.
void register_net_device(NetDevice* dev);
NetDevice* net_device(size_t index);
size_t net_device_count();

}  // namespace net
