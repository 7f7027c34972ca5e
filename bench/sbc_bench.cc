// sbc_bench: shakend's SBC front ends under load, as a separate process on 127.0.0.1.
//
//   REST: POST /stir/v1/signing (ATIS-1000082) with the software-key ("file") profile, plain
//   HTTP/1.1 keep-alive, against `secsipidx -http-srv` signing with the same PEM key; both
//   driven by load_bench's HTTP driver (http_load.h: one epoll thread, --conns connections each
//   with one request outstanding), one after the other on the same 2 cores, in --rounds
//   alternating rounds (the machine's other load hits both alike); the figures are the medians
//   of the rounds.
//   SIP: then, in the same run, the sip_bench program (bench/sip_bench.cc: SIP 302 signing
//   driven by SIPp over UDP against unary gRPC Sign on one shakend, --seconds per phase); its
//   output is passed through and its summary line read.
//
// Summary line:
//   sbc_bench: rest_vs_secsipidx=X sip_vs_grpc=Y sip_failed=N
// Targets (bench/README.md): rest_vs_secsipidx >= 1.0 with shakend's REST p99 <= 2 ms;
// sip_vs_grpc >= 1.0 with sip_failed = 0. Exit 1 when a REST answer was not a signature or the
// SIP phase failed a call (figures are not asserted: the smoke test runs 1 s on a busy machine).
#include <signal.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <algorithm>
#include <cstdio>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "bench/http_load.h"
#include "bench/latency_recorder.h"
#include "bench/load_support.h"
#include "tests/daemon_fixture.h"
#include "tests/testing/subprocess.h"

namespace {

using namespace shaken;         // NOLINT: a benchmark's main file
using namespace shaken::bench;  // NOLINT

void Replace(std::string* s, const std::string& from, const std::string& to) {
  const size_t at = s->find(from);
  if (at == std::string::npos) Die("unexpected configuration: no " + from);
  s->replace(at, from.size(), to);
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

double Median(std::vector<double> v) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
  int seconds = 8, conns = 8, rounds = 3;
  std::string shakend_binary = SHAKEND_BINARY, secsipidx = "/usr/bin/secsipidx";
  std::string sip_bench = SIP_BENCH_BINARY;
  bool sip = true;
  CLI::App app{"sbc_bench: shakend's REST front end against secsipidx's HTTP server "
               "(bench/README.md)"};
  auto positive = CLI::PositiveNumber;
  app.add_option("--seconds", seconds, "each measured phase")->check(positive)->capture_default_str();
  app.add_option("--conns", conns, "keep-alive connections")->check(positive)->capture_default_str();
  app.add_option("--rounds", rounds, "alternating rounds")->check(positive)->capture_default_str();
  app.add_option("--shakend", shakend_binary, "the shakend binary")->capture_default_str();
  app.add_option("--secsipidx", secsipidx, "the secsipidx binary")->capture_default_str();
  app.add_option("--sip-bench", sip_bench, "the sip_bench binary (the SIP phase)")
      ->capture_default_str();
  app.add_flag("--sip,!--no-sip", sip, "run the SIP phase (sip_bench)")->capture_default_str();
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e) == 0 ? 0 : 2;
  }
  conns = std::min(conns, 256);
  rounds = std::min(rounds, 20);

  // shakend: the fixture's configuration without TLS or client rules (so anonymous REST callers
  // may sign), a plain-HTTP REST listener, and the "file" profile made the default.
  const int rest_port = testing::FreeLoopbackPort();
  std::unique_ptr<testing::DaemonEnv> env =
      Must(testing::DaemonEnv::Create({.health_listener = false,
                                       .metrics_listener = false,
                                       .plaintext = true,
                                       .listen_extra_yaml = absl::StrCat(
                                           "  rest:\n    address: 127.0.0.1:", rest_port,
                                           "\n    allow_insecure: true\n"),
                                       .start_daemon = false}),
           "set-up");
  std::string yaml = env->config_yaml();
  Replace(&yaml, "    default: true\n", "");
  Replace(&yaml, "    attest: [C]\n", "    attest: [C]\n    default: true\n");
  const std::string config = env->dir() + "/sbc_bench.yaml";
  std::ofstream(config) << yaml;
  auto shakend = StartChild({shakend_binary, "--config", config}, env->dir() + "/shakend.log");
  WaitListening(*shakend, rest_port, "shakend");
  const std::string rest = Post(
      rest_port, "/stir/v1/signing", "application/json",
      absl::StrCat(R"({"signingRequest":{"attest":"C","orig":{"tn":")", kOrig,
                   R"("},"dest":{"tn":[")", kDest, R"("]}}})"));

  // secsipidx: the same key, the same x5u, the same connections.
  const bool have_peer = access(secsipidx.c_str(), X_OK) == 0;
  std::unique_ptr<testing::Child> peer;
  const int sport = testing::FreeLoopbackPort();
  const std::string peer_req = Post(sport, "/v1/sign-csv", "text/plain",
                                    absl::StrCat(kOrig, ",", kDest, ",C,,", env->file_x5u()));
  if (have_peer) {
    peer = StartChild({secsipidx, "-http-srv", absl::StrCat("127.0.0.1:", sport), "-k",
                       env->FileKeyPath()},
                      env->dir() + "/secsipidx.log");
    WaitListening(*peer, sport, "secsipidx");
  } else {
    std::printf("%s not installed (Debian package secsipidx): no comparison\n", secsipidx.c_str());
  }

  const std::string load_before = LoadAverage();
  ChargeServerCpuTo(shakend->pid());
  RunHttp("warm-up", rest_port, rest, conns, 1.0);
  if (have_peer) {
    ChargeServerCpuTo(peer->pid());
    RunHttp("warm-up", sport, peer_req, conns, 1.0);
  }
  std::vector<double> rest_rates, rest_p99s, ratios;
  uint64_t rest_errors = 0;
  size_t rest_calls = 0;
  const std::string detail = absl::StrCat(conns, " keep-alive connections");
  for (int round = 0; round < rounds; ++round) {
    ChargeServerCpuTo(shakend->pid());
    LatencyRecorder r = RunHttp("shakend REST signing", rest_port, rest, conns, seconds);
    r.Print(detail);
    rest_rates.push_back(r.rate());
    rest_p99s.push_back(r.PercentileMs(99));
    rest_errors += r.errors();
    rest_calls += r.count();
    if (have_peer) {
      ChargeServerCpuTo(peer->pid());
      LatencyRecorder p = RunHttp("secsipidx sign-csv", sport, peer_req, conns, seconds);
      p.Print(detail);
      ratios.push_back(p.rate() > 0 ? r.rate() / p.rate() : 0.0);
    }
  }
  ChargeServerCpuTo(-1);
  StopChild(shakend, SIGTERM);
  if (peer != nullptr) StopChild(peer, SIGTERM);

  std::printf("sbc_bench_rest: rounds=%d rest_per_s=%.0f rest_p99_ms=%.2f (medians; load average "
              "%s before, %s after, %ld cores)\n",
              rounds, Median(rest_rates), Median(rest_p99s), load_before.c_str(),
              LoadAverage().c_str(), sysconf(_SC_NPROCESSORS_ONLN));
  std::fflush(stdout);
  env.reset();

  // The SIP phase: sip_bench as a child (its own shakend, SIPp and gRPC load), after the REST
  // servers are gone so that the two phases do not share the cores.
  std::string sip_vs_grpc = "n/a", sip_failed = "n/a";
  bool sip_ok = true;
  if (sip) {
    testing::RunOptions o;
    // Its warm-up, `rounds` rounds of two phases, the ceiling; SIPp's own time-outs.
    o.timeout = absl::Seconds(8 * seconds * (rounds + 1) + 180);
    const testing::RunResult r = testing::RunCommand(
        {sip_bench, absl::StrCat("--seconds=", seconds), absl::StrCat("--rounds=", rounds)}, o);
    std::fputs(r.out.c_str(), stdout);
    if (!r.err.empty()) std::fputs(r.err.c_str(), stderr);
    sip_ok = r.exit_code == 0;
    for (absl::string_view line : absl::StrSplit(r.out, '\n')) {
      if (!absl::ConsumePrefix(&line, "sip_bench: ")) continue;
      for (absl::string_view field : absl::StrSplit(line, ' ')) {
        if (absl::ConsumePrefix(&field, "sip_vs_grpc=")) sip_vs_grpc = std::string(field);
        if (absl::ConsumePrefix(&field, "sip_failed=")) sip_failed = std::string(field);
      }
    }
    if (sip_vs_grpc == "n/a") {
      std::printf("sip_bench gave no summary (exit %d%s)\n", r.exit_code,
                  r.timed_out ? ", timed out" : "");
      sip_ok = false;
    }
  }
  std::printf("sbc_bench: rest_vs_secsipidx=%.2f sip_vs_grpc=%s sip_failed=%s\n", Median(ratios),
              sip_vs_grpc.c_str(), sip_failed.c_str());
  std::fflush(stdout);
  _exit(rest_errors > 0 || rest_calls == 0 || !sip_ok ? 1 : 0);
}
