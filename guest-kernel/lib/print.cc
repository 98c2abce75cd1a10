#include "guest-kernel/lib/print.h"

#include <stdint.h>

#include "guest-kernel/drivers/serial.h"

namespace {

struct Out {
  char* buf;
  size_t size;
  size_t len = 0;
  void put(char c) {
    if (len + 1 < size) buf[len] = c;
    ++len;
  }
};

void put_unsigned(Out& o, uint64_t v, unsigned base, bool upper, int width, char pad) {
  char tmp[24];
  int n = 0;
  const char* digits = upper ? "0123456789ABCDEF" : "0123456789abcdef";
  do {
    tmp[n++] = digits[v % base];
    v /= base;
  } while (v);
  for (int i = n; i < width; ++i) o.put(pad);
  while (n) o.put(tmp[--n]);
}

}  // namespace

size_t kvsnprintf(char* buf, size_t size, const char* fmt, va_list ap) {
  Out o{buf, size};
  for (const char* p = fmt; *p; ++p) {
    if (*p != '%') {
      o.put(*p);
      continue;
    }
    ++p;
    char pad = ' ';
    int width = 0;
    bool alt = false;
    for (;; ++p) {
      if (*p == '0') pad = '0';
      else if (*p == '#') alt = true;
      else break;
    }
    while (*p >= '0' && *p <= '9') width = width * 10 + (*p++ - '0');
    int longs = 0;
    while (*p == 'l') ++longs, ++p;
    if (*p == 'z') longs = 2, ++p;
    auto get_unsigned = [&]() -> uint64_t {
      return longs ? va_arg(ap, unsigned long) : va_arg(ap, unsigned);
    };
    switch (*p) {
      case 's': {
        const char* s = va_arg(ap, const char*);
        if (!s) s = "(null)";
        int n = 0;
        for (const char* q = s; *q; ++q) ++n;
        for (int i = n; i < width; ++i) o.put(' ');
        while (*s) o.put(*s++);
        break;
      }
      case 'c': o.put(static_cast<char>(va_arg(ap, int))); break;
      case 'd':
      case 'i': {
        int64_t v = longs ? va_arg(ap, long) : va_arg(ap, int);
        if (v < 0) {
          o.put('-');
          put_unsigned(o, uint64_t(0) - uint64_t(v), 10, false, width > 0 ? width - 1 : 0, pad);
        } else {
          put_unsigned(o, uint64_t(v), 10, false, width, pad);
        }
        break;
      }
      case 'u': put_unsigned(o, get_unsigned(), 10, false, width, pad); break;
      case 'x':
        if (alt) o.put('0'), o.put('x');
        put_unsigned(o, get_unsigned(), 16, false, width, pad);
        break;
      case 'X': put_unsigned(o, get_unsigned(), 16, true, width, pad); break;
      case 'p':
        o.put('0'), o.put('x');
        put_unsigned(o, reinterpret_cast<uintptr_t>(va_arg(ap, void*)), 16, false, 16, '0');
        break;
      case '%': o.put('%'); break;
      case '\0': --p; break;
      default: o.put('%'), o.put(*p); break;
    }
  }
  if (size) buf[o.len < size ? o.len : size - 1] = '\0';
  return o.len;
}

size_t ksnprintf(char* buf, size_t size, const char* fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  size_t n = kvsnprintf(buf, size, fmt, ap);
  va_end(ap);
  return n;
}

void kprintf(const char* fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  size_t n = kvsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  serial::write(buf, n < sizeof buf ? n : sizeof buf - 1);
}
