// PCI: configuration space through mechanism #1 (ports 0xcf8/0xcfc, which
// both our VMM and QEMU's q35 offer), enumeration of bus 0 and the buses
// behind bridges, BAR sizing and mapping, MSI and MSI-X, and a driver
// registry matched on vendor and device IDs.
#pragma once

#include <stddef.h>
#include <stdint.h>

#include <vector>

namespace pci {

struct Bar {
  uint64_t base = 0;
  uint64_t size = 0;  // 0: not implemented
  bool io = false;
  bool is64 = false;
  bool prefetchable = false;
};

struct Device {
  uint8_t bus, slot, func;
  uint16_t vendor, device;
  uint8_t class_code, subclass, prog_if, revision, header_type;
  uint8_t irq_line, irq_pin;
  Bar bars[6];
  const char* driver = nullptr;  // set by probe_drivers() when a driver took it
};

uint32_t config_read32(uint8_t bus, uint8_t slot, uint8_t func, uint8_t offset);
void config_write32(uint8_t bus, uint8_t slot, uint8_t func, uint8_t offset, uint32_t value);
uint16_t config_read16(const Device& d, uint8_t offset);
uint8_t config_read8(const Device& d, uint8_t offset);
void config_write16(const Device& d, uint8_t offset, uint16_t value);

// Scans the buses (once) and sizes every BAR.
const std::vector<Device>& enumerate();
void print_devices();

// Offset of the first capability with `id` at or after `start`; 0 if none.
uint8_t find_capability(const Device& d, uint8_t id);
// Enables memory and I/O decoding and bus mastering.
void enable(const Device& d);
// Maps a memory BAR uncached; returns its address or 0.
uint64_t map_bar(const Device& d, int bar);

// MSI-X: maps the table, masks every vector, enables the function.
struct Msix {
  volatile uint32_t* table = nullptr;
  uint16_t size = 0;
  uint8_t cap = 0;
};
bool msix_enable(const Device& d, Msix* out);
// Points table entry `entry` at `vector` on this CPU and unmasks it.
bool msix_route(Msix& m, uint16_t entry, uint8_t vector);
void msix_mask(Msix& m, uint16_t entry, bool masked);
// Plain MSI with one vector.
bool msi_enable(const Device& d, uint8_t vector);

struct Driver {
  const char* name;
  uint16_t vendor;
  uint16_t device;  // 0xffff: any device of the vendor
  bool (*probe)(const Device& d);
};
void register_driver(const Driver& driver);
// Calls each matching driver's probe for every device no driver has taken
// yet (Device::driver records who took it); returns how many devices a
// driver took.
int probe_drivers();

constexpr uint8_t kCapMsi = 0x05;
constexpr uint8_t kCapMsix = 0x11;
constexpr uint8_t kCapVendor = 0x09;

}  // namespace pci
