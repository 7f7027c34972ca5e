// The shakend binary as an operator runs it: --check-config exit codes, start-up refusal with a
// message naming the profile, and SIGTERM draining an in-flight call before exiting 0.
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdio>

#include <fstream>
#include <sstream>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "gmock/gmock.h"
#include "nlohmann/json.hpp"
#include "gtest/gtest.h"
#include "stir/clock.h"
#include "stir/memory_signer.h"
#include "stir/openssl_util.h"
#include "stir/passport.h"
#include "tests/daemon_fixture.h"
#include "tests/testing/softhsm_token.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/subprocess.h"

namespace shaken::testing {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

constexpr char kOrig[] = "12155550121";
constexpr char kDest[] = "12155550131";

std::string Shakend() { return SHAKEND_BINARY; }

class ShakendProcessTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto env = DaemonEnv::Create({.start_daemon = false});
    ASSERT_OK(env);
    env_ = *std::move(env);
  }
  // A configuration with the file-key profile only (the token stays with this test process).
  std::string Config(int api, int health, absl::Duration grace) {
    return absl::StrCat(R"(
listen:
  api: 127.0.0.1:)", api, R"(
  health: 127.0.0.1:)", health, R"(
  tls: {cert_file: )", env_->dir(), R"(/server.pem, key_file: )", env_->dir(),
                        R"(/server.key, client_ca_file: )", env_->TlsCaFile(), R"(}
profiles:
  - name: file
    key: file:)", env_->FileKeyPath(), R"(
    x5u: )", env_->file_x5u(), R"(
    certificate: )", env_->FileChainPath(), R"(
    attest: [C]
verifier:
  ca_file: )", env_->StiRootPath(), R"(
  tls_ca_file: )", env_->TlsCaFile(), R"(
  lab: {allow_private_addresses: true, allow_any_port: true}
drain_grace: )", absl::FormatDuration(grace), "\n");
  }
  std::string Write(const std::string& name, const std::string& text) {
    std::string path = env_->dir() + "/" + name;
    std::ofstream(path) << text;
    return path;
  }
  std::unique_ptr<DaemonEnv> env_;
};

TEST_F(ShakendProcessTest, CheckConfigExitCodes) {
  std::string good = Write("good.yaml", Config(FreeLoopbackPort(), FreeLoopbackPort(), absl::Seconds(5)));
  RunResult r = RunCommand({Shakend(), "--check-config", good}, {.timeout = absl::Seconds(20)});
  EXPECT_EQ(r.exit_code, 0) << r.output();
  EXPECT_THAT(r.out, HasSubstr("configuration is valid"));

  std::string bad = Write("bad.yaml", Config(1, 2, absl::Seconds(5)) + "colour: blue\n");
  r = RunCommand({Shakend(), "--check-config", bad}, {.timeout = absl::Seconds(20)});
  EXPECT_EQ(r.exit_code, 1);
  EXPECT_THAT(r.err, HasSubstr("colour is not a known setting"));
}

TEST(ShakendPinTest, AWrongPinExitsThreeAndIsNotRetried) {
  ASSERT_OK_AND_ASSIGN(auto env, DaemonEnv::Create({.start_daemon = false}));
  const std::string wrong_pin = env->dir() + "/wrong.pin";
  std::ofstream(wrong_pin) << "000000";
  std::string yaml = env->config_yaml();
  const std::string right = absl::StrCat("pin_source: file:", SoftHsmToken::Shared().pin_file());
  ASSERT_TRUE(absl::StrContains(yaml, right));
  yaml = absl::StrReplaceAll(yaml, {{right, "pin_source: file:" + wrong_pin}});
  const std::string path = env->dir() + "/wrong-pin.yaml";
  std::ofstream(path) << yaml;
  RunResult r = RunCommand({Shakend(), "--config", path}, {.timeout = absl::Seconds(30)});
  EXPECT_EQ(r.exit_code, 3) << r.output();
  EXPECT_THAT(r.output(), HasSubstr("pin_refused"));
  EXPECT_THAT(r.output(), HasSubstr("CKR_PIN_INCORRECT"));
  EXPECT_THAT(r.output(), ::testing::Not(HasSubstr("000000")));
}

TEST(ShakendPinTest, APinFromTheEnvironmentLeavesTheProcessEnvironment) {
  ASSERT_OK_AND_ASSIGN(auto env, DaemonEnv::Create({.start_daemon = false}));
  const std::string& pin = SoftHsmToken::Shared().pin();
  std::string yaml = env->config_yaml();
  const std::string from_file =
      absl::StrCat("pin_source: file:", SoftHsmToken::Shared().pin_file());
  ASSERT_TRUE(absl::StrContains(yaml, from_file));
  yaml = absl::StrReplaceAll(yaml, {{from_file, "pin_source: env:SHAKEN_TEST_TOKEN_PIN"}});
  const std::string path = env->dir() + "/env-pin.yaml";
  std::ofstream(path) << yaml;
  ASSERT_OK_AND_ASSIGN(Child c, Child::Start({Shakend(), "--config", path},
                                             env->dir() + "/env-pin.log",
                                             {{"SHAKEN_TEST_TOKEN_PIN", pin}}));
  bool serving = false;
  for (int i = 0; i < 300 && !serving; ++i) {
    serving = absl::StrContains(c.Log(), "info serving");
    if (!serving) absl::SleepFor(absl::Milliseconds(50));
  }
  ASSERT_TRUE(serving) << c.Log();  // it logged in with the PIN from the environment
  const std::string environ =
      ReadFileOrEmpty(absl::StrCat("/proc/", c.pid(), "/environ"));
  ASSERT_FALSE(environ.empty());
  EXPECT_THAT(environ, ::testing::Not(HasSubstr(pin)));
  EXPECT_THAT(environ, ::testing::Not(HasSubstr("SHAKEN_TEST_TOKEN_PIN=" + pin)));
  c.Signal(SIGTERM);
  EXPECT_EQ(c.Wait(absl::Seconds(15)), 0) << c.Log();
}

TEST_F(ShakendProcessTest, VersionAndUsageErrors) {
  RunResult r = RunCommand({Shakend(), "--version"}, {.timeout = absl::Seconds(20)});
  EXPECT_EQ(r.exit_code, 0);
  EXPECT_THAT(r.out, HasSubstr("shakend " SHAKEN_VERSION));
  // A usage error exits 2, never CLI11's own codes (109 for an unknown option).
  r = RunCommand({Shakend(), "--colour", "blue"}, {.timeout = absl::Seconds(20)});
  EXPECT_EQ(r.exit_code, 2);
  EXPECT_THAT(r.output(), HasSubstr("--colour"));
}

// --check-config also checks the files the configuration names, as the user running it, and
// says which key names a missing or unreadable one.
TEST_F(ShakendProcessTest, CheckConfigChecksTheFilesItNames) {
  std::string yaml = Config(FreeLoopbackPort(), FreeLoopbackPort(), absl::Seconds(5));
  yaml = absl::StrReplaceAll(yaml, {{env_->FileChainPath(), env_->dir() + "/no-such-chain.pem"}});
  yaml += "logging: {audit_file: " + env_->dir() + "/no-such-dir/audit.log}\n";
  std::string path = Write("missing.yaml", yaml);
  RunResult r = RunCommand({Shakend(), "--check-config", path}, {.timeout = absl::Seconds(20)});
  EXPECT_EQ(r.exit_code, 1) << r.output();
  // file:line of the key, then the key and the file it names.
  const std::vector<std::string> lines = absl::StrSplit(yaml, '\n');
  size_t line = 0;
  while (line < lines.size() && !absl::StrContains(lines[line], "no-such-chain.pem")) ++line;
  ASSERT_LT(line, lines.size());
  EXPECT_THAT(r.err, HasSubstr(absl::StrCat(path, ":", line + 1,
                                            ": profiles[0].certificate (profile file): ",
                                            env_->dir(),
                                            "/no-such-chain.pem: No such file or directory")));
  EXPECT_THAT(r.err, HasSubstr("logging.audit_file: "));
  EXPECT_THAT(r.err, HasSubstr("cannot be created in"));
  // --syntax-only: the file alone (an example written for another host).
  r = RunCommand({Shakend(), "--check-config", path, "--syntax-only"},
                 {.timeout = absl::Seconds(20)});
  EXPECT_EQ(r.exit_code, 0) << r.output();
}

// A client rule naming a profile that does not exist is valid but warned about.
TEST_F(ShakendProcessTest, CheckConfigWarnsAboutRulesNamingUnknownProfiles) {
  const std::string yaml = Config(FreeLoopbackPort(), FreeLoopbackPort(), absl::Seconds(5)) +
                           "clients:\n  - {identity: sbc1.test, methods: [Sign], "
                           "profiles: [file, fiel]}\n";
  RunResult r = RunCommand({Shakend(), "--check-config", Write("typo.yaml", yaml)},
                           {.timeout = absl::Seconds(20)});
  EXPECT_EQ(r.exit_code, 0) << r.output();
  EXPECT_THAT(r.err, HasSubstr("warning"));
  EXPECT_THAT(r.err, HasSubstr("profile \"fiel\", which does not exist"));
  EXPECT_THAT(r.out, HasSubstr("1 warning(s)"));
}

TEST_F(ShakendProcessTest, RefusesToStartWhenTheKeyDoesNotMatchTheCertificate) {
  // The token profile's chain with the file key: the self-check must catch it.
  std::string cfg = absl::StrReplaceAll(Config(FreeLoopbackPort(), FreeLoopbackPort(), absl::Seconds(5)),
                                        {{env_->FileChainPath(), env_->dir() + "/token-chain.pem"}});
  std::string path = Write("mismatch.yaml", cfg);
  RunResult r = RunCommand({Shakend(), "--config", path}, {.timeout = absl::Seconds(30)});
  EXPECT_EQ(r.exit_code, 1);
  std::string log = r.output();
  EXPECT_THAT(log, HasSubstr("profile file"));
  EXPECT_THAT(log, HasSubstr("does not match certificate"));
}

TEST_F(ShakendProcessTest, SigtermDrainsInFlightCallsThenExits) {
  // A Verify whose x5u answers slowly stays in flight across the SIGTERM.
  env_->x5u_server().SetRoute(
      "/slow.pem", {.body = ReadFileOrEmpty(env_->FileChainPath()), .delay_before = absl::Seconds(2)});
  const std::string slow_x5u = env_->x5u_server().Url("/slow.pem");
  ASSERT_OK_AND_ASSIGN(auto key, stir::MemorySigner::FromPem(ReadFileOrEmpty(env_->FileKeyPath())));
  stir::SystemClock clock;
  ASSERT_OK_AND_ASSIGN(auto ps, stir::PassportSigner::Create(
                                    key.get(), slow_x5u, &clock, stir::PassportSigner::Options{.x5u_policy = {.allow_any_port = true}}));
  ASSERT_OK_AND_ASSIGN(auto slow, ps->Sign({.attest = "C", .orig_tn = kOrig, .dest_tns = {kDest}}));

  const int api = FreeLoopbackPort(), health = FreeLoopbackPort();
  std::string path = Write("run.yaml", Config(api, health, absl::Seconds(8)));
  ASSERT_OK_AND_ASSIGN(Child c, Child::Start({Shakend(), "--config", path}, env_->dir() + "/run.log"));
  // Ready when health answers SERVING.
  const std::string health_target = absl::StrCat("127.0.0.1:", health);
  bool ready = false;
  for (int i = 0; i < 300 && !ready; ++i) {
    auto h = HealthStatus(health_target, "");
    ready = h.ok() && *h == 1;
    if (!ready) absl::SleepFor(absl::Milliseconds(50));
  }
  ASSERT_TRUE(ready) << c.Log();

  client::ClientOptions opts = env_->ClientOptionsFor("sbc1.test");
  opts.target = absl::StrCat("127.0.0.1:", api);
  opts.retry.max_attempts = 1;
  ASSERT_OK_AND_ASSIGN(auto cl, client::Client::New(opts));
  ASSERT_OK(cl->Sign({.profile = "file", .attest = "C", .orig_tn = kOrig, .dest_tns = {kDest}}));

  absl::StatusOr<client::VerifyResult> in_flight = absl::UnknownError("not run");
  std::thread t([&] {
    in_flight = cl->Verify({.identities = {slow.identity}, .from_tn = kOrig, .to_tns = {kDest}},
                           absl::Seconds(10));
  });
  // Let the call reach the server (its x5u fetch is now waiting), then ask shakend to stop.
  for (int i = 0; i < 100 && env_->x5u_server().RequestCount("/slow.pem") == 0; ++i) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  ASSERT_EQ(env_->x5u_server().RequestCount("/slow.pem"), 1);
  const absl::Time sigterm = absl::Now();
  c.Signal(SIGTERM);
  absl::SleepFor(absl::Milliseconds(300));
  // Draining: health says NOT_SERVING and new calls are refused; the process is still alive.
  EXPECT_THAT(HealthStatus(health_target, ""), IsOkAndHolds(2));
  EXPECT_THAT(HealthStatus(health_target, "liveness"), IsOkAndHolds(1));
  EXPECT_FALSE(cl->Sign({.profile = "file", .attest = "C", .orig_tn = kOrig, .dest_tns = {kDest}},
                        absl::Seconds(2))
                   .ok());

  t.join();
  // The in-flight call completed normally, with its verdict.
  ASSERT_OK(in_flight);
  EXPECT_TRUE(in_flight->overall.passed) << in_flight->overall.detail;
  // Then the process exits 0, well before the grace period ends.
  EXPECT_EQ(c.Wait(absl::Seconds(15)), 0) << c.Log();
  EXPECT_LT(absl::Now() - sigterm, absl::Seconds(8));
  std::string log = c.Log();
  EXPECT_THAT(log, HasSubstr("draining"));
  EXPECT_THAT(log, HasSubstr("stopped"));
  // The audit stream recorded the signature, and no secret reached the log.
  EXPECT_THAT(log, HasSubstr("audit sign"));
  EXPECT_THAT(log, HasSubstr("method=Sign"));
  EXPECT_THAT(log, HasSubstr("front=grpc"));
  EXPECT_THAT(log, ::testing::Not(HasSubstr("PRIVATE KEY")));
}

// NotifySocket is the service manager's end of sd_notify(3): a datagram socket on a path.
class NotifySocket {
 public:
  explicit NotifySocket(const std::string& path) : path_(path) {
    fd_ = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof(addr.sun_path), "%s", path.c_str());
    bound_ = fd_ >= 0 && bind(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
  }
  ~NotifySocket() {
    if (fd_ >= 0) close(fd_);
    unlink(path_.c_str());
  }
  bool bound() const { return bound_; }
  // Next returns the next message, or "" after `timeout`.
  std::string Next(absl::Duration timeout) {
    pollfd p{fd_, POLLIN, 0};
    if (poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(timeout))) != 1) return "";
    char buf[4096];
    ssize_t n = recv(fd_, buf, sizeof(buf), 0);
    return n > 0 ? std::string(buf, n) : "";
  }
  // WaitFor returns the first message containing `what` within `timeout` (skipping watchdog
  // pings and others), or "".
  std::string WaitFor(const std::string& what, absl::Duration timeout) {
    const absl::Time end = absl::Now() + timeout;
    while (absl::Now() < end) {
      std::string m = Next(end - absl::Now());
      if (absl::StrContains(m, what)) return m;
    }
    return "";
  }

 private:
  std::string path_;
  int fd_ = -1;
  bool bound_ = false;
};

TEST_F(ShakendProcessTest, TellsSystemdWhenReadyReloadingStoppingAndPingsTheWatchdog) {
  NotifySocket notify(env_->dir() + "/notify.sock");
  ASSERT_TRUE(notify.bound());
  const int api = FreeLoopbackPort(), health = FreeLoopbackPort();
  std::string path = Write("notify.yaml", Config(api, health, absl::Seconds(2)));
  ASSERT_OK_AND_ASSIGN(Child c, Child::Start({Shakend(), "--config", path},
                                             env_->dir() + "/notify.log",
                                             {{"NOTIFY_SOCKET", env_->dir() + "/notify.sock"},
                                              {"WATCHDOG_USEC", "400000"}}));
  std::string ready = notify.WaitFor("READY=1", absl::Seconds(20));
  ASSERT_THAT(ready, HasSubstr("STATUS=serving 1 profile(s)")) << c.Log();
  // By the time READY=1 is sent the API answers.
  EXPECT_THAT(HealthStatus(absl::StrCat("127.0.0.1:", health), "shaken.v1.Shaken"),
              IsOkAndHolds(1));
  // WATCHDOG=1 at least every 200 ms (half of WATCHDOG_USEC).
  EXPECT_THAT(notify.WaitFor("WATCHDOG=1", absl::Seconds(2)), HasSubstr("WATCHDOG=1"));
  EXPECT_THAT(notify.WaitFor("WATCHDOG=1", absl::Seconds(2)), HasSubstr("WATCHDOG=1"));

  c.Signal(SIGHUP);
  EXPECT_THAT(notify.WaitFor("RELOADING=1", absl::Seconds(10)), HasSubstr("RELOADING=1"));
  EXPECT_THAT(notify.WaitFor("READY=1", absl::Seconds(10)), HasSubstr("STATUS=reloaded"));
  // A broken file changes nothing, and says so.
  std::ofstream(path, std::ios::app) << "colour: blue\n";
  c.Signal(SIGHUP);
  EXPECT_THAT(notify.WaitFor("READY=1", absl::Seconds(10)),
              AllOf(HasSubstr("STATUS=reload failed"), HasSubstr("colour")));
  EXPECT_THAT(c.Log(), HasSubstr("reload_failed"));
  EXPECT_THAT(HealthStatus(absl::StrCat("127.0.0.1:", health), "shaken.v1.Shaken"),
              IsOkAndHolds(1));

  c.Signal(SIGTERM);
  EXPECT_THAT(notify.WaitFor("STOPPING=1", absl::Seconds(10)), HasSubstr("STATUS=draining"));
  EXPECT_EQ(c.Wait(absl::Seconds(15)), 0) << c.Log();
}

TEST_F(ShakendProcessTest, JsonLogsStayJsonWhenGrpcComplainsAboutAHandshake) {
  const int api = FreeLoopbackPort(), health = FreeLoopbackPort();
  std::string path = Write("json.yaml", Config(api, health, absl::Seconds(1)) +
                                            "logging: {format: json}\n");
  ASSERT_OK_AND_ASSIGN(Child c, Child::Start({Shakend(), "--config", path},
                                             env_->dir() + "/json.log"));
  bool ready = false;
  for (int i = 0; i < 300 && !ready; ++i) {
    auto h = HealthStatus(absl::StrCat("127.0.0.1:", health), "");
    ready = h.ok() && *h == 1;
    if (!ready) absl::SleepFor(absl::Milliseconds(50));
  }
  ASSERT_TRUE(ready) << c.Log();
  // A plaintext client on the TLS port: the server's TLS handshake fails.
  client::ClientOptions opts;
  opts.target = absl::StrCat("127.0.0.1:", api);
  opts.insecure_plaintext = true;
  opts.retry.max_attempts = 1;
  ASSERT_OK_AND_ASSIGN(auto cl, client::Client::New(opts));
  EXPECT_FALSE(cl->ListProfiles(absl::Seconds(2)).ok());
  bool logged = false;
  for (int i = 0; i < 100 && !logged; ++i) {
    logged = absl::StrContains(c.Log(), R"("event":"tls_handshake_failed")");
    if (!logged) absl::SleepFor(absl::Milliseconds(20));
  }
  c.Signal(SIGTERM);
  EXPECT_EQ(c.Wait(absl::Seconds(15)), 0);
  EXPECT_TRUE(logged) << c.Log();
  std::istringstream lines(c.Log());
  for (std::string line; std::getline(lines, line);) {
    EXPECT_TRUE(nlohmann::json::accept(line)) << "not JSON: " << line;
  }
}

}  // namespace
}  // namespace shaken::testing
