#include "guest-kernel/net/stats.h"

namespace net {

uint64_t NetStats::total_drops() const {
  uint64_t sum = 0;
  for_each([&sum](const char*, const char* name, uint64_t v) {
    if (name[0] == 'd' && name[1] == 'r' && name[2] == 'o' && name[3] == 'p' && name[4] == '_') sum += v;
  });
  return sum;
}

}  // namespace net
