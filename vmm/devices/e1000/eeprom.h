// The 82540EM's serial EEPROM: 64 16-bit words holding the MAC address
// (words 0-2), the PCI IDs and initialization words, and in word 0x3F a
// checksum chosen so that words 0x00-0x3F add up to 0xBABA (drivers refuse
// an EEPROM whose sum differs).
//
// Two ways to read it, both of which drivers use: the EERD register (one
// write with START and the word address, then DONE and the data; what our
// guest driver and most modern drivers use), and bit-banging the Microwire
// protocol through EECD's SK/CS/DI/DO pins (what Linux's e1000 driver does
// on the 82540). The EEPROM is read-only here: Microwire writes are ignored.
#pragma once

#include <array>
#include <cstdint>

#include "vmm/net/frame_port.h"

namespace vmm::e1000 {

class Eeprom {
 public:
  static constexpr uint32_t kWords = 64;
  static constexpr uint32_t kChecksumWord = 0x3f;
  static constexpr uint16_t kChecksumSum = 0xbaba;

  Eeprom(const net::MacAddress& mac, uint16_t device_id, uint16_t subsystem_vendor, uint16_t subsystem_id);

  // Word `index`; words past the end read all-ones, as an absent cell would.
  uint16_t word(uint32_t index) const { return index < kWords ? words_[index] : 0xffff; }
  const std::array<uint16_t, kWords>& words() const { return words_; }

  // EERD: the register value after the guest writes `value`. A write with
  // START performs the read at once (the model has no latency), so the
  // result already has DONE set.
  static uint32_t eerd_result(const Eeprom& e, uint32_t value);

  // EECD's Microwire pins. `write` takes the guest's EECD value (SK, CS,
  // DI, REQ are the bits it drives); `read` returns EECD with DO, GNT and
  // PRES as the EEPROM and the arbiter drive them.
  void eecd_write(uint32_t value);
  uint32_t eecd_read() const;
  void reset_pins();

 private:
  std::array<uint16_t, kWords> words_{};
  // Microwire state: the pins last written, the bits shifted in since CS
  // rose, and, once a READ command arrived, which data bit DO presents.
  uint32_t pins_ = 0;
  uint32_t shift_in_ = 0;
  uint32_t bits_in_ = 0;
  bool reading_ = false;
  int32_t out_bit_ = -1;  // index of the bit on DO, counted from the addressed word's MSB
  uint32_t read_addr_ = 0;
};

}  // namespace vmm::e1000
