#include "guest-kernel/kernel/symbols.h"

#include "guest-kernel/lib/print.h"
#include "guest-kernel/lib/string.h"

struct KsymEntry {
  uint64_t addr;
  uint32_t name_offset;
  uint32_t reserved;
};

extern "C" const uint64_t ksyms_count;
extern "C" const KsymEntry ksyms_table[];
extern "C" const char ksyms_names[];
extern "C" const char __text_end[];

size_t symbol_count() { return ksyms_count; }

void symbolize(uint64_t addr, char* out, size_t size) {
  // The table is sorted by address: find the last symbol at or below addr.
  size_t lo = 0, hi = ksyms_count;
  while (lo < hi) {
    size_t mid = lo + (hi - lo) / 2;
    if (ksyms_table[mid].addr <= addr) lo = mid + 1;
    else hi = mid;
  }
  if (lo == 0 || addr >= reinterpret_cast<uint64_t>(__text_end)) {
    ksnprintf(out, size, "?");
    return;
  }
  const KsymEntry& e = ksyms_table[lo - 1];
  ksnprintf(out, size, "%s+%#lx", ksyms_names + e.name_offset, addr - e.addr);
}

uint64_t symbol_address(const char* name) {
  for (size_t i = 0; i < ksyms_count; ++i)
    if (strcmp(ksyms_names + ksyms_table[i].name_offset, name) == 0) return ksyms_table[i].addr;
  return 0;
}
