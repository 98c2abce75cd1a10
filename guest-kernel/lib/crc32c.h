// CRC-32C (Castagnoli, polynomial 0x1EDC6F41, reflected 0x82F63B78), the
// checksum of iSCSI, ext4 metadata and most storage logs: better error
// detection than CRC-32 (IEEE) on the short blocks storage writes.
// Header-only and freestanding (the table is built at compile time), so the
// guest kernel and host unit tests share it. Check value: crc32c("123456789")
// == 0xE3069283.
#pragma once

#include <stddef.h>
#include <stdint.h>

namespace crc32c {

struct Table {
  uint32_t v[256];
};

constexpr Table make_table() {
  Table t{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
    t.v[i] = c;
  }
  return t;
}
inline constexpr Table kTable = make_table();

// Continues a running CRC: extend(extend(0, a), b) == value(a ++ b).
constexpr uint32_t extend(uint32_t crc, const uint8_t* data, size_t len) {
  uint32_t c = ~crc;
  for (size_t i = 0; i < len; ++i) c = kTable.v[(c ^ data[i]) & 0xff] ^ (c >> 8);
  return ~c;
}

inline uint32_t value(const void* data, size_t len) { return extend(0, static_cast<const uint8_t*>(data), len); }

}  // namespace crc32c
