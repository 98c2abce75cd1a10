// x86-64 vCPU setup for PVH entry and readable dumps of vCPU state for
// crash reports (triple fault, internal error, failed entry).
#pragma once

#include <linux/kvm.h>

#include <cstdint>
#include <string>
#include <vector>

namespace vmm {

// The PVH entry state: 32-bit protected mode, paging off, flat 4 GiB code
// and data segments, %ebx = start info, everything else as after reset.
void set_pvh_entry_state(kvm_sregs& sregs, kvm_regs& regs, uint32_t entry, uint32_t start_info);

// KVM's supported CPUID adjusted for one vCPU: its APIC ID in leaves 1 and
// 0xB and the hypervisor bit. KVM's paravirtual leaves (0x40000000...) are
// kept as KVM offers them.
std::vector<kvm_cpuid_entry2> cpuid_for_vcpu(std::vector<kvm_cpuid_entry2> supported, int index, int count);

std::string format_cpu_state(const kvm_regs& r, const kvm_sregs& s);

}  // namespace vmm
