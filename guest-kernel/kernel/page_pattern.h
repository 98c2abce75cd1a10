// The checksummed page patterns of `mem-pattern=` (memory_command.h): data
// that is identical across pages and across VMs, so same-page merging has
// much to share, and that proves itself on every read.
//
// A page: word 0 = {magic, pattern id}, word 1 = FNV-1a checksum of words
// 2..511, words 2..511 generated from the id. The checksum catches any
// changed byte; the id, compared with what the page was last given, catches
// a page that is whole but not this one's (a merge onto the wrong page).
// Header-only and freestanding: the host's unit tests check it too.
#pragma once

#include <stddef.h>
#include <stdint.h>

namespace page_pattern {

constexpr size_t kPageBytes = 4096;
constexpr size_t kWords = kPageBytes / 8;
constexpr uint32_t kMagic = 0x4d50'5431;  // "MPT1"
constexpr uint64_t kChecksumSeed = 0xcbf29ce484222325ull;

inline uint64_t word(uint32_t id, size_t i) {
  uint64_t x = (uint64_t(id) + 1) * 0x9e3779b97f4a7c15ull + i * 0xbf58476d1ce4e5b9ull;
  x ^= x >> 31;
  return x * 0x94d049bb133111ebull;
}

inline uint64_t checksum_step(uint64_t h, uint64_t w) { return (h ^ w) * 0x100000001b3ull; }
inline uint64_t header(uint32_t id) { return (uint64_t(kMagic) << 32) | id; }

// volatile: every access reaches memory as the host maps it right now.
inline void write(volatile uint64_t* page, uint32_t id) {
  uint64_t h = kChecksumSeed;
  for (size_t i = 2; i < kWords; ++i) {
    const uint64_t x = word(id, i);
    page[i] = x;
    h = checksum_step(h, x);
  }
  page[1] = h;
  page[0] = header(id);
}

// Reads every word once.
inline bool check(const volatile uint64_t* page, uint32_t id) {
  const uint64_t head = page[0], sum = page[1];
  uint64_t h = kChecksumSeed;
  for (size_t i = 2; i < kWords; ++i) h = checksum_step(h, page[i]);
  return head == header(id) && sum == h;
}

}  // namespace page_pattern
