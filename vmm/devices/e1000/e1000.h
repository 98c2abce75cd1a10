// The emulated Intel 82540EM gigabit NIC ("e1000"): a PCI function with
// its 128 KiB register file in BAR0 and the IOADDR/IODATA window in BAR1,
// the EEPROM and PHY behind EERD/EECD and MDIC, legacy receive descriptors,
// legacy and TCP/IP context/data transmit descriptors, interrupt causes with
// mask and throttling, delivered by INTx or (an addition to the 82540EM,
// optional) MSI, and the read-to-clear statistics registers.
//
// Threads:
//   - vCPU threads: every register access is an MMIO (or port I/O) exit
//     into bar_read()/bar_write(), which is the cost this model exists to
//     measure against virtio. A TDT write transmits synchronously on that
//     thread, like QEMU's model: the descriptors are read, the frames go
//     to the FramePort, and the DD bits are written back before the guest
//     resumes.
//   - the switch (any thread) calls deliver(), which only queues the frame
//     in the receive FIFO and wakes the I/O thread.
//   - the device's I/O thread moves frames from the FIFO into receive
//     descriptors and raises throttled interrupts when their time comes.
// `mu_` guards the registers, the rings and guest-memory writes; `fifo_mu_`
// only the FIFO. Order: mu_ -> fifo_mu_, and mu_ -> Msi -> GsiRouter. PCI
// config hooks run with the PCI config lock held and then take mu_.
//
// Interrupts: the condition is ICR & IMS != 0. With INTx the line carries
// it as a level; with MSI enabled (Message Control bit 0) the line stays
// low (PCI: MSI enable disables INTx) and one message goes out on each
// rising edge of the condition, i.e. exactly where the line would rise.
// ITR throttles both the same way.
//
// A hostile guest: every ring base, length and index and every buffer
// address is checked against guest RAM before use. A bad ring stops that
// direction (logged once, with the reason) until the guest resets the
// device or re-enables the direction; nothing the guest writes crashes
// the VMM.
#pragma once

#include <array>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "vmm/devices/e1000/e1000_regs.h"
#include "vmm/devices/e1000/eeprom.h"
#include "vmm/devices/e1000/phy.h"
#include "vmm/devices/e1000/tx_assembler.h"
#include "vmm/guest_memory.h"
#include "vmm/irq/irq_line.h"
#include "vmm/irq/gsi_router.h"
#include "vmm/net/frame_port.h"
#include "vmm/pci/msi.h"
#include "vmm/pci/pci_device.h"

namespace vmm {

class E1000 final : public PciDevice, public net::FrameSink {
 public:
  struct Options {
    // Without it the owner calls poll() to do the I/O thread's work:
    // deterministic unit tests and fuzzing.
    bool io_thread = true;
    // The receive FIFO between the switch and the descriptors: frames wait
    // here while the guest has no free descriptors. The 82540EM's default
    // packet buffer allocation (PBA) gives receive 48 KiB.
    size_t rx_fifo_bytes = 48 << 10;
    // Monotonic nanoseconds, for interrupt throttling (ITR). Default:
    // std::chrono::steady_clock.
    std::function<uint64_t()> clock;
    // Where the device's one-line messages go (a stopped ring, a dropped
    // frame). Default: stderr.
    std::function<void(const std::string&)> log;
    // Where MSI messages go. With a router the device has an MSI
    // capability (one vector, 64-bit address), which a real 82540EM lacks
    // (see README); null, the default, leaves it exactly an 82540EM with
    // INTx only. The router must outlive the device.
    GsiRouter* msi_router = nullptr;
  };

  // The device, its I/O thread started (unless options say otherwise).
  // `irq` is the INTx line; its GSI goes into Interrupt Line. MSI besides
  // it with Options::msi_router.
  static std::shared_ptr<E1000> create(GuestMemory& mem, std::shared_ptr<IrqLine> irq, const net::MacAddress& mac,
                                       Options options);
  static std::shared_ptr<E1000> create(GuestMemory& mem, std::shared_ptr<IrqLine> irq, const net::MacAddress& mac) {
    return create(mem, std::move(irq), mac, Options{});
  }
  ~E1000() override;

  // Where transmitted frames go (the switch). Without a port they are
  // counted as transmit errors.
  void set_port(std::shared_ptr<net::FramePort> port);

  // FrameSink: queues `frame` for the I/O thread; a full FIFO drops it
  // (counted in MPC, and RXO raised, by the I/O thread).
  void deliver(net::Frame frame) override;

  // Stops the device writing guest RAM until the lock is dropped
  // (same-page merging): every guest-memory write happens under mu_.
  std::unique_lock<std::mutex> quiesce() { return std::unique_lock(mu_); }

  // The I/O thread's work, once: receive queued frames into descriptors
  // and raise a throttled interrupt whose delay has passed.
  void poll();

  // Register access as the guest's driver sees it (BAR0 offsets), for
  // tests and fuzzing; the same path as an MMIO exit.
  uint32_t reg_read(uint32_t offset);
  void reg_write(uint32_t offset, uint32_t value);

  const net::MacAddress& mac() const { return mac_; }
  // Empty while the direction runs; the reason after a bad ring stopped it.
  std::string rx_stop_reason() const;
  std::string tx_stop_reason() const;
  // Whether the INTx line is high.
  bool irq_asserted() const;
  // Whether the guest turned MSI on (always false without the capability).
  bool msi_enabled() const;
  // The MSI capability's offset in configuration space; 0 if none.
  uint8_t msi_capability() const { return msi_ ? msi_->capability_offset() : 0; }

  struct Stats {
    uint64_t mmio_exits = 0;
    // MMIO exits of the registers a driver touches per packet; the rest
    // are in `mmio_other`.
    uint64_t mmio_icr = 0, mmio_ims = 0, mmio_imc = 0, mmio_rdt = 0, mmio_tdt = 0, mmio_other = 0;
    uint64_t interrupts = 0;    // INTx assertions plus MSI messages
    uint64_t msi_messages = 0;  // of those, MSI messages sent
    uint64_t msi_refused = 0;   // MSI messages KVM did not take (not in the above)
    uint64_t tx_frames = 0, tx_bytes = 0, tx_errors = 0;
    uint64_t rx_frames = 0, rx_bytes = 0;
    uint64_t rx_fifo_drops = 0;    // FIFO full: the guest gave no descriptors in time
    uint64_t rx_filtered = 0;      // not for our address
    uint64_t rx_dropped = 0;       // receiver off, ring stopped, bad length
  };
  Stats stats() const;
  // One line for --stats.
  std::string stats_line() const;

 protected:
  void bar_read(uint32_t bar, uint64_t offset, uint8_t* data, uint32_t size) override;
  void bar_write(uint32_t bar, uint64_t offset, const uint8_t* data, uint32_t size) override;

 private:
  struct Ring {
    uint64_t base;
    uint32_t count;  // descriptors
    uint32_t head, tail;
  };

  E1000(GuestMemory& mem, std::shared_ptr<IrqLine> irq, const net::MacAddress& mac, Options options);
  void start();
  void io_loop();
  void command_changed();  // PCI COMMAND hook: bus mastering, INTx disable
  void msi_changed(bool enabled);  // MSI enable, from the capability's hook

  uint32_t& reg(uint32_t offset) { return regs_[offset / 4]; }
  uint32_t read_locked(uint32_t offset);
  void write_locked(uint32_t offset, uint32_t value);
  void count_exit_locked(uint32_t offset);
  void reset_locked();

  // Interrupts: ICR |= causes, then the line (or MSI) follows ICR & IMS
  // (and ITR).
  void raise_locked(uint32_t causes);
  void update_irq_locked();
  void signal_locked();  // the condition rose: the line goes high, or a message goes out

  // Validates a ring's registers; on failure stops the direction.
  bool ring_locked(bool rx, Ring* ring);
  void stop_locked(bool rx, const std::string& why);

  void tx_locked();
  void transmit_locked(std::vector<uint8_t>& frame);
  void rx_locked();
  // Whether the receive filters accept a frame for `dst`.
  bool accept_locked(const uint8_t* dst) const;
  uint32_t rx_buffer_size_locked() const;
  void count_stat_locked(uint32_t offset, uint64_t n = 1);
  void count_stat64_locked(uint32_t low_offset, uint64_t n);

  void log_locked(const std::string& what);
  void wake_io();
  void arm_timer(uint64_t deadline_ns);
  uint64_t now_ns() const;

  GuestMemory& mem_;
  const std::shared_ptr<IrqLine> irq_;
  const net::MacAddress mac_;
  const Options options_;
  std::unique_ptr<Msi> msi_;  // with Options::msi_router

  mutable std::mutex mu_;
  std::array<uint32_t, e1000::kMmioBarSize / 4> regs_{};
  e1000::Eeprom eeprom_;
  e1000::Phy phy_;
  e1000::TxAssembler tx_;
  std::shared_ptr<net::FramePort> port_;
  std::string rx_stop_, tx_stop_;
  bool bus_master_ = false;
  bool intx_disabled_ = false;
  bool line_high_ = false;     // INTx
  bool msi_enabled_ = false;   // the capability's enable bit, as last seen by msi_changed()
  bool msi_signalled_ = false; // a message went out for the condition, which has not dropped since
  bool msi_refusal_logged_ = false;
  bool asserted_once_ = false;
  uint64_t last_assert_ns_ = 0;
  uint64_t throttle_deadline_ns_ = 0;  // 0: no assertion waits for ITR
  bool rx_waiting_counted_ = false;  // RNBC counted for the frame at the FIFO head
  uint32_t io_addr_ = 0;             // BAR1 IOADDR
  bool partial_access_logged_ = false;
  static constexpr uint32_t kMaxLogLines = 16;
  uint32_t log_lines_ = 0;
  Stats stats_;

  std::mutex fifo_mu_;
  std::condition_variable fifo_cv_;
  std::deque<net::Frame> fifo_;
  size_t fifo_bytes_ = 0;
  uint64_t fifo_drops_ = 0;  // not yet folded into MPC/RXO
  bool kick_ = false;
  uint64_t timer_ns_ = 0;  // when the I/O thread must run poll() for ITR; 0: never
  bool stopping_ = false;
  std::thread io_thread_;
};

}  // namespace vmm
