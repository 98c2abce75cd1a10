#include "vmm/irq/irq_line.h"

#include <sys/ioctl.h>

#include <cerrno>
#include <cstring>
#include <iostream>

#include "vmm/kvm.h"

namespace vmm {

void KvmIrqLine::set_level(bool high) {
  kvm_irq_level irq{};
  irq.irq = gsi_;
  irq.level = high ? 1 : 0;
  if (ioctl(vm_.fd(), KVM_IRQ_LINE, &irq) < 0 && !failure_reported_.exchange(true)) {
    std::cerr << "vmm: KVM_IRQ_LINE for GSI " << gsi_ << " failed: " << std::strerror(errno) << "\n";
  }
}

}  // namespace vmm
