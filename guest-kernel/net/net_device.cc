#include "guest-kernel/net/net_device.h"

#include <vector>

namespace net {
namespace {
std::vector<NetDevice*>& devices() {
  static std::vector<NetDevice*> list;
  return list;
}
}  // namespace

void register_net_device(NetDevice* dev) { devices().push_back(dev); }
NetDevice* net_device(size_t index) { return index < devices().size() ? devices()[index] : nullptr; }
size_t net_device_count() { return devices().size(); }

}  // namespace net
