#include "vmm/devices/e1000/eeprom.h"

#include "vmm/devices/e1000/e1000_regs.h"

namespace vmm::e1000 {
namespace {

// EECD pins (manual 13.4.3).
constexpr uint32_t kSk = 1u << 0;   // serial clock, driven by software
constexpr uint32_t kCs = 1u << 1;   // chip select
constexpr uint32_t kDi = 1u << 2;   // data into the EEPROM
constexpr uint32_t kDo = 1u << 3;   // data out of the EEPROM
constexpr uint32_t kReq = 1u << 6;  // software requests the EEPROM
constexpr uint32_t kGnt = 1u << 7;  // ... and is granted it
constexpr uint32_t kDrivenBySoftware = kSk | kCs | kDi | kReq;

// A Microwire command: a start bit, a 2-bit opcode, a 6-bit address.
constexpr uint32_t kCommandBits = 9;
constexpr uint32_t kOpRead = 0b110;  // start bit + opcode 10

// Initialization words (manual 5.6): ICW1 with the valid signature (01b in
// bits 15:14), the PHY and LED defaults; ICW2 with the pause defaults.
constexpr uint16_t kInitControl1 = 0x4000 | 0x0400 | 0x0003;
constexpr uint16_t kInitControl2 = 0x3040;

}  // namespace

Eeprom::Eeprom(const net::MacAddress& mac, uint16_t device_id, uint16_t subsystem_vendor, uint16_t subsystem_id) {
  for (int i = 0; i < 3; ++i) words_[i] = static_cast<uint16_t>(mac[2 * i] | mac[2 * i + 1] << 8);
  words_[0x0a] = kInitControl1;
  words_[0x0b] = subsystem_id;
  words_[0x0c] = subsystem_vendor;
  words_[0x0d] = device_id;
  words_[0x0e] = kVendorIntel;
  words_[0x0f] = kInitControl2;
  uint16_t sum = 0;
  for (uint32_t i = 0; i < kChecksumWord; ++i) sum = static_cast<uint16_t>(sum + words_[i]);
  words_[kChecksumWord] = static_cast<uint16_t>(kChecksumSum - sum);
}

uint32_t Eeprom::eerd_result(const Eeprom& e, uint32_t value) {
  if (!(value & kEerdStart)) return value & ~kEerdDone;
  const uint32_t addr = (value >> kEerdAddrShift) & 0xff;
  return (addr << kEerdAddrShift) | kEerdDone | (uint32_t{e.word(addr)} << kEerdDataShift);
}

void Eeprom::reset_pins() {
  pins_ = 0;
  shift_in_ = bits_in_ = 0;
  reading_ = false;
  out_bit_ = -1;
}

void Eeprom::eecd_write(uint32_t value) {
  const uint32_t old = pins_;
  pins_ = value & kDrivenBySoftware;
  if (!(pins_ & kCs)) {  // deselected: the next selection starts a command
    shift_in_ = bits_in_ = 0;
    reading_ = false;
    out_bit_ = -1;
    return;
  }
  if (!((old ^ pins_) & kSk)) return;  // no clock edge
  if (!(pins_ & kSk)) {                // falling edge: DO moves to the next bit
    if (reading_) ++out_bit_;
    return;
  }
  // Rising edge: the EEPROM samples DI while it still takes a command.
  if (reading_ || bits_in_ >= kCommandBits) return;
  shift_in_ = (shift_in_ << 1) | ((pins_ & kDi) ? 1 : 0);
  if (++bits_in_ == kCommandBits && (shift_in_ >> 6) == kOpRead) {
    reading_ = true;
    read_addr_ = shift_in_ & 0x3f;
    out_bit_ = -1;  // the falling edge that ends the command presents bit 0
  }
}

uint32_t Eeprom::eecd_read() const {
  uint32_t v = pins_ | kEecdPres;
  if (pins_ & kReq) v |= kGnt;  // no other agent ever holds the EEPROM
  if (!reading_ || out_bit_ < 0) {
    v |= kDo;  // idle Microwire parts hold DO high (ready)
  } else {
    // Sequential read: past the addressed word, the following words follow.
    const uint32_t word_index = (read_addr_ + static_cast<uint32_t>(out_bit_) / 16) % kWords;
    const uint32_t bit = 15 - static_cast<uint32_t>(out_bit_) % 16;
    if ((words_[word_index] >> bit) & 1) v |= kDo;
  }
  return v;
}

}  // namespace vmm::e1000
