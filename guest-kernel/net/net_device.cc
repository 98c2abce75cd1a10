#include "guest-kernel/net/net_device.h"

#include <vector>

namespace net {
namespace {
std::vector<NetDevice*>& devices() {
  static std::vector<NetDevice*> list;
  return list;
}
}  // namespace

bool NetDevice::sweep_missed_interrupt() {
  const bool waiting = rx_waiting_for_interrupt();
  const uint64_t taken = interrupts_taken();
  // Waiting now and at the last sweep, with no interrupt in between: the
  // frames seen then are still there (only the driver takes them).
  const bool missed = waiting && waiting_at_last_sweep_ && taken == interrupts_at_last_sweep_;
  if (missed) {
    ++missed_interrupts;
    take_rx();
  }
  waiting_at_last_sweep_ = missed ? rx_waiting_for_interrupt() : waiting;
  interrupts_at_last_sweep_ = interrupts_taken();
  return missed;
}

void register_net_device(NetDevice* dev) { devices().push_back(dev); }
NetDevice* net_device(size_t index) { return index < devices().size() ? devices()[index] : nullptr; }
size_t net_device_count() { return devices().size(); }

}  // namespace net
