// A PCI function: its configuration space with the header type 0 rules
// (read-only IDs, RW1C status bits, BAR sizing, a capability list) and its
// BARs, which follow the guest's programming onto the VMM's I/O buses.
//
// Configuration space is one 4 KiB array plus two masks: `wmask_` (bits a
// guest write may change) and `w1cmask_` (bits a guest write of 1 clears).
// Every register that needs no side effect is just data and masks; the BAR
// sizing protocol falls out of the masks too (a BAR's writable bits are the
// address bits above its size, so writing all-ones reads back the size mask
// with the type bits). Device models set their registers before the device
// is added to a bus, then see guest writes through hooks.
//
// Concurrency: config accesses (any vCPU) hold `config_mu_`; BAR accesses
// go straight to bar_read()/bar_write() without it, so a device guards its
// BAR state itself. Hooks run with `config_mu_` held: they must not call
// config_read()/config_write() (use the raw_* accessors).
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "vmm/io_bus.h"
#include "vmm/pci/pci_regs.h"

namespace vmm {

struct PciIds {
  uint16_t vendor = 0;
  uint16_t device = 0;
  uint32_t class_code = 0;  // base class << 16 | subclass << 8 | prog-if
  uint8_t revision = 0;
  uint16_t subsystem_vendor = 0;
  uint16_t subsystem_id = 0;
  uint8_t interrupt_pin = 0;  // 0: no INTx (our devices use MSI-X)
};

enum class PciBarKind { kIo, kMem32, kMem64 };

class PciDevice : public std::enable_shared_from_this<PciDevice> {
 public:
  PciDevice(const PciIds& ids, std::string name);
  virtual ~PciDevice() = default;
  PciDevice(const PciDevice&) = delete;
  PciDevice& operator=(const PciDevice&) = delete;

  const std::string& name() const { return name_; }

  // ---- Setup (before the device is added to a bus) ----------------------
  // Declares BAR `index` (a 64-bit BAR also takes index + 1). `size` is a
  // power of two: at least 16 bytes for memory, 4 to 256 for I/O. Throws
  // std::logic_error on a bad declaration (a VMM bug).
  void add_bar(uint32_t index, PciBarKind kind, uint64_t size, bool prefetchable = false);
  // Appends a capability of `length` bytes (header included) to the list
  // and returns its offset; its body is read-only until given a write mask.
  uint8_t add_capability(uint8_t id, uint8_t length);
  // Calls `hook` after any guest write that overlaps [offset, offset + len).
  void add_config_hook(uint32_t offset, uint32_t length, std::function<void()> hook);
  // Raw register access, bypassing the masks: for setup and for hooks.
  void raw_set8(uint32_t off, uint8_t v) { config_[off] = v; }
  void raw_set16(uint32_t off, uint16_t v);
  void raw_set32(uint32_t off, uint32_t v);
  uint8_t raw8(uint32_t off) const { return config_[off]; }
  uint16_t raw16(uint32_t off) const;
  uint32_t raw32(uint32_t off) const;
  void set_wmask16(uint32_t off, uint16_t mask);
  void set_wmask32(uint32_t off, uint32_t mask);

  // ---- The bus side -------------------------------------------------------
  // `offset` < 4096, `size` 1, 2 or 4, the access inside one dword;
  // anything else reads all-ones and writes nothing.
  uint32_t config_read(uint32_t offset, uint32_t size);
  void config_write(uint32_t offset, uint32_t size, uint32_t value);

  struct BarInfo {
    bool present = false;
    PciBarKind kind = PciBarKind::kMem32;
    uint64_t size = 0;
    bool prefetchable = false;
  };
  const BarInfo& bar_info(uint32_t index) const { return bars_.at(index).info; }
  // The address the guest programmed into the BAR (decoding on or off).
  uint64_t bar_address(uint32_t index);
  // Where the BAR is mapped on the I/O buses now, if anywhere.
  std::optional<uint64_t> bar_mapping(uint32_t index);

  // Called by PciBus: the buses BARs map onto, then the firmware-style
  // initial addresses (each then mapped if decoding is on).
  void attach(IoBus* pio, IoBus* mmio);
  void assign_bar(uint32_t index, uint64_t address);

  // ---- Snapshots (vmm/snapshot) -------------------------------------------
  using ConfigImage = std::array<uint8_t, pci::kExtConfigSpaceSize>;
  ConfigImage config_image();
  // On a device built like the saved one: replays the guest-writable bits
  // of `image` as guest writes of whole dwords in address order, so hooks
  // run and BARs map as they did (RW1C bits are left alone).
  void restore_config_image(const ConfigImage& image);

 protected:
  // Guest accesses to a BAR; `offset` and `size` are within the BAR (the
  // IoBus checks). Defaults: reads all-ones, writes ignored.
  virtual void bar_read(uint32_t bar, uint64_t offset, uint8_t* data, uint32_t size);
  virtual void bar_write(uint32_t bar, uint64_t offset, const uint8_t* data, uint32_t size);
  // After BAR `bar` moved or decoding changed: its new address, or none.
  // Devices with ioeventfds in a BAR move them here. Runs with config_mu_ held.
  virtual void bar_remapped(uint32_t bar, std::optional<uint64_t> address) {
    (void)bar;
    (void)address;
  }

 private:
  class BarWindow;
  struct Bar {
    BarInfo info;
    std::optional<uint64_t> mapped;  // address on the bus, if mapped
    bool refusal_logged = false;     // a refused placement is logged once per BAR
    std::shared_ptr<BarWindow> window;
  };
  struct Hook {
    uint32_t offset, length;
    std::function<void()> fn;
  };
  uint64_t bar_address_locked(uint32_t index) const;
  void update_mappings_locked();

  const std::string name_;
  std::mutex config_mu_;
  std::array<uint8_t, pci::kExtConfigSpaceSize> config_{};
  std::array<uint8_t, pci::kExtConfigSpaceSize> wmask_{};
  std::array<uint8_t, pci::kExtConfigSpaceSize> w1cmask_{};
  std::array<Bar, pci::kNumBars> bars_{};
  std::vector<Hook> hooks_;
  uint32_t next_cap_ = pci::kFirstCapability;
  uint32_t last_cap_ = 0;  // offset of the last capability, 0 if none
  IoBus* pio_ = nullptr;
  IoBus* mmio_ = nullptr;
};

// The host bridge at 00:00.0. It has Q35's IDs (8086:29c0, class 0x0600),
// so our guest kernel sees the same bridge under our VMM and under
// `qemu -M q35`; it has no BARs and none of the MCH's chipset registers.
class PciHostBridge final : public PciDevice {
 public:
  static constexpr uint16_t kVendor = 0x8086;
  static constexpr uint16_t kDevice = 0x29c0;
  PciHostBridge() : PciDevice(PciIds{kVendor, kDevice, 0x060000, 0, 0, 0, 0}, "host bridge") {}
};

}  // namespace vmm
