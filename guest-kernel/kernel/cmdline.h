// The kernel command line: space-separated words, each `key` or `key=value`.
#pragma once

#include <stddef.h>

class Cmdline {
 public:
  explicit Cmdline(const char* text) : text_(text ? text : "") {}
  const char* text() const { return text_; }
  // True if the word `key` or `key=...` is present.
  bool has(const char* key) const;
  // Copies the value of `key=value` into out (NUL-terminated); false if
  // absent or if the value does not fit.
  bool get(const char* key, char* out, size_t size) const;
  // Parses `key=N` (decimal or 0x-hex); false if absent or malformed.
  bool get_uint(const char* key, unsigned long* out) const;

 private:
  // Finds the word for key; returns its value (after '=') or the end of the
  // key if it has none, and the value length.
  const char* find(const char* key, size_t* value_len) const;
  const char* text_;
};
