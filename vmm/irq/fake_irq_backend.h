// An IrqBackend for unit tests: records what would have reached KVM. The
// eventfds it is given are real, so a test sees an irqfd trigger by reading
// the eventfd bound to a GSI. Header-only; not linked into the VMM.
#pragma once

#include <cerrno>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <tuple>
#include <vector>

#include "vmm/irq/irq_backend.h"
#include "vmm/kvm.h"

namespace vmm {

class FakeIrqBackend final : public IrqBackend {
 public:
  void set_gsi_routing(std::span<const kvm_irq_routing_entry> entries) override {
    std::lock_guard lock(mu);
    if (fail_routing) throw KvmError("ioctl KVM_SET_GSI_ROUTING (fake)", EINVAL);
    routing.assign(entries.begin(), entries.end());
    ++routing_pushes;
  }
  void set_irqfd(int eventfd, uint32_t gsi, bool assign) override {
    std::lock_guard lock(mu);
    if (assign) {
      if (irqfds.count(eventfd)) throw KvmError("ioctl KVM_IRQFD (fake)", EBUSY);
      irqfds[eventfd] = gsi;
    } else if (!irqfds.erase(eventfd)) {
      throw KvmError("ioctl KVM_IRQFD deassign (fake)", ENOENT);
    }
  }
  void set_ioeventfd(const kvm_ioeventfd& r) override {
    std::lock_guard lock(mu);
    const bool pio = r.flags & KVM_IOEVENTFD_FLAG_PIO;
    const bool match = r.flags & KVM_IOEVENTFD_FLAG_DATAMATCH;
    auto key = std::make_tuple(pio, r.addr, r.len, r.fd, match, match ? r.datamatch : 0);
    if (r.flags & KVM_IOEVENTFD_FLAG_DEASSIGN) {
      if (!ioeventfds.erase(key)) throw KvmError("ioctl KVM_IOEVENTFD deassign (fake)", ENOENT);
    } else if (!ioeventfds.insert(key).second) {
      throw KvmError("ioctl KVM_IOEVENTFD (fake)", EEXIST);
    }
  }
  int signal_msi(const MsiMessage& msg) override {
    std::lock_guard lock(mu);
    signalled.push_back(msg);
    return 1;
  }

  // The MSI route of `gsi` in the last table, if any.
  std::optional<MsiMessage> msi_route(uint32_t gsi) const {
    std::lock_guard lock(mu);
    for (const auto& e : routing)
      if (e.gsi == gsi && e.type == KVM_IRQ_ROUTING_MSI)
        return MsiMessage{e.u.msi.address_lo | (uint64_t(e.u.msi.address_hi) << 32), e.u.msi.data};
    return std::nullopt;
  }

  mutable std::mutex mu;
  bool fail_routing = false;
  std::vector<kvm_irq_routing_entry> routing;
  int routing_pushes = 0;
  std::map<int, uint32_t> irqfds;  // eventfd -> GSI
  // (pio, addr, len, fd, datamatch?, datamatch)
  std::set<std::tuple<bool, uint64_t, uint32_t, int32_t, bool, uint64_t>> ioeventfds;
  std::vector<MsiMessage> signalled;
};

}  // namespace vmm
