#include "guest-kernel/time/clock.h"

#include "boot/platform.h"
#include "guest-kernel/arch/x86/cpu.h"
#include "guest-kernel/kernel/exit.h"
#include "guest-kernel/lib/string.h"

namespace timekeeping {
namespace {

constexpr uint32_t kMsrKvmSystemTimeNew = 0x4b564d01;
constexpr uint32_t kKvmFeatureClocksource2 = 1u << 3;

// pvclock_vcpu_time_info, written by the hypervisor.
struct PvclockTimeInfo {
  uint32_t version;
  uint32_t pad0;
  uint64_t tsc_timestamp;
  uint64_t system_time;
  uint32_t tsc_to_system_mul;
  int8_t tsc_shift;
  uint8_t flags;
  uint8_t pad[2];
};
static_assert(sizeof(PvclockTimeInfo) == 32);

alignas(64) volatile PvclockTimeInfo pvclock;
bool use_kvmclock = false;
uint64_t tsc_rate = 0;
uint64_t tsc_base = 0;
// TSC to ns: ns = (tsc_delta * tsc_mul) >> 32, precomputed.
uint64_t tsc_mul = 0;

bool kvm_clocksource2_available() {
  const x86::CpuidResult sig = x86::cpuid(0x40000000);
  char name[13];
  memcpy(name, &sig.ebx, 4);
  memcpy(name + 4, &sig.ecx, 4);
  memcpy(name + 8, &sig.edx, 4);
  name[12] = 0;
  if (memcmp(name, "KVMKVMKVM\0\0\0", 12) != 0 || sig.eax < 0x40000001) return false;
  return x86::cpuid(0x40000001).eax & kKvmFeatureClocksource2;
}

// Reads that found the TSC behind the clock's timestamp (see kvmclock_ns).
volatile uint64_t tsc_behind_reads = 0;

uint64_t kvmclock_ns() {
  uint32_t v0, v1;
  uint64_t ns;
  do {
    v0 = pvclock.version;
    asm volatile("" ::: "memory");  // x86 keeps loads in order; stop the compiler
    // The TSC could read a little behind the timestamp the hypervisor took
    // (a vCPU moved between host CPUs whose TSCs differ by a few cycles;
    // suspected, not seen, under the nested runner). Unsigned, that
    // difference would wrap into a jump of centuries, and every timer set
    // at that moment would never fire: a TSC behind the timestamp reads as
    // the timestamp, and the event loop reports the count.
    const int64_t since = static_cast<int64_t>(x86::rdtsc() - pvclock.tsc_timestamp);
    if (since < 0) tsc_behind_reads = tsc_behind_reads + 1;
    uint64_t delta = since < 0 ? 0 : static_cast<uint64_t>(since);
    const int8_t shift = pvclock.tsc_shift;
    if (shift < 0) delta >>= -shift;
    else delta <<= shift;
    ns = pvclock.system_time + static_cast<uint64_t>((unsigned __int128)delta * pvclock.tsc_to_system_mul >> 32);
    asm volatile("" ::: "memory");
    v1 = pvclock.version;
  } while ((v0 & 1) || v0 != v1);
  return ns;
}

// Measures the TSC rate with PIT channel 2 counting down 50 ms.
uint64_t calibrate_tsc_with_pit() {
  constexpr uint32_t kPitHz = 1193182, kMs = 50, kLatch = kPitHz * kMs / 1000;
  x86::outb(0x61, (x86::inb(0x61) & ~0x02) | 0x01);  // gate on, speaker off
  x86::outb(0x43, 0xb0);                             // ch 2, lo/hi byte, mode 0
  x86::outb(0x42, kLatch & 0xff);
  x86::outb(0x42, kLatch >> 8);
  const uint64_t t0 = x86::rdtsc();
  uint64_t spins = 0;
  while (!(x86::inb(0x61) & 0x20))
    if (++spins > 100000000) panic("the PIT does not count: no clock source");
  return (x86::rdtsc() - t0) * (1000 / kMs);
}

const volatile platform::TimePage* time_page() {
  return reinterpret_cast<const volatile platform::TimePage*>(platform::kTimePageGpa);
}

}  // namespace

void clock_init() {
  if (kvm_clocksource2_available()) {
    x86::wrmsr(kMsrKvmSystemTimeNew, reinterpret_cast<uint64_t>(&pvclock) | 1);
    use_kvmclock = true;
    // The TSC rate follows from the scale: ns = (tsc << shift) * mul >> 32.
    uint64_t hz = (1000000000ull << 32) / pvclock.tsc_to_system_mul;
    if (pvclock.tsc_shift > 0) hz >>= pvclock.tsc_shift;
    else hz <<= -pvclock.tsc_shift;
    tsc_rate = hz;
  } else {
    tsc_rate = calibrate_tsc_with_pit();
  }
  if (!tsc_rate) panic("cannot determine the TSC rate");
  tsc_mul = static_cast<uint64_t>(((unsigned __int128)1000000000ull << 32) / tsc_rate);
  tsc_base = x86::rdtsc();
}

const char* clock_source() { return use_kvmclock ? "kvmclock" : "tsc (PIT-calibrated)"; }

uint64_t tsc_hz() { return tsc_rate; }

namespace {

// A leap forward of more than this between two readings is believed only
// when the next reading confirms it (see monotonic_ns).
constexpr uint64_t kLeapNs = 3600ull * 1'000'000'000;
constexpr uint64_t kLeapConfirmNs = 10ull * 1'000'000'000;
uint64_t last_reading = 0, leap_seen = 0;
volatile uint64_t leaps_refused = 0;

uint64_t raw_monotonic_ns() {
  if (use_kvmclock) return kvmclock_ns();
  return static_cast<uint64_t>((unsigned __int128)(x86::rdtsc() - tsc_base) * tsc_mul >> 32);
}

}  // namespace

uint64_t monotonic_ns() {
  // One absurd reading would cost for good every timer set from it (its
  // deadline would lie centuries ahead; a Raft node whose tick timer dies
  // still answers but never campaigns again). A running guest's clock does
  // not leap an hour between two readings; a paused one can, and then the
  // next reading agrees with the leap: it is believed from then on. Until
  // then the last reading stands. (Racy across vCPUs, harmlessly: the
  // guests that read it on two vCPUs read it close together.)
  const uint64_t t = raw_monotonic_ns();
  if (last_reading && t > last_reading + kLeapNs) {
    const bool confirmed = leap_seen && t >= leap_seen && t - leap_seen < kLeapConfirmNs;
    if (!confirmed) {
      leap_seen = t;
      leaps_refused = leaps_refused + 1;
      return last_reading;
    }
  }
  leap_seen = 0;
  last_reading = t;
  return t;
}

uint64_t leaps_refused_count() { return leaps_refused; }

bool has_time_page() { return time_page()->magic == platform::kTimePageMagic; }

// Reads both fields under the page's sequence count.
static void read_time_page(int64_t* offset, uint64_t* uncertainty) {
  *offset = 0;
  *uncertainty = 0;
  if (!has_time_page()) return;
  uint32_t s0, s1;
  do {
    s0 = time_page()->sequence;
    asm volatile("" ::: "memory");
    *offset = time_page()->offset_ns;
    *uncertainty = time_page()->uncertainty_ns;
    asm volatile("" ::: "memory");
    s1 = time_page()->sequence;
  } while ((s0 & 1) || s0 != s1);
}

int64_t vmm_offset_ns() {
  int64_t o;
  uint64_t u;
  read_time_page(&o, &u);
  return o;
}

uint64_t uncertainty_ns() {
  int64_t o;
  uint64_t u;
  read_time_page(&o, &u);
  return u;
}

uint64_t now_ns() {
  // A negative offset larger than the time since boot (a VM rebooted while
  // the nemesis skews its clock back) reads as 0, not as a wrap to 2^64.
  const int64_t offset = vmm_offset_ns();
  const uint64_t mono = monotonic_ns();
  if (offset < 0 && mono < static_cast<uint64_t>(-(offset + 1)) + 1) return 0;
  return mono + static_cast<uint64_t>(offset);
}

uint64_t kvmclock_tsc_behind_reads() { return tsc_behind_reads; }

uint64_t ns_to_tsc(uint64_t ns) { return static_cast<uint64_t>((unsigned __int128)ns * tsc_rate / 1000000000ull); }

void busy_wait_ns(uint64_t ns) {
  const uint64_t end = monotonic_ns() + ns;
  while (monotonic_ns() < end) x86::pause();
}

}  // namespace timekeeping
