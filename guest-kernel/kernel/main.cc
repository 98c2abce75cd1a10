// kernel_main: where the PVH entry hands over in 64-bit mode.
#include <stdint.h>

#include "boot/platform.h"
#include "boot/pvh.h"
#include "guest-kernel/drivers/serial.h"
#include "guest-kernel/kernel/cmdline.h"
#include "guest-kernel/kernel/exit.h"
#include "guest-kernel/kernel/faults.h"
#include "guest-kernel/lib/print.h"

void run_global_constructors();

namespace {

const char* memtype_name(uint32_t type) {
  switch (type) {
    case pvh::kRam: return "ram";
    case pvh::kReserved: return "reserved";
    case pvh::kAcpi: return "acpi";
    case pvh::kNvs: return "nvs";
    case pvh::kUnusable: return "unusable";
    default: return "unknown";
  }
}

void print_banner(const pvh::StartInfo& si, const Cmdline& cmdline) {
  kprintf("guest-kernel: booted through PVH (start info v%u)\n", si.version);
  kprintf("guest-kernel: command line \"%s\"\n", cmdline.text());
  uint64_t ram = 0;
  const auto* map = reinterpret_cast<const pvh::MemmapEntry*>(si.memmap_paddr);
  for (uint32_t i = 0; si.version >= 1 && map && i < si.memmap_entries; ++i) {
    kprintf("guest-kernel: memory %016lx-%016lx %s\n", map[i].addr, map[i].addr + map[i].size - 1,
            memtype_name(map[i].type));
    if (map[i].type == pvh::kRam) ram += map[i].size;
  }
  kprintf("guest-kernel: %lu KiB of RAM\n", ram >> 10);
}

}  // namespace

extern "C" [[noreturn]] void kernel_main(const pvh::StartInfo* si) {
  serial::init();
  if (!si || si->magic != pvh::kStartInfoMagic)
    panic("no PVH start info (magic %x)", si ? si->magic : 0);
  run_global_constructors();

  Cmdline cmdline(reinterpret_cast<const char*>(si->cmdline_paddr));
  print_banner(*si, cmdline);

  char fault[16];
  if (cmdline.get("fault", fault, sizeof fault)) {
    kprintf("guest-kernel: raising fault '%s' on purpose\n", fault);
    if (!trigger_fault(fault)) panic("unknown fault kind '%s' (pf, gp, ud, de, triple)", fault);
  }
  unsigned long status = platform::kStatusOk;
  if (cmdline.has("exit") && (!cmdline.get_uint("exit", &status) || status > 127))
    panic("exit= needs a status from 0 to 127");
  kprintf("guest-kernel: exiting with status %lu\n", status);
  vm_exit(static_cast<uint32_t>(status));
}
