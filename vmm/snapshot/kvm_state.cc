#include "vmm/snapshot/kvm_state.h"

#include <sys/ioctl.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace vmm::snapshot {
namespace {

// Flexible-array KVM structs have the wrong size in C++ with Linux 6.1's
// headers (kvm.h in vmm/ explains): their ioctl numbers are spelled here
// with the C sizes. kvm_msr_list's header is one u32 (kvm_msrs', two u32s,
// is KvmFlexHeader: kKvmGetMsrs and kKvmSetMsrs in kvm.h).
constexpr unsigned long kGetMsrIndexList = _IOC(_IOC_READ | _IOC_WRITE, KVMIO, 0x02, 4);
// struct kvm_xsave is 4096 bytes in C (a trailing flexible array).
struct Xsave {
  uint32_t region[1024];
};
static_assert(sizeof(Xsave) == 4096);
constexpr unsigned long kGetXsave = _IOC(_IOC_READ, KVMIO, 0xa4, sizeof(Xsave));
constexpr unsigned long kSetXsave = _IOC(_IOC_WRITE, KVMIO, 0xa5, sizeof(Xsave));
constexpr uint32_t kMsrTscDeadline = 0x6e0;

std::string hex(uint32_t v) {
  char b[16];
  std::snprintf(b, sizeof b, "0x%x", v);
  return b;
}

// KVM_GET_MSRS / KVM_SET_MSRS return how many entries they processed,
// stopping at the first one KVM refuses.
long msr_ioctl(int fd, unsigned long req, KvmFlexBuffer<kvm_msr_entry>& buf, const char* name) {
  return checked_ioctl(fd, req, buf.data(), name);
}

}  // namespace

std::vector<uint32_t> saveable_msrs(const Kvm& kvm) {
  for (uint32_t n = 256; n <= 16384; n *= 2) {
    std::vector<uint32_t> buf(1 + n);
    buf[0] = n;
    if (::ioctl(kvm.fd(), kGetMsrIndexList, buf.data()) == 0)
      return std::vector<uint32_t>(buf.begin() + 1, buf.begin() + 1 + std::min(buf[0], n));
    if (errno != E2BIG) throw KvmError("ioctl KVM_GET_MSR_INDEX_LIST", errno);
  }
  throw KvmError("ioctl KVM_GET_MSR_INDEX_LIST", E2BIG);
}

void save_vcpu(Vcpu& vcpu, const std::vector<uint32_t>& msrs, bool has_xsave, bool has_xcrs, ByteWriter& out) {
  const int fd = vcpu.fd();
  out.u32(static_cast<uint32_t>(vcpu.index()));
  out.raw(vcpu.regs());
  out.raw(vcpu.sregs());
  out.u8(has_xsave ? 1 : 0);
  if (has_xsave) {
    Xsave x{};
    checked_ioctl(fd, kGetXsave, &x, "KVM_GET_XSAVE");
    out.raw(x);
  } else {
    kvm_fpu f{};
    KVM_IOCTL(fd, KVM_GET_FPU, &f);
    out.raw(f);
  }
  out.u8(has_xcrs ? 1 : 0);
  if (has_xcrs) {
    kvm_xcrs x{};
    KVM_IOCTL(fd, KVM_GET_XCRS, &x);
    out.raw(x);
  }
  // Every listed MSR this vCPU has; KVM stops at the first it cannot read
  // (an MSR of a feature this CPUID does not offer), which is skipped.
  std::vector<kvm_msr_entry> values;
  std::vector<uint32_t> remaining = msrs;
  while (!remaining.empty()) {
    KvmFlexBuffer<kvm_msr_entry> buf(static_cast<uint32_t>(remaining.size()));
    for (size_t i = 0; i < remaining.size(); ++i) buf.entries()[i] = kvm_msr_entry{remaining[i], 0, 0};
    const long got = msr_ioctl(fd, kKvmGetMsrs, buf, "KVM_GET_MSRS");
    for (long i = 0; i < got; ++i) values.push_back(buf.entries()[i]);
    remaining.erase(remaining.begin(), remaining.begin() + std::min<long>(got + 1, static_cast<long>(remaining.size())));
  }
  out.u32(static_cast<uint32_t>(values.size()));
  for (const auto& e : values) {
    out.u32(e.index);
    out.u64(e.data);
  }
  kvm_lapic_state lapic{};
  KVM_IOCTL(fd, KVM_GET_LAPIC, &lapic);
  out.raw(lapic);
  kvm_vcpu_events events{};
  KVM_IOCTL(fd, KVM_GET_VCPU_EVENTS, &events);
  out.raw(events);
  out.raw(vcpu.mp_state());
  kvm_debugregs dbg{};
  KVM_IOCTL(fd, KVM_GET_DEBUGREGS, &dbg);
  out.raw(dbg);
}

void restore_vcpu(Vcpu& vcpu, ByteReader& in) {
  const int fd = vcpu.fd();
  const uint32_t index = in.u32();
  if (index != static_cast<uint32_t>(vcpu.index()))
    throw SnapshotError(in.what() + ": state of vCPU " + std::to_string(index) + " where vCPU " +
                        std::to_string(vcpu.index()) + " was expected");
  const auto regs = in.raw<kvm_regs>("kvm_regs");
  const auto sregs = in.raw<kvm_sregs>("kvm_sregs");
  vcpu.set_sregs(sregs);
  vcpu.set_regs(regs);
  if (in.u8()) {
    auto x = in.raw<Xsave>("kvm_xsave");
    checked_ioctl(fd, kSetXsave, &x, "KVM_SET_XSAVE");
  } else {
    auto f = in.raw<kvm_fpu>("kvm_fpu");
    KVM_IOCTL(fd, KVM_SET_FPU, &f);
  }
  if (in.u8()) {
    auto x = in.raw<kvm_xcrs>("kvm_xcrs");
    KVM_IOCTL(fd, KVM_SET_XCRS, &x);
  }
  const uint32_t n = in.u32();
  if (n > in.remaining() / 12) throw SnapshotError(in.what() + ": MSR count " + std::to_string(n) + " is malformed");
  std::vector<kvm_msr_entry> msrs, deadline;
  for (uint32_t i = 0; i < n; ++i) {
    kvm_msr_entry e{};
    e.index = in.u32();
    e.data = in.u64();
    (e.index == kMsrTscDeadline ? deadline : msrs).push_back(e);
  }
  auto set_msrs = [&](const std::vector<kvm_msr_entry>& list) {
    if (list.empty()) return;
    KvmFlexBuffer<kvm_msr_entry> buf(static_cast<uint32_t>(list.size()));
    std::memcpy(buf.entries(), list.data(), list.size() * sizeof(kvm_msr_entry));
    const long done = msr_ioctl(fd, kKvmSetMsrs, buf, "KVM_SET_MSRS");
    // A saved MSR this KVM will not take back means the vCPU would not be
    // the one that was saved: refuse rather than run a different machine.
    if (done != static_cast<long>(list.size()))
      throw SnapshotError("KVM refused MSR " + hex(list[static_cast<size_t>(done)].index) + " = " +
                          std::to_string(list[static_cast<size_t>(done)].data) + " of vCPU " +
                          std::to_string(index));
  };
  set_msrs(msrs);
  auto lapic = in.raw<kvm_lapic_state>("kvm_lapic_state");
  auto events = in.raw<kvm_vcpu_events>("kvm_vcpu_events");
  auto mp = in.raw<kvm_mp_state>("kvm_mp_state");
  auto dbg = in.raw<kvm_debugregs>("kvm_debugregs");
  // KVM_GET_VCPU_EVENTS does not mark the NMI and SIPI fields valid, but
  // they were read: ask KVM to take them back too.
  events.flags |= KVM_VCPUEVENT_VALID_NMI_PENDING | KVM_VCPUEVENT_VALID_SIPI_VECTOR;
  KVM_IOCTL(fd, KVM_SET_VCPU_EVENTS, &events);
  KVM_IOCTL(fd, KVM_SET_MP_STATE, &mp);
  KVM_IOCTL(fd, KVM_SET_LAPIC, &lapic);
  set_msrs(deadline);
  KVM_IOCTL(fd, KVM_SET_DEBUGREGS, &dbg);
}

void save_irqchips(Vm& vm, bool has_pit, ByteWriter& out) {
  for (uint32_t chip : {KVM_IRQCHIP_PIC_MASTER, KVM_IRQCHIP_PIC_SLAVE, KVM_IRQCHIP_IOAPIC}) {
    kvm_irqchip c{};
    c.chip_id = chip;
    KVM_IOCTL(vm.fd(), KVM_GET_IRQCHIP, &c);
    out.raw(c);
  }
  out.u8(has_pit ? 1 : 0);
  if (has_pit) {
    kvm_pit_state2 p{};
    KVM_IOCTL(vm.fd(), KVM_GET_PIT2, &p);
    out.raw(p);
  }
}

void restore_irqchips(Vm& vm, ByteReader& in) {
  for (uint32_t chip : {KVM_IRQCHIP_PIC_MASTER, KVM_IRQCHIP_PIC_SLAVE, KVM_IRQCHIP_IOAPIC}) {
    auto c = in.raw<kvm_irqchip>("kvm_irqchip");
    if (c.chip_id != chip) throw SnapshotError(in.what() + ": irqchips out of order");
    KVM_IOCTL(vm.fd(), KVM_SET_IRQCHIP, &c);
  }
  if (in.u8()) {
    auto p = in.raw<kvm_pit_state2>("kvm_pit_state2");
    KVM_IOCTL(vm.fd(), KVM_SET_PIT2, &p);
  }
}

void save_clock(Vm& vm, ByteWriter& out) {
  kvm_clock_data c{};
  KVM_IOCTL(vm.fd(), KVM_GET_CLOCK, &c);
  out.u64(c.clock);
}

void restore_clock(Vm& vm, ByteReader& in) {
  // Only the clock value: the guest's kvmclock continues from where it was
  // saved, so the time the VM spent on disk is a pause, not a jump (the
  // guest sees no time pass, as after a live migration with downtime).
  kvm_clock_data c{};
  c.clock = in.u64();
  KVM_IOCTL(vm.fd(), KVM_SET_CLOCK, &c);
}

}  // namespace vmm::snapshot
