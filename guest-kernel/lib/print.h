// kprintf: the kernel's formatted output to the serial console.
// Supports %s %c %d %i %u %x %X %p %% with the l/ll/z length modifiers,
// a field width and the '0' and '#' flags: what reports and tests need.
#pragma once

#include <stdarg.h>
#include <stddef.h>

// Formats into buf (always NUL-terminated when size > 0); returns the length
// the full output would have had.
size_t kvsnprintf(char* buf, size_t size, const char* fmt, va_list ap);
size_t ksnprintf(char* buf, size_t size, const char* fmt, ...) __attribute__((format(printf, 3, 4)));
void kprintf(const char* fmt, ...) __attribute__((format(printf, 1, 2)));
