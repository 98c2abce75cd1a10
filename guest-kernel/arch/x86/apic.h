// The local APIC (x2APIC through MSRs where the CPU offers it, xAPIC
// through MMIO otherwise), the IOAPIC, and the legacy PICs (masked: all
// interrupts go through the APICs).
#pragma once

#include <stdint.h>

namespace x86 {

void apic_init();          // masks the PICs, enables the LAPIC, masks the IOAPIC
bool apic_is_x2apic();
uint32_t apic_id();
void apic_eoi();
bool apic_has_pv_eoi();  // KVM's paravirtual EOI in use
void apic_send_self_ipi(uint8_t vector);

// LAPIC timer. TSC-deadline mode where the CPU has it, one-shot count mode
// otherwise (calibrate first).
bool apic_has_tsc_deadline();
void apic_timer_init(uint8_t vector, uint64_t tsc_hz);
// Fires the timer vector once, at `tsc` (an absolute TSC value). The
// write is read back: a halt on a timer that was never armed lasts until
// some other interrupt comes, maybe never. Returns how many times it had
// to be written again (0 normally; suspected under the nested runner's
// software-emulated SVM, see docs/nested-triple-fault.md).
int apic_timer_arm_tsc(uint64_t tsc);
void apic_timer_disarm();
uint64_t apic_timer_hz();  // count-mode frequency after calibration

// Routes IOAPIC input `pin` to `vector` on this CPU (edge, active high).
void ioapic_route(uint8_t pin, uint8_t vector, bool level_triggered = false);
void ioapic_mask(uint8_t pin);
uint32_t ioapic_pin_count();

// The MSI address/data pair that delivers `vector` to this CPU.
uint32_t msi_address();
uint32_t msi_data(uint8_t vector);

}  // namespace x86
