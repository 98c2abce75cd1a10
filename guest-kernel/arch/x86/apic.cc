#include "guest-kernel/arch/x86/apic.h"

#include "guest-kernel/arch/x86/cpu.h"
#include "guest-kernel/kernel/exit.h"

namespace x86 {
namespace {

constexpr uint64_t kLapicBase = 0xfee00000;
constexpr uint64_t kIoapicBase = 0xfec00000;

enum LapicReg : uint32_t {
  kId = 0x20, kEoi = 0xb0, kSpurious = 0xf0, kIcrLow = 0x300, kIcrHigh = 0x310,
  kLvtTimer = 0x320, kLvtLint0 = 0x350, kLvtLint1 = 0x360, kLvtError = 0x370,
  kIrr = 0x200,  // eight 32-bit words, 0x10 apart
  kTimerInitial = 0x380, kTimerCurrent = 0x390, kTimerDivide = 0x3e0,
};
constexpr uint32_t kLvtMasked = 1u << 16;
constexpr uint32_t kTimerModeTscDeadline = 2u << 17;

bool x2apic = false;
// KVM's paravirtual EOI: the hypervisor sets bit 0 of this word when it
// delivered an interrupt that needs no EOI write from us (edge-triggered,
// nothing else pending), saving a VM exit per interrupt.
constexpr uint32_t kMsrKvmPvEoi = 0x4b564d04;
constexpr uint32_t kKvmFeaturePvEoi = 1u << 6;
alignas(4) volatile uint32_t pv_eoi_word = 0;
bool pv_eoi = false;
bool tsc_deadline = false;
uint8_t timer_vector = 0;
uint64_t timer_hz = 0;   // LAPIC timer counts per second (divide by 16)
uint64_t tsc_rate = 0;

uint32_t lapic_read(uint32_t reg) {
  return x2apic ? static_cast<uint32_t>(rdmsr(0x800 + (reg >> 4))) : mmio_read32(kLapicBase + reg);
}
void lapic_write(uint32_t reg, uint32_t v) {
  if (x2apic) wrmsr(0x800 + (reg >> 4), v);
  else mmio_write32(kLapicBase + reg, v);
}

uint32_t ioapic_read(uint32_t reg) {
  mmio_write32(kIoapicBase, reg);
  return mmio_read32(kIoapicBase + 0x10);
}
void ioapic_write(uint32_t reg, uint32_t v) {
  mmio_write32(kIoapicBase, reg);
  mmio_write32(kIoapicBase + 0x10, v);
}

bool timer_requested() {
  const uint32_t word = lapic_read(kIrr + 0x10 * (timer_vector / 32u));
  return word & (1u << (timer_vector % 32));
}

}  // namespace

void apic_init() {
  // Mask both 8259 PICs after remapping them away from the exception
  // vectors, in case one fires before the mask takes effect.
  outb(0x20, 0x11); outb(0xa0, 0x11);
  outb(0x21, 0x20); outb(0xa1, 0x28);
  outb(0x21, 0x04); outb(0xa1, 0x02);
  outb(0x21, 0x01); outb(0xa1, 0x01);
  outb(0x21, 0xff); outb(0xa1, 0xff);

  const CpuidResult f = cpuid(1);
  x2apic = f.ecx & (1u << 21);
  tsc_deadline = f.ecx & (1u << 24);
  uint64_t base = rdmsr(kMsrApicBase);
  base |= 1u << 11;                 // global enable
  if (x2apic) base |= 1u << 10;     // x2APIC mode
  wrmsr(kMsrApicBase, base);

  lapic_write(kSpurious, 0x100 | 0xff);  // software enable, spurious vector 255
  lapic_write(kLvtLint0, kLvtMasked);
  lapic_write(kLvtLint1, kLvtMasked);
  lapic_write(kLvtError, kLvtMasked);
  lapic_write(kLvtTimer, kLvtMasked);
  apic_eoi();

  for (uint32_t pin = 0; pin < ioapic_pin_count(); ++pin) ioapic_mask(static_cast<uint8_t>(pin));

  const CpuidResult sig = cpuid(0x40000000);
  const bool kvm = sig.ebx == 0x4b4d564b && sig.ecx == 0x564b4d56 && sig.edx == 0x4d;  // "KVMKVMKVM\0\0\0"
  if (kvm && sig.eax >= 0x40000001 && (cpuid(0x40000001).eax & kKvmFeaturePvEoi)) {
    wrmsr(kMsrKvmPvEoi, reinterpret_cast<uint64_t>(&pv_eoi_word) | 1);
    pv_eoi = true;
  }
}

bool apic_has_pv_eoi() { return pv_eoi; }

bool apic_is_x2apic() { return x2apic; }

uint32_t apic_id() { return x2apic ? lapic_read(kId) : lapic_read(kId) >> 24; }

void apic_eoi() {
  if (pv_eoi) {
    // Atomically take the "no EOI needed" bit; if KVM set it, we are done.
    uint32_t old;
    asm volatile("lock btrl $0, %1; setc %b0" : "=q"(old), "+m"(pv_eoi_word) : : "memory", "cc");
    if (old & 1) return;
  }
  lapic_write(kEoi, 0);
}

void apic_send_self_ipi(uint8_t vector) {
  if (x2apic) {
    wrmsr(0x83f, vector);  // the x2APIC SELF IPI register
    return;
  }
  lapic_write(kIcrHigh, 0);
  lapic_write(kIcrLow, (1u << 18) | vector);  // shorthand: self, fixed delivery
}

bool apic_has_tsc_deadline() { return tsc_deadline; }

void apic_timer_init(uint8_t vector, uint64_t tsc_hz) {
  tsc_rate = tsc_hz;
  timer_vector = vector;
  if (tsc_deadline) {
    lapic_write(kLvtTimer, kTimerModeTscDeadline | vector);
    return;
  }
  // Count mode: measure the timer's rate against the TSC over 10 ms.
  lapic_write(kTimerDivide, 0x3);  // divide by 16
  lapic_write(kLvtTimer, kLvtMasked | vector);
  lapic_write(kTimerInitial, 0xffffffff);
  const uint64_t t0 = rdtsc(), wait = tsc_hz / 100;
  while (rdtsc() - t0 < wait) pause();
  const uint32_t elapsed = 0xffffffff - lapic_read(kTimerCurrent);
  lapic_write(kTimerInitial, 0);
  timer_hz = uint64_t(elapsed) * 100;
  if (!timer_hz) panic("LAPIC timer does not count");
  lapic_write(kLvtTimer, vector);  // one-shot, unmasked
}

int apic_timer_arm_tsc(uint64_t tsc) {
  constexpr int kMaxRewrites = 3;
  if (tsc_deadline) {
    const uint64_t value = tsc ? tsc : 1;
    for (int rewrites = 0;; ++rewrites) {
      wrmsr(kMsrTscDeadline, value);
      // The register reads back the deadline until it fires, and 0 after.
      // It may fire a little early (KVM expires a deadline that lies
      // within its timer advance at once), but then the timer's vector is
      // requested (interrupts are off here). 0 before the deadline with
      // nothing requested is a write that did not take.
      if (rdmsr(kMsrTscDeadline) != 0 || rdtsc() >= value || timer_requested() || rewrites == kMaxRewrites)
        return rewrites;
    }
  }
  const uint64_t now = rdtsc();
  uint64_t counts = 1;
  if (tsc > now) {
    const unsigned __int128 c = (unsigned __int128)(tsc - now) * timer_hz / tsc_rate;
    counts = c > 0xffffffffu ? 0xffffffffu : (c ? static_cast<uint64_t>(c) : 1);
  }
  for (int rewrites = 0;; ++rewrites) {
    lapic_write(kTimerInitial, static_cast<uint32_t>(counts));
    // The initial count keeps what was written (the current count runs down).
    if (lapic_read(kTimerInitial) == counts || rewrites == kMaxRewrites) return rewrites;
  }
}

void apic_timer_disarm() {
  if (tsc_deadline) wrmsr(kMsrTscDeadline, 0);
  else lapic_write(kTimerInitial, 0);
}

uint64_t apic_timer_hz() { return timer_hz; }

uint32_t ioapic_pin_count() { return ((ioapic_read(1) >> 16) & 0xff) + 1; }

void ioapic_route(uint8_t pin, uint8_t vector, bool level_triggered) {
  ioapic_write(0x11 + 2 * pin, apic_id() << 24);
  ioapic_write(0x10 + 2 * pin, vector | (level_triggered ? (1u << 15) : 0));
}

void ioapic_mask(uint8_t pin) {
  ioapic_write(0x11 + 2 * pin, 0);
  ioapic_write(0x10 + 2 * pin, 1u << 16);
}

uint32_t msi_address() { return 0xfee00000u | (apic_id() << 12); }
uint32_t msi_data(uint8_t vector) { return vector; }  // fixed, edge

}  // namespace x86
