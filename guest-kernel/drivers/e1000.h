// Driver for the Intel 82540EM ("e1000"), PCI 8086:100E, as QEMU and our
// VMM emulate it: legacy descriptors, one receive and one transmit ring.
// Interrupts by MSI where the function has an MSI capability (our VMM's
// model adds one; a real 82540EM and QEMU's model have none), else INTx
// through the IOAPIC, level-triggered. `e1000-intx` on the command line
// forces INTx.
//
//   probe: reset, MAC from the EEPROM (checksum checked), link up (SLU),
//     rings set up, interrupts routed and unmasked, register_net_device().
//   interrupt: read ICR (which clears the causes, drops the INTx line, and
//     with MSI lets the next cause send a new message), note the causes,
//     raise IrqWork, EOI. Nothing else runs in the handler.
//   event loop: hand every received frame to the stack, give the buffers
//     back with one RDT write per batch, reclaim transmitted descriptors.
//   transmit: copy into the next descriptor's buffer, one TDT write; done
//     descriptors are reclaimed lazily (on the next transmit or TXDW).
#pragma once

#include <stddef.h>
#include <stdint.h>

#include "guest-kernel/kernel/event_loop.h"
#include "guest-kernel/net/net_device.h"
#include "guest-kernel/pci/pci.h"

namespace x86 {
struct InterruptFrame;
}

namespace drivers {

class E1000 final : public net::NetDevice {
 public:
  static constexpr uint32_t kRxCount = 256;
  static constexpr uint32_t kTxCount = 256;
  static constexpr uint32_t kBufferSize = 2048;  // RCTL.BSIZE 00: a whole frame fits one buffer

  // Brings the device up; false (with a message) if it cannot.
  bool init(const pci::Device& dev);

  const char* name() const override { return "e1000"; }
  net::MacAddress mac() const override { return mac_; }
  bool transmit(const uint8_t* frame, size_t len) override;

  bool link_up() const;
  // Receives and reclaims now (what the interrupt work does).
  void service();
  // Transmit descriptors the device has not completed yet.
  uint32_t tx_in_flight() const { return (tx_tail_ + kTxCount - tx_clean_) % kTxCount; }
  uint64_t causes_seen() const { return causes_seen_; }
  bool uses_msi() const { return msi_; }
  uint8_t irq_pin() const { return pin_; }  // INTx only

 protected:
  bool rx_waiting_for_interrupt() const override;
  void take_rx() override { service(); }

 private:
  struct RxDesc {
    uint64_t addr;
    uint16_t length;
    uint16_t csum;
    uint8_t status;
    uint8_t errors;
    uint16_t special;
  };
  struct TxDesc {
    uint64_t addr;
    uint16_t length;
    uint8_t cso;
    uint8_t cmd;
    uint8_t status;
    uint8_t css;
    uint16_t special;
  };
  static_assert(sizeof(RxDesc) == 16 && sizeof(TxDesc) == 16);

  uint32_t rd(uint32_t reg) const;
  void wr(uint32_t reg, uint32_t value) const;
  bool reset();
  bool read_mac();
  void setup_rx();
  void setup_tx();
  void receive_frames();
  void reclaim_tx();
  static void interrupt(x86::InterruptFrame& frame, void* self);
  static void work(void* self);

  uint64_t regs_ = 0;
  net::MacAddress mac_{};
  volatile RxDesc* rx_ = nullptr;
  volatile TxDesc* tx_ = nullptr;
  uint8_t* rx_buffers_ = nullptr;
  uint8_t* tx_buffers_ = nullptr;
  uint32_t rx_next_ = 0;   // next descriptor the device fills
  uint32_t tx_tail_ = 0;   // next descriptor we fill (= TDT)
  uint32_t tx_clean_ = 0;  // oldest descriptor not yet reclaimed
  bool msi_ = false;
  uint8_t pin_ = 0;
  uint8_t vector_ = 0;
  volatile uint32_t pending_causes_ = 0;  // ICR bits read by the handler, not yet handled
  uint64_t causes_seen_ = 0;
  IrqWork work_;
};

// The first e1000 brought up, or nullptr (for self-tests).
E1000* first_e1000();

}  // namespace drivers
