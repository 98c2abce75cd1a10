// Interrupt plumbing against a fake KVM: the GSI router's table, and the
// irqfd / ioeventfd RAII bindings.
#include <gtest/gtest.h>

#include "vmm/irq/eventfd.h"
#include "vmm/irq/fake_irq_backend.h"
#include "vmm/irq/gsi_router.h"

namespace vmm {
namespace {

int count_entries(const std::vector<kvm_irq_routing_entry>& t, uint32_t gsi) {
  int n = 0;
  for (const auto& e : t) n += e.gsi == gsi;
  return n;
}

TEST(GsiRouterTest, StartsWithKvmsLegacyTable) {
  FakeIrqBackend kvm;
  GsiRouter router(kvm, IrqCapabilities::all());
  ASSERT_EQ(kvm.routing_pushes, 1);
  ASSERT_EQ(kvm.routing.size(), 40u);
  for (uint32_t gsi = 0; gsi < 24; ++gsi) {
    bool ioapic = false, pic = false;
    for (const auto& e : kvm.routing) {
      if (e.gsi != gsi) continue;
      ASSERT_EQ(e.type, uint32_t(KVM_IRQ_ROUTING_IRQCHIP));
      if (e.u.irqchip.irqchip == KVM_IRQCHIP_IOAPIC) {
        ioapic = true;
        EXPECT_EQ(e.u.irqchip.pin, gsi);
      } else {
        pic = true;
        EXPECT_EQ(e.u.irqchip.irqchip, gsi < 8 ? uint32_t(KVM_IRQCHIP_PIC_MASTER) : uint32_t(KVM_IRQCHIP_PIC_SLAVE));
        EXPECT_EQ(e.u.irqchip.pin, gsi % 8);
      }
    }
    EXPECT_TRUE(ioapic) << gsi;
    EXPECT_EQ(pic, gsi < 16) << gsi;
  }
}

TEST(GsiRouterTest, AllocatesUpdatesAndReleasesMsiRoutes) {
  FakeIrqBackend kvm;
  GsiRouter router(kvm, IrqCapabilities::all());
  const uint32_t a = router.allocate_msi(), b = router.allocate_msi();
  EXPECT_EQ(a, 24u);
  EXPECT_EQ(b, 25u);
  EXPECT_EQ(kvm.routing_pushes, 1);  // no route yet, nothing to push

  ASSERT_TRUE(router.update_msi(b, {0xfee01000, 0x4041}));
  EXPECT_EQ(kvm.routing_pushes, 2);
  EXPECT_EQ(kvm.routing.size(), 41u);
  EXPECT_EQ(kvm.msi_route(b), (MsiMessage{0xfee01000, 0x4041}));
  EXPECT_EQ(kvm.msi_route(a), std::nullopt);
  EXPECT_EQ(count_entries(kvm.routing, 3), 2);  // the legacy pins survive

  EXPECT_TRUE(router.update_msi(b, {0xfee01000, 0x4041}));  // unchanged: no push
  EXPECT_EQ(kvm.routing_pushes, 2);
  ASSERT_TRUE(router.update_msi(b, {0x1'fee02000, 0x22}));  // address_hi travels too
  EXPECT_EQ(kvm.msi_route(b), (MsiMessage{0x1'fee02000, 0x22}));
  ASSERT_TRUE(router.update_msi(a, {0xfee00000, 0x30}));
  EXPECT_EQ(router.table().size(), 42u);

  router.release_msi(b);
  EXPECT_EQ(kvm.msi_route(b), std::nullopt);
  EXPECT_EQ(kvm.routing.size(), 41u);
  EXPECT_FALSE(router.update_msi(b, {0xfee00000, 1}));  // not allocated any more
  EXPECT_FALSE(router.update_msi(3, {0xfee00000, 1}));  // legacy GSIs are not MSI routes
  EXPECT_EQ(router.allocate_msi(), b);                  // lowest free GSI again
}

TEST(GsiRouterTest, RefusedTableKeepsTheOldRoute) {
  FakeIrqBackend kvm;
  GsiRouter router(kvm, IrqCapabilities::all());
  const uint32_t g = router.allocate_msi();
  ASSERT_TRUE(router.update_msi(g, {0xfee00000, 0x31}));
  kvm.fail_routing = true;
  EXPECT_FALSE(router.update_msi(g, {0xdead0000, 0x32}));
  kvm.fail_routing = false;
  EXPECT_EQ(kvm.msi_route(g), (MsiMessage{0xfee00000, 0x31}));
  // The router did not record the refused message: retrying pushes it.
  EXPECT_TRUE(router.update_msi(g, {0xdead0000, 0x32}));
  EXPECT_EQ(kvm.msi_route(g), (MsiMessage{0xdead0000, 0x32}));
}

TEST(GsiRouterTest, RunsOutOfGsisCleanly) {
  FakeIrqBackend kvm;
  GsiRouter router(kvm, IrqCapabilities::all(44));  // room for 4 MSI entries
  for (uint32_t i = 0; i < 4; ++i) EXPECT_EQ(router.allocate_msi(), 24 + i);
  EXPECT_THROW(router.allocate_msi(), std::runtime_error);
  router.release_msi(26);
  EXPECT_EQ(router.allocate_msi(), 26u);
}

TEST(GsiRouterTest, MissingCapabilitiesAreNamed) {
  FakeIrqBackend kvm;
  IrqCapabilities caps = IrqCapabilities::all();
  EXPECT_EQ(caps.missing(), "");
  EXPECT_TRUE(caps.can_deliver_msi());
  caps.irq_routing = false;
  caps.signal_msi = false;
  EXPECT_EQ(caps.missing(), "KVM_CAP_IRQ_ROUTING, KVM_CAP_SIGNAL_MSI");
  EXPECT_FALSE(caps.can_deliver_msi());
  EXPECT_THROW(GsiRouter(kvm, caps), std::runtime_error);
  caps.irq_routing = true;
  caps.irqfd = false;
  caps.signal_msi = true;
  EXPECT_TRUE(caps.can_deliver_msi());
}

TEST(GsiRouterTest, SignalMsiGoesStraightToKvm) {
  FakeIrqBackend kvm;
  GsiRouter router(kvm, IrqCapabilities::all());
  EXPECT_TRUE(router.signal_msi({0xfee00000, 0x41}));
  ASSERT_EQ(kvm.signalled.size(), 1u);
  EXPECT_EQ(kvm.signalled[0], (MsiMessage{0xfee00000, 0x41}));
  IrqCapabilities caps = IrqCapabilities::all();
  caps.signal_msi = false;
  GsiRouter without(kvm, caps);
  EXPECT_FALSE(without.signal_msi({0xfee00000, 0x41}));
  EXPECT_EQ(kvm.signalled.size(), 1u);
}

TEST(EventFdTest, CountsSignals) {
  EventFd e;
  EXPECT_EQ(e.consume(), 0u);  // non-blocking when empty
  e.signal();
  e.signal();
  EXPECT_EQ(e.consume(), 2u);
  EXPECT_EQ(e.consume(), 0u);
}

TEST(IrqFdTest, BindsForItsLifetime) {
  FakeIrqBackend kvm;
  int fd;
  {
    IrqFd irqfd(kvm, 30);
    fd = irqfd.event().fd();
    ASSERT_EQ(kvm.irqfds.count(fd), 1u);
    EXPECT_EQ(kvm.irqfds[fd], 30u);
    irqfd.trigger();
    EXPECT_EQ(irqfd.event().consume(), 1u);
  }
  EXPECT_TRUE(kvm.irqfds.empty());
}

TEST(IoEventFdTest, AssignsAndDeassignsTheSameBinding) {
  FakeIrqBackend kvm;
  EventFd ev;
  {
    IoEventFd mmio(kvm, ev, IoSpace::kMmio, 0xc0001000, 2, 3);  // datamatch 3
    IoEventFd pio(kvm, ev, IoSpace::kPio, 0xc040, 4);
    ASSERT_EQ(kvm.ioeventfds.size(), 2u);
    EXPECT_EQ(kvm.ioeventfds.count({false, 0xc0001000, 2, ev.fd(), true, 3}), 1u);
    EXPECT_EQ(kvm.ioeventfds.count({true, 0xc040, 4, ev.fd(), false, 0}), 1u);
    EXPECT_EQ(mmio.addr(), 0xc0001000u);
    // A duplicate binding is KVM's EEXIST, reported as KvmError.
    EXPECT_THROW(IoEventFd(kvm, ev, IoSpace::kPio, 0xc040, 4), KvmError);
  }
  EXPECT_TRUE(kvm.ioeventfds.empty());  // the fake refuses a deassign that does not match
}

}  // namespace
}  // namespace vmm
