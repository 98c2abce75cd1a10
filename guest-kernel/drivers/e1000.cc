#include "guest-kernel/drivers/e1000.h"

#include "guest-kernel/arch/x86/apic.h"
#include "guest-kernel/arch/x86/cpu.h"
#include "guest-kernel/arch/x86/interrupts.h"
#include "guest-kernel/kernel/cmdline.h"
#include "guest-kernel/lib/print.h"
#include "guest-kernel/lib/string.h"
#include "guest-kernel/mm/boot_info.h"
#include "guest-kernel/mm/page_alloc.h"

namespace drivers {
namespace {

// Registers (Intel 8254x Software Developer's Manual, chapter 13).
constexpr uint32_t kCtrl = 0x0000, kStatus = 0x0008, kEerd = 0x0014, kIcr = 0x00c0, kItr = 0x00c4, kIms = 0x00d0,
                   kImc = 0x00d8, kRctl = 0x0100, kTctl = 0x0400, kTipg = 0x0410, kRdbal = 0x2800,
                   kRdbah = 0x2804, kRdlen = 0x2808, kRdh = 0x2810, kRdt = 0x2818, kTdbal = 0x3800,
                   kTdbah = 0x3804, kTdlen = 0x3808, kTdh = 0x3810, kTdt = 0x3818, kMta = 0x5200,
                   kRal0 = 0x5400, kRah0 = 0x5404;

constexpr uint32_t kCtrlAsde = 1u << 5, kCtrlSlu = 1u << 6, kCtrlRst = 1u << 26;
constexpr uint32_t kStatusLu = 1u << 1;
constexpr uint32_t kEerdStart = 1u << 0, kEerdDone = 1u << 4;
constexpr uint32_t kIntTxdw = 1u << 0, kIntLsc = 1u << 2, kIntRxdmt0 = 1u << 4, kIntRxo = 1u << 6,
                   kIntRxt0 = 1u << 7;
constexpr uint32_t kRctlEn = 1u << 1, kRctlBam = 1u << 15, kRctlSecrc = 1u << 26;  // BSIZE 00: 2048
constexpr uint32_t kTctlEn = 1u << 1, kTctlPsp = 1u << 3, kTctlCt = 0x0f << 4, kTctlCold = 0x40 << 12;
// IEEE 802.3 inter-packet gap for copper: IPGT 10, IPGR1 8, IPGR2 6.
constexpr uint32_t kTipgCopper = 10 | 8 << 10 | 6 << 20;
constexpr uint32_t kRahAv = 1u << 31;

constexpr uint8_t kRxDd = 0x01, kRxEop = 0x02;
constexpr uint8_t kTxEop = 0x01, kTxIfcs = 0x02, kTxRs = 0x08;
constexpr uint8_t kTxDd = 0x01;

constexpr uint32_t kEepromWords = 64;
constexpr uint16_t kEepromSum = 0xbaba;
constexpr int kSpinLimit = 1000000;

E1000* g_first = nullptr;

// The compiler must not move descriptor accesses across this point; the
// CPU keeps stores in order and loads in order (x86-TSO), and the device
// model sees memory only after the MMIO write that follows.
inline void compiler_barrier() { asm volatile("" ::: "memory"); }

bool probe(const pci::Device& d) {
  auto* dev = new E1000;
  if (!dev->init(d)) {
    delete dev;
    return false;
  }
  if (!g_first) g_first = dev;
  net::register_net_device(dev);
  return true;
}

// Registered from a global constructor: they all run before
// pci::probe_drivers(), so no line in kernel_main is needed.
struct Registration {
  Registration() { pci::register_driver(pci::Driver{"e1000", 0x8086, 0x100e, probe}); }
} registration;

}  // namespace

E1000* first_e1000() { return g_first; }

uint32_t E1000::rd(uint32_t reg) const { return x86::mmio_read32(regs_ + reg); }
void E1000::wr(uint32_t reg, uint32_t value) const { x86::mmio_write32(regs_ + reg, value); }

bool E1000::reset() {
  wr(kImc, ~0u);
  wr(kRctl, 0);
  wr(kTctl, 0);
  wr(kCtrl, rd(kCtrl) | kCtrlRst);
  for (int i = 0; i < kSpinLimit; ++i) {
    if (!(rd(kCtrl) & kCtrlRst)) {
      wr(kImc, ~0u);  // the manual: mask again after the reset
      rd(kIcr);
      return true;
    }
    x86::pause();
  }
  kprintf("e1000: reset did not complete\n");
  return false;
}

bool E1000::read_mac() {
  uint16_t words[kEepromWords];
  uint16_t sum = 0;
  for (uint32_t w = 0; w < kEepromWords; ++w) {
    wr(kEerd, kEerdStart | w << 8);
    uint32_t v = 0;
    int i = 0;
    for (; i < kSpinLimit && !((v = rd(kEerd)) & kEerdDone); ++i) x86::pause();
    if (i == kSpinLimit) {
      kprintf("e1000: EEPROM word %u did not read\n", w);
      return false;
    }
    words[w] = static_cast<uint16_t>(v >> 16);
    sum = static_cast<uint16_t>(sum + words[w]);
  }
  if (sum != kEepromSum) {
    kprintf("e1000: EEPROM checksum %#x, expected %#x\n", sum, kEepromSum);
    return false;
  }
  for (int i = 0; i < 3; ++i) {
    mac_.b[2 * i] = static_cast<uint8_t>(words[i]);
    mac_.b[2 * i + 1] = static_cast<uint8_t>(words[i] >> 8);
  }
  // Receive address 0 filters our unicast frames.
  wr(kRal0, mac_.b[0] | mac_.b[1] << 8 | mac_.b[2] << 16 | uint32_t(mac_.b[3]) << 24);
  wr(kRah0, mac_.b[4] | mac_.b[5] << 8 | kRahAv);
  return true;
}

void E1000::setup_rx() {
  for (uint32_t i = 0; i < 128; ++i) wr(kMta + 4 * i, 0);
  for (uint32_t i = 0; i < kRxCount; ++i) {
    rx_[i].addr = reinterpret_cast<uint64_t>(rx_buffers_ + i * kBufferSize);
    rx_[i].status = 0;
  }
  const uint64_t ring = reinterpret_cast<uint64_t>(rx_);
  wr(kRdbal, static_cast<uint32_t>(ring));
  wr(kRdbah, static_cast<uint32_t>(ring >> 32));
  wr(kRdlen, kRxCount * sizeof(RxDesc));
  wr(kRdh, 0);
  // Every descriptor but one belongs to the device (head == tail would mean none).
  wr(kRdt, kRxCount - 1);
  rx_next_ = 0;
  wr(kRctl, kRctlEn | kRctlBam | kRctlSecrc);
}

void E1000::setup_tx() {
  const uint64_t ring = reinterpret_cast<uint64_t>(tx_);
  wr(kTdbal, static_cast<uint32_t>(ring));
  wr(kTdbah, static_cast<uint32_t>(ring >> 32));
  wr(kTdlen, kTxCount * sizeof(TxDesc));
  wr(kTdh, 0);
  wr(kTdt, 0);
  tx_tail_ = tx_clean_ = 0;
  wr(kTipg, kTipgCopper);
  wr(kTctl, kTctlEn | kTctlPsp | kTctlCt | kTctlCold);
}

bool E1000::init(const pci::Device& d) {
  pci::enable(d);  // memory decoding and bus mastering (the device DMAs)
  regs_ = pci::map_bar(d, 0);
  if (!regs_) {
    kprintf("e1000: %02x:%02x.%u: BAR0 is not a mappable memory BAR\n", d.bus, d.slot, d.func);
    return false;
  }
  // MSI if the function offers it, unless the command line asks for INTx
  // (which keeps both paths testable on the same device).
  msi_ = pci::find_capability(d, pci::kCapMsi) && !Cmdline(boot_info().cmdline).has("e1000-intx");
  if (!msi_ && (!d.irq_pin || d.irq_line >= x86::ioapic_pin_count())) {
    kprintf("e1000: no usable interrupt line (pin %u, line %u)\n", d.irq_pin, d.irq_line);
    return false;
  }
  if (!reset() || !read_mac()) return false;

  // Descriptor rings (4 KiB each) and 2 KiB buffers, physically contiguous
  // and identity-mapped: the addresses we give the device are our pointers.
  rx_ = reinterpret_cast<volatile RxDesc*>(mm::alloc_pages(1));
  tx_ = reinterpret_cast<volatile TxDesc*>(mm::alloc_pages(1));
  rx_buffers_ = reinterpret_cast<uint8_t*>(mm::alloc_pages(kRxCount * kBufferSize / mm::kPageSize));
  tx_buffers_ = reinterpret_cast<uint8_t*>(mm::alloc_pages(kTxCount * kBufferSize / mm::kPageSize));
  if (!rx_ || !tx_ || !rx_buffers_ || !tx_buffers_) {
    kprintf("e1000: out of memory for the rings\n");
    return false;  // what was allocated stays with the kernel: probe failure is rare and final
  }
  static_assert(kRxCount * sizeof(RxDesc) <= mm::kPageSize && kTxCount * sizeof(TxDesc) <= mm::kPageSize);

  wr(kCtrl, (rd(kCtrl) | kCtrlSlu | kCtrlAsde));
  setup_rx();
  setup_tx();

  work_.fn = work;
  work_.context = this;
  vector_ = x86::allocate_interrupt(interrupt, this);
  if (!vector_) {
    kprintf("e1000: no free interrupt vector\n");
    return false;
  }
  if (msi_) {
    // MSI: one message per new cause, straight to this CPU's vector
    // (edge); msi_enable() also sets Interrupt Disable, so INTx is off
    // twice over. No IOAPIC pin is involved.
    pci::msi_enable(d, vector_);
  } else {
    // INTx: the Interrupt Line register names the IOAPIC pin (our VMM puts
    // its GSI there; under QEMU's q35 it is the PIRQ's ISA IRQ, which QEMU
    // also drives on the IOAPIC pin of that number). Level-triggered: the
    // line stays high until the handler reads ICR.
    pin_ = d.irq_line;
    x86::ioapic_route(pin_, vector_, /*level_triggered=*/true);
  }
  // Interrupt throttling, the benchmark's coalescing lever: at most one
  // interrupt per N x 256 ns (0, the default, means none).
  unsigned long itr = 0;
  if (Cmdline(boot_info().cmdline).get_uint("e1000-itr", &itr)) wr(kItr, static_cast<uint32_t>(itr & 0xffff));
  wr(kIms, kIntRxt0 | kIntRxo | kIntRxdmt0 | kIntTxdw | kIntLsc);

  const uint8_t* m = mac_.b;
  if (msi_)
    kprintf("e1000: mac %02x:%02x:%02x:%02x:%02x:%02x link %s, MSI (vector %u)\n", m[0], m[1], m[2], m[3], m[4],
            m[5], link_up() ? "up" : "down", vector_);
  else
    kprintf("e1000: mac %02x:%02x:%02x:%02x:%02x:%02x link %s, INTx irq %u (vector %u)\n", m[0], m[1], m[2], m[3],
            m[4], m[5], link_up() ? "up" : "down", pin_, vector_);
  return true;
}

bool E1000::link_up() const { return rd(kStatus) & kStatusLu; }

void E1000::interrupt(x86::InterruptFrame&, void* self) {
  auto* d = static_cast<E1000*>(self);
  // Reading ICR clears the causes. With INTx it lowers the level-triggered
  // line, so the EOI below does not see it still asserted (0 means another
  // device sharing the line interrupted); with MSI it re-arms the device: a
  // cause after this read sends a new message, one before it is in `causes`.
  const uint32_t causes = d->rd(kIcr);
  if (causes) {
    d->pending_causes_ = d->pending_causes_ | causes;
    ++d->interrupts;
    EventLoop::instance().raise(&d->work_);
  }
  x86::apic_eoi();
}

void E1000::work(void* self) { static_cast<E1000*>(self)->service(); }

void E1000::service() {
  // The handler may add causes while we run: take them atomically.
  const uint32_t causes = __atomic_exchange_n(&pending_causes_, 0, __ATOMIC_SEQ_CST);
  causes_seen_ |= causes;
  if (causes & kIntLsc) kprintf("e1000: link %s\n", link_up() ? "up" : "down");
  receive_frames();
  reclaim_tx();
}

// Work the handler queued runs before the next sweep, and the handler
// counts the interrupt: the sweep's count comparison covers it.
bool E1000::rx_waiting_for_interrupt() const { return rx_[rx_next_].status & kRxDd; }

void E1000::receive_frames() {
  uint32_t done = 0;
  bool dropping = false;  // inside a frame longer than one buffer
  while (rx_[rx_next_].status & kRxDd) {
    compiler_barrier();  // read the data only after seeing DD
    volatile RxDesc& d = rx_[rx_next_];
    const uint8_t status = d.status;
    const uint16_t len = d.length;
    if (!(status & kRxEop)) {
      // A frame spread over several buffers is longer than any frame we
      // asked for (no LPE): drop all of it.
      dropping = true;
      ++rx_dropped;
    } else if (dropping || d.errors || len > kBufferSize) {
      dropping = false;
      ++rx_dropped;
    } else {
      receive(rx_buffers_ + rx_next_ * kBufferSize, len);
    }
    d.status = 0;
    // This descriptor becomes the tail: the device may fill up to it.
    const uint32_t given = rx_next_;
    rx_next_ = (rx_next_ + 1) % kRxCount;
    ++done;
    // One RDT write per batch, and one per quarter ring in a long batch,
    // so the device never starves while we work through a burst.
    if (done % (kRxCount / 4) == 0 || !(rx_[rx_next_].status & kRxDd)) {
      compiler_barrier();
      wr(kRdt, given);
    }
  }
}

void E1000::reclaim_tx() {
  while (tx_clean_ != tx_tail_ && (tx_[tx_clean_].status & kTxDd)) tx_clean_ = (tx_clean_ + 1) % kTxCount;
}

bool E1000::transmit(const uint8_t* frame, size_t len) {
  if (len == 0 || len > kBufferSize) {
    ++tx_dropped;
    return false;
  }
  reclaim_tx();
  const uint32_t next = (tx_tail_ + 1) % kTxCount;
  if (next == tx_clean_) {  // ring full: the device has not caught up
    ++tx_dropped;
    return false;
  }
  uint8_t* buf = tx_buffers_ + tx_tail_ * kBufferSize;
  memcpy(buf, frame, len);
  volatile TxDesc& d = tx_[tx_tail_];
  d.addr = reinterpret_cast<uint64_t>(buf);
  d.length = static_cast<uint16_t>(len);
  d.cso = 0;
  d.css = 0;
  d.special = 0;
  d.status = 0;
  d.cmd = kTxEop | kTxIfcs | kTxRs;  // RS: the device reports DD, which reclaim_tx() reads
  compiler_barrier();
  tx_tail_ = next;
  wr(kTdt, next);
  ++tx_frames;
  return true;
}

}  // namespace drivers
