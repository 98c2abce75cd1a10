#include "vmm/devices/uart16550.h"

#include <gtest/gtest.h>

#include <string>

namespace vmm {
namespace {

class UartTest : public ::testing::Test {
 protected:
  std::string out;
  std::vector<bool> irq_changes;
  Uart16550 uart{[this](uint8_t b) { out.push_back(static_cast<char>(b)); },
                 [this](bool level) { irq_changes.push_back(level); }};

  uint8_t in(uint8_t reg) {
    uint8_t v;
    uart.read(reg, &v, 1);
    return v;
  }
  void outb(uint8_t reg, uint8_t v) { uart.write(reg, &v, 1); }
};

TEST_F(UartTest, TransmitsToSink) {
  for (char c : std::string("hi\n")) outb(Uart16550::kRbrThr, static_cast<uint8_t>(c));
  EXPECT_EQ(out, "hi\n");
}

TEST_F(UartTest, LineStatusAlwaysReadyToTransmit) {
  EXPECT_EQ(in(Uart16550::kLsr) & 0x60, 0x60);
  EXPECT_EQ(in(Uart16550::kLsr) & Uart16550::kLsrDataReady, 0);
}

TEST_F(UartTest, DivisorLatchSharesRegistersWithDataAndIer) {
  outb(Uart16550::kLcr, Uart16550::kLcrDlab);
  outb(0, 0x01);
  outb(1, 0x02);
  EXPECT_EQ(uart.divisor(), 0x0201);
  EXPECT_EQ(in(0), 0x01);
  EXPECT_TRUE(out.empty()) << "a divisor write must not transmit";
  outb(Uart16550::kLcr, 0x03);
  EXPECT_EQ(in(Uart16550::kIer), 0) << "IER is separate from DLM";
  EXPECT_EQ(in(Uart16550::kLcr), 0x03);
}

TEST_F(UartTest, ScratchRegisterHoldsValue) {
  outb(Uart16550::kScr, 0x5a);
  EXPECT_EQ(in(Uart16550::kScr), 0x5a);
}

TEST_F(UartTest, ReceivedBytesAreReadInOrderAndSetDataReady) {
  outb(Uart16550::kIirFcr, 0x01);  // FIFO on
  uart.receive('a');
  uart.receive('b');
  EXPECT_TRUE(in(Uart16550::kLsr) & Uart16550::kLsrDataReady);
  EXPECT_EQ(in(0), 'a');
  EXPECT_EQ(in(0), 'b');
  EXPECT_FALSE(in(Uart16550::kLsr) & Uart16550::kLsrDataReady);
}

TEST_F(UartTest, OverrunIsReportedOnceWithoutFifo) {
  uart.receive('a');
  uart.receive('b');  // no FIFO: one byte of buffer
  EXPECT_TRUE(in(Uart16550::kLsr) & Uart16550::kLsrOverrun);
  EXPECT_FALSE(in(Uart16550::kLsr) & Uart16550::kLsrOverrun) << "LSR overrun clears on read";
  EXPECT_EQ(in(0), 'a');
}

TEST_F(UartTest, IirReportsNoInterruptWhenDisabled) {
  EXPECT_EQ(in(Uart16550::kIirFcr) & 0x0f, Uart16550::kIirNone);
  EXPECT_TRUE(irq_changes.empty());
}

TEST_F(UartTest, ThrEmptyInterruptRaisedAndAcknowledgedByIirRead) {
  outb(Uart16550::kIer, Uart16550::kIerThrEmpty);
  ASSERT_EQ(irq_changes, std::vector<bool>{true});
  EXPECT_EQ(in(Uart16550::kIirFcr) & 0x0f, Uart16550::kIirThrEmpty);
  EXPECT_EQ(irq_changes, (std::vector<bool>{true, false}));
  EXPECT_EQ(in(Uart16550::kIirFcr) & 0x0f, Uart16550::kIirNone);
  outb(Uart16550::kRbrThr, 'x');  // transmitting empties THR again
  EXPECT_EQ(in(Uart16550::kIirFcr) & 0x0f, Uart16550::kIirThrEmpty);
}

TEST_F(UartTest, ReceiveInterruptHasPriorityOverThrEmpty) {
  outb(Uart16550::kIer, Uart16550::kIerThrEmpty | Uart16550::kIerRxData);
  uart.receive('z');
  EXPECT_EQ(in(Uart16550::kIirFcr) & 0x0f, Uart16550::kIirRxData);
  EXPECT_EQ(in(0), 'z');
  EXPECT_EQ(in(Uart16550::kIirFcr) & 0x0f, Uart16550::kIirThrEmpty);
}

TEST_F(UartTest, FifoEnableShowsInIirAndClearResetsReceiver) {
  outb(Uart16550::kIirFcr, 0x01);
  EXPECT_EQ(in(Uart16550::kIirFcr) & 0xc0, 0xc0);
  uart.receive('q');
  outb(Uart16550::kIirFcr, 0x03);  // clear RX FIFO
  EXPECT_FALSE(in(Uart16550::kLsr) & Uart16550::kLsrDataReady);
}

TEST_F(UartTest, LoopbackReturnsTransmittedBytesAndModemLines) {
  outb(Uart16550::kMcr, Uart16550::kMcrLoop | 0x03);  // loop, DTR, RTS
  outb(Uart16550::kRbrThr, 'L');
  EXPECT_TRUE(out.empty()) << "loopback must not reach the sink";
  EXPECT_EQ(in(0), 'L');
  EXPECT_EQ(in(Uart16550::kMsr) & 0x30, 0x30);  // DSR and CTS follow DTR and RTS
}

TEST_F(UartTest, WideAccessTouchesConsecutiveRegisters) {
  // A 2-byte write at LCR sets LCR and MCR, as an ISA bus splits it.
  const uint8_t two[2] = {0x03, 0x01};
  uart.write(Uart16550::kLcr, two, 2);
  uint8_t v[2];
  uart.read(Uart16550::kLcr, v, 2);
  EXPECT_EQ(v[0], 0x03);  // LCR
  EXPECT_EQ(v[1], 0x01);  // MCR
}

}  // namespace
}  // namespace vmm
