// process.h: run a command-line peer (secsipidx, openssl) with a bounded wait.
//
// posix_spawn, not fork(): the runner has SoftHSM2 initialised (C_Initialize) and must never
// fork() after it (shared/style.md). posix_spawn execs at once in the child (glibc uses
// clone(CLONE_VM|CLONE_VFORK)), so the child never touches the PKCS#11 module.
#ifndef SHAKEN_CONFORMANCE_PROCESS_H_
#define SHAKEN_CONFORMANCE_PROCESS_H_

#include <map>
#include <string>
#include <vector>

#include "absl/time/time.h"

namespace shaken::conformance {

struct ProcessResult {
  bool started = false;
  bool timed_out = false;
  int exit_code = -1;   // -1 when killed or not started
  std::string output;   // stdout and stderr together, at most 64 KiB
};

// RunProcess runs argv[0] (a path) with `argv`, the parent's environment plus `env` overrides,
// no stdin, and kills it after `timeout`. Thread-compatible.
ProcessResult RunProcess(const std::vector<std::string>& argv,
                         const std::map<std::string, std::string>& env = {},
                         absl::Duration timeout = absl::Seconds(10));

}  // namespace shaken::conformance

#endif  // SHAKEN_CONFORMANCE_PROCESS_H_
