// A VM's vCPUs seen from outside, for a guest that stopped making
// progress: where each one is, whether it can take an interrupt, and what
// its local APIC holds (vectors in service and requested, the priority
// that gates them, the timer). A vector left in service blocks its
// priority class and every class below; a halted vCPU with IF clear, or
// with a timer deadline far ahead, sleeps until something else wakes it.
// Read with the vCPUs parked (Machine::probe_vcpus); nothing is changed.
#pragma once

#include <linux/kvm.h>

#include <cstdint>
#include <string>
#include <vector>

#include "vmm/kvm.h"

namespace vmm {

struct VcpuProbe {
  int index = 0;
  uint32_t mp_state = 0;       // KVM_MP_STATE_*
  uint64_t rip = 0, rflags = 0;
  bool interrupt_shadow = false;          // after sti / mov ss
  bool interrupt_injected = false;        // an injection KVM still owes
  uint8_t injected_vector = 0;
  uint32_t tpr = 0, ppr = 0;              // task and processor priority
  std::vector<uint8_t> in_service;        // ISR, highest first
  std::vector<uint8_t> requested;         // IRR, highest first
  uint32_t lvt_timer = 0;                 // mode, mask and vector
  uint64_t tsc = 0, tsc_deadline = 0;     // the guest's TSC and its deadline (0: none)
  uint32_t tsc_khz = 0;                   // the guest's TSC rate (0: unknown)
};

// Reads one parked vCPU. Throws KvmError if KVM refuses a read.
VcpuProbe probe_vcpu(Vcpu& vcpu);

// The vectors set in one of the LAPIC's 256-bit registers (ISR 0x100,
// TMR 0x180, IRR 0x200), highest first: eight 32-bit words 0x10 apart.
std::vector<uint8_t> lapic_vectors(const kvm_lapic_state& lapic, uint32_t first_reg);
uint32_t lapic_reg(const kvm_lapic_state& lapic, uint32_t reg);

const char* mp_state_name(uint32_t mp_state);

}  // namespace vmm
