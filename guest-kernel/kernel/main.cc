// kernel_main: where the PVH entry hands over in 64-bit mode. Brings the
// machine up in dependency order, then does what the command line asks.
#include <stdint.h>

#include "boot/platform.h"
#include "boot/pvh.h"
#include "guest-kernel/arch/x86/apic.h"
#include "guest-kernel/arch/x86/cpu.h"
#include "guest-kernel/arch/x86/gdt.h"
#include "guest-kernel/arch/x86/interrupts.h"
#include "guest-kernel/arch/x86/post_mortem.h"
#include "guest-kernel/drivers/serial.h"
#include "guest-kernel/kernel/blklog_command.h"
#include "guest-kernel/kernel/count_command.h"
#include "guest-kernel/service/service.h"
#include "guest-kernel/kernel/cmdline.h"
#include "guest-kernel/kernel/event_loop.h"
#include "guest-kernel/kernel/exit.h"
#include "guest-kernel/kernel/faults.h"
#include "guest-kernel/kernel/memory_command.h"
#include "guest-kernel/kernel/selftest.h"
#include "guest-kernel/kernel/timer_bench.h"
#include "guest-kernel/lib/print.h"
#include "guest-kernel/mm/boot_info.h"
#include "guest-kernel/mm/heap.h"
#include "guest-kernel/mm/page_alloc.h"
#include "guest-kernel/mm/paging.h"
#include "guest-kernel/net/net_bench.h"
#include "guest-kernel/net/net_boot.h"
#include "guest-kernel/pci/pci.h"
#include "guest-kernel/time/clock.h"

void run_global_constructors();

namespace {

constexpr size_t kMainStackPages = 16;  // 64 KiB
constexpr size_t kIstStackPages = 4;

// Early IST stacks, until the guarded ones exist.
alignas(16) uint8_t early_ist[4][4096];

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

void print_banner() {
  const BootInfo& b = boot_info();
  kprintf("guest-kernel: booted through PVH\n");
  kprintf("guest-kernel: command line \"%s\"\n", b.cmdline);
  uint64_t ram = 0;
  for (size_t i = 0; i < b.region_count; ++i) {
    const auto& r = b.regions[i];
    kprintf("guest-kernel: memory %016lx-%016lx %s\n", r.addr, r.addr + r.size - 1, memtype_name(r.type));
    if (r.type == pvh::kRam) ram += r.size;
  }
  kprintf("guest-kernel: %lu KiB of RAM, %zu pages free\n", ram >> 10, mm::free_page_count());
  kprintf("guest-kernel: clock %s, TSC %lu kHz, %s timer%s\n", timekeeping::clock_source(),
          timekeeping::tsc_hz() / 1000, x86::apic_has_tsc_deadline() ? "TSC-deadline" : "LAPIC one-shot",
          x86::apic_is_x2apic() ? (x86::apic_has_pv_eoi() ? ", x2APIC, PV EOI" : ", x2APIC")
                                : (x86::apic_has_pv_eoi() ? ", xAPIC, PV EOI" : ", xAPIC"));
  if (timekeeping::has_time_page())
    kprintf("guest-kernel: VMM time page: offset %ld ns, uncertainty %lu ns\n", timekeeping::vmm_offset_ns(),
            timekeeping::uncertainty_ns());
}

[[noreturn]] void kernel_continue();

// Moves execution to a new stack; `fn` never returns.
[[noreturn]] void switch_stack(uint64_t top, void (*fn)()) {
  asm volatile(
      "mov %0, %%rsp\n"
      "xor %%ebp, %%ebp\n"
      "call *%1\n" ::"r"(top),
      "r"(fn)
      : "memory");
  __builtin_unreachable();
}

[[noreturn]] void kernel_continue() {
  run_global_constructors();
  x86::apic_init();
  timekeeping::clock_init();
  EventLoop::instance().init();
  print_banner();
  pci::enumerate();
  pci::print_devices();
  pci::probe_drivers();

  Cmdline cmdline(boot_info().cmdline);
  net::boot_init(cmdline);  // after probing: the NIC drivers have registered
  char word[32];
  if (cmdline.get("fault", word, sizeof word)) {
    kprintf("guest-kernel: raising fault '%s' on purpose\n", word);
    if (!trigger_fault(word)) panic("unknown fault kind '%s' (pf, gp, ud, de, triple)", word);
  }
  char blklog[32];
  if (cmdline.get("blklog", blklog, sizeof blklog)) vm_exit(run_blklog_command(blklog));
  if (cmdline.has("test")) {
    char filter[64] = "";
    cmdline.get("test", filter, sizeof filter);
    const int failures = run_self_tests(filter);
    vm_exit(failures ? platform::kStatusTestsFailed : platform::kStatusOk);
  }
  // mem-touch=, mem-pattern=, balloon-wait, balloon-demo, in command-line order; the
  // other commands (exit=...) follow.
  if (const uint32_t status = run_memory_commands(cmdline)) vm_exit(status);
  unsigned count_status;
  if (run_count_command(cmdline, &count_status)) vm_exit(count_status);
  unsigned long ticks;
  if (cmdline.get_uint("timer-bench", &ticks)) vm_exit(run_timer_bench(ticks));
  unsigned long idle_seconds;
  if (cmdline.get_uint("idle", &idle_seconds)) vm_exit(run_idle(idle_seconds));
  uint32_t net_status;
  if (net::run_demos(cmdline, &net_status)) vm_exit(net_status);
  if (net::run_bench(cmdline, &net_status)) vm_exit(net_status);
  service::run_from_cmdline(cmdline);  // never returns when service= is given

  unsigned long status = platform::kStatusOk;
  if (cmdline.has("exit") && (!cmdline.get_uint("exit", &status) || status > 127))
    panic("exit= needs a status from 0 to 127");
  kprintf("guest-kernel: exiting with status %lu\n", status);
  vm_exit(static_cast<uint32_t>(status));
}

}  // namespace

extern "C" [[noreturn]] void kernel_main(const pvh::StartInfo* si) {
  serial::init();
  if (!boot_info_init(si)) panic("no PVH start info (magic %x)", si ? si->magic : 0);

  // Exceptions decode from here on, on small static stacks.
  uint64_t tops[4];
  for (int i = 0; i < 4; ++i) tops[i] = reinterpret_cast<uint64_t>(early_ist[i] + sizeof early_ist[i]);
  x86::gdt_init(tops);
  x86::idt_init();

  mm::page_alloc_init();
  mm::paging_init();

  // Guarded stacks for everything from now on.
  for (int i = 0; i < 4; ++i) {
    tops[i] = mm::alloc_stack(kIstStackPages);
    if (!tops[i]) panic("no memory for interrupt stacks");
    x86::post_mortem::set_stack(1 + i, tops[i], kIstStackPages, true);
  }
  x86::gdt_init(tops);
  const uint64_t stack = mm::alloc_stack(kMainStackPages);
  if (!stack) panic("no memory for the kernel stack");
  x86::post_mortem::set_stack(0, stack, kMainStackPages, true);
  // Our VMM can now explain a triple fault (boot/platform.h).
  x86::post_mortem::publish();
  switch_stack(stack, kernel_continue);
}
