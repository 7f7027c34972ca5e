// cli_test_support.h: run the built shakenctl (or openssl) as a child process and capture its
// exit code, stdout and stderr (tests/testing/subprocess.h: no shell, a bounded wait).
#ifndef SHAKEN_TESTS_CLI_TEST_SUPPORT_H_
#define SHAKEN_TESTS_CLI_TEST_SUPPORT_H_

#include <sys/stat.h>

#include <string>
#include <vector>

#include "tests/testing/subprocess.h"

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

}  // namespace shaken::testing

#endif  // SHAKEN_TESTS_CLI_TEST_SUPPORT_H_
