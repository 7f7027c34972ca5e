// sbc_bench: shakend's SBC front ends under load, as a separate process on 127.0.0.1.
//
//   REST: POST /stir/v1/signing (ATIS-1000082) with the software-key ("file") profile, plain
//   HTTP/1.1 keep-alive, against `secsipidx -http-srv` signing with the same PEM key; both
//   driven by load_bench's HTTP load generator (http_load.h: one epoll thread, --conns
//   connections each with one request outstanding), one after the other on the same 2 cores,
//   in --rounds alternating rounds (the machine's other load hits both alike); the figures are
//   the medians of the rounds.
//   SIP: not measured yet (the SIP redirect server is another change): printed as n/a.
//
// Summary line:
//   sbc_bench: rest_vs_secsipidx=X sip_vs_grpc=Y sip_failed=N
// Targets (bench/README.md): rest_vs_secsipidx >= 1.0 with shakend's REST p99 <= 2 ms.
// Flags: --seconds=N (each measured phase, default 8), --conns=N (8), --rounds=N (3). Exit 1 when a REST answer
// was not a signature (the figures are not asserted: the smoke test runs 1 s on a busy machine).
#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <algorithm>
#include <vector>
#include <filesystem>
#include <fstream>
#include <optional>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "bench/http_load.h"
#include "tests/daemon_fixture.h"
#include "tests/testing/softhsm_token.h"
#include "tests/testing/subprocess.h"

namespace {

using namespace shaken;  // NOLINT: a benchmark's main file

constexpr char kOrig[] = "12155550121";
constexpr char kDest[] = "12155550131";

[[noreturn]] void Fail(const std::string& what) {
  std::fprintf(stderr, "sbc_bench: %s\n", what.c_str());
  std::fflush(stderr);
  _exit(1);  // SoftHSM2 must not be finalised from exit handlers
}

void Replace(std::string* s, const std::string& from, const std::string& to) {
  const size_t at = s->find(from);
  if (at == std::string::npos) Fail("unexpected configuration: no " + from);
  s->replace(at, from.size(), to);
}

// WaitListening waits up to 30 s for 127.0.0.1:`port` to accept a connection.
void WaitListening(testing::Child& child, int port, const std::string& what) {
  for (int i = 0; i < 600; ++i) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(static_cast<uint16_t>(port));
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    const bool up = connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a)) == 0;
    close(fd);
    if (up) return;
    if (child.Wait(absl::Milliseconds(50)).has_value()) Fail(what + " exited:\n" + child.Log());
  }
  Fail(what + " does not listen after 30 s:\n" + child.Log());
}

// LoadAverage: /proc/loadavg's 1-minute figure, to tell a quiet run from a contended one.
std::string LoadAverage() {
  const std::string l = testing::ReadFileOrEmpty("/proc/loadavg");
  return l.substr(0, l.find(' '));
}

std::string Post(int port, const std::string& path, const std::string& type,
                 const std::string& body) {
  return absl::StrCat("POST ", path, " HTTP/1.1\r\nHost: 127.0.0.1:", port,
                      "\r\nContent-Type: ", type, "\r\nContent-Length: ", body.size(), "\r\n\r\n",
                      body);
}

}  // namespace

int main(int argc, char** argv) {
  int seconds = 8, conns = 8, rounds = 3;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    int* into = a.rfind("--seconds=", 0) == 0  ? &seconds
                : a.rfind("--conns=", 0) == 0  ? &conns
                : a.rfind("--rounds=", 0) == 0 ? &rounds
                                               : nullptr;
    if (into == nullptr || !absl::SimpleAtoi(a.substr(a.find('=') + 1), into) || *into < 1) {
      std::fprintf(stderr, "usage: sbc_bench [--seconds=N] [--conns=N] [--rounds=N]\n");
      return 2;
    }
  }
  conns = std::min(conns, 256);
  rounds = std::min(rounds, 20);

  // shakend: the test fixture's configuration, with a plain-HTTP REST listener whose anonymous
  // callers may sign with the "file" profile, made the default.
  const int rest_port = testing::FreeLoopbackPort();
  auto env_or = testing::DaemonEnv::Create(
      {.health_listener = false,
       .metrics_listener = false,
       .listen_extra_yaml = absl::StrCat("  rest:\n    address: 127.0.0.1:", rest_port,
                                         "\n    allow_insecure: true\n"),
       .start_daemon = false});
  if (!env_or.ok()) Fail(absl::StrCat("set-up: ", env_or.status().message()));
  std::unique_ptr<testing::DaemonEnv> env = *std::move(env_or);
  std::string yaml = env->config_yaml();
  Replace(&yaml, "clients:\n", "clients:\n  - {identity: \"*\", methods: [Sign], profiles: [file]}\n");
  Replace(&yaml, "    default: true\n", "");
  Replace(&yaml, "    attest: [C]\n", "    attest: [C]\n    default: true\n");
  const std::string config = env->dir() + "/sbc_bench.yaml";
  std::ofstream(config) << yaml;
  auto shakend = testing::Child::Start({SHAKEND_BINARY, "--config", config}, env->dir() + "/shakend.log");
  if (!shakend.ok()) Fail(absl::StrCat("cannot start shakend: ", shakend.status().message()));
  WaitListening(*shakend, rest_port, "shakend");
  const std::string rest_body = absl::StrCat(
      R"({"signingRequest":{"attest":"C","orig":{"tn":")", kOrig, R"("},"dest":{"tn":[")", kDest,
      R"("]}}})");
  const std::string rest = Post(rest_port, "/stir/v1/signing", "application/json", rest_body);

  // secsipidx: the same key, the same x5u, the same connections.
  const bool have_peer = access("/usr/bin/secsipidx", X_OK) == 0;
  std::optional<testing::Child> sec;
  const int sport = testing::FreeLoopbackPort();
  const std::string csv = absl::StrCat(kOrig, ",", kDest, ",C,,", env->file_x5u());
  const std::string peer_req = Post(sport, "/v1/sign-csv", "text/plain", csv);
  if (have_peer) {
    auto started = testing::Child::Start({"/usr/bin/secsipidx", "-http-srv",
                                          absl::StrCat("127.0.0.1:", sport), "-k",
                                          env->FileKeyPath()},
                                         env->dir() + "/secsipidx.log");
    if (!started.ok()) Fail("cannot start secsipidx");
    sec = *std::move(started);
    WaitListening(*sec, sport, "secsipidx");
  } else {
    std::printf("secsipidx not installed (Debian package secsipidx): no comparison\n");
  }

  const std::string load_before = LoadAverage();
  bench::RunHttpLoad("warm-up", rest_port, rest, conns, 1.0, shakend->pid());
  if (have_peer) bench::RunHttpLoad("warm-up", sport, peer_req, conns, 1.0, sec->pid());
  std::vector<double> rest_rates, rest_p99s, ratios;
  uint64_t rest_errors = 0;
  size_t rest_calls = 0;
  for (int round = 0; round < rounds; ++round) {
    bench::HttpLoad r = bench::RunHttpLoad("shakend REST signing", rest_port, rest, conns, seconds,
                                           shakend->pid());
    rest_rates.push_back(r.rate);
    rest_p99s.push_back(r.p99_ms);
    rest_errors += r.errors;
    rest_calls += r.calls;
    if (have_peer) {
      bench::HttpLoad p = bench::RunHttpLoad("secsipidx sign-csv", sport, peer_req, conns, seconds,
                                             sec->pid());
      ratios.push_back(p.rate > 0 ? r.rate / p.rate : 0.0);
    }
  }
  shakend->Signal(SIGTERM);
  (void)shakend->Wait(absl::Seconds(15));
  if (sec.has_value()) {
    sec->Signal(SIGTERM);
    (void)sec->Wait(absl::Seconds(5));
  }

  auto median = [](std::vector<double> v) {
    if (v.empty()) return 0.0;
    std::sort(v.begin(), v.end());
    return v[v.size() / 2];
  };
  std::printf("sbc_bench_rest: rounds=%d rest_per_s=%.0f rest_p99_ms=%.2f (medians; load average "
              "%s before, %s after, %ld cores)\n",
              rounds, median(rest_rates), median(rest_p99s), load_before.c_str(),
              LoadAverage().c_str(), sysconf(_SC_NPROCESSORS_ONLN));
  std::printf("sbc_bench: rest_vs_secsipidx=%.2f sip_vs_grpc=n/a sip_failed=n/a\n",
              median(ratios));
  std::fflush(stdout);
  env.reset();
  _exit(rest_errors > 0 || rest_calls == 0 ? 1 : 0);
}
