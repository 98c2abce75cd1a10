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
