// A 16550A UART as the guest sees it on COM1: the eight registers with the
// divisor latch, FIFO control, line and modem status, the scratch
// register, loopback, and the interrupt identification priorities. Output
// bytes go to a sink (the VMM's stdout or a --console file); input bytes
// can be queued for the guest to read.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <vector>

#include "vmm/io_bus.h"

namespace vmm {

class Uart16550 : public IoDevice {
 public:
  using Sink = std::function<void(uint8_t)>;
  using IrqLine = std::function<void(bool level)>;

  enum Reg : uint8_t { kRbrThr = 0, kIer = 1, kIirFcr = 2, kLcr = 3, kMcr = 4, kLsr = 5, kMsr = 6, kScr = 7 };
  static constexpr uint8_t kLcrDlab = 0x80;
  static constexpr uint8_t kIerRxData = 0x01, kIerThrEmpty = 0x02;
  static constexpr uint8_t kIirNone = 0x01, kIirThrEmpty = 0x02, kIirRxData = 0x04, kIirFifo = 0xc0;
  static constexpr uint8_t kLsrDataReady = 0x01, kLsrOverrun = 0x02, kLsrThrEmpty = 0x20, kLsrTxEmpty = 0x40;
  static constexpr uint8_t kMcrLoop = 0x10;
  static constexpr size_t kFifoSize = 16;

  explicit Uart16550(Sink sink, IrqLine irq = {});

  void read(uint64_t offset, uint8_t* data, uint32_t size) override;
  void write(uint64_t offset, const uint8_t* data, uint32_t size) override;

  // Queues a byte from the host side for the guest to read.
  void receive(uint8_t byte);
  uint16_t divisor() const;

  // Snapshots (vmm/snapshot): every register and the receive FIFO.
  struct State {
    uint8_t ier = 0, lcr = 0, mcr = 0, scr = 0, dll = 0, dlm = 0;
    bool fifo_enabled = false, thr_interrupt = false, overrun = false, irq_level = false;
    std::vector<uint8_t> rx;
  };
  State state() const;
  // Takes the saved registers and drives the interrupt line to the saved
  // level, so KVM's view of the line matches the UART's again.
  void restore(const State& s);

 private:
  uint8_t read_reg(uint8_t reg);
  void write_reg(uint8_t reg, uint8_t v);
  uint8_t iir() const;
  void update_irq();  // with mu_ held

  mutable std::mutex mu_;
  Sink sink_;
  IrqLine irq_;
  std::deque<uint8_t> rx_;
  uint8_t ier_ = 0, lcr_ = 0, mcr_ = 0, scr_ = 0, dll_ = 12, dlm_ = 0;  // 9600 baud at reset
  bool fifo_enabled_ = false;
  bool thr_interrupt_ = false;  // THR-empty pending until IIR read or THR written
  bool overrun_ = false;
  bool irq_level_ = false;
};

}  // namespace vmm
