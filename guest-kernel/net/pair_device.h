// Two NetDevices joined by an in-memory cable, for tests: the host unit
// tests (with a fake clock) and the guest self-tests (with the event loop)
// run whole stacks over it without a NIC. A transmitted frame arrives at
// the peer `latency_ns` later, from a Clock timer, as a driver would hand
// it over from the event loop. A filter can drop or alter frames (a lossy
// or hostile link), and the transmit ring can be made "full", at once or
// after a number of frames (a ring that fills in the middle of a burst).
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <functional>
#include <map>
#include <vector>

#include "guest-kernel/net/clock.h"
#include "guest-kernel/net/net_device.h"

namespace net {

class PairDevice : public NetDevice {
 public:
  // Sees every frame this device transmits; returns false to drop it.
  using Filter = std::function<bool(std::vector<uint8_t>& frame)>;

  PairDevice(Clock& clock, const MacAddress& mac) : clock_(clock), mac_(mac) {}
  ~PairDevice() override;
  PairDevice(const PairDevice&) = delete;
  PairDevice& operator=(const PairDevice&) = delete;

  static void connect(PairDevice& a, PairDevice& b);

  const char* name() const override { return "pair"; }
  MacAddress mac() const override { return mac_; }
  bool transmit(const uint8_t* frame, size_t len) override;

  // Hands a frame to our receiver at once, as if it came off the wire.
  void inject(const uint8_t* frame, size_t len) { receive(frame, len); }

  void set_filter(Filter f) { filter_ = std::move(f); }
  void set_tx_full(bool full) {
    tx_full_ = full;
    tx_room_ = kUnlimited;
  }
  // The ring takes `frames` more frames, then is full until set_tx_full(false).
  void set_tx_room(size_t frames) {
    tx_full_ = false;
    tx_room_ = frames;
  }
  uint64_t latency_ns = 100'000;
  size_t in_flight() const { return in_flight_.size(); }

 private:
  Clock& clock_;
  MacAddress mac_;
  PairDevice* peer_ = nullptr;
  Filter filter_;
  static constexpr size_t kUnlimited = ~size_t{0};
  bool tx_full_ = false;
  size_t tx_room_ = kUnlimited;
  std::map<uint64_t, Clock::TimerId> in_flight_;  // by frame number
  uint64_t next_frame_ = 0;
};

}  // namespace net
