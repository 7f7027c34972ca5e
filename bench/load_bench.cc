// load_bench: shakend under load, as a separate process on 127.0.0.1, against in-process
// denominators and against secsipidx's HTTP signing server (targets and results: bench/README.md).
//
//   1. Starts the `shakend` binary (mTLS; profile "token": a SoftHSM2 key, pool sized for this
//      machine; profile "file": a PEM key, attest C) and waits for its health listener.
//   2. In process, 2 threads each: hsm::KeyPool::SignDigest on the same token key with the same
//      pool options ("pool"), and stir::Verifier with a warm X5uCertificateSource ("inproc
//      verify"). These are the denominators.
//   3. gRPC load on one mTLS channel, async API (one CompletionQueue driven by one thread):
//      unary Sign (token), SignStream (token; several streams, each pipelined), Verify (warm
//      certificate cache; every verdict must pass), each closed-loop with N calls in flight.
//   4. Unary Sign open-loop at 80 % of the measured unary maximum (right after it): a call every
//      1/rate s from a pacing thread, latency counted from the scheduled send time (no
//      coordinated omission).
//   5. shakend's "file" profile against `secsipidx -http-srv` with the same PEM key, the same
//      concurrency (HTTP/1.1 keep-alive connections, one epoll thread), the same 2 cores.
//   6. The floor: the same phases against a server that does nothing but the gRPC call and the
//      cryptographic operation, with shakend's keys, pool options, verifier and TLS settings
//      (bench/floor_server.cc, the load_bench_floor binary), each phase in alternating shakend /
//      floor pairs (--floor-rounds). It bounds what any shaken.v1 server can reach here.
//   7. VmRSS of the shakend process after the first second of load and at the end (--soak adds
//      five minutes of mixed Sign / SignStream / Verify load).
// Every loop is bounded in count and time. Ends with the floor's ratios and then one line:
//   load_bench_floor: sign_vs_pool=... (the same five figures for the floor server)
//   load_bench: sign_vs_pool=X stream_vs_pool=S verify_vs_inproc=Y sign_p99_ms=Z soft_vs_secsipidx=W
//
// Flags: --seconds=N (each measured phase, default 8), --inflight=N (unary and Verify, 16),
// --streams=N --window=N (SignStream, 4 x 8), --pool=N (token sessions, default 2 x cores),
// --soft-inflight=N (file profile and secsipidx, 8), --inproc-seconds=N (4), --soak,
// --soak-seconds=N (300), --floor-rounds=N (3), --only=PHASES (comma-separated: sign, paced,
// stream, verify, file, secsipidx, floor, slowhsm, storm; default all), --plaintext (API listener
// without TLS),
// --shakend, --floor-server, --secsipidx (the binaries; --help shows the defaults).
//
// Files: this one (flags, phases, main); latency_recorder.h (the per-phase recorder);
// grpc_load.h (the gRPC drivers); http_load.h (the HTTP driver for secsipidx); floor_server.cc
// (the floor, its own binary); load_support.h (children, clocks, /proc figures).
//
// Production latency: "slowhsm" starts a second shakend whose token signs
// through the fault-injecting PKCS#11 module at 5 ms per signature, 32 sessions, 64 calls in
// flight (Little's law bound: 6,400/s); "storm" measures Sign at --inflight calls before and while
// 200 Verify calls wait on x5u URLs that answer after 3 s. Summary:
//   load_bench_latency: slowhsm_vs_bound=X storm_sign_p99_ratio=Y storm_sign_failures=N
#include <grpcpp/grpcpp.h>
#include <signal.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "bench/grpc_load.h"
#include "bench/http_load.h"
#include "bench/latency_recorder.h"
#include "bench/load_support.h"
#include "daemon/config.h"
#include "hsm/key_pool.h"
#include "hsm/secret.h"
#include "shaken/v1/shaken.grpc.pb.h"
#include "stir/openssl_util.h"
#include "stir/verification_stack.h"
#include "tests/daemon_fixture.h"
#include "tests/testing/softhsm_token.h"
#include "tests/testing/subprocess.h"

namespace {

using namespace shaken;         // NOLINT: a benchmark's main file
using namespace shaken::bench;  // NOLINT
constexpr int kIdentities = 64;         // distinct PASSporTs cycled through by Verify

struct Flags {
  int seconds = 8;
  int inflight = 16;
  int streams = 4;
  int window = 8;
  int pool = 0;  // 0: 2 x cores
  int soft_inflight = 8;
  int inproc_seconds = 4;
  bool soak = false;
  bool plaintext = false;  // no TLS on the API listener: splits TLS from gRPC in the figures
  int soak_seconds = 300;
  int floor_rounds = 3;  // alternating shakend / floor pairs per phase
  std::string shakend = SHAKEND_BINARY;
  std::string floor_server = FLOOR_SERVER_BINARY;
  std::string secsipidx = "/usr/bin/secsipidx";
  std::string only;  // comma-separated phases (sign,paced,stream,verify,file,secsipidx,floor)

  // Runs: whether --only selects `phase`. "floor" alone (no gRPC phase named) selects every gRPC
  // phase, against shakend and the floor.
  bool Runs(absl::string_view phase) const {
    if (only.empty()) return true;
    static constexpr absl::string_view kGrpcPhases[] = {"sign", "paced", "stream", "verify",
                                                        "file"};
    bool floor = false, any_grpc_phase = false;
    for (absl::string_view p : absl::StrSplit(only, ',')) {
      if (p == phase) return true;
      floor = floor || p == "floor";
      for (absl::string_view g : kGrpcPhases) any_grpc_phase = any_grpc_phase || p == g;
    }
    if (!floor || any_grpc_phase) return false;
    if (phase == "slowhsm" || phase == "storm") return false;  // not floor phases
    for (absl::string_view g : kGrpcPhases) {
      if (g == phase) return true;
    }
    return false;
  }
};

// `threads` threads call fn() for `seconds`; returns calls per second (and this process's CPU
// time per call in *cpu_us), or Die()s on an error.
double RunThreads(int threads, double seconds, const std::function<absl::Status()>& fn,
                  double* cpu_us = nullptr) {
  const int64_t cpu0 = SelfCpuNs();
  std::atomic<uint64_t> total{0};
  std::atomic<bool> failed{false};
  std::string error;
  std::mutex mu;
  const int64_t t0 = NowNs(), end = t0 + static_cast<int64_t>(seconds * 1e9);
  std::vector<std::thread> ts;
  for (int i = 0; i < threads; ++i) {
    ts.emplace_back([&] {
      uint64_t n = 0;
      while (!failed.load(std::memory_order_relaxed)) {
        for (int k = 0; k < 16; ++k, ++n) {
          absl::Status s = fn();
          if (!s.ok()) {
            std::lock_guard<std::mutex> l(mu);
            error = std::string(s.message());
            failed = true;
            break;
          }
        }
        if (NowNs() >= end) break;
      }
      total += n;
    });
  }
  for (auto& t : ts) t.join();
  if (failed) Die("in-process run failed: " + error);
  if (cpu_us != nullptr) *cpu_us = total.load() > 0 ? (SelfCpuNs() - cpu0) / 1e3 / total.load() : 0;
  return total.load() * 1e9 / static_cast<double>(NowNs() - t0);
}

struct Suite {
  explicit Suite(const std::string& who)
      : unary(who + " Sign (token)"),
        paced(who + " Sign @80% (token)"),
        stream(who + " SignStream (token)"),
        verify(who + " Verify"),
        soft(who + " Sign (file key)") {}
  uint64_t errors() const {
    return unary.errors() + paced.errors() + stream.errors() + verify.errors() + soft.errors();
  }
  LatencyRecorder unary, paced, stream, verify, soft;
};

// RunSuite runs the selected phases against `stub`: unary Sign (token) closed loop, then open
// loop at 80 % of the rate just measured, SignStream, Verify (warm cache; `fresh_verify` makes
// PASSporTs within their iat window), unary Sign with the file key.
Suite RunSuite(const std::string& who, shaken::v1::Shaken::Stub* stub, const Flags& flags,
               const std::function<const std::vector<VerifyRequest>&()>& fresh_verify,
               const std::string& note) {
  const double T = flags.seconds;
  const SignRequest token_sign = MakeSign("token", "A");
  const SignRequest file_sign = MakeSign("file", "C");
  const auto token_t = SignTarget(stub, token_sign);
  Suite s(who);
  if (flags.Runs("sign") || flags.Runs("paced")) {
    s.unary = RunClosed(who + " Sign (token)", token_t, flags.inflight, T);
    s.unary.Print(absl::StrCat(flags.inflight, " in flight", note));
  }
  // Right after the maximum was measured: the machine's other load changes minute to minute.
  if (flags.Runs("paced")) {
    const double paced_rate = 0.8 * s.unary.rate();
    uint64_t late = 0;
    s.paced = RunPaced(who + " Sign @80% (token)", token_t, std::max(paced_rate, 1.0), T, &late);
    s.paced.Print(absl::StrCat("open loop at ", static_cast<long>(paced_rate), "/s, ", late,
                               " sends >1 ms late", note));
    // The pacing thread wakes up once per call: in this phase the load generator costs about
    // twice its closed-loop CPU per call, on the same cores as the server. When it cannot keep
    // to its schedule the latencies measure the machine as much as the server.
    if (late * 100 > s.paced.count()) {
      std::printf("%-26s warning: %.1f %% of the sends left more than 1 ms late: the machine, not "
                  "only the server, is saturated at this rate\n",
                  "", 100.0 * static_cast<double>(late) / static_cast<double>(s.paced.count()));
    }
  }
  if (flags.Runs("stream")) {
    RunStreams("warm-up", stub, token_sign, flags.streams, flags.window, 1.0);
    s.stream = RunStreams(who + " SignStream (token)", stub, token_sign, flags.streams,
                          flags.window, T);
    s.stream.Print(absl::StrCat(flags.streams, " streams x ", flags.window, " outstanding", note));
  }
  if (flags.Runs("verify")) {
    const auto verify_t = VerifyTarget(stub, fresh_verify());
    RunClosed("warm-up", verify_t, flags.inflight, 1.0);
    s.verify = RunClosed(who + " Verify", verify_t, flags.inflight, T);
    s.verify.Print(absl::StrCat(flags.inflight, " in flight, warm cache", note));
  }
  if (flags.Runs("file")) {
    const auto file_t = SignTarget(stub, file_sign);
    RunClosed("warm-up", file_t, flags.soft_inflight, 1.0);
    s.soft = RunClosed(who + " Sign (file key)", file_t, flags.soft_inflight, T);
    s.soft.Print(absl::StrCat(flags.soft_inflight, " in flight, 1 connection", note));
  }
  return s;
}

// A server the gRPC phases run against: shakend or the floor.
struct Target {
  std::string who;
  shaken::v1::Shaken::Stub* stub;
  pid_t pid;
  std::string note;
};

// FloorShares: shakend's rate as a share of the floor's, per phase, one figure per round.
struct FloorShares {
  std::vector<double> sign, stream, verify, file;
};

double Median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  const size_t n = v.size();
  return n % 2 == 1 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

// RunAgainstFloor runs each selected gRPC phase against shakend and the floor in `floor_rounds`
// adjacent pairs, shakend first in odd rounds and the floor first in even ones: this virtual
// machine's speed drifts by tens of percent over minutes, which a whole suite against one server
// and then the other reads as a difference between them. The open-loop phase (a latency figure)
// runs once. `ours` and `floor` get each phase's first round; every round's failed calls count.
FloorShares RunAgainstFloor(const Flags& flags, const Target& shakend, const Target& floor_target,
                            const std::function<const std::vector<VerifyRequest>&()>& fresh_verify,
                            Suite* ours, Suite* floor, uint64_t* errors) {
  FloorShares shares;
  const std::string phases[] = {"sign", "paced", "stream", "verify", "file"};
  for (const std::string& phase : phases) {
    if (!flags.Runs(phase)) continue;
    Flags one = flags;
    one.only = phase;
    const int rounds = phase == "paced" ? 1 : flags.floor_rounds;
    for (int r = 0; r < rounds; ++r) {
      Suite got[2] = {Suite(shakend.who), Suite(floor_target.who)};
      for (int k = 0; k < 2; ++k) {
        const int i = r % 2 == 0 ? k : 1 - k;
        const Target& t = i == 0 ? shakend : floor_target;
        ChargeServerCpuTo(t.pid);
        got[i] = RunSuite(t.who, t.stub, one, fresh_verify, t.note);
        *errors += got[i].errors();
      }
      auto pick = [&phase](Suite& s) -> LatencyRecorder& {
        return phase == "sign"     ? s.unary
               : phase == "paced"  ? s.paced
               : phase == "stream" ? s.stream
               : phase == "verify" ? s.verify
                                   : s.soft;
      };
      if (r == 0) {
        pick(*ours) = pick(got[0]);
        pick(*floor) = pick(got[1]);
      }
      const double floor_rate = pick(got[1]).rate();
      const double share = floor_rate > 0 ? pick(got[0]).rate() / floor_rate : 0;
      if (phase == "sign") shares.sign.push_back(share);
      if (phase == "stream") shares.stream.push_back(share);
      if (phase == "verify") shares.verify.push_back(share);
      if (phase == "file") shares.file.push_back(share);
    }
  }
  ChargeServerCpuTo(shakend.pid);
  return shares;
}

// Shares prints "M % (r1, r2, ...)": the median share and each round's, in percent.
std::string Shares(const std::vector<double>& v) {
  std::vector<std::string> each;
  for (double x : v) each.push_back(absl::StrFormat("%.0f", 100 * x));
  return absl::StrCat(absl::StrFormat("%.0f %%", 100 * Median(v)), " (",
                      absl::StrJoin(each, ", "), ")");
}

std::shared_ptr<grpc::Channel> MakeChannel(const testing::DaemonEnv& env, const std::string& target,
                                           bool plaintext) {
  if (plaintext) {
    grpc::ChannelArguments args;
    args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
    auto ch = grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
    if (!ch->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(10))) {
      Die("cannot connect to shakend at " + target);
    }
    return ch;
  }
  grpc::SslCredentialsOptions so;
  so.pem_root_certs = testing::ReadFileOrEmpty(env.TlsCaFile());
  so.pem_cert_chain = testing::ReadFileOrEmpty(env.ClientCertFile("sbc1.test"));
  so.pem_private_key = testing::ReadFileOrEmpty(env.ClientKeyFile("sbc1.test"));
  grpc::ChannelArguments args;
  args.SetSslTargetNameOverride("localhost");
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);  // a connection of its own
  auto ch = grpc::CreateCustomChannel(target, grpc::SslCredentials(so), args);
  if (!ch->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(10))) {
    Die("cannot connect to shakend at " + target);
  }
  return ch;
}


// Fresh PASSporTs from shakend's token profile (iat now: Verify checks freshness, 60 s).
std::vector<std::string> SignIdentities(shaken::v1::Shaken::Stub* stub) {
  std::vector<std::string> out;
  SignRequest req = MakeSign("token", "A");
  for (int i = 0; i < kIdentities; ++i) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    SignResponse resp;
    grpc::Status st = stub->Sign(&ctx, req, &resp);
    if (!st.ok()) Die("Sign for the Verify load: " + st.error_message());
    out.push_back(resp.identity());
  }
  return out;
}

Flags ParseFlags(int argc, char** argv) {
  Flags f;
  CLI::App app{"load_bench: shakend under load against in-process denominators, secsipidx and "
               "the floor server (bench/README.md)"};
  auto positive = CLI::PositiveNumber;
  app.add_option("--seconds", f.seconds, "each measured phase")->check(positive)->capture_default_str();
  app.add_option("--inflight", f.inflight, "unary and Verify calls in flight")
      ->check(positive)->capture_default_str();
  app.add_option("--streams", f.streams, "SignStream calls")->check(positive)
      ->capture_default_str();
  app.add_option("--window", f.window, "requests outstanding per stream")
      ->check(positive)->capture_default_str();
  app.add_option("--pool", f.pool, "token sessions (default 2 x cores)")->check(positive);
  app.add_option("--soft-inflight", f.soft_inflight, "file profile and secsipidx calls in flight")
      ->check(positive)->capture_default_str();
  app.add_option("--inproc-seconds", f.inproc_seconds, "each in-process denominator")
      ->check(positive)->capture_default_str();
  app.add_flag("--soak", f.soak, "add five minutes of mixed load, RSS every 10 s");
  app.add_option("--soak-seconds", f.soak_seconds)->check(positive)->capture_default_str();
  app.add_flag("--plaintext", f.plaintext, "API listener without TLS");
  app.add_option("--shakend", f.shakend, "the shakend binary")->capture_default_str();
  app.add_option("--floor-server", f.floor_server, "the load_bench_floor binary")
      ->capture_default_str();
  app.add_option("--secsipidx", f.secsipidx, "the secsipidx binary")->capture_default_str();
  app.add_option("--floor-rounds", f.floor_rounds,
                 "shakend / floor pairs per gRPC phase, in alternating order (the share is their "
                 "median)")
      ->check(positive)
      ->capture_default_str();
  app.add_option("--only", f.only,
                 "comma-separated phases: sign, paced, stream, verify, file, secsipidx, floor, "
                 "slowhsm, storm (default all)");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    std::exit(app.exit(e) == 0 ? 0 : 2);
  }
  f.inflight = std::min(f.inflight, 1024);
  f.soft_inflight = std::min(f.soft_inflight, 1024);
  f.streams = std::min(f.streams, 256);
  f.window = std::min(f.window, 1024);
  return f;
}

// RunSlowHsm starts a second shakend whose token profile signs through the fault-injecting
// PKCS#11 module (tests/testing/fault_pkcs11.h) with `delay` per C_Sign, like a network HSM, and
// `pool` sessions, then drives its Sign closed-loop with `inflight` calls. Little's law bounds the
// rate at pool / delay.
LatencyRecorder RunSlowHsm(const testing::DaemonEnv& env, const Flags& flags, int pool,
                           int inflight, absl::Duration delay) {
  // The API and health listeners on ports of their own, no metrics listener, the fault module in
  // front of the same SoftHSM2 token, `pool` sessions all opened at start.
  testing::DaemonEnvOptions o = env.options();
  o.api_port = testing::FreeLoopbackPort();
  o.health_port = testing::FreeLoopbackPort();
  o.metrics_listener = false;
  o.pkcs11_module = SHAKEN_FAULT_P11_MODULE;
  o.pool_size = pool;
  const std::string config = Must(env.WriteConfig("slowhsm.yaml", o), "slowhsm configuration");
  std::unique_ptr<testing::Child> slow =
      StartChild({flags.shakend, "--config", config}, env.dir() + "/slowhsm.log",
                 {{"SHAKEN_FAULT_P11_SIGN_DELAY_US",
                   absl::StrCat(absl::ToInt64Microseconds(delay))}});
  WaitServing(*slow, absl::StrCat("127.0.0.1:", o.health_port), "shakend (slowhsm)");
  auto channel = MakeChannel(env, absl::StrCat("127.0.0.1:", o.api_port), flags.plaintext);
  auto stub = shaken::v1::Shaken::NewStub(channel);
  const SignRequest sign = MakeSign("token", "A");
  const auto target = SignTarget(stub.get(), sign);
  const pid_t charged = ChargedServer();
  ChargeServerCpuTo(slow->pid());
  RunClosed("warm-up", target, inflight, 1.0);
  LatencyRecorder rec = RunClosed("slowhsm Sign (token)", target, inflight, flags.seconds);
  ChargeServerCpuTo(charged);
  rec.Print(absl::StrCat(inflight, " in flight, ", pool, " sessions, ",
                         absl::FormatDuration(delay), " per signature"));
  stub.reset();
  channel.reset();
  StopChild(slow, SIGTERM);
  return rec;
}

}  // namespace

int main(int argc, char** argv) {
  Flags flags = ParseFlags(argc, argv);
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  if (flags.pool <= 0) flags.pool = 2 * cores;
  const double T = flags.seconds;

  // The token, PKI, x5u server and client certificates; shakend runs as its own process.
  // Audit records go to /dev/null (each is still formatted and written through, as in production,
  // but a soak would otherwise fill the disk).
  // No TLS and no per-client rules with --plaintext (they name certificate identities).
  const int api = testing::FreeLoopbackPort(), health = testing::FreeLoopbackPort();
  auto env = Must(testing::DaemonEnv::Create(
                      {.pool_size = flags.pool,
                       .api_port = api,
                       .health_port = health,
                       .metrics_port = testing::FreeLoopbackPort(),
                       .plaintext = flags.plaintext,
                       .extra_yaml = "logging:\n  audit_file: /dev/null\n",
                       .start_daemon = false}),
                  "test environment");
  const std::string dir = env->dir();
  const std::string& config = env->config_path();
  std::unique_ptr<testing::Child> shakend =
      StartChild({flags.shakend, "--config", config}, dir + "/shakend.log");
  WaitServing(*shakend, absl::StrCat("127.0.0.1:", health), "shakend");
  const long rss_idle = RssKb(shakend->pid());
  ChargeServerCpuTo(shakend->pid());

  auto channel = MakeChannel(*env, absl::StrCat("127.0.0.1:", api), flags.plaintext);
  auto stub = shaken::v1::Shaken::NewStub(channel);
  std::vector<std::string> identities = SignIdentities(stub.get());

  std::printf("load_bench: %d cores, shakend pid %d, pool %d sessions, %g s per phase; load %s\n",
              cores, shakend->pid(), flags.pool, T, testing::ReadFileOrEmpty("/proc/loadavg").c_str());

  // --- in-process denominators (shakend idle) ---
  testing::SoftHsmToken& token = testing::SoftHsmToken::Shared();
  hsm::SignerConfig sc;
  sc.module_path = token.module_path();
  sc.key_uri = env->token_key_uri();
  sc.pin = hsm::PinSource::FromFile(token.pin_file());
  sc.pool.size = flags.pool;  // the daemon's pkcs11 options (tests/daemon_fixture.cc)
  sc.pool.open_at_start = flags.pool;
  sc.pool.backoff_initial = absl::Milliseconds(20);
  sc.pool.backoff_max = absl::Milliseconds(200);
  std::unique_ptr<hsm::KeyPool> pool = Must(hsm::OpenKeyPool(sc), "in-process key pool");
  const stir::Sha256Digest digest = stir::Sha256("load_bench: a PASSporT header.claims");
  auto pool_sign = [&]() -> absl::Status { return pool->SignDigest(digest).status(); };
  RunThreads(2, 0.5, pool_sign);  // warm-up
  double pool_cpu = 0, verify_cpu = 0;
  const double pool_rate = RunThreads(2, flags.inproc_seconds, pool_sign, &pool_cpu);
  std::printf("%-26s %9.0f /s  cpu/call %.0f us  (hsm::KeyPool::SignDigest, 2 threads)\n",
              "inproc pool sign", pool_rate, pool_cpu);

  // The same verifier settings as shakend's (its configuration's verifier section).
  std::unique_ptr<stir::VerificationStack> inproc =
      MakeVerifier(Must(daemon::LoadConfig(config), "configuration").verifier);
  const stir::Verifier& verifier = inproc->verifier();
  const stir::CallInfo call{.from_tn = kOrig, .to_tns = {kDest}};
  std::atomic<uint64_t> vi{0};
  auto inproc_verify = [&]() -> absl::Status {
    const std::string& id = identities[vi.fetch_add(1, std::memory_order_relaxed) % kIdentities];
    absl::StatusOr<stir::VerifyResult> r = verifier.Verify({id}, call);
    if (!r.ok()) return r.status();
    if (!r->overall.passed) return absl::InternalError("verdict: " + r->overall.detail);
    return absl::OkStatus();
  };
  RunThreads(2, 0.5, inproc_verify);  // warm-up: one x5u fetch, one chain validation
  const double verify_rate = RunThreads(2, flags.inproc_seconds, inproc_verify, &verify_cpu);
  std::printf("%-26s %9.0f /s  cpu/call %.0f us  (stir::Verifier, warm x5u cache, 2 threads)\n",
              "inproc stir verify", verify_rate, verify_cpu);
  std::fflush(stdout);

  // --- gRPC load ---
  const SignRequest token_sign = MakeSign("token", "A");
  const SignRequest file_sign = MakeSign("file", "C");
  std::vector<VerifyRequest> verify_reqs(kIdentities);
  // Fresh PASSporTs from shakend (Verify checks iat against a 60 s window).
  auto refresh_verify = [&]() -> const std::vector<VerifyRequest>& {
    identities = SignIdentities(stub.get());
    for (int i = 0; i < kIdentities; ++i) {
      verify_reqs[i].Clear();
      verify_reqs[i].add_identity(identities[i]);
      verify_reqs[i].mutable_from()->set_tn(kOrig);
      verify_reqs[i].mutable_to()->add_tn(kDest);
    }
    return verify_reqs;
  };
  const auto token_t = SignTarget(stub.get(), token_sign);
  const auto verify_target = VerifyTarget(stub.get(), verify_reqs);

  // The floor: the same keys and verifier behind a server that does nothing else. It runs beside
  // shakend so that their phases can alternate.
  std::unique_ptr<testing::Child> floor_server;
  std::shared_ptr<grpc::Channel> fchannel;
  std::unique_ptr<shaken::v1::Shaken::Stub> fstub;
  if (flags.Runs("floor")) {
    const int fport = testing::FreeLoopbackPort();
    floor_server =
        StartChild({flags.floor_server, "--config", config, "--port", absl::StrCat(fport)},
                   dir + "/floor.log");
    WaitListening(*floor_server, fport, "the floor server");
    fchannel = MakeChannel(*env, absl::StrCat("127.0.0.1:", fport), flags.plaintext);
    fstub = shaken::v1::Shaken::NewStub(fchannel);
    ChargeServerCpuTo(floor_server->pid());
    RunClosed("warm-up", SignTarget(fstub.get(), token_sign), flags.inflight, 1.0);
    ChargeServerCpuTo(shakend->pid());
  }

  RunClosed("warm-up", token_t, flags.inflight, 1.0);
  const long rss_start = RssKb(shakend->pid());
  Suite grpc("grpc");
  Suite floor("floor");
  FloorShares shares;
  uint64_t floor_round_errors = 0;
  if (fstub == nullptr) {
    grpc = RunSuite("grpc", stub.get(), flags, refresh_verify, "");
  } else {
    shares = RunAgainstFloor(flags, {"grpc", stub.get(), shakend->pid(), ""},
                             {"floor", fstub.get(), floor_server->pid(), "; floor server"},
                             refresh_verify, &grpc, &floor, &floor_round_errors);
    fstub.reset();
    fchannel.reset();
    StopChild(floor_server, SIGTERM);
  }
  LatencyRecorder& unary = grpc.unary;
  LatencyRecorder& paced = grpc.paced;
  LatencyRecorder& stream = grpc.stream;
  LatencyRecorder& verify = grpc.verify;
  LatencyRecorder& soft = grpc.soft;

  LatencyRecorder peer("secsipidx sign-csv");
  if (flags.Runs("secsipidx")) {
    const int sport = testing::FreeLoopbackPort();
    std::unique_ptr<testing::Child> secsipidx =
        StartChild({flags.secsipidx, "-http-srv", absl::StrCat("127.0.0.1:", sport), "-k",
                    env->FileKeyPath()},
                   dir + "/secsipidx.log");
    WaitListening(*secsipidx, sport, "secsipidx");
    const std::string body = absl::StrCat(kOrig, ",", kDest, ",C,,", env->file_x5u());
    const std::string http = absl::StrCat("POST /v1/sign-csv HTTP/1.1\r\nHost: 127.0.0.1:", sport,
                                          "\r\nContent-Type: text/plain\r\nContent-Length: ",
                                          body.size(), "\r\n\r\n", body);
    ChargeServerCpuTo(secsipidx->pid());
    RunHttp("warm-up", sport, http, flags.soft_inflight, 1.0);
    peer = RunHttp("secsipidx sign-csv", sport, http, flags.soft_inflight, T);
    peer.Print(absl::StrCat(flags.soft_inflight, " keep-alive connections"));
    ChargeServerCpuTo(shakend->pid());
    StopChild(secsipidx, SIGTERM);
  }

  // --- production latency ---
  LatencyRecorder slowhsm("slowhsm Sign (token)");
  constexpr int kSlowPool = 32, kSlowInflight = 64;
  constexpr absl::Duration kSlowDelay = absl::Milliseconds(5);
  if (flags.Runs("slowhsm")) {
    slowhsm = RunSlowHsm(*env, flags, kSlowPool, kSlowInflight, kSlowDelay);
  }
  LatencyRecorder calm("storm: Sign, no storm"), stormy("storm: Sign during storm");
  uint64_t storm_verify_errors = 0;
  if (flags.Runs("storm")) {
    calm = RunClosed("storm: Sign, no storm", token_t, flags.inflight, T);
    calm.Print(absl::StrCat(flags.inflight, " in flight, baseline"));
    Storm storm(stub.get(), *env, 200, absl::Seconds(3), 4000);
    absl::SleepFor(absl::Milliseconds(500));  // the storm's 200 calls are waiting by now
    stormy = RunClosed("storm: Sign during storm", token_t, flags.inflight, T);
    stormy.Print(absl::StrCat(flags.inflight, " in flight while 200 Verify wait on a 3 s x5u"));
    storm.Stop();
    storm_verify_errors = storm.rpc_errors();
    std::printf("%-26s %llu Verify calls answered (peak %llu in flight): %llu passed, %llu "
                "refused (436 in time), %llu DEADLINE_EXCEEDED, %llu other RPC errors%s%s\n",
                "storm: Verify", static_cast<unsigned long long>(storm.answered()),
                static_cast<unsigned long long>(storm.in_flight_peak()),
                static_cast<unsigned long long>(storm.passed()),
                static_cast<unsigned long long>(storm.refused()),
                static_cast<unsigned long long>(storm.deadline_exceeded()),
                static_cast<unsigned long long>(storm.rpc_errors()),
                storm.rpc_errors() > 0 ? "; first: " : "", storm.first_error().c_str());
  }

  // --- soak: mixed load, RSS every chunk ---
  long rss_soak_start = 0, rss_end = 0;
  if (flags.soak) {
    rss_soak_start = RssKb(shakend->pid());
    std::printf("soak: %d s of Sign / SignStream / Verify in 10 s chunks; RSS %ld KiB\n",
                flags.soak_seconds, rss_soak_start);
    const int64_t soak_end = NowNs() + static_cast<int64_t>(flags.soak_seconds) * 1'000'000'000;
    for (int chunk = 0; NowNs() < soak_end; ++chunk) {
      const double secs = std::min(10.0, (soak_end - NowNs()) / 1e9);
      if (secs < 0.5) break;
      LatencyRecorder r("soak");
      switch (chunk % 3) {
        case 0:
          r = RunClosed("soak Sign", token_t, flags.inflight, secs);
          break;
        case 1:
          r = RunStreams("soak SignStream", stub.get(), token_sign, flags.streams, flags.window, secs);
          break;
        default:
          refresh_verify();
          r = RunClosed("soak Verify", verify_target, flags.inflight, secs);
          break;
      }
      std::printf("soak %3d s  %-10s %7.0f /s  err=%llu  RSS %ld KiB\n",
                  static_cast<int>(flags.soak_seconds - (soak_end - NowNs()) / 1'000'000'000),
                  chunk % 3 == 0 ? "Sign" : chunk % 3 == 1 ? "SignStream" : "Verify", r.rate(),
                  static_cast<unsigned long long>(r.errors()), RssKb(shakend->pid()));
      std::fflush(stdout);
    }
  }
  rss_end = RssKb(shakend->pid());

  const std::string load_after = testing::ReadFileOrEmpty("/proc/loadavg");
  StopChild(shakend, SIGTERM);
  channel.reset();

  auto ratio = [](double a, double b) { return b > 0 ? a / b : 0.0; };
  auto growth = [](long from, long to) { return from > 0 ? 100.0 * (to - from) / from : 0.0; };
  std::printf("rss: idle %ld KiB, start of load %ld KiB, end %ld KiB (%+.1f %%)\n", rss_idle,
              rss_start, rss_end, growth(rss_start, rss_end));
  if (flags.soak) {
    std::printf("rss: soak of %d s from %ld KiB to %ld KiB (%+.1f %%)\n", flags.soak_seconds,
                rss_soak_start, rss_end, growth(rss_soak_start, rss_end));
  }
  std::printf("soft: shakend file key %.0f /s p99 %.3f ms; secsipidx %.0f /s p99 %.3f ms\n",
              soft.rate(), soft.PercentileMs(99), peer.rate(), peer.PercentileMs(99));
  std::printf("load average at the end: %s", load_after.c_str());
  // With the floor, grpc and floor hold first rounds only: floor_round_errors counts them all.
  const uint64_t errors = (flags.Runs("floor") ? floor_round_errors : grpc.errors()) +
                          peer.errors() + slowhsm.errors() + calm.errors() + stormy.errors() +
                          storm_verify_errors;
  if (errors > 0) std::printf("load_bench: %llu failed calls (see above)\n",
                              static_cast<unsigned long long>(errors));
  if (flags.soak) {
    std::printf("rss_growth_pct=%.1f (over the %d s soak)\n", growth(rss_soak_start, rss_end),
                flags.soak_seconds);
  } else {
    std::printf("rss_growth_pct=%.1f (short run, from the first second of load: mostly warm-up; "
                "--soak gives the 5-minute figure)\n",
                growth(rss_start, rss_end));
  }
  if (flags.Runs("floor")) {
    std::printf("floor: shakend's rate as a share of the floor's, median of %d alternating rounds "
                "(each round): Sign %s, SignStream %s, Verify %s, Sign (file key) %s; Sign @80%% "
                "p99 %.2f vs %.2f ms\n",
                flags.floor_rounds, Shares(shares.sign).c_str(), Shares(shares.stream).c_str(),
                Shares(shares.verify).c_str(), Shares(shares.file).c_str(),
                paced.PercentileMs(99), floor.paced.PercentileMs(99));
    std::printf(
        "load_bench_floor: sign_vs_pool=%.2f stream_vs_pool=%.2f verify_vs_inproc=%.2f "
        "sign_p99_ms=%.2f soft_vs_secsipidx=%.2f\n",
        ratio(floor.unary.rate(), pool_rate), ratio(floor.stream.rate(), pool_rate),
        ratio(floor.verify.rate(), verify_rate), floor.paced.PercentileMs(99),
        ratio(floor.soft.rate(), peer.rate()));
  }
  std::printf(
      "load_bench: sign_vs_pool=%.2f stream_vs_pool=%.2f verify_vs_inproc=%.2f sign_p99_ms=%.2f "
      "soft_vs_secsipidx=%.2f\n",
      ratio(unary.rate(), pool_rate), ratio(stream.rate(), pool_rate),
      ratio(verify.rate(), verify_rate), paced.PercentileMs(99), ratio(soft.rate(), peer.rate()));
  if (flags.Runs("slowhsm") || flags.Runs("storm")) {
    const double bound = kSlowPool / absl::ToDoubleSeconds(kSlowDelay);
    std::printf("load_bench_latency: slowhsm_vs_bound=%.2f storm_sign_p99_ratio=%.2f "
                "storm_sign_failures=%llu\n",
                ratio(slowhsm.rate(), bound),
                ratio(stormy.PercentileMs(99), calm.PercentileMs(99)),
                static_cast<unsigned long long>(stormy.errors()));
  }
  std::fflush(stdout);

  pool.reset();
  inproc.reset();
  env.reset();
  std::error_code ec;
  std::filesystem::remove_all(token.dir(), ec);
  // SoftHSM2 crashes when de-initialised from exit handlers: leave without running them.
  _exit(errors > 0 ? 1 : 0);
}
