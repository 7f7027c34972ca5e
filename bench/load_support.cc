#include "bench/load_support.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tests/daemon_fixture.h"

namespace shaken::bench {
namespace {

// The children Die must stop: those StartChild made and StopChild has not stopped yet.
std::mutex children_mu;
std::vector<testing::Child*>& Children() {
  static auto* children = new std::vector<testing::Child*>();
  return *children;
}

void Forget(testing::Child* child) {
  std::lock_guard<std::mutex> lock(children_mu);
  auto& c = Children();
  c.erase(std::remove(c.begin(), c.end(), child), c.end());
}

}  // namespace

void Die(const std::string& what) {
  std::fprintf(stderr, "load_bench: %s\n", what.c_str());
  {
    std::lock_guard<std::mutex> lock(children_mu);
    for (testing::Child* c : Children()) c->Signal(SIGKILL);
  }
  std::fflush(stderr);
  _exit(1);  // SoftHSM2 must not be finalised from exit handlers
}

std::unique_ptr<testing::Child> StartChild(const std::vector<std::string>& argv,
                                           const std::string& log,
                                           const std::map<std::string, std::string>& env) {
  absl::StatusOr<testing::Child> started = testing::Child::Start(argv, log, env);
  if (!started.ok()) Die(absl::StrCat("cannot start ", argv.front(), ": ", started.status().message()));
  auto child = std::make_unique<testing::Child>(*std::move(started));
  std::lock_guard<std::mutex> lock(children_mu);
  Children().push_back(child.get());
  return child;
}

void StopChild(std::unique_ptr<testing::Child>& child, int sig) {
  if (child == nullptr) return;
  Forget(child.get());
  child->Signal(sig);
  child->Wait(absl::Seconds(10));
  child.reset();  // kills and reaps it if it still runs
}

void WaitListening(testing::Child& child, int port, const std::string& what) {
  for (int i = 0; i < 600; ++i) {  // 30 s
    int fd = ConnectLoopback(port);
    if (fd >= 0) {
      close(fd);
      return;
    }
    if (child.Wait(absl::ZeroDuration()).has_value()) Die(what + " exited:\n" + child.Log());
    absl::SleepFor(absl::Milliseconds(50));
  }
  Die(what + " does not listen after 30 s:\n" + child.Log());
}

void WaitServing(testing::Child& child, const std::string& target, const std::string& what) {
  for (int i = 0; i < 600; ++i) {  // 30 s
    auto h = testing::HealthStatus(target, "");
    if (h.ok() && *h == 1) return;
    if (child.Wait(absl::ZeroDuration()).has_value()) {
      Die(what + " exited at start-up:\n" + child.Log());
    }
    absl::SleepFor(absl::Milliseconds(50));
  }
  Die(what + " is not SERVING after 30 s:\n" + child.Log());
}

int ConnectLoopback(int port) {
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    close(fd);
    return -1;
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  return fd;
}

long RssKb(pid_t pid) {
  std::ifstream in(absl::StrCat("/proc/", pid, "/status"));
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::strtol(line.c_str() + 6, nullptr, 10);
  }
  return 0;
}

int64_t ProcCpuNs(pid_t pid) {
  std::string stat = testing::ReadFileOrEmpty(absl::StrCat("/proc/", pid, "/stat"));
  size_t p = stat.rfind(')');
  if (p == std::string::npos) return 0;
  // After "pid (comm) ": state is field 3; utime and stime are fields 14 and 15.
  const char* c = stat.c_str() + p + 2;
  long long utime = 0, stime = 0;
  if (std::sscanf(c, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lld %lld", &utime, &stime) != 2) {
    return 0;
  }
  return (utime + stime) * (1'000'000'000 / sysconf(_SC_CLK_TCK));
}

int64_t SelfCpuNs() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  auto ns = [](const timeval& t) { return t.tv_sec * 1'000'000'000LL + t.tv_usec * 1000LL; };
  return ns(ru.ru_utime) + ns(ru.ru_stime);
}

int64_t NowNs() {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(
             std::chrono::steady_clock::now().time_since_epoch())
      .count();
}

std::chrono::system_clock::time_point WallAt(int64_t ns) {
  return std::chrono::system_clock::now() + std::chrono::nanoseconds(ns - NowNs());
}

shaken::v1::SignRequest MakeSign(const std::string& profile, const std::string& attest) {
  shaken::v1::SignRequest r;
  r.set_profile(profile);
  r.set_attest(attest);
  r.mutable_orig()->set_tn(kOrig);
  r.mutable_dest()->add_tn(kDest);
  return r;
}

std::unique_ptr<stir::VerificationStack> MakeVerifier(const daemon::VerifierConfig& config) {
  return Must(stir::VerificationStack::New(daemon::VerifierSettingsFrom(config)), "verifier");
}

}  // namespace shaken::bench
