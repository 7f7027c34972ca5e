// cli_test_support.h: run the built shakenctl (or openssl) as a child process and capture its
// exit code, stdout and stderr (tests/testing/subprocess.h: no shell, a bounded wait).
#ifndef SHAKEN_TESTS_CLI_TEST_SUPPORT_H_
#define SHAKEN_TESTS_CLI_TEST_SUPPORT_H_

#include <sys/stat.h>

#include <string>
#include <vector>

#include "gtest/gtest.h"
#include "tests/testing/softhsm_token.h"
#include "tests/testing/subprocess.h"
#include "tests/testing/test_pki.h"

namespace shaken::testing {

inline bool FileExists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

// RunProgram runs argv[0] (searched in PATH) with stdin from `stdin_file` (default /dev/null),
// for at most a minute.
inline RunResult RunProgram(std::vector<std::string> argv, const std::string& stdin_file = "") {
  return RunCommand(argv, {.stdin_file = stdin_file});
}

// Shakenctl runs the shakenctl binary under test.
inline RunResult Shakenctl(std::vector<std::string> args, const std::string& stdin_file = "") {
  args.insert(args.begin(), SHAKENCTL_PATH);
  return RunProgram(std::move(args), stdin_file);
}

// CliTokenTest is the fixture of shakenctl tests that keep keys in a SoftHSM2 token of their own
// (labelled Derived::kTokenLabel, one per test suite) and write files in a fresh directory per
// test: class MyTest : public CliTokenTest<MyTest> { static constexpr char kTokenLabel[] = ...; }.
template <typename Derived>
class CliTokenTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto t = SoftHsmToken::Create({Derived::kTokenLabel});
    ASSERT_TRUE(t.ok()) << t.status();
    token_ = t->release();
  }
  static void TearDownTestSuite() {
    delete token_;
    token_ = nullptr;
  }

  std::string Pin() const { return "file:" + token_->pin_file(); }
  std::string P(const std::string& name) const { return dir_.path() + "/" + name; }

  static inline SoftHsmToken* token_ = nullptr;
  TempDir dir_;
};

}  // namespace shaken::testing

#endif  // SHAKEN_TESTS_CLI_TEST_SUPPORT_H_
