// The 82540EM's internal copper PHY (a Marvell 88E1011-compatible core),
// reached through MDIC at PHY address 1. It reports what the MAC's STATUS
// reports: autonegotiation complete, link up, 1000 Mb/s full duplex. The
// link cannot go down (there is no cable to pull), so the registers are
// constants apart from the control bits software may set.
#pragma once

#include <array>
#include <cstdint>

namespace vmm::e1000 {

class Phy {
 public:
  static constexpr uint32_t kRegisters = 32;
  enum Reg : uint32_t {
    kControl = 0,
    kStatus = 1,
    kId1 = 2,
    kId2 = 3,
    kAutonegAdvert = 4,
    kLinkPartnerAbility = 5,
    kAutonegExpansion = 6,
    k1000tControl = 9,
    k1000tStatus = 10,
    kExtStatus = 15,
    kSpecControl = 16,
    kSpecStatus = 17,
  };
  static constexpr uint16_t kControlReset = 1u << 15;
  static constexpr uint16_t kControlRestartAutoneg = 1u << 9;
  static constexpr uint16_t kStatusLinkUp = 1u << 2;
  static constexpr uint16_t kStatusAutonegComplete = 1u << 5;

  Phy() { reset(); }
  void reset();
  uint16_t read(uint32_t reg) const { return reg < kRegisters ? regs_[reg] : 0; }
  // Writes to read-only registers are ignored, as on the part.
  void write(uint32_t reg, uint16_t value);

  // MDIC: the register value after the guest writes `value`. The access
  // completes at once (READY set); a PHY address other than 1 or an
  // unknown opcode sets ERROR. `*interrupt` tells whether the guest asked
  // for an MDAC interrupt on completion.
  uint32_t mdic(uint32_t value, bool* interrupt);

 private:
  std::array<uint16_t, kRegisters> regs_{};
};

}  // namespace vmm::e1000
