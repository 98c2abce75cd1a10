// The fuzz input read as a stream of little-endian values; past its end
// everything reads as zero, so every input is a complete program. Also
// CHECK, the targets' invariant check: a violated one traps, which
// libFuzzer reports as a crash with the input that caused it.
#pragma once

#define CHECK(c)                \
  do {                          \
    if (!(c)) __builtin_trap(); \
  } while (0)

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace fuzz {

struct Input {
  const uint8_t* p;
  size_t n;
  uint64_t take(size_t bytes) {
    uint64_t v = 0;
    const size_t k = bytes < n ? (bytes < 8 ? bytes : 8) : n;
    std::memcpy(&v, p, k);
    p += k;
    n -= k;
    return v;
  }
};

}  // namespace fuzz
