// What KVM holds for a VM beyond its RAM, saved to and restored from
// snapshot payloads (byte_io.h):
//   per vCPU   general and special registers, FPU/SSE/AVX (XSAVE, or the
//              legacy FPU area without it), XCR0, every MSR KVM lists as
//              saveable (KVM_GET_MSR_INDEX_LIST: EFER, STAR/LSTAR, kvmclock,
//              TSC, TSC-deadline, APIC base...), the LAPIC registers,
//              pending events (exceptions, NMI, interrupt shadow), the MP
//              state (running, halted, waiting for SIPI) and debug registers
//   per VM     the in-kernel PIC master and slave and IOAPIC, the PIT, and
//              kvmclock (KVM_GET_CLOCK)
// The structs are stored as KVM lays them out (blobs with their size), so a
// snapshot restores on the same host kernel architecture; a size mismatch
// is refused, not misread.
//
// Restore order matters and follows QEMU's: special registers first (they
// carry the APIC base and EFER), then general registers, FPU, XCRs, MSRs,
// events, MP state and LAPIC, and TSC-deadline last (KVM drops the
// deadline unless the LAPIC is already in TSC-deadline mode).
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "vmm/kvm.h"
#include "vmm/snapshot/byte_io.h"

namespace vmm::snapshot {

// The MSRs KVM can save and restore on this host (KVM_GET_MSR_INDEX_LIST).
std::vector<uint32_t> saveable_msrs(const Kvm& kvm);

// One vCPU's state; the vCPU must not be running (paused).
void save_vcpu(Vcpu& vcpu, const std::vector<uint32_t>& msrs, bool has_xsave, bool has_xcrs, ByteWriter& out);
// Sets a freshly created vCPU (its CPUID already set) to the saved state.
// Throws SnapshotError (malformed payload) or KvmError (KVM refused).
void restore_vcpu(Vcpu& vcpu, ByteReader& in);

// PIC master, PIC slave, IOAPIC and, when `has_pit`, the PIT.
void save_irqchips(Vm& vm, bool has_pit, ByteWriter& out);
void restore_irqchips(Vm& vm, ByteReader& in);

// kvmclock: restored last, just before the vCPUs run again.
void save_clock(Vm& vm, ByteWriter& out);
void restore_clock(Vm& vm, ByteReader& in);

}  // namespace vmm::snapshot
