// cli_test_support.h: run the built shakenctl (or openssl) as a child process and capture its
// exit code, stdout and stderr. posix_spawn, no shell: arguments reach the program verbatim.
#ifndef SHAKEN_TESTS_CLI_TEST_SUPPORT_H_
#define SHAKEN_TESTS_CLI_TEST_SUPPORT_H_

#include <fcntl.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

extern char** environ;

namespace shaken::testing {

struct RunResult {
  int exit_code = -1;
  std::string out;
  std::string err;
};

inline std::string Slurp(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

inline bool FileExists(const std::string& path) {
  struct stat st;
  return ::stat(path.c_str(), &st) == 0;
}

// RunProgram runs argv[0] (searched in PATH) with stdin from `stdin_file` (default /dev/null).
inline RunResult RunProgram(std::vector<std::string> argv, const std::string& stdin_file = "") {
  static int counter = 0;
  std::string base = "/tmp/shakenctl-test-" + std::to_string(::getpid()) + "-" +
                     std::to_string(counter++);
  std::string out_path = base + ".out", err_path = base + ".err";
  std::vector<char*> args;
  for (auto& a : argv) args.push_back(a.data());
  args.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, STDIN_FILENO,
                                   stdin_file.empty() ? "/dev/null" : stdin_file.c_str(), O_RDONLY,
                                   0);
  posix_spawn_file_actions_addopen(&fa, STDOUT_FILENO, out_path.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0600);
  posix_spawn_file_actions_addopen(&fa, STDERR_FILENO, err_path.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0600);
  pid_t pid;
  RunResult r;
  int rc = posix_spawnp(&pid, args[0], &fa, nullptr, args.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) {
    r.err = "cannot spawn " + argv[0];
    return r;
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = Slurp(out_path);
  r.err = Slurp(err_path);
  ::unlink(out_path.c_str());
  ::unlink(err_path.c_str());
  return r;
}

// Shakenctl runs the shakenctl binary under test.
inline RunResult Shakenctl(std::vector<std::string> args, const std::string& stdin_file = "") {
  args.insert(args.begin(), SHAKENCTL_PATH);
  return RunProgram(std::move(args), stdin_file);
}

}  // namespace shaken::testing

#endif  // SHAKEN_TESTS_CLI_TEST_SUPPORT_H_
