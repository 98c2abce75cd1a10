#include "guest-kernel/pci/pci.h"

#include "guest-kernel/arch/x86/apic.h"
#include "guest-kernel/arch/x86/cpu.h"
#include "guest-kernel/lib/print.h"
#include "guest-kernel/mm/paging.h"

namespace pci {
namespace {

constexpr uint16_t kConfigAddress = 0xcf8, kConfigData = 0xcfc;
constexpr uint8_t kCommand = 0x04, kStatus = 0x06, kHeaderType = 0x0e, kBar0 = 0x10, kCapPtr = 0x34;
constexpr uint16_t kCmdIo = 1, kCmdMemory = 2, kCmdBusMaster = 4, kCmdIntxDisable = 1 << 10;
constexpr uint16_t kStatusCapList = 1 << 4;

std::vector<Device>* g_devices = nullptr;
std::vector<Driver>* g_drivers = nullptr;

uint32_t address(uint8_t bus, uint8_t slot, uint8_t func, uint8_t offset) {
  return 0x80000000u | (uint32_t(bus) << 16) | (uint32_t(slot & 31) << 11) | (uint32_t(func & 7) << 8) |
         (offset & 0xfc);
}

void size_bars(Device& d) {
  const int count = (d.header_type & 0x7f) == 0 ? 6 : 2;  // bridges have 2
  // Decoding off while the BARs hold all-ones, or a sizing write could
  // make the device claim random addresses.
  const uint16_t cmd = config_read16(d, kCommand);
  config_write16(d, kCommand, cmd & ~(kCmdIo | kCmdMemory));
  for (int i = 0; i < count; ++i) {
    const uint8_t off = kBar0 + 4 * i;
    const uint32_t orig = config_read32(d.bus, d.slot, d.func, off);
    config_write32(d.bus, d.slot, d.func, off, 0xffffffff);
    const uint32_t mask = config_read32(d.bus, d.slot, d.func, off);
    config_write32(d.bus, d.slot, d.func, off, orig);
    Bar& b = d.bars[i];
    if (orig & 1) {  // I/O
      b.io = true;
      b.base = orig & ~3u;
      const uint32_t m = mask & ~3u & 0xffff;
      b.size = m ? (~m & 0xffff) + 1 : 0;
      continue;
    }
    if ((mask & ~0xfu) == 0) {  // reads back zero: not implemented
      b = Bar{};
      continue;
    }
    b.prefetchable = orig & 8;
    b.is64 = ((orig >> 1) & 3) == 2;
    uint64_t base = orig & ~0xfu;
    uint64_t m = mask & ~0xfu;
    if (b.is64 && i + 1 < count) {
      const uint8_t hi_off = off + 4;
      const uint32_t orig_hi = config_read32(d.bus, d.slot, d.func, hi_off);
      config_write32(d.bus, d.slot, d.func, hi_off, 0xffffffff);
      const uint32_t mask_hi = config_read32(d.bus, d.slot, d.func, hi_off);
      config_write32(d.bus, d.slot, d.func, hi_off, orig_hi);
      base |= uint64_t(orig_hi) << 32;
      m |= uint64_t(mask_hi) << 32;
    } else {
      m |= 0xffffffff00000000ull;
    }
    b.base = base;
    b.size = m ? ~m + 1 : 0;
    if (b.is64) ++i;  // the upper half is not a BAR of its own
  }
  config_write16(d, kCommand, cmd);
}

void scan_bus(uint8_t bus, int depth);

void scan_function(uint8_t bus, uint8_t slot, uint8_t func, int depth) {
  const uint32_t id = config_read32(bus, slot, func, 0);
  if ((id & 0xffff) == 0xffff) return;
  Device d{};
  d.bus = bus, d.slot = slot, d.func = func;
  d.vendor = id & 0xffff;
  d.device = id >> 16;
  const uint32_t cls = config_read32(bus, slot, func, 0x08);
  d.revision = cls & 0xff;
  d.prog_if = (cls >> 8) & 0xff;
  d.subclass = (cls >> 16) & 0xff;
  d.class_code = cls >> 24;
  d.header_type = (config_read32(bus, slot, func, 0x0c) >> 16) & 0xff;
  const uint32_t irq = config_read32(bus, slot, func, 0x3c);
  d.irq_line = irq & 0xff;
  d.irq_pin = (irq >> 8) & 0xff;
  size_bars(d);
  g_devices->push_back(d);
  // PCI-to-PCI bridge: follow its secondary bus (bounded depth).
  if ((d.header_type & 0x7f) == 1 && depth < 8) {
    const uint8_t secondary = (config_read32(bus, slot, func, 0x18) >> 8) & 0xff;
    if (secondary > bus) scan_bus(secondary, depth + 1);
  }
}

void scan_bus(uint8_t bus, int depth) {
  for (uint8_t slot = 0; slot < 32; ++slot) {
    if ((config_read32(bus, slot, 0, 0) & 0xffff) == 0xffff) continue;
    const bool multi = (config_read32(bus, slot, 0, 0x0c) >> 16) & 0x80;
    for (uint8_t func = 0; func < (multi ? 8 : 1); ++func) scan_function(bus, slot, func, depth);
  }
}

}  // namespace

uint32_t config_read32(uint8_t bus, uint8_t slot, uint8_t func, uint8_t offset) {
  x86::outl(kConfigAddress, address(bus, slot, func, offset));
  return x86::inl(kConfigData);
}

void config_write32(uint8_t bus, uint8_t slot, uint8_t func, uint8_t offset, uint32_t value) {
  x86::outl(kConfigAddress, address(bus, slot, func, offset));
  x86::outl(kConfigData, value);
}

uint16_t config_read16(const Device& d, uint8_t offset) {
  x86::outl(kConfigAddress, address(d.bus, d.slot, d.func, offset));
  return x86::inw(kConfigData + (offset & 2));
}

uint8_t config_read8(const Device& d, uint8_t offset) {
  x86::outl(kConfigAddress, address(d.bus, d.slot, d.func, offset));
  return x86::inb(kConfigData + (offset & 3));
}

void config_write16(const Device& d, uint8_t offset, uint16_t value) {
  x86::outl(kConfigAddress, address(d.bus, d.slot, d.func, offset));
  x86::outw(kConfigData + (offset & 2), value);
}

const std::vector<Device>& enumerate() {
  if (!g_devices) {
    g_devices = new std::vector<Device>;
    scan_bus(0, 0);
  }
  return *g_devices;
}

void print_devices() {
  for (const Device& d : enumerate()) {
    kprintf("pci: %02x:%02x.%u %04x:%04x class %02x.%02x", d.bus, d.slot, d.func, d.vendor, d.device, d.class_code,
            d.subclass);
    for (int i = 0; i < 6; ++i)
      if (d.bars[i].size)
        kprintf(" bar%d=%s%#lx+%#lx", i, d.bars[i].io ? "io:" : "", d.bars[i].base, d.bars[i].size);
    kprintf("\n");
  }
}

uint8_t find_capability(const Device& d, uint8_t id) {
  if (!(config_read16(d, kStatus) & kStatusCapList)) return 0;
  uint8_t ptr = config_read8(d, kCapPtr) & 0xfc;
  // A hostile or broken device could make the list loop: bound the walk.
  for (int n = 0; ptr >= 0x40 && n < 48; ++n) {
    if (config_read8(d, ptr) == id) return ptr;
    ptr = config_read8(d, ptr + 1) & 0xfc;
  }
  return 0;
}

void enable(const Device& d) {
  config_write16(d, kCommand, config_read16(d, kCommand) | kCmdIo | kCmdMemory | kCmdBusMaster);
}

uint64_t map_bar(const Device& d, int bar) {
  if (bar < 0 || bar > 5) return 0;
  const Bar& b = d.bars[bar];
  if (!b.size || b.io || !b.base) return 0;
  return mm::map_mmio(b.base, b.size) ? b.base : 0;
}

bool msix_enable(const Device& d, Msix* out) {
  const uint8_t cap = find_capability(d, kCapMsix);
  if (!cap) return false;
  const uint16_t control = config_read16(d, cap + 2);
  const uint32_t table = config_read32(d.bus, d.slot, d.func, cap + 4);
  const int bir = table & 7;
  const uint64_t base = map_bar(d, bir);
  if (!base) return false;
  out->cap = cap;
  out->size = (control & 0x7ff) + 1;
  out->table = reinterpret_cast<volatile uint32_t*>(base + (table & ~7u));
  // Function mask on while the entries are masked one by one; then enable
  // MSI-X, which also turns legacy INTx off for the device.
  config_write16(d, cap + 2, control | (1 << 14));
  for (uint16_t i = 0; i < out->size; ++i) out->table[i * 4 + 3] = 1;
  config_write16(d, cap + 2, (control | (1 << 15)) & ~(1 << 14));
  config_write16(d, kCommand, config_read16(d, kCommand) | kCmdIntxDisable);
  return true;
}

bool msix_route(Msix& m, uint16_t entry, uint8_t vector) {
  if (entry >= m.size) return false;
  volatile uint32_t* e = m.table + entry * 4;
  e[3] = 1;  // mask while rewriting
  e[0] = x86::msi_address();
  e[1] = 0;
  e[2] = x86::msi_data(vector);
  e[3] = 0;
  return true;
}

void msix_mask(Msix& m, uint16_t entry, bool masked) {
  if (entry < m.size) m.table[entry * 4 + 3] = masked ? 1 : 0;
}

bool msi_enable(const Device& d, uint8_t vector) {
  const uint8_t cap = find_capability(d, kCapMsi);
  if (!cap) return false;
  const uint16_t control = config_read16(d, cap + 2);
  const bool is64 = control & (1 << 7);
  config_write32(d.bus, d.slot, d.func, cap + 4, x86::msi_address());
  if (is64) config_write32(d.bus, d.slot, d.func, cap + 8, 0);
  config_write16(d, cap + (is64 ? 12 : 8), x86::msi_data(vector));
  config_write16(d, cap + 2, (control & ~(7 << 4)) | 1);  // one vector, enabled
  config_write16(d, kCommand, config_read16(d, kCommand) | kCmdIntxDisable | kCmdBusMaster);
  return true;
}

void register_driver(const Driver& driver) {
  if (!g_drivers) g_drivers = new std::vector<Driver>;
  g_drivers->push_back(driver);
}

int probe_drivers() {
  int taken = 0;
  if (!g_drivers) return 0;
  enumerate();
  for (Device& d : *g_devices) {
    if (d.driver) continue;  // probed before
    for (const Driver& drv : *g_drivers) {
      if (drv.vendor != d.vendor || (drv.device != 0xffff && drv.device != d.device)) continue;
      if (drv.probe(d)) {
        d.driver = drv.name;
        kprintf("pci: %02x:%02x.%u taken by %s\n", d.bus, d.slot, d.func, drv.name);
        ++taken;
        break;
      }
    }
  }
  return taken;
}

}  // namespace pci
