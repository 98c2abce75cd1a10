#include "guest-kernel/drivers/serial.h"

#include "boot/platform.h"
#include "guest-kernel/arch/x86/cpu.h"

namespace serial {
namespace {

constexpr uint16_t kBase = platform::kSerialPort;
enum Reg : uint16_t { kData = 0, kIer = 1, kFcr = 2, kLcr = 3, kMcr = 4, kLsr = 5 };
constexpr uint8_t kLcrDlab = 0x80, kLcr8N1 = 0x03;
constexpr uint8_t kLsrThrEmpty = 0x20;

void put(char c) {
  // Bounded wait: a UART that never drains must not hang the kernel.
  for (int i = 0; i < 100000 && !(x86::inb(kBase + kLsr) & kLsrThrEmpty); ++i) x86::pause();
  x86::outb(kBase + kData, static_cast<uint8_t>(c));
}

}  // namespace

void init() {
  x86::outb(kBase + kIer, 0);           // polled: no UART interrupts
  x86::outb(kBase + kLcr, kLcrDlab);
  x86::outb(kBase + kData, 1);          // divisor 1: 115200 baud
  x86::outb(kBase + kIer, 0);
  x86::outb(kBase + kLcr, kLcr8N1);
  x86::outb(kBase + kFcr, 0x07);        // enable and clear the FIFOs
  x86::outb(kBase + kMcr, 0x03);        // DTR, RTS
}

// Lines end in a bare '\n': the VMM's console and scripts read a byte
// stream, and a terminal adds the carriage return itself.
void write(const char* s, size_t n) {
  for (size_t i = 0; i < n; ++i) put(s[i]);
}

}  // namespace serial
