// sip_bench: SIP 302 signing (listen.sip over UDP, SIPp as the SBC) against unary gRPC Sign, on
// one shakend process, in one run (targets and results: bench/README.md).
//
//   1. Starts the `shakend` binary (mTLS API; profile "token": a SoftHSM2 key, pool 2 x cores;
//      listen.sip on UDP; audit records to /dev/null) and waits for its health listener.
//   2. Warm-up: 1 s of gRPC, then SIP calls for about 2 s at that rate, so that the redirect
//      server is in its steady state (an answered INVITE keeps its transaction for Timer I after
//      the ACK; the table and the heap under it grow until then).
//   3. --rounds rounds, each: unary Sign (token, attest A) closed-loop on one mTLS channel,
//      async API, --inflight calls outstanding for --seconds; then SIPp (bench/sip_sign.xml)
//      closed-loop too (-users: a call starts when one ends) with --inflight calls outstanding,
//      as many calls as that round's gRPC phase made. Each 302 must carry an Identity (else the
//      call fails); each is ACKed. The SIP rate is successful calls over SIPp's run time; the
//      round's ratio is SIP over gRPC. Alternating the two keeps a shared machine's changing
//      speed from favouring one; the summary is the median of the rounds' ratios.
//   4. The load generator's ceiling: the same SIPp run against a SIPp UAS that answers at once
//      (bench/sip_uas_302.xml).
// Every loop is bounded in count and time. Ends with one line:
//   sip_bench: sip_vs_grpc=Y sip_failed=N sip_vs_sipp_ceiling=Z
// where sip_failed counts SIPp's failed calls plus its retransmitted messages (a retransmission
// means an answer came later than SIP's T1, 500 ms), and SIPp's error log is printed.
//
// Flags: --seconds=N (each phase, default 8), --rounds=N (3), --inflight=N (64), --pool=N
// (token sessions, default 2 x cores), --sipp=N (SIPp processes sharing the SIP load, 1: one
// SIPp in closed loop drives some 40,000 calls/s against an instant answer here).
#include <signal.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <fstream>
#include <thread>

#include <grpcpp/grpcpp.h>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/match.h"
#include "absl/strings/strip.h"
#include "absl/strings/ascii.h"
#include "absl/time/clock.h"
#include "bench/grpc_load.h"
#include "bench/latency_recorder.h"
#include "bench/load_support.h"
#include "shaken/v1/shaken.grpc.pb.h"
#include "tests/daemon_fixture.h"
#include "tests/testing/subprocess.h"

namespace shaken {
namespace {

using bench::Die;
using bench::Must;

// SIPp's socket buffers (-buff_size): the kernel's default (208 KiB) drops datagrams when 64
// answers arrive at once on a loaded machine, and a lost datagram costs a call SIP's T1.
constexpr char kSippSocketBuffer[] = "4194304";

struct Flags {
  int seconds = 8;
  int inflight = 64;
  int pool = 0;
  int sipp = 1;  // SIPp processes
  int rounds = 3;
};

Flags ParseFlags(int argc, char** argv) {
  Flags f;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    const size_t eq = a.find('=');
    int v = 0;
    if (eq == std::string::npos || !absl::SimpleAtoi(a.substr(eq + 1), &v) || v <= 0) {
      Die("usage: sip_bench [--seconds=8] [--rounds=3] [--inflight=64] [--pool=2xcores] "
          "[--sipp=1]");
    }
    const std::string name = a.substr(0, eq);
    if (name == "--seconds") {
      f.seconds = v;
    } else if (name == "--inflight") {
      f.inflight = v;
    } else if (name == "--pool") {
      f.pool = v;
    } else if (name == "--sipp") {
      f.sipp = v;
    } else if (name == "--rounds") {
      f.rounds = v;
    } else {
      Die("unknown flag " + name);
    }
  }
  return f;
}

// RusageSeconds: CPU time of this process (RUSAGE_SELF) or of its reaped children.
double RusageSeconds(int who) {
  rusage u{};
  getrusage(who, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

struct SippResult {
  double rate = 0;
  uint64_t ok = 0;
  uint64_t failed = 0;
  uint64_t retransmissions = 0;
  double seconds = 0;
  std::string errors;  // the start of SIPp's error log when a call failed
};

// SippStats reads a SIPp statistics file (-trace_stat): a header line of `;`-separated names,
// then one line per dump; the last holds the cumulative counters.
SippResult SippStats(const std::string& path, const std::string& log) {
  std::vector<std::string> lines =
      absl::StrSplit(testing::ReadFileOrEmpty(path), '\n', absl::SkipEmpty());
  if (lines.size() < 2) Die("sipp wrote no statistics:\n" + log.substr(0, 4000));
  std::vector<std::string> names = absl::StrSplit(lines.front(), ';');
  std::vector<std::string> values = absl::StrSplit(lines.back(), ';');
  auto counter = [&](const std::string& name) -> uint64_t {
    for (size_t i = 0; i < names.size() && i < values.size(); ++i) {
      uint64_t v = 0;
      if (names[i] == name && absl::SimpleAtoi(values[i], &v)) return v;
    }
    Die("sipp statistics have no " + name);
  };
  // Run time: from the StartTime to the CurrentTime of the last dump ("date\ttime\tepoch"), so
  // that SIPp's start-up and exit do not count.
  auto epoch = [&](const std::string& name) -> double {
    for (size_t i = 0; i < names.size() && i < values.size(); ++i) {
      double v = 0;
      const size_t tab = values[i].rfind('\t');
      if (names[i] == name && tab != std::string::npos &&
          absl::SimpleAtod(values[i].substr(tab + 1), &v)) {
        return v;
      }
    }
    Die("sipp statistics have no " + name);
  };
  SippResult r;
  r.seconds = epoch("CurrentTime") - epoch("StartTime");
  if (r.seconds <= 0) Die("sipp statistics: no run time");
  r.ok = counter("SuccessfulCall(C)");
  r.failed = counter("FailedCall(C)");
  r.retransmissions = counter("Retransmissions(C)");
  return r;
}

// Sipp runs `calls` calls of bench/sip_sign.xml against UDP `port` from `processes` SIPp
// processes at once (one SIPp is one thread), `inflight` calls outstanding in all. The rate is
// all their successful calls over the longest run time.
SippResult Sipp(const std::string& dir, int port, int inflight, uint64_t calls, int processes,
                int timeout_s) {
  std::vector<std::unique_ptr<testing::Child>> children;
  std::vector<std::string> stats, errors;
  for (int i = 0; i < processes; ++i) {
    stats.push_back(absl::StrCat(dir, "/sipp-stats-", i, ".csv"));
    errors.push_back(absl::StrCat(dir, "/sipp-errors-", i, ".log"));
    std::remove(stats.back().c_str());
    std::remove(errors.back().c_str());
    children.push_back(
        bench::StartChild(
            {"sipp", absl::StrCat("127.0.0.1:", port), "-sf", SIP_SCENARIO, "-t", "u1", "-i",
             "127.0.0.1", "-p", absl::StrCat(testing::FreeLoopbackPort()), "-nostdin", "-users",
             absl::StrCat(std::max(1, inflight / processes)), "-m",
             absl::StrCat(std::max<uint64_t>(1, calls / processes)), "-timeout",
             absl::StrCat(timeout_s, "s"), "-recv_timeout", "5000", "-trace_stat", "-stf",
             stats.back(), "-fd", "3600", "-buff_size", kSippSocketBuffer, "-trace_err",
             "-error_file", errors.back()},
            absl::StrCat(dir, "/sipp-", i, ".log")));
  }
  SippResult total;
  for (int i = 0; i < processes; ++i) {
    if (!children[i]->Wait(absl::Seconds(timeout_s + 30)).has_value()) Die("sipp did not finish");
    const SippResult r = SippStats(stats[i], children[i]->Log());
    bench::StopChild(children[i], SIGTERM);  // exited: only forgotten
    total.ok += r.ok;
    total.failed += r.failed;
    total.retransmissions += r.retransmissions;
    total.seconds = std::max(total.seconds, r.seconds);
    if (r.failed > 0 && total.errors.empty()) {
      total.errors = testing::ReadFileOrEmpty(errors[i]).substr(0, 3000);
    }
  }
  total.rate = static_cast<double>(total.ok) / total.seconds;
  return total;
}

int Main(int argc, char** argv) {
  Flags flags = ParseFlags(argc, argv);
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  if (flags.pool <= 0) flags.pool = 2 * cores;
  const int sip_port = testing::FreeLoopbackPort();
  const int health = testing::FreeLoopbackPort();
  auto env = Must(testing::DaemonEnv::Create(
                      {.pool_size = flags.pool,
                       .metrics_listener = false,
                       .api_port = testing::FreeLoopbackPort(),
                       .health_port = health,
                       .extra_yaml = "logging:\n  audit_file: /dev/null\n",
                       .listen_extra_yaml = absl::StrCat("  sip: {udp: \"127.0.0.1:", sip_port,
                                                         "\"}\n"),
                       .clients_extra_yaml = "  - {identity: sbc-sip, methods: [Sign], "
                                             "profiles: [token], sources: [127.0.0.1/32]}\n",
                       .start_daemon = false}),
                  "test environment");
  const std::string dir = env->dir();
  const std::string config = env->config_path();
  std::unique_ptr<testing::Child> shakend_child =
      bench::StartChild({SHAKEND_BINARY, "--config", config}, dir + "/shakend.log");
  testing::Child& shakend = *shakend_child;
  bench::WaitServing(shakend, absl::StrCat("127.0.0.1:", health), "shakend");

  grpc::SslCredentialsOptions so;
  so.pem_root_certs = testing::ReadFileOrEmpty(env->TlsCaFile());
  so.pem_cert_chain = testing::ReadFileOrEmpty(env->ClientCertFile("sbc1.test"));
  so.pem_private_key = testing::ReadFileOrEmpty(env->ClientKeyFile("sbc1.test"));
  grpc::ChannelArguments args;
  args.SetSslTargetNameOverride("localhost");
  auto channel = grpc::CreateCustomChannel(absl::StrCat("127.0.0.1:", env->options().api_port),
                                           grpc::SslCredentials(so), args);
  if (!channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(10))) {
    Die("cannot connect to shakend's API");
  }
  auto stub = shaken::v1::Shaken::NewStub(channel);
  std::printf("sip_bench: %d cores, pool %d sessions, %d in flight, %d rounds of %d s per phase; "
              "load %s",
              cores, flags.pool, flags.inflight, flags.rounds, flags.seconds,
              testing::ReadFileOrEmpty("/proc/loadavg").c_str());

  // load_bench's closed-loop driver; the recorder charges shakend's CPU per call.
  bench::ChargeServerCpuTo(shakend.pid());
  const shaken::v1::SignRequest sign = bench::MakeSign("token", "A");
  const auto target = bench::SignTarget(stub.get(), sign);
  const bench::LatencyRecorder warm = bench::RunClosed("warm-up", target, flags.inflight, 1.0);
  // The SIP warm-up runs until the redirect server is in its steady state: an answered INVITE
  // keeps its transaction for Timer I (listen.sip.timer_i, 500 ms) after the ACK, so the table
  // (and the heap under it) grows for the first Timer I of any run; measuring inside that ramp
  // would charge it to every call. Two seconds of calls cover it four times.
  const uint64_t warm_calls = std::max<uint64_t>(1000, static_cast<uint64_t>(warm.rate() * 2));
  const SippResult warm_sip = Sipp(dir, sip_port, flags.inflight, warm_calls, flags.sipp, 90);
  if (warm_sip.failed > 0) Die("SIP warm-up: calls failed:\n" + warm_sip.errors);

  // Rounds alternate the two phases, so that the machine's changing speed (a shared virtual
  // machine) hits both alike; the figure is the median of the rounds' ratios.
  std::vector<double> ratios;
  uint64_t sip_failed = 0, failed_calls = 0, grpc_errors = 0;
  double last_sip_rate = 0;
  uint64_t last_calls = 1000;
  for (int round = 1; round <= flags.rounds; ++round) {
    bench::LatencyRecorder grpc = bench::RunClosed(
        absl::StrCat("gRPC unary Sign, round ", round), target, flags.inflight, flags.seconds);
    grpc.Print(absl::StrCat(flags.inflight, " in flight"));
    grpc_errors += grpc.errors();
    last_calls = std::max<uint64_t>(1000, static_cast<uint64_t>(grpc.rate() * flags.seconds));
    const int64_t server0 = bench::ProcCpuNs(shakend.pid());
    const double client0 = RusageSeconds(RUSAGE_CHILDREN);
    const SippResult sip =
        Sipp(dir, sip_port, flags.inflight, last_calls, flags.sipp, 4 * flags.seconds + 30);
    const double sip_calls = static_cast<double>(sip.ok + sip.failed);
    std::printf("%-28s %9.0f /s  (%llu ok in %.2f s, %llu failed, %llu retransmissions)  "
                "cpu/call: shakend %.0f us, SIPp %.0f us\n",
                absl::StrCat("SIP 302 sign, round ", round).c_str(), sip.rate,
                static_cast<unsigned long long>(sip.ok), sip.seconds,
                static_cast<unsigned long long>(sip.failed),
                static_cast<unsigned long long>(sip.retransmissions),
                1e-3 * static_cast<double>(bench::ProcCpuNs(shakend.pid()) - server0) / sip_calls,
                1e6 * (RusageSeconds(RUSAGE_CHILDREN) - client0) / sip_calls);
    if (sip.failed > 0) std::printf("SIPp's errors:\n%s\n", sip.errors.c_str());
    sip_failed += sip.failed + sip.retransmissions;
    failed_calls += sip.failed;
    last_sip_rate = sip.rate;
    ratios.push_back(grpc.rate() > 0 ? sip.rate / grpc.rate() : 0.0);
  }
  stub.reset();
  channel.reset();

  // The generator's ceiling: the same load against an instant answer.
  const int uas_port = testing::FreeLoopbackPort();
  std::unique_ptr<testing::Child> uas =
      bench::StartChild({"sipp", "-sf", SIP_UAS_SCENARIO, "-t", "u1", "-i", "127.0.0.1", "-p",
                         absl::StrCat(uas_port), "-nostdin", "-buff_size", kSippSocketBuffer,
                         "-timeout", absl::StrCat(4 * flags.seconds + 60, "s")},
                        dir + "/uas.log");
  absl::SleepFor(absl::Milliseconds(300));
  const SippResult ceiling =
      Sipp(dir, uas_port, flags.inflight, last_calls, flags.sipp, 4 * flags.seconds + 30);
  bench::StopChild(uas, SIGTERM);
  std::printf("%-28s %9.0f /s  (SIPp against an instant 302: the load generator's limit)\n",
              "SIPp ceiling", ceiling.rate);

  // The redirect server's memory: answered transactions are kept Timer I after their ACK.
  for (absl::string_view line : absl::StrSplit(
           testing::ReadFileOrEmpty(absl::StrCat("/proc/", shakend.pid(), "/status")), '\n')) {
    if (absl::ConsumePrefix(&line, "VmHWM:")) {
      std::printf("shakend peak RSS %s\n", std::string(absl::StripAsciiWhitespace(line)).c_str());
    }
  }
  bench::StopChild(shakend_child, SIGTERM);
  std::sort(ratios.begin(), ratios.end());
  std::printf("sip_bench: sip_vs_grpc=%.2f sip_failed=%llu sip_vs_sipp_ceiling=%.2f\n",
              ratios[ratios.size() / 2], static_cast<unsigned long long>(sip_failed),
              ceiling.rate > 0 ? last_sip_rate / ceiling.rate : 0.0);
  // A failed call is a bug whatever the speed (the smoke test relies on it); a retransmission
  // on a loaded machine is not, and only counts against the figure.
  return grpc_errors == 0 && failed_calls == 0 ? 0 : 1;
}

}  // namespace
}  // namespace shaken

int main(int argc, char** argv) { return shaken::Main(argc, argv); }
