#include "guest-kernel/kernel/cmdline.h"

#include "guest-kernel/lib/string.h"

const char* Cmdline::find(const char* key, size_t* value_len) const {
  const size_t klen = strlen(key);
  const char* p = text_;
  while (*p) {
    while (*p == ' ') ++p;
    const char* word = p;
    while (*p && *p != ' ') ++p;
    const size_t wlen = p - word;
    if (wlen >= klen && strncmp(word, key, klen) == 0 && (wlen == klen || word[klen] == '=')) {
      const char* value = word + klen + (wlen > klen ? 1 : 0);
      *value_len = p - value;
      return value;
    }
  }
  return nullptr;
}

bool Cmdline::has(const char* key) const {
  size_t n;
  return find(key, &n) != nullptr;
}

bool Cmdline::get(const char* key, char* out, size_t size) const {
  size_t n;
  const char* v = find(key, &n);
  if (!v || n + 1 > size) return false;
  memcpy(out, v, n);
  out[n] = '\0';
  return true;
}

bool Cmdline::get_uint(const char* key, unsigned long* out) const {
  char buf[24];
  if (!get(key, buf, sizeof buf) || !buf[0]) return false;
  unsigned long v = 0;
  const char* p = buf;
  unsigned base = 10;
  if (p[0] == '0' && (p[1] == 'x' || p[1] == 'X')) base = 16, p += 2;
  if (!*p) return false;
  for (; *p; ++p) {
    unsigned d;
    if (*p >= '0' && *p <= '9') d = *p - '0';
    else if (base == 16 && *p >= 'a' && *p <= 'f') d = *p - 'a' + 10;
    else if (base == 16 && *p >= 'A' && *p <= 'F') d = *p - 'A' + 10;
    else return false;
    if (v > (~0ul - d) / base) return false;  // overflow
    v = v * base + d;
  }
  *out = v;
  return true;
}
