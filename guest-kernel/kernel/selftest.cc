#include "guest-kernel/kernel/selftest.h"

#include "guest-kernel/lib/print.h"
#include "guest-kernel/lib/string.h"

namespace {
TestRegistration* g_first = nullptr;
TestRegistration* g_last = nullptr;
}  // namespace

TestRegistration::TestRegistration(const char* n, TestFn f) : name(n), fn(f) {
  // Appended, so tests run in the order they appear in each file.
  if (g_last) g_last->next = this;
  else g_first = this;
  g_last = this;
}

void TestContext::fail(const char* file, int line, const char* what) {
  ++failures_;
  kprintf("    check failed at %s:%d: %s\n", file, line, what);
}

static bool matches(const char* name, const char* filter) {
  if (!filter || !*filter) return true;
  const size_t n = strlen(filter);
  for (const char* p = name; *p; ++p)
    if (strncmp(p, filter, n) == 0) return true;
  return false;
}

int run_self_tests(const char* filter) {
  int passed = 0, failed = 0, skipped = 0;
  for (TestRegistration* r = g_first; r; r = r->next) {
    if (!matches(r->name, filter)) continue;
    TestContext t;
    r->fn(t);
    if (t.failed()) {
      ++failed;
      kprintf("FAIL %s\n", r->name);
    } else if (t.skipped()) {
      ++skipped;
      kprintf("SKIP %s: %s\n", r->name, t.skipped());
    } else {
      ++passed;
      kprintf("PASS %s\n", r->name);
    }
  }
  kprintf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
  return failed;
}
