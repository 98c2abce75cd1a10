// Polled output on a 16550 UART (COM1). Works the same under our VMM,
// QEMU and the EFI loader's hand-off, before any interrupt is set up.
#pragma once

#include <stddef.h>

namespace serial {

void init();
void write(const char* s, size_t n);

}  // namespace serial
