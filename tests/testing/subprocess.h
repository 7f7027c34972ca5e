// subprocess.h: run a program (shakend, shakenctl, openssl, secsipidx) from a test or a benchmark,
// always with a bounded wait.
//
// posix_spawn, never fork(): test processes have SoftHSM2 initialised, and a child of fork() may
// not use the parent's PKCS#11 state (PKCS#11 v2.40 §6.7.1). glibc's posix_spawn execs at once
// (clone with CLONE_VM | CLONE_VFORK), so the child never touches the module.
#ifndef SHAKEN_TESTS_TESTING_SUBPROCESS_H_
#define SHAKEN_TESTS_TESTING_SUBPROCESS_H_

#include <sys/types.h>

#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace shaken::testing {

struct RunOptions {
  std::map<std::string, std::string> env;  // added to (or replacing in) the parent's environment
  std::string stdin_file;                  // default /dev/null
  absl::Duration timeout = absl::Seconds(60);  // then the child is killed
  size_t max_output_bytes = 1 << 20;       // per stream; the rest is discarded
};

struct RunResult {
  bool started = false;
  bool timed_out = false;
  int exit_code = -1;  // 128 + signal when killed by a signal; -1 when not started or timed out
  std::string out;
  std::string err;
  std::string output() const { return out + err; }
};

// RunCommand runs argv[0] (searched in PATH when it has no '/') with `argv`, captures standard output
// and standard error, and waits at most options.timeout. Thread-compatible.
RunResult RunCommand(const std::vector<std::string>& argv, const RunOptions& options = {});

// Child is a program running in the background, its standard output and error appended to a
// log file. Destroying a Child that still runs kills it (SIGKILL) and reaps it.
class Child {
 public:
  static absl::StatusOr<Child> Start(const std::vector<std::string>& argv,
                                     const std::string& log_path,
                                     const std::map<std::string, std::string>& env = {});
  Child(Child&& other) noexcept;
  Child& operator=(Child&& other) noexcept;
  ~Child();

  pid_t pid() const { return pid_; }
  const std::string& log_path() const { return log_path_; }
  // Wait waits at most `timeout` for the child to exit: its exit code (128 + signal when killed),
  // or nullopt when it still runs.
  std::optional<int> Wait(absl::Duration timeout);
  // Signal sends `sig` (e.g. SIGTERM) if the child still runs.
  void Signal(int sig);
  // Log returns what the child wrote so far.
  std::string Log() const;

 private:
  Child() = default;
  pid_t pid_ = -1;
  std::string log_path_;
};

// FreeLoopbackPort returns a TCP port that was free on 127.0.0.1 a moment ago (for programs that
// need a port number in their configuration before they start).
int FreeLoopbackPort();

// ReadFileOrEmpty reads a whole file; "" when it cannot.
std::string ReadFileOrEmpty(const std::string& path);

}  // namespace shaken::testing

#endif  // SHAKEN_TESTS_TESTING_SUBPROCESS_H_
