// fuzz_check.h: FUZZ_CHECK(cond) aborts with the failed condition, so libFuzzer records the input
// as a crash when a harness finds a property broken (not only a sanitizer report).
#ifndef SHAKEN_TESTS_FUZZ_FUZZ_CHECK_H_
#define SHAKEN_TESTS_FUZZ_FUZZ_CHECK_H_

#include <cstdio>
#include <cstdlib>

#define FUZZ_CHECK(cond)                                                                    \
  do {                                                                                      \
    if (!(cond)) {                                                                          \
      std::fprintf(stderr, "%s:%d: FUZZ_CHECK failed: %s\n", __FILE__, __LINE__, #cond);   \
      std::abort();                                                                         \
    }                                                                                       \
  } while (0)

#endif  // SHAKEN_TESTS_FUZZ_FUZZ_CHECK_H_
