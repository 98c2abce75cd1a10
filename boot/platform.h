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

// Status the guest writes. Our VMM exits with it unchanged; QEMU's
// isa-debug-exit exits with (status << 1) | 1, which scripts/run undoes.
// So statuses must stay below 128.
constexpr uint32_t kStatusOk = 0;
constexpr uint32_t kStatusTestsFailed = 1;
constexpr uint32_t kStatusPanic = 100;

}  // namespace platform
