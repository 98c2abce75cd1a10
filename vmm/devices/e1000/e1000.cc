#include "vmm/devices/e1000/e1000.h"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <utility>

#include "vmm/thread_name.h"

namespace vmm {

using namespace e1000;

namespace {

// PCI identity: an 82540EM on Intel's PRO/1000 MT Desktop Adapter.
constexpr uint8_t kRevision = 0x03;
constexpr uint16_t kSubsystemVendor = 0x8086;
constexpr uint16_t kSubsystemId = 0x001e;
constexpr uint8_t kIntxPinA = 1;

constexpr uint32_t kPbaDefault = 0x00100030;  // 48 KiB receive, 16 KiB transmit
constexpr uint32_t kRahAv = 1u << 31;          // address valid
constexpr uint32_t kReceiveAddresses = 16;
constexpr uint32_t kMtaEntries = 128;

constexpr size_t kFcsLen = 4;
constexpr size_t kMinPaddedFrame = 60;    // 64 with the FCS
constexpr size_t kMaxStandardFrame = 1518;  // 1522 with the FCS (room for a VLAN tag)
constexpr size_t kMaxLongFrame = 16384 - kFcsLen;
// A FIFO slot is charged at least this much, so empty frames cannot fill
// the FIFO without bound.
constexpr size_t kMinFifoCharge = 64;

size_t fifo_charge(const net::Frame& f) { return f.size() < kMinFifoCharge ? kMinFifoCharge : f.size(); }

// Ethernet's frame check sequence: CRC-32 (reflected 0x04C11DB7),
// transmitted least significant byte first.
uint32_t crc32(const uint8_t* p, size_t n) {
  uint32_t crc = 0xffffffff;
  for (size_t i = 0; i < n; ++i) {
    crc ^= p[i];
    for (int b = 0; b < 8; ++b) crc = (crc >> 1) ^ (0xedb88320 & (0u - (crc & 1)));
  }
  return ~crc;
}

std::string hex(uint64_t v) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "%#llx", static_cast<unsigned long long>(v));
  return buf;
}

std::string mac_string(const net::MacAddress& m) {
  char buf[18];
  std::snprintf(buf, sizeof buf, "%02x:%02x:%02x:%02x:%02x:%02x", m[0], m[1], m[2], m[3], m[4], m[5]);
  return buf;
}

bool is_stat(uint32_t off) { return off >= kStatsBase && off < kStatsEnd; }
// The high halves of the 64-bit octet counters: reading one returns it and
// clears the whole counter; reading the low half clears nothing, so a
// driver reads low then high and sees one consistent 64-bit value.
bool is_stat64_high(uint32_t off) { return off == kGorch || off == kGotch || off == kTorh || off == kToth; }
bool is_stat64_low(uint32_t off) { return off == kGorcl || off == kGotcl || off == kTorl || off == kTotl; }

}  // namespace

std::shared_ptr<E1000> E1000::create(GuestMemory& mem, std::shared_ptr<IrqLine> irq, const net::MacAddress& mac,
                                     Options options) {
  if (!irq) throw std::logic_error("e1000: no interrupt line");
  std::shared_ptr<E1000> dev(new E1000(mem, std::move(irq), mac, std::move(options)));
  dev->start();
  return dev;
}

E1000::E1000(GuestMemory& mem, std::shared_ptr<IrqLine> irq, const net::MacAddress& mac, Options options)
    : PciDevice(PciIds{kVendorIntel, kDevice82540EM, kClassEthernet, kRevision, kSubsystemVendor, kSubsystemId,
                       kIntxPinA},
                "e1000"),
      mem_(mem),
      irq_(std::move(irq)),
      mac_(mac),
      options_(std::move(options)),
      eeprom_(mac, kDevice82540EM, kSubsystemVendor, kSubsystemId) {
  add_bar(0, PciBarKind::kMem32, kMmioBarSize);
  add_bar(1, PciBarKind::kIo, kIoBarSize);
  // Firmware would write the routed IRQ here; drivers read it to find
  // their IOAPIC pin.
  raw_set8(pci::kInterruptLine, static_cast<uint8_t>(irq_->gsi()));
  add_config_hook(pci::kCommand, 2, [this] { command_changed(); });
  if (options_.msi_router)
    msi_ = std::make_unique<Msi>(*this, *options_.msi_router, [this](bool enabled) { msi_changed(enabled); });
  std::lock_guard lock(mu_);
  reset_locked();
}

void E1000::start() {
  if (options_.io_thread) io_thread_ = std::thread([this] { io_loop(); });
}

E1000::~E1000() {
  {
    std::lock_guard lock(fifo_mu_);
    stopping_ = true;
  }
  fifo_cv_.notify_all();
  if (io_thread_.joinable()) io_thread_.join();
}

uint64_t E1000::now_ns() const {
  if (options_.clock) return options_.clock();
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

void E1000::set_port(std::shared_ptr<net::FramePort> port) {
  std::lock_guard lock(mu_);
  port_ = std::move(port);
}

// ---- The I/O thread ---------------------------------------------------------

void E1000::deliver(net::Frame frame) {
  {
    std::lock_guard lock(fifo_mu_);
    const size_t charge = fifo_charge(frame);
    if (fifo_bytes_ + charge > options_.rx_fifo_bytes) {
      ++fifo_drops_;  // the I/O thread folds it into MPC and raises RXO
    } else {
      fifo_bytes_ += charge;
      fifo_.push_back(std::move(frame));
    }
    kick_ = true;
  }
  fifo_cv_.notify_one();
}

void E1000::wake_io() {
  {
    std::lock_guard lock(fifo_mu_);
    if (fifo_.empty() && !fifo_drops_) return;  // nothing waits for descriptors
    kick_ = true;
  }
  fifo_cv_.notify_one();
}

void E1000::arm_timer(uint64_t deadline_ns) {
  {
    std::lock_guard lock(fifo_mu_);
    timer_ns_ = deadline_ns;
  }
  fifo_cv_.notify_one();
}

void E1000::io_loop() {
  set_thread_name("e1000-io");
  std::unique_lock lock(fifo_mu_);
  while (!stopping_) {
    if (!kick_) {
      if (timer_ns_) {
        const uint64_t now = now_ns();
        if (now < timer_ns_) fifo_cv_.wait_for(lock, std::chrono::nanoseconds(timer_ns_ - now));
      } else {
        fifo_cv_.wait(lock);
      }
    }
    if (stopping_) break;
    const bool timer_due = timer_ns_ && now_ns() >= timer_ns_;
    if (!kick_ && !timer_due) continue;
    kick_ = false;
    if (timer_due) timer_ns_ = 0;
    lock.unlock();
    poll();
    lock.lock();
  }
}

void E1000::poll() {
  std::lock_guard lock(mu_);
  rx_locked();
  if (throttle_deadline_ns_ && now_ns() >= throttle_deadline_ns_) {
    throttle_deadline_ns_ = 0;
    update_irq_locked();
  }
}

// ---- PCI ----------------------------------------------------------------------

void E1000::command_changed() {
  // Runs with the PCI config lock held, so raw16() is safe to read here.
  const uint16_t command = raw16(pci::kCommand);
  std::lock_guard lock(mu_);
  const bool was_master = bus_master_;
  bus_master_ = command & pci::kCommandMaster;
  intx_disabled_ = command & pci::kCommandIntxDisable;
  update_irq_locked();
  if (bus_master_ && !was_master) {
    tx_locked();  // descriptors queued while DMA was off
    wake_io();
  }
}

void E1000::msi_changed(bool enabled) {
  // Runs with the PCI config lock held (the capability's hook).
  std::lock_guard lock(mu_);
  if (enabled == msi_enabled_) return;
  msi_enabled_ = enabled;
  // The condition starts over on the new path: a cause still pending
  // raises the line, or sends a message, at once (ITR permitting), so a
  // switch in either direction loses nothing.
  if (line_high_) {
    line_high_ = false;
    irq_->set_level(false);
  }
  msi_signalled_ = false;
  update_irq_locked();
}

void E1000::bar_read(uint32_t bar, uint64_t offset, uint8_t* data, uint32_t size) {
  uint64_t value = ~0ull;
  std::lock_guard lock(mu_);
  if (bar == 0) {
    // The 82540EM decodes dword accesses; a narrower read returns part of
    // the dword (with the dword read's side effects, as QEMU does), an
    // 8-byte read is two dword reads.
    const uint32_t base = static_cast<uint32_t>(offset & ~3ull);
    if (size == 8 && !(offset & 7)) {
      count_exit_locked(base);
      const uint64_t lo = read_locked(base);
      value = lo | uint64_t{read_locked(base + 4)} << 32;
    } else if ((offset & 3) + size <= 4) {
      count_exit_locked(base);
      value = read_locked(base) >> (8 * (offset & 3));
    }
  } else if (bar == 1) {
    // IOADDR at 0 selects a register, IODATA at 4 accesses it.
    if (offset == 0 && size == 4) {
      value = io_addr_;
    } else if (offset == 4 && size == 4 && io_addr_ < kMmioBarSize && !(io_addr_ & 3)) {
      count_exit_locked(io_addr_);
      value = read_locked(io_addr_);
    }
  }
  std::memcpy(data, &value, size);
}

void E1000::bar_write(uint32_t bar, uint64_t offset, const uint8_t* data, uint32_t size) {
  uint64_t value = 0;
  std::memcpy(&value, data, size);
  std::lock_guard lock(mu_);
  if (bar == 0) {
    if (size == 4 && !(offset & 3)) {
      count_exit_locked(static_cast<uint32_t>(offset));
      write_locked(static_cast<uint32_t>(offset), static_cast<uint32_t>(value));
    } else if (size == 8 && !(offset & 7)) {
      count_exit_locked(static_cast<uint32_t>(offset));
      write_locked(static_cast<uint32_t>(offset), static_cast<uint32_t>(value));
      write_locked(static_cast<uint32_t>(offset + 4), static_cast<uint32_t>(value >> 32));
    } else if (!partial_access_logged_) {
      // A partial write of a register with side effects (TDT, ICR, CTRL)
      // has no defined meaning on the part: ignore it, say so once.
      partial_access_logged_ = true;
      log_locked("ignoring a " + std::to_string(size) + "-byte write at BAR0+" + hex(offset) +
                 " (registers take aligned 32-bit writes)");
    }
  } else if (bar == 1 && size == 4) {
    if (offset == 0) {
      io_addr_ = static_cast<uint32_t>(value);
    } else if (offset == 4 && io_addr_ < kMmioBarSize && !(io_addr_ & 3)) {
      count_exit_locked(io_addr_);
      write_locked(io_addr_, static_cast<uint32_t>(value));
    }
  }
}

uint32_t E1000::reg_read(uint32_t offset) {
  std::lock_guard lock(mu_);
  if (offset >= kMmioBarSize || (offset & 3)) return ~0u;
  count_exit_locked(offset);
  return read_locked(offset);
}

void E1000::reg_write(uint32_t offset, uint32_t value) {
  std::lock_guard lock(mu_);
  if (offset >= kMmioBarSize || (offset & 3)) return;
  count_exit_locked(offset);
  write_locked(offset, value);
}

void E1000::count_exit_locked(uint32_t offset) {
  ++stats_.mmio_exits;
  switch (offset) {
    case kIcr: ++stats_.mmio_icr; break;
    case kIms: ++stats_.mmio_ims; break;
    case kImc: ++stats_.mmio_imc; break;
    case kRdt: ++stats_.mmio_rdt; break;
    case kTdt: ++stats_.mmio_tdt; break;
    default: ++stats_.mmio_other; break;
  }
}

// ---- Registers ----------------------------------------------------------------

void E1000::reset_locked() {
  regs_.fill(0);
  reg(kCtrl) = kCtrlFd;
  reg(kPba) = kPbaDefault;
  reg(kRal0) = mac_[0] | mac_[1] << 8 | mac_[2] << 16 | uint32_t{mac_[3]} << 24;
  reg(kRal0 + 4) = mac_[4] | mac_[5] << 8 | kRahAv;
  phy_.reset();
  eeprom_.reset_pins();
  tx_.reset();
  rx_stop_.clear();
  tx_stop_.clear();
  rx_waiting_counted_ = false;
  throttle_deadline_ns_ = 0;
  asserted_once_ = false;
  update_irq_locked();  // ICR and IMS are 0: the line drops
  // A reset flushes the receive FIFO.
  std::lock_guard lock(fifo_mu_);
  stats_.rx_dropped += fifo_.size();
  fifo_.clear();
  fifo_bytes_ = 0;
  fifo_drops_ = 0;
}

uint32_t E1000::read_locked(uint32_t off) {
  switch (off) {
    case kStatus: {
      // The link is up once software asks for it (CTRL.SLU), at 1000 Mb/s
      // full duplex: what the PHY negotiated.
      uint32_t v = kStatusFd | kStatusSpeed1000 | kStatusAsdv1000;
      if (reg(kCtrl) & kCtrlSlu) v |= kStatusLu;
      return v;
    }
    case kIcr: {
      const uint32_t v = reg(kIcr);
      reg(kIcr) = 0;
      update_irq_locked();
      return v;
    }
    case kIcs:
    case kImc:
      return 0;  // write-only
    case kEecd:
      return eeprom_.eecd_read();
    default:
      break;
  }
  if (is_stat(off)) {
    const uint32_t v = reg(off);
    if (is_stat64_high(off)) {
      reg(off) = 0;
      reg(off - 4) = 0;
    } else if (!is_stat64_low(off)) {
      reg(off) = 0;
    }
    return v;
  }
  return reg(off);
}

void E1000::write_locked(uint32_t off, uint32_t v) {
  switch (off) {
    case kCtrl: {
      if (v & kCtrlRst) {  // self-clearing: the device is back at its defaults
        reset_locked();
        return;
      }
      if (v & kCtrlPhyRst) phy_.reset();
      const bool link_up = (v & kCtrlSlu) && !(reg(kCtrl) & kCtrlSlu);
      reg(kCtrl) = v & ~(kCtrlRst | kCtrlPhyRst);
      if (link_up) raise_locked(kIntLsc);
      return;
    }
    case kStatus:
      return;  // read-only
    case kEecd:
      eeprom_.eecd_write(v);
      return;
    case kEerd:
      reg(kEerd) = Eeprom::eerd_result(eeprom_, v);
      return;
    case kMdic: {
      bool interrupt = false;
      reg(kMdic) = phy_.mdic(v, &interrupt);
      if (interrupt) raise_locked(kIntMdac);
      return;
    }
    case kIcr:  // writing 1s clears those causes
      reg(kIcr) &= ~v;
      update_irq_locked();
      return;
    case kIcs:
      raise_locked(v & kIntMask);
      return;
    case kIms:
      reg(kIms) |= v & kIntMask;
      update_irq_locked();
      return;
    case kImc:
      reg(kIms) &= ~v;
      update_irq_locked();
      return;
    case kItr:
      reg(kItr) = v & 0xffff;
      update_irq_locked();
      return;
    case kRctl: {
      const bool enabling = (v & kRctlEn) && !(reg(kRctl) & kRctlEn);
      reg(kRctl) = v;
      if (enabling) rx_stop_.clear();  // the driver set the ring up again
      wake_io();
      return;
    }
    case kTctl: {
      const bool enabling = (v & kTctlEn) && !(reg(kTctl) & kTctlEn);
      reg(kTctl) = v;
      if (enabling) {
        tx_stop_.clear();
        tx_.reset();
      }
      tx_locked();
      return;
    }
    case kTdt:
      reg(kTdt) = v & 0xffff;
      tx_locked();
      return;
    case kRdt:
      reg(kRdt) = v & 0xffff;
      wake_io();
      return;
    case kRdh:
    case kTdh:
      reg(off) = v & 0xffff;
      return;
    case kRdlen:
    case kTdlen:
      reg(off) = v & 0xfffff;
      return;
    default:
      break;
  }
  if (is_stat(off)) return;  // counters are read-only
  reg(off) = v;
}

// ---- Interrupts ---------------------------------------------------------------

void E1000::raise_locked(uint32_t causes) {
  reg(kIcr) |= causes & kIntMask;
  update_irq_locked();
}

void E1000::update_irq_locked() {
  // The condition, as the active path can carry it: INTx obeys COMMAND's
  // Interrupt Disable; an MSI is a memory write, so it needs bus mastering
  // (a message due while mastering is off goes out when it comes back on).
  const bool cause = reg(kIcr) & reg(kIms) & kIntMask;
  const bool pending = cause && (msi_enabled_ ? bus_master_ : !intx_disabled_);
  if (!pending) {
    throttle_deadline_ns_ = 0;
    msi_signalled_ = false;  // the next rise sends a new message
    if (line_high_) {
      line_high_ = false;
      irq_->set_level(false);
    }
    return;
  }
  if (line_high_ || msi_signalled_) return;  // already signalled
  // ITR: at most one interrupt (line assertion or MSI message) per ITR x
  // 256 ns. A cause that arrives sooner waits for the I/O thread's timer;
  // the causes accumulate in ICR, so one interrupt then covers them all.
  const uint64_t interval = uint64_t{reg(kItr) & 0xffff} * 256;
  const uint64_t now = now_ns();
  if (interval && asserted_once_ && now - last_assert_ns_ < interval) {
    if (!throttle_deadline_ns_) {
      throttle_deadline_ns_ = last_assert_ns_ + interval;
      if (options_.io_thread) arm_timer(throttle_deadline_ns_);
    }
    return;
  }
  throttle_deadline_ns_ = 0;
  asserted_once_ = true;
  last_assert_ns_ = now;
  signal_locked();
}

void E1000::signal_locked() {
  if (!msi_enabled_) {
    line_high_ = true;
    ++stats_.interrupts;
    irq_->set_level(true);
    return;
  }
  // Marked signalled even if KVM refuses the message: retrying at every
  // new cause would not make a guest-chosen bad message good.
  msi_signalled_ = true;
  if (msi_->notify()) {
    ++stats_.interrupts;
    ++stats_.msi_messages;
    return;
  }
  ++stats_.msi_refused;
  if (!msi_refusal_logged_) {
    msi_refusal_logged_ = true;
    const MsiMessage m = msi_->message();
    log_locked("KVM refused the MSI message (address " + hex(m.address) + ", data " + hex(m.data) +
               "); further refusals are only counted");
  }
}

bool E1000::irq_asserted() const {
  std::lock_guard lock(mu_);
  return line_high_;
}

bool E1000::msi_enabled() const {
  std::lock_guard lock(mu_);
  return msi_enabled_;
}

void E1000::log_locked(const std::string& what) {
  // A guest that breaks and restarts its rings in a loop must not flood
  // the VMM's log: the first few messages, then one saying so.
  if (log_lines_ > kMaxLogLines) return;
  std::string line = "vmm: e1000 " + mac_string(mac_) + ": " +
                     (++log_lines_ > kMaxLogLines ? "further messages about this device are suppressed" : what);
  if (options_.log)
    options_.log(line);
  else
    std::cerr << line << "\n";
}

// ---- Rings --------------------------------------------------------------------

void E1000::stop_locked(bool rx, const std::string& why) {
  std::string& reason = rx ? rx_stop_ : tx_stop_;
  if (!reason.empty()) return;
  reason = why;
  log_locked(std::string(rx ? "receive" : "transmit") + " stopped: " + why);
}

bool E1000::ring_locked(bool rx, Ring* ring) {
  const char* name = rx ? "RD" : "TD";
  const uint64_t base = reg(rx ? kRdbal : kTdbal) | uint64_t{reg(rx ? kRdbah : kTdbah)} << 32;
  const uint32_t len = reg(rx ? kRdlen : kTdlen);
  const uint32_t head = reg(rx ? kRdh : kTdh);
  const uint32_t tail = reg(rx ? kRdt : kTdt);
  std::string why;
  if (len == 0 || len % kRingAlign) {
    why = std::string(name) + "LEN " + hex(len) + " is not a non-zero multiple of 128";
  } else if (base % kDescSize) {
    why = std::string(name) + "BA " + hex(base) + " is not 16-byte aligned";
  } else if (!mem_.contains(base, len)) {
    why = "ring " + hex(base) + "+" + hex(len) + " lies outside guest RAM";
  } else if (head >= len / kDescSize || tail >= len / kDescSize) {
    why = std::string(name) + "H " + std::to_string(head) + " or " + name + "T " + std::to_string(tail) +
          " is past the ring's " + std::to_string(len / kDescSize) + " descriptors";
  }
  if (!why.empty()) {
    stop_locked(rx, why);
    return false;
  }
  *ring = Ring{base, len / kDescSize, head, tail};
  return true;
}

void E1000::count_stat_locked(uint32_t offset, uint64_t n) { reg(offset) += static_cast<uint32_t>(n); }

void E1000::count_stat64_locked(uint32_t low_offset, uint64_t n) {
  const uint64_t v = (reg(low_offset) | uint64_t{reg(low_offset + 4)} << 32) + n;
  reg(low_offset) = static_cast<uint32_t>(v);
  reg(low_offset + 4) = static_cast<uint32_t>(v >> 32);
}

// ---- Transmit -----------------------------------------------------------------

void E1000::tx_locked() {
  if (!(reg(kTctl) & kTctlEn) || !tx_stop_.empty() || !bus_master_) return;
  Ring r;
  if (!ring_locked(false, &r)) return;
  uint32_t causes = 0;
  bool any = false;
  // Each step moves the head one descriptor towards the tail, so this
  // ends within one pass over the ring whatever the descriptors say.
  while (r.head != r.tail) {
    const uint64_t gpa = r.base + uint64_t{r.head} * kDescSize;
    TxDesc d;
    mem_.read(gpa, &d, sizeof d);  // inside RAM: the ring was checked
    const TxAssembler::Outcome outcome = tx_.feed(d, mem_);
    if (outcome == TxAssembler::Outcome::kBadBuffer) {
      stop_locked(false, "descriptor " + std::to_string(r.head) + ": " + tx_.reason());
      break;  // the head stays on the bad descriptor
    }
    if (outcome == TxAssembler::Outcome::kFrame) {
      transmit_locked(tx_.frame());
    } else if (outcome == TxAssembler::Outcome::kDropped) {
      ++stats_.tx_errors;
      if (tx_.reason().find("TSE") != std::string::npos) count_stat_locked(kTsctfc);
      if (stats_.tx_errors == 1)
        log_locked("dropped a transmit frame: " + tx_.reason() + " (further drops are only counted)");
    }
    if ((d.dw2 >> 24) & kTxCmdRs) {
      // Report status: DD in the descriptor's status byte, the same byte
      // in all three formats.
      uint8_t status = 0;
      mem_.read(gpa + kTxStatusOffset, &status, 1);
      status |= kTxStatusDd;
      std::atomic_thread_fence(std::memory_order_release);
      mem_.write(gpa + kTxStatusOffset, &status, 1);
      causes |= kIntTxdw;
    }
    r.head = (r.head + 1) % r.count;
    any = true;
  }
  reg(kTdh) = r.head;
  if (any && r.head == r.tail) causes |= kIntTxqe;
  if (causes) raise_locked(causes);
}

void E1000::transmit_locked(std::vector<uint8_t>& frame) {
  if ((reg(kTctl) & kTctlPsp) && frame.size() < kMinPaddedFrame) frame.resize(kMinPaddedFrame, 0);
  if (!port_ || !port_->transmit(frame)) {
    ++stats_.tx_errors;  // no switch, or the switch refused it (runt, oversized)
    return;
  }
  ++stats_.tx_frames;
  stats_.tx_bytes += frame.size();
  count_stat_locked(kGptc);
  count_stat_locked(kTpt);
  count_stat64_locked(kGotcl, frame.size() + kFcsLen);
  count_stat64_locked(kTotl, frame.size() + kFcsLen);
  if (frame.size() >= 6 && (frame[0] & 1)) {
    const bool broadcast = std::all_of(frame.begin(), frame.begin() + 6, [](uint8_t b) { return b == 0xff; });
    count_stat_locked(broadcast ? kBptc : kMptc);
  }
}

// ---- Receive ------------------------------------------------------------------

uint32_t E1000::rx_buffer_size_locked() const {
  const uint32_t rctl = regs_[kRctl / 4];
  const uint32_t bsize = (rctl >> kRctlBsizeShift) & 3;
  static constexpr uint32_t kNormal[4] = {2048, 1024, 512, 256};
  static constexpr uint32_t kExtended[4] = {0, 16384, 8192, 4096};  // BSEX with 00 is reserved
  return (rctl & kRctlBsex) ? kExtended[bsize] : kNormal[bsize];
}

bool E1000::accept_locked(const uint8_t* dst) const {
  const uint32_t rctl = regs_[kRctl / 4];
  // Exact matches first: the receive address registers (RAL/RAH 0-15).
  for (uint32_t i = 0; i < kReceiveAddresses; ++i) {
    const uint32_t ral = regs_[(kRal0 + 8 * i) / 4];
    const uint32_t rah = regs_[(kRal0 + 8 * i + 4) / 4];
    if (!(rah & kRahAv)) continue;
    const uint8_t a[6] = {uint8_t(ral), uint8_t(ral >> 8), uint8_t(ral >> 16), uint8_t(ral >> 24), uint8_t(rah),
                          uint8_t(rah >> 8)};
    if (std::memcmp(a, dst, 6) == 0) return true;
  }
  if (!(dst[0] & 1)) return rctl & kRctlUpe;  // unicast to someone else
  static constexpr uint8_t kBroadcast[6] = {0xff, 0xff, 0xff, 0xff, 0xff, 0xff};
  if (std::memcmp(dst, kBroadcast, 6) == 0 && (rctl & kRctlBam)) return true;
  if (rctl & kRctlMpe) return true;
  // The multicast table: 12 bits of the address, chosen by RCTL.MO, index
  // a 4096-bit table.
  const uint32_t mo = (rctl >> kRctlMoShift) & 3;
  static constexpr int kShift[4] = {4, 3, 2, 0};
  const uint32_t hash = ((dst[4] >> kShift[mo]) | (uint32_t{dst[5]} << (8 - kShift[mo]))) & 0xfff;
  return (regs_[kMta / 4 + (hash >> 5) % kMtaEntries] >> (hash & 31)) & 1;
}

void E1000::rx_locked() {
  uint64_t fifo_drops;
  {
    std::lock_guard lock(fifo_mu_);
    fifo_drops = std::exchange(fifo_drops_, 0);
  }
  uint32_t causes = 0;
  if (fifo_drops) {
    stats_.rx_fifo_drops += fifo_drops;
    count_stat_locked(kMpc, fifo_drops);
    causes |= kIntRxo;
  }
  bool received = false;
  Ring r{};
  for (;;) {
    net::Frame frame;
    {
      std::lock_guard lock(fifo_mu_);
      if (fifo_.empty()) break;
      frame = std::move(fifo_.front());
      fifo_.pop_front();
      fifo_bytes_ -= fifo_charge(frame);
    }
    const uint32_t rctl = reg(kRctl);
    if (!(rctl & kRctlEn) || !rx_stop_.empty()) {
      ++stats_.rx_dropped;  // the receiver is off: the frame is lost on the wire
      continue;
    }
    const size_t max_len = (rctl & kRctlLpe) ? kMaxLongFrame : kMaxStandardFrame;
    if (frame.size() < net::kEthHeaderLen || frame.size() > max_len) {
      ++stats_.rx_dropped;
      count_stat_locked(frame.size() < net::kEthHeaderLen ? kRuc : kRoc);
      continue;
    }
    if (!accept_locked(frame.data())) {
      ++stats_.rx_filtered;
      continue;
    }
    const uint32_t bsize = rx_buffer_size_locked();
    if (!bsize) {
      stop_locked(true, "RCTL " + hex(rctl) + " selects the reserved buffer size (BSEX with BSIZE 00)");
      ++stats_.rx_dropped;
      continue;
    }
    if (!ring_locked(true, &r)) {
      ++stats_.rx_dropped;
      continue;
    }
    const bool strip_crc = rctl & kRctlSecrc;
    const size_t total = frame.size() + (strip_crc ? 0 : kFcsLen);
    const uint32_t needed = static_cast<uint32_t>((total + bsize - 1) / bsize);
    const uint32_t free_descs = (r.tail + r.count - r.head) % r.count;
    // No descriptors (or no DMA): the frame waits in the FIFO for the next
    // RDT write; RNBC counts each frame that had to wait.
    if (needed > free_descs || !bus_master_) {
      if (needed > r.count - 1) {
        stop_locked(true, "a " + std::to_string(total) + "-byte frame needs " + std::to_string(needed) +
                              " buffers of " + std::to_string(bsize) + " bytes but the ring holds " +
                              std::to_string(r.count - 1));
        ++stats_.rx_dropped;
        continue;
      }
      if (!rx_waiting_counted_) {
        rx_waiting_counted_ = true;
        count_stat_locked(kRnbc);
      }
      std::lock_guard lock(fifo_mu_);
      fifo_bytes_ += fifo_charge(frame);
      fifo_.push_front(std::move(frame));
      break;
    }
    rx_waiting_counted_ = false;
    if (!strip_crc) {
      const uint32_t fcs = crc32(frame.data(), frame.size());
      for (int i = 0; i < 4; ++i) frame.push_back(static_cast<uint8_t>(fcs >> (8 * i)));
    }
    size_t done = 0;
    bool ok = true;
    for (uint32_t i = 0; i < needed; ++i) {
      const uint64_t gpa = r.base + uint64_t{r.head} * kDescSize;
      RxDesc d;
      mem_.read(gpa, &d, sizeof d);  // inside RAM: the ring was checked
      const size_t chunk = std::min<size_t>(bsize, total - done);
      uint8_t* dst = mem_.ptr(d.addr, chunk);
      if (!dst) {
        stop_locked(true, "descriptor " + std::to_string(r.head) + ": buffer " + hex(d.addr) + "+" +
                              std::to_string(chunk) + " lies outside guest RAM");
        ok = false;
        break;
      }
      std::memcpy(dst, frame.data() + done, chunk);
      mem_.mark_dirty(d.addr, chunk);  // a host write KVM's dirty log misses
      done += chunk;
      d.length = static_cast<uint16_t>(chunk);
      d.csum = 0;
      d.errors = 0;
      d.special = 0;
      // No receive checksum offload: IXSM tells the driver to ignore csum.
      d.status = kRxStatusDd | kRxStatusIxsm | (done == total ? kRxStatusEop : 0);
      // The guest may poll DD: the data must be visible before it.
      std::atomic_thread_fence(std::memory_order_release);
      mem_.write(gpa + 8, reinterpret_cast<const uint8_t*>(&d) + 8, 8);
      r.head = (r.head + 1) % r.count;
    }
    reg(kRdh) = r.head;
    if (!ok) {
      ++stats_.rx_dropped;
      continue;
    }
    received = true;
    ++stats_.rx_frames;
    stats_.rx_bytes += frame.size() - (strip_crc ? 0 : kFcsLen);
    count_stat_locked(kGprc);
    count_stat_locked(kTpr);
    count_stat64_locked(kGorcl, total);
    count_stat64_locked(kTorl, total);
    if (frame[0] & 1) {
      const bool broadcast = std::all_of(frame.begin(), frame.begin() + 6, [](uint8_t b) { return b == 0xff; });
      count_stat_locked(broadcast ? kBprc : kMprc);
    }
  }
  if (received) {
    causes |= kIntRxt0;
    // RXDMT0: free descriptors fell to the threshold RCTL.RDMTS selects
    // (1/2, 1/4 or 1/8 of the ring).
    const uint32_t rdmts = (reg(kRctl) >> kRctlRdmtsShift) & 3;
    const uint32_t free_descs = (r.tail + r.count - r.head) % r.count;
    if (rdmts < 3 && free_descs <= (r.count >> (rdmts + 1))) causes |= kIntRxdmt0;
  }
  if (causes) raise_locked(causes);
}

// ---- Statistics ---------------------------------------------------------------

std::string E1000::rx_stop_reason() const {
  std::lock_guard lock(mu_);
  return rx_stop_;
}

std::string E1000::tx_stop_reason() const {
  std::lock_guard lock(mu_);
  return tx_stop_;
}

E1000::Stats E1000::stats() const {
  std::lock_guard lock(mu_);
  return stats_;
}

std::string E1000::stats_line() const {
  const Stats s = stats();
  // Which path carries interrupts now: INTx, MSI, or INTx on a device
  // that has no MSI capability at all (an exact 82540EM).
  const char* delivery = msi_enabled() ? "MSI" : msi_ ? "INTx (MSI off)" : "INTx (no MSI capability)";
  std::string refused;
  if (s.msi_refused) refused = ", " + std::to_string(s.msi_refused) + " refused";
  char buf[640];
  std::snprintf(buf, sizeof buf,
                "e1000 %s: %llu MMIO exits (TDT %llu, RDT %llu, ICR %llu, IMS %llu, IMC %llu, other %llu), "
                "%llu interrupts (%llu INTx, %llu MSI%s) by %s, TX %llu frames %llu bytes %llu errors, "
                "RX %llu frames %llu bytes, %llu FIFO drops, %llu filtered, %llu dropped",
                mac_string(mac_).c_str(), (unsigned long long)s.mmio_exits, (unsigned long long)s.mmio_tdt,
                (unsigned long long)s.mmio_rdt, (unsigned long long)s.mmio_icr, (unsigned long long)s.mmio_ims,
                (unsigned long long)s.mmio_imc, (unsigned long long)s.mmio_other, (unsigned long long)s.interrupts,
                (unsigned long long)(s.interrupts - s.msi_messages), (unsigned long long)s.msi_messages,
                refused.c_str(), delivery,
                (unsigned long long)s.tx_frames, (unsigned long long)s.tx_bytes, (unsigned long long)s.tx_errors,
                (unsigned long long)s.rx_frames, (unsigned long long)s.rx_bytes,
                (unsigned long long)s.rx_fifo_drops, (unsigned long long)s.rx_filtered,
                (unsigned long long)s.rx_dropped);
  return buf;
}

}  // namespace vmm
