// PCI configuration space register offsets and bits (PCI Local Bus 3.0,
// PCI Express Base 4.0 ch. 7; Linux's include/uapi/linux/pci_regs.h names).
#pragma once

#include <cstdint>

namespace vmm::pci {

constexpr uint32_t kConfigSpaceSize = 256;       // conventional
constexpr uint32_t kExtConfigSpaceSize = 4096;   // PCI Express, through ECAM

constexpr uint32_t kVendorId = 0x00;
constexpr uint32_t kDeviceId = 0x02;
constexpr uint32_t kCommand = 0x04;
constexpr uint32_t kStatus = 0x06;
constexpr uint32_t kRevision = 0x08;
constexpr uint32_t kClassProgIf = 0x09;  // class code: prog-if, subclass, base class
constexpr uint32_t kCacheLineSize = 0x0c;
constexpr uint32_t kLatencyTimer = 0x0d;
constexpr uint32_t kHeaderType = 0x0e;
constexpr uint32_t kBist = 0x0f;
constexpr uint32_t kBar0 = 0x10;
constexpr uint32_t kNumBars = 6;
constexpr uint32_t kSubsystemVendorId = 0x2c;
constexpr uint32_t kSubsystemId = 0x2e;
constexpr uint32_t kRomAddress = 0x30;
constexpr uint32_t kCapabilityList = 0x34;
constexpr uint32_t kInterruptLine = 0x3c;
constexpr uint32_t kInterruptPin = 0x3d;
constexpr uint32_t kFirstCapability = 0x40;  // after the type 0 header

constexpr uint16_t kCommandIo = 1u << 0;
constexpr uint16_t kCommandMemory = 1u << 1;
constexpr uint16_t kCommandMaster = 1u << 2;
constexpr uint16_t kCommandParity = 1u << 6;
constexpr uint16_t kCommandSerr = 1u << 8;
constexpr uint16_t kCommandIntxDisable = 1u << 10;

constexpr uint16_t kStatusInterrupt = 1u << 3;
constexpr uint16_t kStatusCapList = 1u << 4;
// Error bits software clears by writing 1 (RW1C): master data parity error,
// signaled/received target abort, received master abort, signaled system
// error, detected parity error.
constexpr uint16_t kStatusRw1c = 0xf900;

constexpr uint32_t kBarIo = 0x1;
constexpr uint32_t kBarMem64 = 0x4;
constexpr uint32_t kBarPrefetch = 0x8;

constexpr uint8_t kHeaderTypeNormal = 0x00;

constexpr uint8_t kCapIdMsi = 0x05;
constexpr uint8_t kCapIdVendor = 0x09;
constexpr uint8_t kCapIdExp = 0x10;
constexpr uint8_t kCapIdMsix = 0x11;

// MSI capability (PCI 3.0 section 6.8.1), the 64-bit layout without
// per-vector masking: control, address low, address high, data.
constexpr uint32_t kMsiControl = 2;  // offsets inside the capability
constexpr uint32_t kMsiAddressLo = 4;
constexpr uint32_t kMsiAddressHi = 8;
constexpr uint32_t kMsiData64 = 12;
constexpr uint32_t kMsiCapSize64 = 14;
constexpr uint16_t kMsiControlEnable = 1u << 0;
constexpr uint16_t kMsiControlMmcMask = 7u << 1;  // multiple message capable (log2)
constexpr uint16_t kMsiControlMmeMask = 7u << 4;  // multiple message enable (log2)
constexpr uint16_t kMsiControl64Bit = 1u << 7;
constexpr uint16_t kMsiControlPerVectorMask = 1u << 8;

// MSI-X capability (PCI 3.0 section 6.8.2).
constexpr uint32_t kMsixControl = 2;  // offsets inside the capability
constexpr uint32_t kMsixTable = 4;
constexpr uint32_t kMsixPba = 8;
constexpr uint32_t kMsixCapSize = 12;
constexpr uint16_t kMsixControlSizeMask = 0x07ff;  // table size - 1
constexpr uint16_t kMsixControlMaskAll = 1u << 14;
constexpr uint16_t kMsixControlEnable = 1u << 15;
constexpr uint32_t kMsixEntrySize = 16;
constexpr uint32_t kMsixEntryVectorCtrlMasked = 1;
constexpr uint32_t kMsixMaxVectors = 2048;

}  // namespace vmm::pci
