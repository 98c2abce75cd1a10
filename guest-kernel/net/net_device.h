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

  // A safety net against a lost receive interrupt. With EVENT_IDX (and with
  // an edge-triggered MSI) one lost interrupt silences receive for good: the
  // device signals only when it crosses the index the driver last asked
  // for, and the driver waits for that signal. The owner of the device
  // calls this every kMissedInterruptSweepNs; frames that sat in the receive
  // ring through a whole period, while the driver waited for its interrupt
  // and none came, were missed: the driver takes them now and the miss is
  // counted (missed_interrupts) and returned, for the caller to report. A
  // frame that arrived just before a sweep is not a miss: it is left to its
  // interrupt, unless it is still waiting at the next sweep.
  static constexpr uint64_t kMissedInterruptSweepNs = 250'000'000;
  bool sweep_missed_interrupt();
  uint64_t missed_interrupts = 0;

 protected:
  // For the sweep; a device without interrupts keeps these defaults.
  // Frames are in the receive ring and the driver waits for an interrupt
  // to take them (false while it is already working through them).
  virtual bool rx_waiting_for_interrupt() const { return false; }
  // Interrupts the driver has taken so far (any cause).
  virtual uint64_t interrupts_taken() const { return interrupts; }
  // Takes the frames in the receive ring, as the interrupt would have.
  virtual void take_rx() {}

  // For drivers: hands one received frame to the stack (dropped if none).
  void receive(const uint8_t* frame, size_t len) {
    ++rx_frames;
    if (receiver_) receiver_(receiver_context_, frame, len);
  }

 private:
  Receiver receiver_ = nullptr;
  void* receiver_context_ = nullptr;
  bool waiting_at_last_sweep_ = false;
  uint64_t interrupts_at_last_sweep_ = 0;
};

// Drivers register the NICs they bring up; the stack takes the first.
void register_net_device(NetDevice* dev);
NetDevice* net_device(size_t index);
size_t net_device_count();

}  // namespace net
