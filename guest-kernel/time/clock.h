// Timekeeping: a monotonic clock from kvmclock (the pvclock ABI) where the
// hypervisor offers it, otherwise from the TSC calibrated against the PIT
// (plain QEMU). The VMM's time page adds a per-VM offset and an error bound
// on top: now_ns() is the clock the services see, and the VMM can skew it.
#pragma once

#include <stdint.h>

namespace timekeeping {

void clock_init();
const char* clock_source();     // "kvmclock" or "tsc (PIT-calibrated)"
uint64_t tsc_hz();
// Nanoseconds since an arbitrary point, never going backwards. A reading
// that leaps more than an hour ahead of the last is refused (the last one
// is returned) unless the next reading confirms it.
uint64_t monotonic_ns();
// Readings monotonic_ns() refused as absurd leaps.
uint64_t leaps_refused_count();
// The monotonic clock plus the VMM's offset for this VM (0 while a negative
// offset exceeds the time since boot).
uint64_t now_ns();
// kvmclock reads that found the TSC behind the hypervisor's timestamp (and
// read the timestamp's time instead of wrapping).
uint64_t kvmclock_tsc_behind_reads();
int64_t vmm_offset_ns();
uint64_t uncertainty_ns();
bool has_time_page();

uint64_t ns_to_tsc(uint64_t ns);
void busy_wait_ns(uint64_t ns);

}  // namespace timekeeping
