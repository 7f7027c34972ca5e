// load_support.h: what load_bench and its floor server share: the call they make, fatal errors
// (which stop every child process first), the children themselves (testing::Child), clocks and the
// /proc figures a phase reports (CPU time, RSS).
#ifndef SHAKEN_BENCH_LOAD_SUPPORT_H_
#define SHAKEN_BENCH_LOAD_SUPPORT_H_

#include <sys/types.h>

#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "daemon/config.h"
#include "shaken/v1/shaken.grpc.pb.h"
#include "stir/verification_stack.h"
#include "tests/testing/subprocess.h"

namespace shaken::bench {

using shaken::v1::SignRequest;
using shaken::v1::SignResponse;
using shaken::v1::SignStreamResponse;
using shaken::v1::VerifyRequest;
using shaken::v1::VerifyResponse;

inline constexpr char kOrig[] = "12155550121";
inline constexpr char kDest[] = "12155550131";
// At most this long to collect the calls still outstanding when a phase ends.
inline constexpr int64_t kDrainNs = 10'000'000'000;

// Die prints `what`, kills every child started through StartChild and leaves at once (_exit:
// SoftHSM2 must not be finalised from exit handlers).
[[noreturn]] void Die(const std::string& what);

template <typename T>
T Must(absl::StatusOr<T> v, const char* what) {
  if (!v.ok()) Die(std::string(what) + ": " + std::string(v.status().message()));
  return *std::move(v);
}

// StartChild starts a program whose output goes to `log` (testing::Child), known to Die. Die()s
// when it cannot start.
std::unique_ptr<testing::Child> StartChild(const std::vector<std::string>& argv,
                                           const std::string& log,
                                           const std::map<std::string, std::string>& env = {});
// StopChild sends `sig`, waits up to 10 s for the child to exit (then kills it) and forgets it.
void StopChild(std::unique_ptr<testing::Child>& child, int sig);
// WaitListening waits up to 30 s for `child` to accept connections on 127.0.0.1:`port`;
// WaitServing for its gRPC health listener at `target` to say SERVING. Both Die() with the
// child's log when it exits or is not ready by then.
void WaitListening(testing::Child& child, int port, const std::string& what);
void WaitServing(testing::Child& child, const std::string& target, const std::string& what);

// ConnectLoopback opens a TCP_NODELAY connection to 127.0.0.1:`port`; -1 when refused.
int ConnectLoopback(int port);

// NowNs is the steady clock in ns; WallAt the system_clock time point of such a value (for gRPC
// deadlines).
int64_t NowNs();
std::chrono::system_clock::time_point WallAt(int64_t ns);
// CPU time (user + system) of process `pid` (clock-tick resolution), of this process; VmRSS in
// KiB (0 when unreadable).
int64_t ProcCpuNs(pid_t pid);
int64_t SelfCpuNs();
long RssKb(pid_t pid);

// MakeSign is the Sign request of every phase: kOrig -> kDest with `profile` and `attest`.
shaken::v1::SignRequest MakeSign(const std::string& profile, const std::string& attest);

// MakeVerifier builds the verification stack as shakend builds its own
// (daemon::VerifierSettingsFrom) from a configuration's verifier section.
std::unique_ptr<stir::VerificationStack> MakeVerifier(const daemon::VerifierConfig& config);

}  // namespace shaken::bench

#endif  // SHAKEN_BENCH_LOAD_SUPPORT_H_
