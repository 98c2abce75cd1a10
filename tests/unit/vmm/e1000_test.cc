// The e1000 (82540EM) device model against a driver played by the test:
// PCI identity, EEPROM (EERD and Microwire), PHY, interrupt registers,
// transmit and receive through descriptors in a small guest RAM, filters,
// statistics, interrupt throttling, MSI (the capability our model adds),
// and every malformed-ring case.
#include "vmm/devices/e1000/e1000.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <optional>
#include <thread>
#include <vector>

#include "vmm/irq/fake_irq_backend.h"
#include "vmm/irq/fake_irq_line.h"
#include "vmm/pci/pci_bus.h"

namespace vmm {
namespace {

using namespace e1000;

const net::MacAddress kMac = {0x52, 0x54, 0x00, 0x12, 0x34, 0x56};
const net::MacAddress kOther = {0x52, 0x54, 0x00, 0xaa, 0xbb, 0xcc};
const net::MacAddress kBroadcast = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};

constexpr uint64_t kRam = 1 << 20;
constexpr uint64_t kTxRing = 0x1000, kRxRing = 0x2000;
constexpr uint64_t kTxBuf = 0x10000, kRxBuf = 0x40000;

class FakePort : public net::FramePort {
 public:
  bool transmit(std::span<const uint8_t> frame) override {
    if (refuse) return false;
    frames.emplace_back(frame.begin(), frame.end());
    return true;
  }
  std::vector<net::Frame> frames;
  bool refuse = false;
};

net::Frame make_frame(const net::MacAddress& dst, size_t len, uint8_t fill = 0x5a) {
  net::Frame f(len, fill);
  std::memcpy(f.data(), dst.data(), 6);
  std::memcpy(f.data() + 6, kOther.data(), 6);
  f[12] = 0x08;
  f[13] = 0x00;
  for (size_t i = 14; i < len; ++i) f[i] = static_cast<uint8_t>(fill + i);
  return f;
}

// One's complement sum of 16-bit big-endian words, folded.
uint32_t sum16(const uint8_t* p, size_t n, uint32_t sum = 0) {
  for (size_t i = 0; i < n; i += 2) sum += uint32_t{p[i]} << 8 | (i + 1 < n ? p[i + 1] : 0);
  while (sum >> 16) sum = (sum & 0xffff) + (sum >> 16);
  return sum;
}

class E1000Test : public ::testing::Test {
 protected:
  void SetUp() override { make(E1000::Options{}); }

  void make(E1000::Options o) {
    o.io_thread = false;
    o.clock = [this] { return clock_ns; };
    dev = E1000::create(mem, irq, kMac, o);
    dev->set_port(port);
    dev->config_write(pci::kCommand, 2, pci::kCommandMemory | pci::kCommandIo | pci::kCommandMaster);
  }
  // A device with the MSI capability, its messages going to a fake KVM.
  void make_msi(IrqCapabilities caps = IrqCapabilities::all(), E1000::Options o = {}) {
    dev.reset();
    router = std::make_unique<GsiRouter>(kvm, caps);
    o.msi_router = router.get();
    make(std::move(o));
  }
  // What a driver's pci::msi_enable() does, without touching COMMAND.
  void msi_program(uint64_t address, uint16_t data) {
    const uint8_t c = dev->msi_capability();
    dev->config_write(c + pci::kMsiAddressLo, 4, static_cast<uint32_t>(address));
    dev->config_write(c + pci::kMsiAddressHi, 4, static_cast<uint32_t>(address >> 32));
    dev->config_write(c + pci::kMsiData64, 2, data);
  }
  void msi_control(uint16_t v) { dev->config_write(dev->msi_capability() + pci::kMsiControl, 2, v); }
  // Messages sent through the device's irqfd (the only one) since the
  // last call: the real eventfd's counter, read and reset.
  uint64_t msi_sent() {
    std::lock_guard lock(kvm.mu);
    EXPECT_LE(kvm.irqfds.size(), 1u);
    if (kvm.irqfds.empty()) return 0;
    uint64_t n = 0;
    return ::read(kvm.irqfds.begin()->first, &n, sizeof n) == sizeof n ? n : 0;
  }
  std::optional<uint32_t> msi_gsi() {
    std::lock_guard lock(kvm.mu);
    if (kvm.irqfds.empty()) return std::nullopt;
    return kvm.irqfds.begin()->second;
  }

  uint32_t rd(uint32_t off) { return dev->reg_read(off); }
  void wr(uint32_t off, uint32_t v) { dev->reg_write(off, v); }

  void setup_tx(uint32_t count = 16) {
    wr(kTdbal, kTxRing);
    wr(kTdbah, 0);
    wr(kTdlen, count * kDescSize);
    wr(kTdh, 0);
    wr(kTdt, 0);
    wr(kTctl, kTctlEn | kTctlPsp);
  }
  void put_tx(uint32_t i, uint64_t addr, uint32_t len, uint8_t cmd, uint8_t cso = 0, uint8_t css = 0) {
    TxDesc d{addr, len | uint32_t{cso} << 16 | uint32_t{cmd} << 24, uint32_t{css} << 8};
    ASSERT_TRUE(mem.write(kTxRing + i * kDescSize, &d, sizeof d));
  }
  void put_tx_raw(uint32_t i, const TxDesc& d) { ASSERT_TRUE(mem.write(kTxRing + i * kDescSize, &d, sizeof d)); }
  uint8_t tx_status(uint32_t i) { return mem.ptr(kTxRing + i * kDescSize, kDescSize)[kTxStatusOffset]; }

  // `count` descriptors with buffers of `bsize` bytes, all handed to the
  // device (RDT = count - 1).
  void setup_rx(uint32_t count = 16, uint32_t rctl_size = 0, uint32_t bsize = 2048) {
    for (uint32_t i = 0; i < count; ++i) {
      RxDesc d{kRxBuf + uint64_t{i} * bsize, 0, 0, 0, 0, 0};
      ASSERT_TRUE(mem.write(kRxRing + i * kDescSize, &d, sizeof d));
    }
    wr(kRdbal, kRxRing);
    wr(kRdbah, 0);
    wr(kRdlen, count * kDescSize);
    wr(kRdh, 0);
    wr(kRdt, count - 1);
    wr(kRctl, kRctlEn | kRctlBam | kRctlSecrc | rctl_size);
  }
  RxDesc rx_desc(uint32_t i) {
    RxDesc d;
    EXPECT_TRUE(mem.read(kRxRing + i * kDescSize, &d, sizeof d));
    return d;
  }

  GuestMemory mem{kRam};
  std::shared_ptr<FakeIrqLine> irq = std::make_shared<FakeIrqLine>(11);
  std::shared_ptr<FakePort> port = std::make_shared<FakePort>();
  uint64_t clock_ns = 1'000'000'000;
  // Before `dev`: the device's MSI route is released while they exist.
  FakeIrqBackend kvm;
  std::unique_ptr<GsiRouter> router;
  std::shared_ptr<E1000> dev;
};

// ---- Identity, EEPROM, PHY, link ---------------------------------------------

TEST_F(E1000Test, PciIdentityAndBars) {
  EXPECT_EQ(dev->config_read(pci::kVendorId, 2), 0x8086u);
  EXPECT_EQ(dev->config_read(pci::kDeviceId, 2), 0x100eu);
  EXPECT_EQ(dev->config_read(0x08, 4) >> 8, 0x020000u);  // class code
  EXPECT_EQ(dev->config_read(pci::kInterruptPin, 1), 1u);
  EXPECT_EQ(dev->config_read(pci::kInterruptLine, 1), 11u);
  EXPECT_EQ(dev->bar_info(0).size, 128u << 10);
  EXPECT_EQ(dev->bar_info(0).kind, PciBarKind::kMem32);
  EXPECT_TRUE(dev->bar_info(1).present);
  EXPECT_EQ(dev->bar_info(1).kind, PciBarKind::kIo);
}

TEST_F(E1000Test, EepromThroughEerdHoldsMacAndChecksum) {
  uint16_t sum = 0;
  for (uint32_t w = 0; w < Eeprom::kWords; ++w) {
    wr(kEerd, kEerdStart | w << kEerdAddrShift);
    const uint32_t v = rd(kEerd);
    ASSERT_TRUE(v & kEerdDone) << "word " << w;
    EXPECT_EQ((v >> kEerdAddrShift) & 0xff, w);
    const uint16_t word = static_cast<uint16_t>(v >> kEerdDataShift);
    if (w < 3) {
      EXPECT_EQ(word, kMac[2 * w] | kMac[2 * w + 1] << 8) << "MAC word " << w;
    }
    sum = static_cast<uint16_t>(sum + word);
  }
  EXPECT_EQ(sum, 0xbaba);
  wr(kEerd, 0);  // no START: nothing done
  EXPECT_FALSE(rd(kEerd) & kEerdDone);
}

// The Microwire sequence Linux's e1000 driver bit-bangs on an 82540.
uint16_t microwire_read(E1000Test* t, E1000& dev, uint32_t word) {
  (void)t;
  constexpr uint32_t SK = 1, CS = 2, DI = 4, DO = 8, REQ = 1u << 6, GNT = 1u << 7;
  dev.reg_write(kEecd, REQ);
  EXPECT_TRUE(dev.reg_read(kEecd) & GNT);
  dev.reg_write(kEecd, REQ | CS);
  auto shift_out = [&](uint32_t bits, int count) {
    for (int i = count - 1; i >= 0; --i) {
      const uint32_t di = (bits >> i) & 1 ? DI : 0;
      dev.reg_write(kEecd, REQ | CS | di);
      dev.reg_write(kEecd, REQ | CS | di | SK);
      dev.reg_write(kEecd, REQ | CS | di);
    }
  };
  shift_out(0b110, 3);  // READ
  shift_out(word, 6);
  uint16_t v = 0;
  for (int i = 0; i < 16; ++i) {
    dev.reg_write(kEecd, REQ | CS | SK);
    v = static_cast<uint16_t>(v << 1 | ((dev.reg_read(kEecd) & DO) ? 1 : 0));
    dev.reg_write(kEecd, REQ | CS);
  }
  dev.reg_write(kEecd, REQ);
  dev.reg_write(kEecd, 0);
  return v;
}

TEST_F(E1000Test, EepromThroughMicrowireBitBanging) {
  EXPECT_TRUE(rd(kEecd) & kEecdPres);
  for (uint32_t w = 0; w < 3; ++w) EXPECT_EQ(microwire_read(this, *dev, w), kMac[2 * w] | kMac[2 * w + 1] << 8);
  wr(kEerd, kEerdStart | 0x3f << kEerdAddrShift);
  EXPECT_EQ(microwire_read(this, *dev, 0x3f), rd(kEerd) >> kEerdDataShift);
}

TEST_F(E1000Test, PhyThroughMdicReportsLinkUp) {
  auto mdic_read = [&](uint32_t phy, uint32_t reg) {
    wr(kMdic, kMdicOpRead | phy << kMdicPhyShift | reg << kMdicRegShift);
    return rd(kMdic);
  };
  uint32_t v = mdic_read(1, Phy::kStatus);
  EXPECT_TRUE(v & kMdicReady);
  EXPECT_FALSE(v & kMdicError);
  EXPECT_TRUE(v & Phy::kStatusLinkUp);
  EXPECT_TRUE(v & Phy::kStatusAutonegComplete);
  EXPECT_EQ(mdic_read(1, Phy::kId1) & 0xffff, 0x0141u);
  EXPECT_EQ(mdic_read(1, Phy::kId2) & 0xffff, 0x0c20u);
  EXPECT_TRUE(mdic_read(2, Phy::kStatus) & kMdicError);  // no PHY at address 2
  // A write to a control register sticks; MDAC is raised when asked.
  wr(kIms, kIntMdac);
  wr(kMdic, kMdicOpWrite | 1 << kMdicPhyShift | Phy::kAutonegAdvert << kMdicRegShift | 0x01e1 | kMdicIntEnable);
  EXPECT_TRUE(rd(kMdic) & kMdicReady);
  EXPECT_TRUE(irq->level);
  EXPECT_EQ(rd(kIcr), kIntMdac);
  EXPECT_EQ(mdic_read(1, Phy::kAutonegAdvert) & 0xffff, 0x01e1u);
}

TEST_F(E1000Test, LinkComesUpWithSluAndRaisesLsc) {
  EXPECT_FALSE(rd(kStatus) & kStatusLu);
  wr(kIms, kIntLsc);
  wr(kCtrl, rd(kCtrl) | kCtrlSlu);
  const uint32_t status = rd(kStatus);
  EXPECT_TRUE(status & kStatusLu);
  EXPECT_TRUE(status & kStatusFd);
  EXPECT_EQ(status & (3u << 6), kStatusSpeed1000);
  EXPECT_TRUE(irq->level);
  EXPECT_EQ(rd(kIcr), kIntLsc);
  EXPECT_FALSE(irq->level);
}

// ---- Interrupt registers -----------------------------------------------------

TEST_F(E1000Test, IcrReadToClearAndImsImcMasking) {
  wr(kIcs, kIntRxt0 | kIntTxdw);
  EXPECT_FALSE(irq->level) << "masked causes must not assert the line";
  wr(kIms, kIntTxdw);
  EXPECT_EQ(rd(kIms), kIntTxdw);
  EXPECT_TRUE(irq->level);
  wr(kImc, kIntTxdw);
  EXPECT_EQ(rd(kIms), 0u);
  EXPECT_FALSE(irq->level);
  wr(kIms, kIntRxt0 | kIntTxdw);
  EXPECT_TRUE(irq->level);
  EXPECT_EQ(rd(kIcr), kIntRxt0 | kIntTxdw);
  EXPECT_FALSE(irq->level);
  EXPECT_EQ(rd(kIcr), 0u) << "ICR clears on read";
  // Writing 1s to ICR clears those causes only.
  wr(kIcs, kIntRxt0 | kIntLsc);
  EXPECT_TRUE(irq->level);
  wr(kIcr, kIntRxt0);
  EXPECT_FALSE(irq->level) << "LSC is pending but masked";
  EXPECT_EQ(rd(kIcr), kIntLsc);
  EXPECT_EQ(irq->rises, 3u);
  EXPECT_EQ(dev->stats().interrupts, 3u);
}

TEST_F(E1000Test, IntxDisableInCommandHoldsTheLineLow) {
  wr(kIms, kIntTxdw);
  wr(kIcs, kIntTxdw);
  EXPECT_TRUE(irq->level);
  dev->config_write(pci::kCommand, 2, pci::kCommandMemory | pci::kCommandMaster | pci::kCommandIntxDisable);
  EXPECT_FALSE(irq->level);
  dev->config_write(pci::kCommand, 2, pci::kCommandMemory | pci::kCommandMaster);
  EXPECT_TRUE(irq->level);
}

TEST_F(E1000Test, ItrSpacesInterruptsAndPollDeliversTheDeferredOne) {
  wr(kItr, 1000);  // 256 us between assertions
  wr(kIms, kIntRxt0);
  wr(kIcs, kIntRxt0);
  EXPECT_TRUE(irq->level);
  rd(kIcr);
  EXPECT_FALSE(irq->level);
  clock_ns += 100'000;  // 100 us later: too soon
  wr(kIcs, kIntRxt0);
  EXPECT_FALSE(irq->level);
  dev->poll();
  EXPECT_FALSE(irq->level);
  clock_ns += 156'000;  // 256 us after the first assertion
  dev->poll();
  EXPECT_TRUE(irq->level);
  EXPECT_EQ(rd(kIcr), kIntRxt0);
  wr(kItr, 0);  // throttling off: immediate again
  wr(kIcs, kIntRxt0);
  EXPECT_TRUE(irq->level);
}

// ---- MSI (an addition to the 82540EM) --------------------------------------------

constexpr uint64_t kMsiAddr = 0xfee01000;  // LAPIC 1
constexpr uint16_t kMsiData = 0x0041;      // vector 0x41, fixed, edge

TEST_F(E1000Test, WithoutARouterTheDeviceIsAnExact82540emWithoutCapabilities) {
  EXPECT_EQ(dev->msi_capability(), 0u);
  EXPECT_FALSE(dev->config_read(pci::kStatus, 2) & pci::kStatusCapList);
  EXPECT_EQ(dev->config_read(pci::kCapabilityList, 1), 0u);
  EXPECT_NE(dev->stats_line().find("by INTx (no MSI capability)"), std::string::npos) << dev->stats_line();
}

TEST_F(E1000Test, MsiCapabilityLayout) {
  make_msi();
  const uint8_t c = dev->msi_capability();
  EXPECT_TRUE(dev->config_read(pci::kStatus, 2) & pci::kStatusCapList);
  EXPECT_EQ(dev->config_read(pci::kCapabilityList, 1), c);
  EXPECT_EQ(c, pci::kFirstCapability);
  EXPECT_EQ(dev->config_read(c, 1), pci::kCapIdMsi);
  EXPECT_EQ(dev->config_read(c + 1, 1), 0u) << "the only capability";
  // 64-bit capable, one vector (MMC 0), no per-vector masking, disabled.
  EXPECT_EQ(dev->config_read(c + pci::kMsiControl, 2), pci::kMsiControl64Bit);
  // Writable: enable and Multiple Message Enable only.
  dev->config_write(c + pci::kMsiControl, 2, 0xffff);
  EXPECT_EQ(dev->config_read(c + pci::kMsiControl, 2),
            pci::kMsiControl64Bit | pci::kMsiControlMmeMask | pci::kMsiControlEnable);
  EXPECT_TRUE(dev->msi_enabled());
  dev->config_write(c + pci::kMsiControl, 2, 0);
  EXPECT_FALSE(dev->msi_enabled());
  // Address bits 1:0 are hardwired to zero; the upper address is all ours;
  // the data register is 16 bits, the 2 bytes after it reserved.
  dev->config_write(c + pci::kMsiAddressLo, 4, 0xffffffff);
  EXPECT_EQ(dev->config_read(c + pci::kMsiAddressLo, 4), 0xfffffffcu);
  dev->config_write(c + pci::kMsiAddressHi, 4, 0x12345678);
  EXPECT_EQ(dev->config_read(c + pci::kMsiAddressHi, 4), 0x12345678u);
  dev->config_write(c + pci::kMsiData64, 4, 0xffffffff);
  EXPECT_EQ(dev->config_read(c + pci::kMsiData64, 4), 0xffffu);
  // Nothing was enabled with a message, so nothing was routed.
  EXPECT_EQ(msi_sent(), 0u);
  EXPECT_NE(dev->stats_line().find("by INTx (MSI off)"), std::string::npos) << dev->stats_line();
}

TEST_F(E1000Test, EnablingMsiDropsIntxAndSendsThePendingCause) {
  make_msi();
  wr(kIms, kIntTxdw);
  wr(kIcs, kIntTxdw);
  ASSERT_TRUE(irq->level);
  msi_program(kMsiAddr, kMsiData);
  msi_control(pci::kMsiControlEnable);
  EXPECT_FALSE(irq->level) << "MSI enable disables INTx";
  EXPECT_TRUE(dev->msi_enabled());
  ASSERT_TRUE(msi_gsi());
  EXPECT_EQ(kvm.msi_route(*msi_gsi()), (MsiMessage{kMsiAddr, kMsiData})) << "routed as the guest programmed";
  EXPECT_EQ(msi_sent(), 1u) << "the cause still pending goes out on the new path";
  EXPECT_EQ(rd(kIcr), kIntTxdw);
  wr(kIcs, kIntTxdw);
  EXPECT_FALSE(irq->level) << "with MSI on the line never rises";
  EXPECT_EQ(msi_sent(), 1u);
  const auto s = dev->stats();
  EXPECT_EQ(s.interrupts, 3u);
  EXPECT_EQ(s.msi_messages, 2u);
  EXPECT_NE(dev->stats_line().find("3 interrupts (1 INTx, 2 MSI) by MSI"), std::string::npos) << dev->stats_line();
}

TEST_F(E1000Test, MsiSendsOneMessagePerRiseOfTheCondition) {
  make_msi();
  msi_program(kMsiAddr, kMsiData);
  msi_control(pci::kMsiControlEnable);
  wr(kIms, kIntTxdw | kIntRxt0 | kIntLsc);
  EXPECT_EQ(msi_sent(), 0u) << "no cause yet";
  wr(kIcs, kIntTxdw);
  EXPECT_EQ(msi_sent(), 1u);
  // More causes while ICR is unread: the condition never dropped, the
  // handler will find them all in ICR; no further message.
  wr(kIcs, kIntRxt0);
  wr(kIcs, kIntLsc);
  EXPECT_EQ(msi_sent(), 0u);
  EXPECT_EQ(rd(kIcr), kIntTxdw | kIntRxt0 | kIntLsc);
  EXPECT_EQ(msi_sent(), 0u) << "reading ICR sends nothing";
  wr(kIcs, kIntRxt0);
  EXPECT_EQ(msi_sent(), 1u) << "a new cause after the read is a new edge";
  // Masked causes send nothing; unmasking a pending one is an edge.
  wr(kImc, kIntRxt0 | kIntTxdw | kIntLsc);
  wr(kIcs, kIntTxdw);
  EXPECT_EQ(msi_sent(), 0u);
  wr(kIms, kIntTxdw);
  EXPECT_EQ(msi_sent(), 1u);
  // Writing 1s to ICR clears the condition too.
  wr(kIcr, ~0u);
  wr(kIcs, kIntTxdw);
  EXPECT_EQ(msi_sent(), 1u);
  EXPECT_FALSE(irq->level);
  EXPECT_EQ(irq->rises, 0u);
}

TEST_F(E1000Test, MsiFollowsRealCausesFromTransmitAndReceive) {
  make_msi();
  msi_program(kMsiAddr, kMsiData);
  msi_control(pci::kMsiControlEnable);
  wr(kIms, kIntTxdw | kIntRxt0);
  setup_tx();
  setup_rx();
  auto f = make_frame(kOther, 100);
  ASSERT_TRUE(mem.write(kTxBuf, f.data(), f.size()));
  put_tx(0, kTxBuf, 100, kTxCmdEop | kTxCmdRs);
  wr(kTdt, 1);
  EXPECT_EQ(msi_sent(), 1u) << "TXDW";
  EXPECT_TRUE(rd(kIcr) & kIntTxdw);
  dev->deliver(make_frame(kMac, 80));
  dev->poll();
  EXPECT_EQ(msi_sent(), 1u) << "RXT0";
  EXPECT_EQ(rd(kIcr) & kIntRxt0, kIntRxt0);
}

TEST_F(E1000Test, MsiMessagesAreThrottledByItr) {
  make_msi();
  msi_program(kMsiAddr, kMsiData);
  msi_control(pci::kMsiControlEnable);
  wr(kItr, 1000);  // 256 us between interrupts
  wr(kIms, kIntRxt0 | kIntTxdw);
  wr(kIcs, kIntRxt0);
  EXPECT_EQ(msi_sent(), 1u);
  rd(kIcr);
  clock_ns += 100'000;  // too soon
  wr(kIcs, kIntRxt0);
  clock_ns += 50'000;
  wr(kIcs, kIntTxdw);  // collected with the first
  EXPECT_EQ(msi_sent(), 0u);
  dev->poll();
  EXPECT_EQ(msi_sent(), 0u) << "the interval has not ended";
  clock_ns += 106'000;  // 256 us after the first message
  dev->poll();
  EXPECT_EQ(msi_sent(), 1u) << "one message for everything collected";
  EXPECT_EQ(rd(kIcr), kIntRxt0 | kIntTxdw);
  dev->poll();
  EXPECT_EQ(msi_sent(), 0u);
  EXPECT_EQ(dev->stats().msi_messages, 2u);
}

TEST_F(E1000Test, DisablingMsiReturnsToIntx) {
  make_msi();
  msi_program(kMsiAddr, kMsiData);
  msi_control(pci::kMsiControlEnable);
  wr(kIms, kIntTxdw);
  wr(kIcs, kIntTxdw);
  EXPECT_EQ(msi_sent(), 1u);
  EXPECT_FALSE(irq->level);
  msi_control(0);
  EXPECT_FALSE(dev->msi_enabled());
  EXPECT_TRUE(irq->level) << "the unread cause now holds the line";
  EXPECT_EQ(rd(kIcr), kIntTxdw);
  EXPECT_FALSE(irq->level);
  wr(kIcs, kIntTxdw);
  EXPECT_TRUE(irq->level);
  EXPECT_EQ(msi_sent(), 0u);
  EXPECT_NE(dev->stats_line().find("by INTx (MSI off)"), std::string::npos) << dev->stats_line();
}

TEST_F(E1000Test, IntxDisableDoesNotStopMsiButBusMasteringDoes) {
  make_msi();
  msi_program(kMsiAddr, kMsiData);
  msi_control(pci::kMsiControlEnable);
  // What pci::msi_enable() leaves: INTx disabled, bus mastering on.
  dev->config_write(pci::kCommand, 2, pci::kCommandMemory | pci::kCommandMaster | pci::kCommandIntxDisable);
  wr(kIms, kIntTxdw);
  wr(kIcs, kIntTxdw);
  EXPECT_EQ(msi_sent(), 1u);
  rd(kIcr);
  // A message is a memory write: none without bus mastering, and the one
  // due goes out when mastering comes back.
  dev->config_write(pci::kCommand, 2, pci::kCommandMemory | pci::kCommandIntxDisable);
  wr(kIcs, kIntTxdw);
  EXPECT_EQ(msi_sent(), 0u);
  EXPECT_FALSE(irq->level);
  dev->config_write(pci::kCommand, 2, pci::kCommandMemory | pci::kCommandMaster | pci::kCommandIntxDisable);
  EXPECT_EQ(msi_sent(), 1u);
}

TEST_F(E1000Test, MsiRouteFollowsTheGuestWhileEnabled) {
  make_msi();
  msi_program(kMsiAddr, kMsiData);
  msi_control(pci::kMsiControlEnable);
  const auto gsi = msi_gsi();
  ASSERT_TRUE(gsi);
  EXPECT_GE(*gsi, GsiRouter::kLegacyGsis);
  // Linux moves an MSI's affinity by rewriting address and data in place.
  msi_program(0xfee02000, 0x0052);
  EXPECT_EQ(kvm.msi_route(*gsi), (MsiMessage{0xfee02000, 0x0052}));
  // Off and on again: the same GSI, no new irqfd.
  msi_control(0);
  msi_control(pci::kMsiControlEnable);
  EXPECT_EQ(msi_gsi(), gsi);
  wr(kIms, kIntTxdw);
  wr(kIcs, kIntTxdw);
  EXPECT_EQ(msi_sent(), 1u);
  // The device going away releases the route.
  dev.reset();
  EXPECT_FALSE(kvm.msi_route(*gsi));
  EXPECT_TRUE(kvm.irqfds.empty());
}

TEST_F(E1000Test, MsiWithoutIrqfdUsesSignalMsi) {
  IrqCapabilities caps = IrqCapabilities::all();
  caps.irqfd = false;
  make_msi(caps);
  msi_program(0x1'fee00000ull, kMsiData);  // the upper address reaches KVM as written
  msi_control(pci::kMsiControlEnable);
  wr(kIms, kIntTxdw);
  wr(kIcs, kIntTxdw);
  ASSERT_EQ(kvm.signalled.size(), 1u);
  EXPECT_EQ(kvm.signalled[0], (MsiMessage{0x1'fee00000ull, kMsiData}));
  EXPECT_TRUE(kvm.irqfds.empty());
}

TEST_F(E1000Test, AMessageKvmRefusesIsCountedAndLoggedOnce) {
  // KVM rejects the route and cannot signal: the message goes nowhere.
  IrqCapabilities caps = IrqCapabilities::all();
  caps.signal_msi = false;
  std::vector<std::string> lines;
  E1000::Options o;
  o.log = [&lines](const std::string& l) { lines.push_back(l); };
  make_msi(caps, o);
  kvm.fail_routing = true;
  msi_program(0xdead0000, 0xbeef);
  msi_control(pci::kMsiControlEnable);
  wr(kIms, kIntTxdw);
  for (int i = 0; i < 5; ++i) {
    wr(kIcs, kIntTxdw);
    rd(kIcr);
  }
  const auto s = dev->stats();
  EXPECT_EQ(s.msi_refused, 5u);
  EXPECT_EQ(s.msi_messages, 0u);
  EXPECT_FALSE(irq->level) << "no fallback to INTx while MSI is enabled";
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_NE(lines[0].find("KVM refused the MSI message (address 0xdead0000, data 0xbeef)"), std::string::npos)
      << lines[0];
  EXPECT_NE(dev->stats_line().find("(0 INTx, 0 MSI, 5 refused) by MSI"), std::string::npos) << dev->stats_line();
  // Once KVM takes the route, the next edge goes out.
  kvm.fail_routing = false;
  msi_program(kMsiAddr, kMsiData);
  wr(kIcs, kIntTxdw);
  EXPECT_EQ(msi_sent(), 1u);
}

TEST_F(E1000Test, DeviceResetKeepsMsiConfiguration) {
  make_msi();
  msi_program(kMsiAddr, kMsiData);
  msi_control(pci::kMsiControlEnable);
  wr(kCtrl, kCtrlRst);  // a device reset, not a PCI one: config space stays
  EXPECT_TRUE(dev->msi_enabled());
  wr(kIms, kIntLsc);
  wr(kCtrl, kCtrlSlu);
  EXPECT_EQ(msi_sent(), 1u);
  EXPECT_FALSE(irq->level);
}

TEST_F(E1000Test, ResetRestoresDefaultsAndKeepsTheMac) {
  wr(kIms, kIntTxdw);
  wr(kIcs, kIntTxdw);
  wr(kRctl, kRctlEn);
  wr(kRal0, 0x11223344);
  wr(kCtrl, kCtrlRst);
  EXPECT_FALSE(irq->level);
  EXPECT_EQ(rd(kIms), 0u);
  EXPECT_EQ(rd(kRctl), 0u);
  EXPECT_FALSE(rd(kCtrl) & kCtrlRst) << "RST self-clears";
  EXPECT_EQ(rd(kRal0), 0x12005452u);
  EXPECT_EQ(rd(kRal0 + 4), 0x80005634u);
}

TEST_F(E1000Test, RegistersThroughTheBusAndTheIoWindow) {
  IoBus pio, mmio;
  auto bus = PciBus::create(pio, mmio);
  bus->add(dev, 3);
  const uint64_t bar0 = *dev->bar_mapping(0);
  const uint64_t bar1 = *dev->bar_mapping(1);
  uint32_t v = 0;
  ASSERT_TRUE(mmio.read(bar0 + kRal0, reinterpret_cast<uint8_t*>(&v), 4));
  EXPECT_EQ(v, 0x12005452u);
  uint16_t half = 0;
  ASSERT_TRUE(mmio.read(bar0 + kRal0 + 2, reinterpret_cast<uint8_t*>(&half), 2));
  EXPECT_EQ(half, 0x1200u);
  // IOADDR selects RAH0, IODATA reads it.
  uint32_t addr = kRal0 + 4;
  ASSERT_TRUE(pio.write(bar1, reinterpret_cast<uint8_t*>(&addr), 4));
  ASSERT_TRUE(pio.read(bar1 + 4, reinterpret_cast<uint8_t*>(&v), 4));
  EXPECT_EQ(v, 0x80005634u);
  // A 2-byte write is ignored; the register keeps its value.
  const uint16_t junk = 0xffff;
  ASSERT_TRUE(mmio.write(bar0 + kRal0, reinterpret_cast<const uint8_t*>(&junk), 2));
  EXPECT_EQ(rd(kRal0), 0x12005452u);
  EXPECT_GE(dev->stats().mmio_exits, 3u);
}

// ---- Transmit ------------------------------------------------------------------

TEST_F(E1000Test, TransmitsOneDescriptorFrameWithWriteBack) {
  setup_tx();
  wr(kIms, kIntTxdw);
  const net::Frame f = make_frame(kOther, 100);
  ASSERT_TRUE(mem.write(kTxBuf, f.data(), f.size()));
  put_tx(0, kTxBuf, 100, kTxCmdEop | kTxCmdIfcs | kTxCmdRs);
  wr(kTdt, 1);
  ASSERT_EQ(port->frames.size(), 1u);
  EXPECT_EQ(port->frames[0], f);
  EXPECT_EQ(tx_status(0) & kTxStatusDd, kTxStatusDd);
  EXPECT_EQ(rd(kTdh), 1u);
  EXPECT_TRUE(irq->level);
  EXPECT_EQ(rd(kIcr), kIntTxdw | kIntTxqe);
  EXPECT_EQ(rd(kGptc), 1u);
  EXPECT_EQ(rd(kGptc), 0u) << "statistics clear on read";
  EXPECT_EQ(rd(kTpt), 1u);
  EXPECT_EQ(rd(kGotcl), 104u);  // with the FCS
  EXPECT_EQ(rd(kGotch), 0u);
  EXPECT_EQ(rd(kGotcl), 0u) << "reading the high half clears the 64-bit counter";
  const auto s = dev->stats();
  EXPECT_EQ(s.tx_frames, 1u);
  EXPECT_EQ(s.tx_bytes, 100u);
  EXPECT_EQ(s.mmio_tdt, 2u);  // setup_tx's and this one
}

TEST_F(E1000Test, AssemblesFrameAcrossDescriptorsUntilEop) {
  setup_tx();
  const net::Frame f = make_frame(kOther, 1514);
  ASSERT_TRUE(mem.write(kTxBuf, f.data(), 14));
  ASSERT_TRUE(mem.write(kTxBuf + 0x1000, f.data() + 14, 1000));
  ASSERT_TRUE(mem.write(kTxBuf + 0x3000, f.data() + 1014, 500));
  put_tx(0, kTxBuf, 14, 0);
  put_tx(1, kTxBuf + 0x1000, 1000, kTxCmdRs);
  put_tx(2, kTxBuf + 0x3000, 500, kTxCmdEop);
  wr(kTdt, 2);  // the frame is not complete yet
  EXPECT_TRUE(port->frames.empty());
  EXPECT_EQ(rd(kTdh), 2u);
  wr(kTdt, 3);
  ASSERT_EQ(port->frames.size(), 1u);
  EXPECT_EQ(port->frames[0], f);
  EXPECT_EQ(tx_status(0), 0) << "no RS, no write-back";
  EXPECT_EQ(tx_status(1), kTxStatusDd);
  EXPECT_EQ(tx_status(2), 0);
}

TEST_F(E1000Test, WrapsAroundTheRingAndPadsShortFrames) {
  setup_tx(8);
  wr(kTdh, 6);
  wr(kTdt, 6);
  const net::Frame f = make_frame(kBroadcast, 42);
  ASSERT_TRUE(mem.write(kTxBuf, f.data(), f.size()));
  for (uint32_t i : {6u, 7u, 0u}) put_tx(i, kTxBuf, 42, kTxCmdEop | kTxCmdRs);
  wr(kTdt, 1);
  ASSERT_EQ(port->frames.size(), 3u);
  EXPECT_EQ(port->frames[0].size(), 60u) << "PSP pads to 60 bytes";
  EXPECT_TRUE(std::equal(f.begin(), f.end(), port->frames[0].begin()));
  EXPECT_EQ(rd(kTdh), 1u);
  EXPECT_EQ(rd(kBptc), 3u);
}

TEST_F(E1000Test, InsertsIpAndUdpChecksumsFromTheContext) {
  setup_tx();
  // Ethernet + IPv4 (20) + UDP (8) + 27 bytes of payload.
  net::Frame f = make_frame(kOther, 14 + 20 + 8 + 27);
  uint8_t* ip = f.data() + 14;
  const uint8_t hdr[20] = {0x45, 0, 0, 55, 0x12, 0x34, 0, 0, 64, 17, 0, 0, 10, 0, 2, 15, 10, 0, 2, 2};
  std::memcpy(ip, hdr, 20);
  uint8_t* udp = ip + 20;
  udp[0] = 0x30, udp[1] = 0x39, udp[2] = 0x00, udp[3] = 0x35, udp[4] = 0, udp[5] = 35, udp[6] = 0, udp[7] = 0;
  // The driver seeds the UDP checksum with the pseudo-header sum.
  uint32_t pseudo = sum16(ip + 12, 8) + 17 + 35;
  while (pseudo >> 16) pseudo = (pseudo & 0xffff) + (pseudo >> 16);
  udp[6] = static_cast<uint8_t>(pseudo >> 8), udp[7] = static_cast<uint8_t>(pseudo);
  ASSERT_TRUE(mem.write(kTxBuf, f.data(), f.size()));
  // Context: IP checksum over bytes 14-33 into 24; UDP from 34 to the end into 40.
  const uint64_t ctx = 14ull | 24ull << 8 | 33ull << 16 | 34ull << 32 | 40ull << 40 | 0ull << 48;
  put_tx_raw(0, TxDesc{ctx, kTxDtypContext << 20 | uint32_t{kTxCmdDext | kTxCmdRs} << 24, 0});
  put_tx_raw(1, TxDesc{kTxBuf, 30u | kTxDtypData << 20 | uint32_t{kTxCmdDext} << 24,
                       uint32_t{kTxPoptsIxsm | kTxPoptsTxsm} << 8});
  put_tx_raw(2, TxDesc{kTxBuf + 30, uint32_t(f.size() - 30) | kTxDtypData << 20 |
                                        uint32_t{kTxCmdDext | kTxCmdEop | kTxCmdRs} << 24, 0});
  wr(kTdt, 3);
  ASSERT_EQ(port->frames.size(), 1u);
  const net::Frame& out = port->frames[0];
  EXPECT_EQ(sum16(out.data() + 14, 20), 0xffffu) << "IP header checksum verifies";
  uint32_t check = sum16(out.data() + 14 + 12, 8) + 17 + 35;
  check = sum16(out.data() + 34, 35, check);
  EXPECT_EQ(check, 0xffffu) << "UDP checksum verifies";
  EXPECT_EQ(tx_status(0), kTxStatusDd) << "context descriptors report status too";
  EXPECT_EQ(tx_status(2), kTxStatusDd);
}

TEST_F(E1000Test, LegacyDescriptorChecksumInsertion) {
  setup_tx();
  net::Frame f = make_frame(kOther, 64);
  f[20] = f[21] = 0;
  ASSERT_TRUE(mem.write(kTxBuf, f.data(), f.size()));
  put_tx(0, kTxBuf, 64, kTxCmdEop | kTxCmdIc, /*cso=*/20, /*css=*/14);
  wr(kTdt, 1);
  ASSERT_EQ(port->frames.size(), 1u);
  EXPECT_EQ(sum16(port->frames[0].data() + 14, 50), 0xffffu);
}

TEST_F(E1000Test, RefusesTcpSegmentationCleanly) {
  setup_tx();
  ASSERT_TRUE(mem.write(kTxBuf, make_frame(kOther, 1000).data(), 1000));
  put_tx_raw(0, TxDesc{kTxBuf, 1000u | kTxDtypData << 20 | uint32_t{kTxCmdDext | kTxCmdTse | kTxCmdEop | kTxCmdRs}
                                                               << 24,
                       0});
  put_tx(1, kTxBuf, 100, kTxCmdEop | kTxCmdRs);
  wr(kTdt, 2);
  ASSERT_EQ(port->frames.size(), 1u) << "the TSO frame is dropped, the next one goes out";
  EXPECT_EQ(port->frames[0].size(), 100u);
  EXPECT_EQ(tx_status(0), kTxStatusDd);
  EXPECT_EQ(dev->stats().tx_errors, 1u);
  EXPECT_EQ(rd(kTsctfc), 1u);
  EXPECT_TRUE(dev->tx_stop_reason().empty());
}

TEST_F(E1000Test, DropsFramesOverSixteenKilobytes) {
  setup_tx(32);
  for (uint32_t i = 0; i < 20; ++i) put_tx(i, kTxBuf, 1024, i == 19 ? kTxCmdEop : 0);
  put_tx(20, kTxBuf, 60, kTxCmdEop);
  wr(kTdt, 21);
  ASSERT_EQ(port->frames.size(), 1u);
  EXPECT_EQ(port->frames[0].size(), 60u);
  EXPECT_EQ(dev->stats().tx_errors, 1u);
  EXPECT_EQ(rd(kTdh), 21u);
}

TEST_F(E1000Test, CountsFramesTheSwitchRefuses) {
  setup_tx();
  port->refuse = true;
  put_tx(0, kTxBuf, 100, kTxCmdEop | kTxCmdRs);
  wr(kTdt, 1);
  EXPECT_EQ(dev->stats().tx_errors, 1u);
  EXPECT_EQ(tx_status(0), kTxStatusDd);
}

TEST_F(E1000Test, NoTransmitWithoutBusMastering) {
  setup_tx();
  dev->config_write(pci::kCommand, 2, pci::kCommandMemory);
  put_tx(0, kTxBuf, 100, kTxCmdEop | kTxCmdRs);
  wr(kTdt, 1);
  EXPECT_TRUE(port->frames.empty());
  dev->config_write(pci::kCommand, 2, pci::kCommandMemory | pci::kCommandMaster);
  EXPECT_EQ(port->frames.size(), 1u) << "queued descriptors go out once DMA is allowed";
}

// ---- Receive -------------------------------------------------------------------

TEST_F(E1000Test, ReceivesIntoADescriptor) {
  setup_rx();
  wr(kIms, kIntRxt0);
  const net::Frame f = make_frame(kMac, 300);
  dev->deliver(f);
  EXPECT_FALSE(irq->level) << "deliver() only queues";
  dev->poll();
  const RxDesc d = rx_desc(0);
  EXPECT_EQ(d.length, 300);
  EXPECT_EQ(d.status & (kRxStatusDd | kRxStatusEop), kRxStatusDd | kRxStatusEop);
  EXPECT_EQ(d.errors, 0);
  EXPECT_EQ(std::memcmp(mem.ptr(kRxBuf, 300), f.data(), 300), 0);
  EXPECT_EQ(rd(kRdh), 1u);
  EXPECT_TRUE(irq->level);
  EXPECT_EQ(rd(kIcr) & kIntRxt0, kIntRxt0);
  EXPECT_EQ(rd(kGprc), 1u);
  EXPECT_EQ(rd(kGorcl), 300u);
  EXPECT_EQ(dev->stats().rx_frames, 1u);
}

TEST_F(E1000Test, SpreadsAFrameOverSmallBuffers) {
  setup_rx(16, 3u << kRctlBsizeShift, 256);  // BSIZE 11: 256 bytes
  const net::Frame f = make_frame(kMac, 600);
  dev->deliver(f);
  dev->poll();
  EXPECT_EQ(rx_desc(0).length, 256);
  EXPECT_EQ(rx_desc(0).status & kRxStatusEop, 0);
  EXPECT_EQ(rx_desc(1).length, 256);
  EXPECT_EQ(rx_desc(2).length, 88);
  EXPECT_EQ(rx_desc(2).status & (kRxStatusDd | kRxStatusEop), kRxStatusDd | kRxStatusEop);
  EXPECT_EQ(std::memcmp(mem.ptr(kRxBuf, 256), f.data(), 256), 0);
  EXPECT_EQ(std::memcmp(mem.ptr(kRxBuf + 512, 88), f.data() + 512, 88), 0);
  EXPECT_EQ(rd(kRdh), 3u);
}

TEST_F(E1000Test, AppendsTheFcsUnlessSecrc) {
  setup_rx();
  wr(kRctl, kRctlEn);  // SECRC off
  const net::Frame f = make_frame(kMac, 60);
  dev->deliver(f);
  dev->poll();
  ASSERT_EQ(rx_desc(0).length, 64);
  // The CRC-32 residue of a frame with its FCS is the constant 0x2144df1c.
  uint32_t crc = 0xffffffff;
  const uint8_t* p = mem.ptr(kRxBuf, 64);
  for (int i = 0; i < 64; ++i) {
    crc ^= p[i];
    for (int b = 0; b < 8; ++b) crc = (crc >> 1) ^ (0xedb88320 & (0u - (crc & 1)));
  }
  EXPECT_EQ(~crc, 0x2144df1cu);
}

TEST_F(E1000Test, FiltersByAddress) {
  setup_rx();
  dev->deliver(make_frame(kOther, 100));  // another station's unicast
  dev->poll();
  EXPECT_EQ(rd(kRdh), 0u);
  EXPECT_EQ(dev->stats().rx_filtered, 1u);
  dev->deliver(make_frame(kBroadcast, 100));  // broadcast with BAM
  dev->poll();
  EXPECT_EQ(rd(kRdh), 1u);
  const net::MacAddress mcast = {0x01, 0x00, 0x5e, 0x00, 0x00, 0xfb};
  dev->deliver(make_frame(mcast, 100));  // multicast, no MPE, empty MTA
  dev->poll();
  EXPECT_EQ(rd(kRdh), 1u);
  // MO = 00: the hash is address bits 47:36, i.e. (0x00 >> 4) | 0xfb << 4.
  const uint32_t hash = 0xfb << 4;
  wr(kMta + 4 * (hash >> 5), 1u << (hash & 31));
  dev->deliver(make_frame(mcast, 100));
  dev->poll();
  EXPECT_EQ(rd(kRdh), 2u);
  wr(kRctl, rd(kRctl) & ~kRctlBam);
  dev->deliver(make_frame(kBroadcast, 100));  // broadcast without BAM
  dev->poll();
  EXPECT_EQ(rd(kRdh), 2u);
  wr(kRctl, rd(kRctl) | kRctlUpe);
  dev->deliver(make_frame(kOther, 100));  // promiscuous
  dev->poll();
  EXPECT_EQ(rd(kRdh), 3u);
  wr(kRctl, (rd(kRctl) & ~kRctlUpe) | kRctlMpe);
  dev->deliver(make_frame({0x33, 0x33, 0, 0, 0, 1}, 100));
  dev->poll();
  EXPECT_EQ(rd(kRdh), 4u);
  EXPECT_EQ(rd(kMprc), 2u);
  EXPECT_EQ(rd(kBprc), 1u);
}

TEST_F(E1000Test, FrameWaitsForDescriptorsThenArrives) {
  setup_rx(8);
  wr(kRdt, 0);  // RDH == RDT: the guest owns every descriptor
  wr(kIms, kIntRxt0);
  dev->deliver(make_frame(kMac, 100));
  dev->poll();
  EXPECT_FALSE(irq->level);
  EXPECT_EQ(rd(kRnbc), 1u);
  wr(kRdt, 4);
  dev->poll();
  EXPECT_EQ(rx_desc(0).length, 100);
  EXPECT_TRUE(irq->level);
}

TEST_F(E1000Test, OverrunWhenTheFifoFillsRaisesRxoAndCountsMpc) {
  setup_rx(8);
  wr(kRdt, 0);  // no descriptors
  wr(kIms, kIntRxo);
  for (int i = 0; i < 40; ++i) dev->deliver(make_frame(kMac, 1514));  // 60 KB > 48 KiB
  dev->poll();
  EXPECT_TRUE(irq->level);
  EXPECT_EQ(rd(kIcr) & kIntRxo, kIntRxo);
  const uint32_t missed = rd(kMpc);
  EXPECT_EQ(missed, 40u - (48u << 10) / 1514);
  EXPECT_EQ(dev->stats().rx_fifo_drops, missed);
  // The frames that fit are still there for the guest.
  wr(kRdt, 7);
  dev->poll();
  EXPECT_EQ(rd(kRdh), 7u);
}

TEST_F(E1000Test, RejectsFramesOfBadLength) {
  setup_rx();
  dev->deliver(make_frame(kMac, 2000));  // over 1518 without LPE
  dev->deliver(net::Frame(10, 0));       // shorter than an Ethernet header
  dev->deliver(net::Frame{});
  dev->poll();
  EXPECT_EQ(rd(kRdh), 0u);
  EXPECT_EQ(rd(kRoc), 1u);
  EXPECT_EQ(rd(kRuc), 2u);
  wr(kRctl, rd(kRctl) | kRctlLpe);
  dev->deliver(make_frame(kMac, 2000));
  dev->poll();
  EXPECT_EQ(rd(kRdh), 1u) << "LPE: a long frame fits a 2 KiB buffer";
}

TEST_F(E1000Test, DropsWhileTheReceiverIsOff) {
  setup_rx();
  wr(kRctl, 0);
  dev->deliver(make_frame(kMac, 100));
  dev->poll();
  EXPECT_EQ(rd(kRdh), 0u);
  EXPECT_EQ(dev->stats().rx_dropped, 1u);
}

// ---- Malformed rings ------------------------------------------------------------

TEST_F(E1000Test, RxRingLengthNotMultipleOf128StopsReceive) {
  setup_rx();
  wr(kRdlen, 200);
  dev->deliver(make_frame(kMac, 100));
  dev->poll();
  EXPECT_NE(dev->rx_stop_reason().find("RDLEN 0xc8"), std::string::npos) << dev->rx_stop_reason();
  EXPECT_EQ(rx_desc(0).status, 0);
  // The driver sets the ring up again and re-enables receive: it works.
  wr(kRctl, 0);
  wr(kRdlen, 16 * kDescSize);
  wr(kRctl, kRctlEn | kRctlSecrc);
  EXPECT_TRUE(dev->rx_stop_reason().empty());
  dev->deliver(make_frame(kMac, 100));
  dev->poll();
  EXPECT_EQ(rx_desc(0).length, 100);
}

TEST_F(E1000Test, RxRingOutsideRamStopsReceive) {
  setup_rx();
  wr(kRdbal, kRam - 128);  // 16 descriptors = 256 bytes: runs past RAM
  dev->deliver(make_frame(kMac, 100));
  dev->poll();
  EXPECT_NE(dev->rx_stop_reason().find("outside guest RAM"), std::string::npos) << dev->rx_stop_reason();
  wr(kRctl, 0);
  wr(kRdbah, 0xffffffff);  // far above any RAM, and base + len near 2^64
  wr(kRdbal, 0xffffff00);
  wr(kRctl, kRctlEn);
  dev->deliver(make_frame(kMac, 100));
  dev->poll();
  EXPECT_NE(dev->rx_stop_reason().find("outside guest RAM"), std::string::npos);
}

TEST_F(E1000Test, RxHeadOrTailPastTheRingStopsReceive) {
  setup_rx();
  wr(kRdt, 16);
  dev->deliver(make_frame(kMac, 100));
  dev->poll();
  EXPECT_NE(dev->rx_stop_reason().find("past the ring"), std::string::npos) << dev->rx_stop_reason();
  wr(kCtrl, kCtrlRst);  // a reset clears the stop
  EXPECT_TRUE(dev->rx_stop_reason().empty());
  setup_rx();
  wr(kRdh, 0xffff);
  dev->deliver(make_frame(kMac, 100));
  dev->poll();
  EXPECT_NE(dev->rx_stop_reason().find("past the ring"), std::string::npos);
}

TEST_F(E1000Test, RxBufferOutsideRamStopsReceive) {
  setup_rx();
  RxDesc d{kRam - 50, 0, 0, 0, 0, 0};  // the 100-byte frame would cross the end of RAM
  ASSERT_TRUE(mem.write(kRxRing, &d, sizeof d));
  dev->deliver(make_frame(kMac, 100));
  dev->poll();
  EXPECT_NE(dev->rx_stop_reason().find("buffer"), std::string::npos) << dev->rx_stop_reason();
  EXPECT_EQ(rx_desc(0).status, 0) << "nothing written for a bad buffer";
}

TEST_F(E1000Test, RxReservedBufferSizeStopsReceive) {
  setup_rx(16, kRctlBsex);  // BSEX with BSIZE 00 is reserved
  dev->deliver(make_frame(kMac, 100));
  dev->poll();
  EXPECT_NE(dev->rx_stop_reason().find("reserved"), std::string::npos) << dev->rx_stop_reason();
}

TEST_F(E1000Test, TxRingLengthNotMultipleOf128StopsTransmit) {
  setup_tx();
  wr(kTdlen, 100);
  put_tx(0, kTxBuf, 100, kTxCmdEop);
  wr(kTdt, 1);
  EXPECT_TRUE(port->frames.empty());
  EXPECT_NE(dev->tx_stop_reason().find("TDLEN"), std::string::npos) << dev->tx_stop_reason();
}

TEST_F(E1000Test, TxTailPastTheRingStopsTransmit) {
  setup_tx();
  wr(kTdt, 17);
  EXPECT_NE(dev->tx_stop_reason().find("past the ring"), std::string::npos) << dev->tx_stop_reason();
  // TCTL.EN off and on again restarts it.
  wr(kTctl, 0);
  wr(kTdt, 0);
  wr(kTctl, kTctlEn);
  EXPECT_TRUE(dev->tx_stop_reason().empty());
  put_tx(0, kTxBuf, 100, kTxCmdEop);
  wr(kTdt, 1);
  EXPECT_EQ(port->frames.size(), 1u);
}

TEST_F(E1000Test, TxRingOutsideRamAndMisalignedStopTransmit) {
  setup_tx();
  wr(kTdbal, kRam - 64);
  wr(kTdt, 1);
  EXPECT_NE(dev->tx_stop_reason().find("outside guest RAM"), std::string::npos) << dev->tx_stop_reason();
  wr(kCtrl, kCtrlRst);
  setup_tx();
  wr(kTdbal, kTxRing + 8);
  wr(kTdt, 1);
  EXPECT_NE(dev->tx_stop_reason().find("aligned"), std::string::npos) << dev->tx_stop_reason();
}

TEST_F(E1000Test, TxBufferOutsideRamStopsTransmit) {
  setup_tx();
  put_tx(0, kTxBuf, 100, kTxCmdEop | kTxCmdRs);
  put_tx(1, kRam - 10, 100, kTxCmdEop | kTxCmdRs);
  put_tx(2, ~0ull - 5, 100, kTxCmdEop | kTxCmdRs);
  wr(kTdt, 3);
  EXPECT_EQ(port->frames.size(), 1u);
  EXPECT_NE(dev->tx_stop_reason().find("descriptor 1"), std::string::npos) << dev->tx_stop_reason();
  EXPECT_EQ(rd(kTdh), 1u) << "the head stays on the bad descriptor";
  EXPECT_EQ(tx_status(1), 0);
}

TEST_F(E1000Test, AGuestLoopingOnABadRingCannotFloodTheLog) {
  std::vector<std::string> lines;
  E1000::Options o;
  o.log = [&](const std::string& l) { lines.push_back(l); };
  make(o);
  setup_tx();
  wr(kTdlen, 100);
  for (int i = 0; i < 100; ++i) {  // stop, restart, stop again...
    wr(kTctl, 0);
    wr(kTctl, kTctlEn);
  }
  ASSERT_EQ(lines.size(), 17u);
  EXPECT_EQ(lines[0], "vmm: e1000 52:54:00:12:34:56: transmit stopped: TDLEN 0x64 is not a non-zero multiple of 128");
  EXPECT_NE(lines.back().find("suppressed"), std::string::npos);
}

TEST_F(E1000Test, GarbageDescriptorsNeverEscapeTheRing) {
  setup_tx();
  // Random-looking descriptors: the device must stay inside RAM and the ring.
  uint64_t x = 0x9e3779b97f4a7c15ull;
  for (uint32_t i = 0; i < 16; ++i) {
    x ^= x << 13, x ^= x >> 7, x ^= x << 17;
    TxDesc d{x % kRam, static_cast<uint32_t>(x >> 13), static_cast<uint32_t>(x >> 29)};
    put_tx_raw(i, d);
  }
  wr(kTdt, 15);
  EXPECT_LT(rd(kTdh), 16u);
}

// ---- The I/O thread --------------------------------------------------------------

TEST(E1000Thread, IoThreadReceivesWithoutPolling) {
  GuestMemory mem(kRam);
  auto irq = std::make_shared<FakeIrqLine>(10);
  auto dev = E1000::create(mem, irq, kMac);
  dev->config_write(pci::kCommand, 2, pci::kCommandMemory | pci::kCommandMaster);
  RxDesc d{kRxBuf, 0, 0, 0, 0, 0};
  ASSERT_TRUE(mem.write(kRxRing, &d, sizeof d));
  dev->reg_write(kRdbal, kRxRing);
  dev->reg_write(kRdlen, 128);
  dev->reg_write(kRdt, 1);
  dev->reg_write(kRctl, kRctlEn | kRctlSecrc);
  dev->reg_write(kIms, kIntRxt0);
  dev->deliver(make_frame(kMac, 200));
  for (int i = 0; i < 200 && !irq->level; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(5));
  EXPECT_TRUE(irq->level);
  RxDesc out;
  ASSERT_TRUE(mem.read(kRxRing, &out, sizeof out));
  EXPECT_EQ(out.length, 200);
  EXPECT_NE(dev->stats_line().find("RX 1 frames 200 bytes"), std::string::npos) << dev->stats_line();
}

TEST(E1000Thread, IoThreadHonoursItr) {
  GuestMemory mem(kRam);
  auto irq = std::make_shared<FakeIrqLine>(10);
  auto dev = E1000::create(mem, irq, kMac);
  dev->reg_write(kItr, 40000);  // about 10 ms
  dev->reg_write(kIms, kIntTxdw);
  dev->reg_write(kIcs, kIntTxdw);
  ASSERT_TRUE(irq->level);
  dev->reg_read(kIcr);
  dev->reg_write(kIcs, kIntTxdw);
  EXPECT_FALSE(irq->level) << "throttled";
  for (int i = 0; i < 400 && !irq->level; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(1));
  EXPECT_TRUE(irq->level) << "the I/O thread asserts it when the interval ends";
}

TEST(E1000Thread, IoThreadSendsTheThrottledMsi) {
  GuestMemory mem(kRam);
  FakeIrqBackend kvm;
  GsiRouter router(kvm, IrqCapabilities::all());
  auto irq = std::make_shared<FakeIrqLine>(10);
  E1000::Options o;
  o.msi_router = &router;
  auto dev = E1000::create(mem, irq, kMac, o);
  dev->config_write(pci::kCommand, 2, pci::kCommandMemory | pci::kCommandMaster);
  const uint8_t c = dev->msi_capability();
  dev->config_write(c + pci::kMsiAddressLo, 4, 0xfee00000);
  dev->config_write(c + pci::kMsiData64, 2, 0x41);
  dev->config_write(c + pci::kMsiControl, 2, pci::kMsiControlEnable);
  ASSERT_EQ(kvm.irqfds.size(), 1u);
  const int fd = kvm.irqfds.begin()->first;
  auto sent = [fd] {
    uint64_t n = 0;
    return ::read(fd, &n, sizeof n) == sizeof n ? n : 0;
  };
  dev->reg_write(kItr, 40000);  // about 10 ms
  dev->reg_write(kIms, kIntTxdw);
  dev->reg_write(kIcs, kIntTxdw);
  ASSERT_EQ(sent(), 1u);
  dev->reg_read(kIcr);
  dev->reg_write(kIcs, kIntTxdw);
  EXPECT_EQ(sent(), 0u) << "throttled";
  uint64_t n = 0;
  for (int i = 0; i < 400 && !n; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
    n = sent();
  }
  EXPECT_EQ(n, 1u) << "the I/O thread sends it when the interval ends";
  EXPECT_FALSE(irq->level);
  dev.reset();  // before the router
}

}  // namespace
}  // namespace vmm
