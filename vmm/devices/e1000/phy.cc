#include "vmm/devices/e1000/phy.h"

#include "vmm/devices/e1000/e1000_regs.h"

namespace vmm::e1000 {
namespace {

// Reset values of the 88E1011 as the 82540EM presents it, with the link
// already negotiated at 1000BASE-T full duplex.
constexpr uint16_t kControlDefault = 0x1140;       // autoneg on, full duplex, 1000 Mb/s
constexpr uint16_t kStatusDefault = 0x796d;        // capabilities, AN complete, link up
constexpr uint16_t kId1Value = 0x0141;             // Marvell OUI
constexpr uint16_t kId2Value = 0x0c20;             // 88E1011 (Linux: M88E1011_I_PHY_ID)
constexpr uint16_t kAdvertDefault = 0x0de1;        // 10/100 half+full, pause
constexpr uint16_t kPartnerDefault = 0x45e1;       // the partner offers the same, and ACK
constexpr uint16_t kExpansionDefault = 0x0001;     // partner autoneg able
constexpr uint16_t k1000tControlDefault = 0x0e00;  // advertise 1000 full+half
constexpr uint16_t k1000tStatusDefault = 0x3c00;   // partner 1000 full+half, local/remote OK
constexpr uint16_t kExtStatusDefault = 0x3000;     // 1000BASE-T full+half capable
constexpr uint16_t kSpecControlDefault = 0x0068;
constexpr uint16_t kSpecStatusDefault = 0xac00;    // 1000 Mb/s, full duplex, resolved, link

}  // namespace

void Phy::reset() {
  regs_.fill(0);
  regs_[kControl] = kControlDefault;
  regs_[kStatus] = kStatusDefault;
  regs_[kId1] = kId1Value;
  regs_[kId2] = kId2Value;
  regs_[kAutonegAdvert] = kAdvertDefault;
  regs_[kLinkPartnerAbility] = kPartnerDefault;
  regs_[kAutonegExpansion] = kExpansionDefault;
  regs_[k1000tControl] = k1000tControlDefault;
  regs_[k1000tStatus] = k1000tStatusDefault;
  regs_[kExtStatus] = kExtStatusDefault;
  regs_[kSpecControl] = kSpecControlDefault;
  regs_[kSpecStatus] = kSpecStatusDefault;
}

void Phy::write(uint32_t reg, uint16_t value) {
  switch (reg) {
    case kControl:
      // Reset and restart-autonegotiation complete at once and self-clear.
      if (value & kControlReset) {
        reset();
        return;
      }
      regs_[kControl] = value & ~(kControlReset | kControlRestartAutoneg);
      return;
    case kAutonegAdvert:
    case k1000tControl:
    case kSpecControl:
      regs_[reg] = value;
      return;
    default:
      return;  // status and ID registers are read-only
  }
}

uint32_t Phy::mdic(uint32_t value, bool* interrupt) {
  const uint32_t reg = (value >> kMdicRegShift) & 0x1f;
  const uint32_t phy = (value >> kMdicPhyShift) & 0x1f;
  const uint32_t op = value & (3u << 26);
  *interrupt = value & kMdicIntEnable;
  uint32_t result = value & ~(kMdicReady | kMdicError);
  if (phy != kPhyAddress || (op != kMdicOpRead && op != kMdicOpWrite)) return result | kMdicReady | kMdicError;
  if (op == kMdicOpRead) {
    result = (result & ~kMdicDataMask) | read(reg);
  } else {
    write(reg, static_cast<uint16_t>(value & kMdicDataMask));
  }
  return result | kMdicReady;
}

}  // namespace vmm::e1000
