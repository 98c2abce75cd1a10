#include "vmm/devices/uart16550.h"

#include <algorithm>

namespace vmm {

Uart16550::Uart16550(Sink sink, IrqLine irq) : sink_(std::move(sink)), irq_(std::move(irq)) {}

// Byte-wide registers: wider accesses touch consecutive registers, as on an
// ISA bus that splits them.
void Uart16550::read(uint64_t offset, uint8_t* data, uint32_t size) {
  std::lock_guard lock(mu_);
  for (uint32_t i = 0; i < size; ++i) data[i] = read_reg(static_cast<uint8_t>((offset + i) & 7));
  update_irq();
}

void Uart16550::write(uint64_t offset, const uint8_t* data, uint32_t size) {
  std::lock_guard lock(mu_);
  for (uint32_t i = 0; i < size; ++i) write_reg(static_cast<uint8_t>((offset + i) & 7), data[i]);
  update_irq();
}

void Uart16550::receive(uint8_t byte) {
  std::lock_guard lock(mu_);
  const size_t cap = fifo_enabled_ ? kFifoSize : 1;
  if (rx_.size() >= cap) overrun_ = true;
  else rx_.push_back(byte);
  update_irq();
}

uint16_t Uart16550::divisor() const {
  std::lock_guard lock(mu_);
  return static_cast<uint16_t>(dlm_ << 8 | dll_);
}

uint8_t Uart16550::iir() const {
  uint8_t fifo = fifo_enabled_ ? kIirFifo : 0;
  if ((ier_ & kIerRxData) && !rx_.empty()) return fifo | kIirRxData;
  if ((ier_ & kIerThrEmpty) && thr_interrupt_) return fifo | kIirThrEmpty;
  return fifo | kIirNone;
}

uint8_t Uart16550::read_reg(uint8_t reg) {
  const bool dlab = lcr_ & kLcrDlab;
  switch (reg) {
    case kRbrThr: {
      if (dlab) return dll_;
      if (rx_.empty()) return 0;
      uint8_t b = rx_.front();
      rx_.pop_front();
      return b;
    }
    case kIer: return dlab ? dlm_ : ier_;
    case kIirFcr: {
      uint8_t v = iir();
      // Reading IIR while it reports THR-empty acknowledges that interrupt.
      if ((v & 0x0f) == kIirThrEmpty) thr_interrupt_ = false;
      return v;
    }
    case kLcr: return lcr_;
    case kMcr: return mcr_;
    case kLsr: {
      // Output is taken at once, so the transmitter is always empty.
      uint8_t v = kLsrThrEmpty | kLsrTxEmpty;
      if (!rx_.empty()) v |= kLsrDataReady;
      if (overrun_) v |= kLsrOverrun;
      overrun_ = false;  // read-to-clear
      return v;
    }
    case kMsr:
      if (mcr_ & kMcrLoop) {
        // Loopback: DTR->DSR, RTS->CTS, OUT1->RI, OUT2->DCD.
        return static_cast<uint8_t>(((mcr_ & 0x01) << 5) | ((mcr_ & 0x02) << 3) | ((mcr_ & 0x04) << 4) |
                                    ((mcr_ & 0x08) << 4));
      }
      return 0xb0;  // DCD, DSR, CTS: a cable is attached
    case kScr: return scr_;
  }
  return 0xff;
}

void Uart16550::write_reg(uint8_t reg, uint8_t v) {
  const bool dlab = lcr_ & kLcrDlab;
  switch (reg) {
    case kRbrThr:
      if (dlab) {
        dll_ = v;
      } else if (mcr_ & kMcrLoop) {
        if (rx_.size() < (fifo_enabled_ ? kFifoSize : 1)) rx_.push_back(v);
        else overrun_ = true;
        thr_interrupt_ = true;
      } else {
        if (sink_) sink_(v);
        thr_interrupt_ = true;  // transmitted at once: THR is empty again
      }
      break;
    case kIer:
      if (dlab) {
        dlm_ = v;
      } else {
        // Enabling the THR-empty interrupt while THR is empty raises it.
        if (!(ier_ & kIerThrEmpty) && (v & kIerThrEmpty)) thr_interrupt_ = true;
        ier_ = v & 0x0f;
      }
      break;
    case kIirFcr:  // FCR
      fifo_enabled_ = v & 0x01;
      if (v & 0x02) rx_.clear();
      break;
    case kLcr: lcr_ = v; break;
    case kMcr: mcr_ = v & 0x1f; break;
    case kLsr:
    case kMsr: break;  // read-only
    case kScr: scr_ = v; break;
  }
}

void Uart16550::update_irq() {
  const bool level = (iir() & kIirNone) == 0;
  if (level != irq_level_) {
    irq_level_ = level;
    if (irq_) irq_(level);
  }
}

Uart16550::State Uart16550::state() const {
  std::lock_guard lock(mu_);
  return {ier_, lcr_, mcr_, scr_, dll_, dlm_, fifo_enabled_, thr_interrupt_, overrun_, irq_level_,
          std::vector<uint8_t>(rx_.begin(), rx_.end())};
}

void Uart16550::restore(const State& s) {
  std::lock_guard lock(mu_);
  ier_ = s.ier;
  lcr_ = s.lcr;
  mcr_ = s.mcr;
  scr_ = s.scr;
  dll_ = s.dll;
  dlm_ = s.dlm;
  fifo_enabled_ = s.fifo_enabled;
  thr_interrupt_ = s.thr_interrupt;
  overrun_ = s.overrun;
  const size_t cap = fifo_enabled_ ? kFifoSize : 1;
  rx_.assign(s.rx.begin(), s.rx.begin() + static_cast<long>(std::min(cap, s.rx.size())));
  irq_level_ = s.irq_level;
  if (irq_) irq_(irq_level_);
}

}  // namespace vmm
