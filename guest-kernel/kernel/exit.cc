#include "guest-kernel/kernel/exit.h"

#include <stdarg.h>

#include "boot/platform.h"
#include "guest-kernel/arch/x86/cpu.h"
#include "guest-kernel/lib/print.h"

void vm_exit(uint32_t status) {
  x86::outl(platform::kDebugExitPort, status);
  // Only reached where no debug-exit device exists: stop here.
  x86::halt_forever();
}

void panic(const char* fmt, ...) {
  x86::cli();
  char buf[256];
  va_list ap;
  va_start(ap, fmt);
  kvsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  kprintf("\nKERNEL PANIC: %s\n", buf);
  vm_exit(platform::kStatusPanic);
}
