// The contract between our VMM and our guest kernel beyond PVH: fixed I/O
// ports and the meaning of exit statuses. QEMU's isa-debug-exit device sits
// on the same port, so the kernel needs no changes to run there.
// Freestanding header.
#pragma once

#include <stdint.h>

namespace platform {

constexpr uint16_t kSerialPort = 0x3f8;     // COM1, 16550
constexpr uint16_t kDebugExitPort = 0xf4;   // write a status to end the VM
constexpr uint32_t kDebugExitSize = 4;

// The benchmark mark port: a 32-bit write of kBenchMarkStart or
// kBenchMarkEnd makes our VMM snapshot this VM's counters (KVM's exit
// counters, its own exit counts, the NIC's), so that `--stats` reports the
// measurement window alone. A 32-bit read returns kBenchMarkPresent, so
// the guest can tell (QEMU has nothing here: reads give all ones, writes
// are ignored). Not 0x510, the usual spare: QEMU's fw_cfg lives there and
// our kernel also runs under QEMU.
constexpr uint16_t kBenchMarkPort = 0xf8;
constexpr uint32_t kBenchMarkSize = 4;
constexpr uint32_t kBenchMarkStart = 1;
constexpr uint32_t kBenchMarkEnd = 2;
constexpr uint32_t kBenchMarkPresent = 0x4b52414d;  // "MARK"

// The post-mortem port: a 32-bit write of the guest-physical address of
// the kernel's PostMortemInfo (below) tells our VMM where the structures
// that exception delivery depends on live: IDT, GDT, TSS, page tables and
// stacks. The VMM copies them then, and when the guest triple-faults (on
// AMD, KVM resets the vCPU at the shutdown intercept, so the registers at
// the fault are lost) it compares guest RAM against the copies and prints
// what changed, plus the guest's last interrupt entries (the breadcrumbs,
// which the guest keeps in the same structure). The guest writes again
// whenever it changes its page tables. A 32-bit read returns
// kPostMortemMagic, so the guest writes only to a VMM that listens.
constexpr uint16_t kPostMortemPort = 0xfc;
constexpr uint32_t kPostMortemSize = 4;
constexpr uint32_t kPostMortemMagic = 0x544d5250;  // "PRMT"
constexpr uint32_t kPostMortemCrumbs = 32;         // a power of two
constexpr uint32_t kPostMortemStacks = 5;          // main, then IST 1-4

// One interrupt or exception entry, as the kernel's common entry path saw
// it (the frame the CPU pushed).
struct PostMortemCrumb {
  uint64_t tsc;
  uint64_t vector;  // vector | error code << 32
  uint64_t rip;
  uint64_t rsp;     // the interrupted code's stack pointer
};
static_assert(sizeof(PostMortemCrumb) == 32, "crumb layout");

struct PostMortemStack {
  uint64_t guard;   // the unmapped page below the stack (0: none)
  uint64_t top;     // one past the highest byte
};

struct PostMortemInfo {
  uint32_t magic;           // kPostMortemMagic
  uint32_t size;            // sizeof(PostMortemInfo)
  uint64_t idt_base;        // as loaded (sidt); identity-mapped: a GPA
  uint64_t gdt_base;        // as loaded (sgdt)
  uint64_t tss_base;        // from the descriptor TR selects
  uint16_t idt_limit;
  uint16_t gdt_limit;
  uint16_t tr;
  uint16_t reserved;
  uint64_t cr3;
  PostMortemStack stacks[kPostMortemStacks];
  // Breadcrumbs: entry n goes to crumbs[n % kPostMortemCrumbs], and
  // crumb_count becomes n + 1 after it; crumb_done counts handlers that
  // returned, so count - done > 0 means the CPU was inside a handler.
  uint64_t crumb_count;
  uint64_t crumb_done;
  PostMortemCrumb crumbs[kPostMortemCrumbs];
};
static_assert(sizeof(PostMortemInfo) == 144 + 32 * kPostMortemCrumbs, "post-mortem layout");

// Status the guest writes. Our VMM exits with it unchanged; QEMU's
// isa-debug-exit exits with (status << 1) | 1, which scripts/run undoes.
// So statuses must stay below 128.
constexpr uint32_t kStatusOk = 0;
constexpr uint32_t kStatusTestsFailed = 1;
constexpr uint32_t kStatusPanic = 100;

// The paravirtual time page: a page of guest RAM, reserved in the memory
// map, that our VMM writes and the guest's clock applies. It carries a
// clock offset (how the VMM skews this VM's clock) and the bound on the
// clock's error (TrueTime's epsilon), in ns. Guarded by a sequence count:
// odd while the VMM writes; readers retry until they see the same even
// count before and after. Absent (no magic) under QEMU.
constexpr uint64_t kTimePageGpa = 0x9f000;
constexpr uint32_t kTimePageMagic = 0x454d4954;  // "TIME"

struct TimePage {
  uint32_t magic;
  uint32_t sequence;
  int64_t offset_ns;
  uint64_t uncertainty_ns;
  uint64_t reserved[5];
};
static_assert(sizeof(TimePage) == 64, "time page layout");

}  // namespace platform
