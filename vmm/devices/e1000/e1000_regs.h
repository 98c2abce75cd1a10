// Intel 82540EM register offsets, bits and descriptor layouts, as the
// Intel 8254x Software Developer's Manual names them (chapter 13 for the
// registers, chapter 3 for the descriptors). Only what the device model
// uses; the names follow Linux's e1000_hw.h where they exist.
#pragma once

#include <cstdint>

namespace vmm::e1000 {

// PCI identity of the 82540EM (desktop adapter, copper).
constexpr uint16_t kVendorIntel = 0x8086;
constexpr uint16_t kDevice82540EM = 0x100e;
constexpr uint32_t kClassEthernet = 0x020000;
constexpr uint64_t kMmioBarSize = 128 << 10;  // BAR0: the register file
constexpr uint64_t kIoBarSize = 64;           // BAR1: IOADDR/IODATA window

// ---- Registers (byte offsets in BAR0) --------------------------------------
enum Reg : uint32_t {
  kCtrl = 0x0000,
  kStatus = 0x0008,
  kEecd = 0x0010,
  kEerd = 0x0014,
  kCtrlExt = 0x0018,
  kMdic = 0x0020,
  kFcal = 0x0028,
  kFcah = 0x002c,
  kFct = 0x0030,
  kVet = 0x0038,
  kIcr = 0x00c0,
  kItr = 0x00c4,
  kIcs = 0x00c8,
  kIms = 0x00d0,
  kImc = 0x00d8,
  kRctl = 0x0100,
  kFcttv = 0x0170,
  kTxcw = 0x0178,
  kRxcw = 0x0180,
  kTctl = 0x0400,
  kTipg = 0x0410,
  kLedctl = 0x0e00,
  kPba = 0x1000,
  kRdbal = 0x2800,
  kRdbah = 0x2804,
  kRdlen = 0x2808,
  kRdh = 0x2810,
  kRdt = 0x2818,
  kRdtr = 0x2820,
  kRadv = 0x282c,
  kRsrpd = 0x2c00,
  kTdbal = 0x3800,
  kTdbah = 0x3804,
  kTdlen = 0x3808,
  kTdh = 0x3810,
  kTdt = 0x3818,
  kTidv = 0x3820,
  kTxdctl = 0x3828,
  kTadv = 0x382c,
  kStatsBase = 0x4000,  // statistics counters, read-to-clear
  kStatsEnd = 0x4100,
  kRxcsum = 0x5000,
  kMta = 0x5200,  // 128 entries
  kMtaEnd = 0x5400,
  kRal0 = 0x5400,  // RAL/RAH pairs, 16 of them
  kRaEnd = 0x5480,
  kVfta = 0x5600,  // 128 entries
  kVftaEnd = 0x5800,
  kWuc = 0x5800,
  kManc = 0x5820,
};

// Statistics counters the model maintains (offsets in BAR0).
enum StatReg : uint32_t {
  kMpc = 0x4010,     // missed packets (no room in the RX FIFO)
  kRuc = 0x40a4,     // receive undersize
  kRoc = 0x40ac,     // receive oversize
  kRnbc = 0x40a0,    // receive no buffers (frame waited for descriptors)
  kGprc = 0x4074,    // good packets received
  kBprc = 0x4078,    // broadcast packets received
  kMprc = 0x407c,    // multicast packets received
  kGptc = 0x4080,    // good packets transmitted
  kGorcl = 0x4088,   // good octets received, 64 bits (L, H)
  kGorch = 0x408c,
  kGotcl = 0x4090,   // good octets transmitted
  kGotch = 0x4094,
  kTorl = 0x40c0,    // total octets received
  kTorh = 0x40c4,
  kTotl = 0x40c8,    // total octets transmitted
  kToth = 0x40cc,
  kTpr = 0x40d0,     // total packets received
  kTpt = 0x40d4,     // total packets transmitted
  kMptc = 0x40f0,    // multicast packets transmitted
  kBptc = 0x40f4,    // broadcast packets transmitted
  kTsctfc = 0x40fc,  // TCP segmentation context transmit fail
};

// CTRL
constexpr uint32_t kCtrlFd = 1u << 0;
constexpr uint32_t kCtrlAsde = 1u << 5;
constexpr uint32_t kCtrlSlu = 1u << 6;
constexpr uint32_t kCtrlRst = 1u << 26;
constexpr uint32_t kCtrlPhyRst = 1u << 31;

// STATUS: full duplex, link up, 1000 Mb/s (SPEED and ASDV both 10b).
constexpr uint32_t kStatusFd = 1u << 0;
constexpr uint32_t kStatusLu = 1u << 1;
constexpr uint32_t kStatusSpeed1000 = 2u << 6;
constexpr uint32_t kStatusAsdv1000 = 2u << 8;

// EECD: EEPROM present; the 64-word (1 Kbit) part reads EE_SIZE 0.
constexpr uint32_t kEecdPres = 1u << 8;

// EERD
constexpr uint32_t kEerdStart = 1u << 0;
constexpr uint32_t kEerdDone = 1u << 4;
constexpr uint32_t kEerdAddrShift = 8;
constexpr uint32_t kEerdDataShift = 16;

// MDIC
constexpr uint32_t kMdicDataMask = 0xffff;
constexpr uint32_t kMdicRegShift = 16;
constexpr uint32_t kMdicPhyShift = 21;
constexpr uint32_t kMdicOpWrite = 1u << 26;
constexpr uint32_t kMdicOpRead = 2u << 26;
constexpr uint32_t kMdicReady = 1u << 28;
constexpr uint32_t kMdicIntEnable = 1u << 29;
constexpr uint32_t kMdicError = 1u << 30;
constexpr uint32_t kPhyAddress = 1;  // the internal PHY answers at address 1

// Interrupt causes (ICR, ICS, IMS, IMC).
constexpr uint32_t kIntTxdw = 1u << 0;
constexpr uint32_t kIntTxqe = 1u << 1;
constexpr uint32_t kIntLsc = 1u << 2;
constexpr uint32_t kIntRxseq = 1u << 3;
constexpr uint32_t kIntRxdmt0 = 1u << 4;
constexpr uint32_t kIntRxo = 1u << 6;
constexpr uint32_t kIntRxt0 = 1u << 7;
constexpr uint32_t kIntMdac = 1u << 9;
constexpr uint32_t kIntRxcfg = 1u << 10;
constexpr uint32_t kIntTxdLow = 1u << 15;
constexpr uint32_t kIntSrpd = 1u << 16;
constexpr uint32_t kIntMask = 0x1ffff;  // causes the 82540EM implements

// RCTL
constexpr uint32_t kRctlEn = 1u << 1;
constexpr uint32_t kRctlSbp = 1u << 2;
constexpr uint32_t kRctlUpe = 1u << 3;
constexpr uint32_t kRctlMpe = 1u << 4;
constexpr uint32_t kRctlLpe = 1u << 5;
constexpr uint32_t kRctlRdmtsShift = 8;
constexpr uint32_t kRctlMoShift = 12;
constexpr uint32_t kRctlBam = 1u << 15;
constexpr uint32_t kRctlBsizeShift = 16;
constexpr uint32_t kRctlBsex = 1u << 25;
constexpr uint32_t kRctlSecrc = 1u << 26;

// TCTL
constexpr uint32_t kTctlEn = 1u << 1;
constexpr uint32_t kTctlPsp = 1u << 3;

// ---- Descriptors (16 bytes each, little-endian) ---------------------------
constexpr uint32_t kDescSize = 16;
constexpr uint32_t kRingAlign = 128;  // RDLEN/TDLEN are multiples of 128 bytes

// Legacy receive descriptor.
struct RxDesc {
  uint64_t addr;
  uint16_t length;
  uint16_t csum;
  uint8_t status;
  uint8_t errors;
  uint16_t special;
};
static_assert(sizeof(RxDesc) == kDescSize);
constexpr uint8_t kRxStatusDd = 0x01;
constexpr uint8_t kRxStatusEop = 0x02;
constexpr uint8_t kRxStatusIxsm = 0x04;  // ignore checksum indication

// Transmit descriptors share one 16-byte shape: bytes 0-7 an address (or
// the checksum context), byte 11 the command, byte 12 the status (DD in
// bit 0 in every format). The legacy format has DEXT (cmd bit 5) clear;
// extended ones carry their type in bits 20-23 of dword 2.
struct TxDesc {
  uint64_t lower;  // buffer address, or IPCSS/IPCSO/IPCSE/TUCSS/TUCSO/TUCSE
  uint32_t dw2;    // legacy: length | cso << 16 | cmd << 24; extended: length/paylen | dtyp << 20 | cmd << 24
  uint32_t dw3;    // legacy: status | css << 8 | special << 16; data: status | popts << 8 | special << 16
};
static_assert(sizeof(TxDesc) == kDescSize);
constexpr uint32_t kTxStatusOffset = 12;  // byte holding DD
constexpr uint8_t kTxStatusDd = 0x01;

constexpr uint8_t kTxCmdEop = 0x01;
constexpr uint8_t kTxCmdIfcs = 0x02;
constexpr uint8_t kTxCmdIc = 0x04;   // legacy: insert checksum
constexpr uint8_t kTxCmdTse = 0x04;  // extended: TCP segmentation
constexpr uint8_t kTxCmdRs = 0x08;
constexpr uint8_t kTxCmdDext = 0x20;
constexpr uint8_t kTxCmdVle = 0x40;
constexpr uint8_t kTxCmdIde = 0x80;

constexpr uint32_t kTxDtypContext = 0x0;
constexpr uint32_t kTxDtypData = 0x1;

constexpr uint8_t kTxPoptsIxsm = 0x01;  // insert the IP checksum
constexpr uint8_t kTxPoptsTxsm = 0x02;  // insert the TCP/UDP checksum

}  // namespace vmm::e1000
