#include "guest-kernel/block/block_device.h"

#include <vector>

namespace block {
namespace {
std::vector<BlockDevice*>& devices() {
  static std::vector<BlockDevice*> list;
  return list;
}
}  // namespace

const char* to_string(Status s) {
  switch (s) {
    case Status::kOk: return "ok";
    case Status::kIoError: return "I/O error";
    case Status::kUnsupported: return "unsupported";
    case Status::kBadRequest: return "bad request";
  }
  return "?";
}

void register_block_device(BlockDevice* dev) { devices().push_back(dev); }
BlockDevice* block_device(size_t index) { return index < devices().size() ? devices()[index] : nullptr; }
size_t block_device_count() { return devices().size(); }

}  // namespace block
