// The kernel's own test suite, run by `test` on the command line. Tests
// register themselves with KTEST; each runs in order and reports PASS,
// FAIL (with the failed check and its line) or SKIP; the suite ends with
// "N passed, N failed, N skipped".
#pragma once

#include <stddef.h>

class TestContext {
 public:
  // Records a failed check; the test goes on, so one run shows every
  // failure.
  void fail(const char* file, int line, const char* what);
  void skip(const char* reason) { skipped_ = reason; }
  bool failed() const { return failures_ > 0; }
  const char* skipped() const { return skipped_; }

 private:
  int failures_ = 0;
  const char* skipped_ = nullptr;
};

using TestFn = void (*)(TestContext&);

struct TestRegistration {
  TestRegistration(const char* name, TestFn fn);
  const char* name;
  TestFn fn;
  TestRegistration* next = nullptr;
};

// Runs every registered test whose name contains `filter` (all if empty);
// returns the number of failures.
int run_self_tests(const char* filter);

#define KTEST(name)                                                    \
  static void ktest_##name(TestContext& t);                            \
  static TestRegistration ktest_reg_##name(#name, ktest_##name);       \
  static void ktest_##name(TestContext& t)

#define KCHECK(cond)                                        \
  do {                                                      \
    if (!(cond)) t.fail(__FILE__, __LINE__, #cond);         \
  } while (0)

// A check with a formatted explanation.
#define KCHECKF(cond, ...)                                  \
  do {                                                      \
    if (!(cond)) {                                          \
      char msg_[160];                                       \
      ksnprintf(msg_, sizeof msg_, __VA_ARGS__);            \
      t.fail(__FILE__, __LINE__, msg_);                     \
    }                                                       \
  } while (0)
