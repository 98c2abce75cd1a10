// Thin wrappers over the x86 instructions the kernel needs. Inline asm in
// one place so the rest of the kernel reads as ordinary C++.
#pragma once

#include <stdint.h>

namespace x86 {

inline void outb(uint16_t port, uint8_t v) { asm volatile("outb %0, %1" ::"a"(v), "Nd"(port)); }
inline void outw(uint16_t port, uint16_t v) { asm volatile("outw %0, %1" ::"a"(v), "Nd"(port)); }
inline void outl(uint16_t port, uint32_t v) { asm volatile("outl %0, %1" ::"a"(v), "Nd"(port)); }
inline uint8_t inb(uint16_t port) {
  uint8_t v;
  asm volatile("inb %1, %0" : "=a"(v) : "Nd"(port));
  return v;
}
inline uint32_t inl(uint16_t port) {
  uint32_t v;
  asm volatile("inl %1, %0" : "=a"(v) : "Nd"(port));
  return v;
}

inline void cli() { asm volatile("cli" ::: "memory"); }
inline void sti() { asm volatile("sti" ::: "memory"); }
inline void hlt() { asm volatile("hlt" ::: "memory"); }
inline void pause() { asm volatile("pause"); }

[[noreturn]] inline void halt_forever() {
  for (;;) {
    cli();
    hlt();
  }
}

struct DescriptorPointer {
  uint16_t limit;
  uint64_t base;
} __attribute__((packed));

inline void lidt(const DescriptorPointer& p) { asm volatile("lidt %0" ::"m"(p)); }

inline uint64_t rdtsc() {
  uint32_t lo, hi;
  asm volatile("rdtsc" : "=a"(lo), "=d"(hi));
  return (uint64_t(hi) << 32) | lo;
}

}  // namespace x86
