#include "vmm/vcpu_probe.h"

#include <sys/ioctl.h>

#include <cstring>

namespace vmm {
namespace {

constexpr uint32_t kTpr = 0x80, kPpr = 0xa0, kIsr = 0x100, kIrr = 0x200, kLvtTimer = 0x320;
constexpr uint32_t kMsrTsc = 0x10, kMsrTscDeadline = 0x6e0;

}  // namespace

uint32_t lapic_reg(const kvm_lapic_state& lapic, uint32_t reg) {
  uint32_t v = 0;
  if (reg + sizeof v <= sizeof lapic.regs) std::memcpy(&v, lapic.regs + reg, sizeof v);
  return v;
}

std::vector<uint8_t> lapic_vectors(const kvm_lapic_state& lapic, uint32_t first_reg) {
  std::vector<uint8_t> out;
  for (int word = 7; word >= 0; --word) {
    const uint32_t bits = lapic_reg(lapic, first_reg + 0x10 * static_cast<uint32_t>(word));
    for (int bit = 31; bit >= 0; --bit)
      if (bits & (1u << bit)) out.push_back(static_cast<uint8_t>(word * 32 + bit));
  }
  return out;
}

const char* mp_state_name(uint32_t mp_state) {
  switch (mp_state) {
    case KVM_MP_STATE_RUNNABLE: return "runnable";
    case KVM_MP_STATE_UNINITIALIZED: return "uninitialized";
    case KVM_MP_STATE_INIT_RECEIVED: return "init-received";
    case KVM_MP_STATE_HALTED: return "halted";
    case KVM_MP_STATE_SIPI_RECEIVED: return "sipi-received";
  }
  return "other";
}

VcpuProbe probe_vcpu(Vcpu& vcpu) {
  VcpuProbe p;
  p.index = vcpu.index();
  p.mp_state = vcpu.mp_state().mp_state;
  const kvm_regs regs = vcpu.regs();
  p.rip = regs.rip;
  p.rflags = regs.rflags;

  kvm_vcpu_events events{};
  KVM_IOCTL(vcpu.fd(), KVM_GET_VCPU_EVENTS, &events);
  p.interrupt_shadow = events.interrupt.shadow != 0;
  p.interrupt_injected = events.interrupt.injected != 0;
  p.injected_vector = events.interrupt.nr;

  kvm_lapic_state lapic{};
  KVM_IOCTL(vcpu.fd(), KVM_GET_LAPIC, &lapic);
  p.tpr = lapic_reg(lapic, kTpr);
  p.ppr = lapic_reg(lapic, kPpr);
  p.in_service = lapic_vectors(lapic, kIsr);
  p.requested = lapic_vectors(lapic, kIrr);
  p.lvt_timer = lapic_reg(lapic, kLvtTimer);

  // KVM_GET_MSRS through the header-plus-entries buffer (kvm.h): the
  // ioctl number is that of the bare header. It returns how many entries
  // it read, stopping at the first it refuses.
  KvmFlexBuffer<kvm_msr_entry> msrs(2);
  msrs.entries()[0] = kvm_msr_entry{kMsrTsc, 0, 0};
  msrs.entries()[1] = kvm_msr_entry{kMsrTscDeadline, 0, 0};
  const int got = ::ioctl(vcpu.fd(), kKvmGetMsrs, msrs.data());
  if (got >= 1) p.tsc = msrs.entries()[0].data;
  if (got >= 2) p.tsc_deadline = msrs.entries()[1].data;
  const int khz = ::ioctl(vcpu.fd(), KVM_GET_TSC_KHZ, 0);
  if (khz > 0) p.tsc_khz = static_cast<uint32_t>(khz);
  return p;
}

}  // namespace vmm
