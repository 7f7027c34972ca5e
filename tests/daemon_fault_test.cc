// shakend under token faults: the SoftHSM2 token disappears while clients sign; the affected calls
// fail with UNAVAILABLE (never a wrong signature, never a hang), health turns NOT_SERVING, and
// everything recovers when the token comes back.
#include <dlfcn.h>
#include <p11-kit/pkcs11.h>

#include <atomic>
#include <filesystem>
#include <map>
#include <mutex>
#include <thread>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "grpcpp/grpcpp.h"
#include "shaken/v1/shaken.grpc.pb.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "stir/memory_signer.h"
#include "stir/openssl_util.h"
#include "tests/daemon_fixture.h"
#include "tests/testing/fault_pkcs11_control.h"
#include "tests/testing/softhsm_token.h"
#include "tests/testing/subprocess.h"
#include "tests/testing/status_matchers.h"

namespace shaken::testing {
namespace {

constexpr char kOrig[] = "12155550121";
constexpr char kDest[] = "12155550131";

void CloseAllSessionsElsewhere() {
  void* dl = dlopen(SoftHsmToken::Shared().module_path().c_str(), RTLD_NOW | RTLD_LOCAL);
  ASSERT_NE(dl, nullptr);
  auto get = reinterpret_cast<CK_C_GetFunctionList>(dlsym(dl, "C_GetFunctionList"));
  CK_FUNCTION_LIST* fl = nullptr;
  ASSERT_EQ(get(&fl), CKR_OK);
  CK_ULONG n = 16;
  CK_SLOT_ID slots[16];
  ASSERT_EQ(fl->C_GetSlotList(CK_TRUE, slots, &n), CKR_OK);
  for (CK_ULONG i = 0; i < n; ++i) fl->C_CloseAllSessions(slots[i]);
  dlclose(dl);
}

TEST(DaemonFaultTest, TokenLostDuringLoadThenRecovered) {
  ASSERT_OK_AND_ASSIGN(auto env, DaemonEnv::Create({.pool_size = 2}));
  ASSERT_OK_AND_ASSIGN(auto client, env->NewClient("sbc1.test"));
  const std::string health = absl::StrCat("127.0.0.1:", env->daemon().health_port());
  ASSERT_OK_AND_ASSIGN(auto profiles, client->ListProfiles());
  // The token profile's certificate key: every signature that comes back must verify with it.
  ASSERT_OK_AND_ASSIGN(client::SignResult first, client->Sign({.attest = "A", .orig_tn = kOrig,
                                                               .dest_tns = {kDest}}));
  ASSERT_OK_AND_ASSIGN(auto v, client->Verify({.identities = {first.identity}, .from_tn = kOrig,
                                               .to_tns = {kDest}}));
  ASSERT_TRUE(v.overall.passed);

  std::atomic<bool> stop{false};
  // SoftHSM2 2.6.1 itself crashes (EC_POINT_get_affine_coordinates under C_Sign) when its token
  // files vanish in the middle of a signature; a real HSM does not. The load pauses for the instant
  // the token is taken away, and runs through the outage and the recovery.
  absl::Mutex gate_mu;
  bool paused = false;
  int in_flight = 0;
  std::mutex mu;
  std::map<absl::StatusCode, int> seen;
  std::vector<std::string> signed_identities;
  std::vector<std::thread> load;
  for (int t = 0; t < 4; ++t) {
    load.emplace_back([&] {
      for (int i = 0; i < 20000 && !stop.load(); ++i) {  // bounded
        {
          absl::MutexLock lock(&gate_mu);
          gate_mu.Await(absl::Condition(+[](bool* p) { return !*p; }, &paused));
          ++in_flight;
        }
        auto s = client->Sign({.attest = "A", .orig_tn = kOrig, .dest_tns = {kDest}},
                              absl::Seconds(2));
        {
          absl::MutexLock lock(&gate_mu);
          --in_flight;
        }
        std::lock_guard<std::mutex> lock(mu);
        ++seen[s.status().code()];
        if (s.ok() && signed_identities.size() < 2000) signed_identities.push_back(s->identity);
      }
    });
  }
  absl::SleepFor(absl::Milliseconds(200));

  // Take the token away: out of SoftHSM2's token directory, and its sessions closed.
  std::vector<std::string> dirs = SoftHsmToken::Shared().TokenSubdirs();
  ASSERT_FALSE(dirs.empty());
  auto away = [](const std::string& d) {
    return SoftHsmToken::Shared().dir() + "/away-" + std::filesystem::path(d).filename().string();
  };
  {
    absl::MutexLock lock(&gate_mu);
    paused = true;
    gate_mu.Await(absl::Condition(+[](int* n) { return *n == 0; }, &in_flight));
  }
  for (const auto& d : dirs) std::filesystem::rename(d, away(d));
  CloseAllSessionsElsewhere();
  {
    absl::MutexLock lock(&gate_mu);
    paused = false;
  }

  // Health turns NOT_SERVING (2) on the plaintext listener while the token is gone.
  bool not_serving = false;
  for (int i = 0; i < 200 && !not_serving; ++i) {
    auto h = HealthStatus(health, "");
    not_serving = h.ok() && *h == 2;
    if (!not_serving) absl::SleepFor(absl::Milliseconds(25));
  }
  EXPECT_TRUE(not_serving) << "health never left SERVING";
  EXPECT_THAT(HealthStatus(health, "shaken.v1.Shaken"), IsOkAndHolds(2));
  // Liveness does not depend on the HSM: no probe restarts a replica whose token is away.
  EXPECT_THAT(HealthStatus(health, "liveness"), IsOkAndHolds(1));
  {
    // Signing fails fast with UNAVAILABLE, not after the deadline.
    const absl::Time start = absl::Now();
    auto s = client->Sign({.attest = "A", .orig_tn = kOrig, .dest_tns = {kDest}}, absl::Seconds(3));
    EXPECT_THAT(s, StatusIs(absl::StatusCode::kUnavailable));
    EXPECT_LT(absl::Now() - start, absl::Seconds(2));
  }
  // Verification does not need the token and goes on: the client sends it on its connection
  // that is not health-checked, though the only replica answers NOT_SERVING.
  ASSERT_OK_AND_ASSIGN(v, client->Verify({.identities = {first.identity}, .from_tn = kOrig,
                                          .to_tns = {kDest}}));
  EXPECT_TRUE(v.overall.passed);
  // The file-key profile is unaffected: with no replica SERVING, the client lets the server
  // itself answer.
  EXPECT_OK(client->Sign({.profile = "file", .attest = "C", .orig_tn = kOrig, .dest_tns = {kDest}}));

  // Bring it back: signing and health recover.
  for (const auto& d : dirs) std::filesystem::rename(away(d), d);
  bool recovered = false;
  for (int i = 0; i < 400 && !recovered; ++i) {
    recovered = client->Sign({.attest = "A", .orig_tn = kOrig, .dest_tns = {kDest}}).ok();
    if (!recovered) absl::SleepFor(absl::Milliseconds(25));
  }
  EXPECT_TRUE(recovered) << "signing did not recover";
  bool serving = false;
  for (int i = 0; i < 200 && !serving; ++i) {
    auto h = HealthStatus(health, "");
    serving = h.ok() && *h == 1;
    if (!serving) absl::SleepFor(absl::Milliseconds(25));
  }
  EXPECT_TRUE(serving);
  stop.store(true);
  for (auto& th : load) th.join();

  // Only OK, UNAVAILABLE (token gone) or DEADLINE_EXCEEDED (a call caught mid-recovery) were seen.
  for (const auto& [code, n] : seen) {
    std::printf("during the fault: %s x%d\n", absl::StatusCodeToString(code).c_str(), n);
    EXPECT_THAT(code, ::testing::AnyOf(absl::StatusCode::kOk, absl::StatusCode::kUnavailable,
                                       absl::StatusCode::kDeadlineExceeded));
  }
  EXPECT_GT(seen[absl::StatusCode::kOk], 0);
  // Every signature that was returned verifies.
  size_t checked = 0;
  for (size_t i = 0; i < signed_identities.size(); i += 10) {
    ASSERT_OK_AND_ASSIGN(v, client->Verify({.identities = {signed_identities[i]}, .from_tn = kOrig,
                                            .to_tns = {kDest}}));
    EXPECT_TRUE(v.overall.passed) << v.overall.reason;
    ++checked;
  }
  EXPECT_GT(checked, 0u);
}


// An HSM outage at start-up does not keep shakend down (pkcs11.require_token_at_start: false, the
// default): it starts NOT_SERVING, refuses token signatures with UNAVAILABLE naming the profile,
// signs with its file key and verifies meanwhile, and serves once the token can be reached.
TEST(DaemonFaultTest, StartsNotServingWhileTheTokenIsUnreachableThenServesWhenItComesBack) {
  // The fault module in front of SoftHSM2, loaded here first so that the token is away before the
  // daemon looks for it.
  void* dl = dlopen(SHAKEN_FAULT_P11_MODULE, RTLD_NOW | RTLD_LOCAL);
  ASSERT_NE(dl, nullptr) << dlerror();
  ASSERT_OK_AND_ASSIGN(FaultP11 fault, FaultP11::Attach(SHAKEN_FAULT_P11_MODULE));
  ASSERT_OK(fault.Configure("token_gone=1"));
  DaemonEnvOptions options;
  options.pkcs11_module = SHAKEN_FAULT_P11_MODULE;
  options.pkcs11_extra_yaml = "  backoff_initial: 100ms\n  backoff_max: 1s\n";
  ASSERT_OK_AND_ASSIGN(auto env, DaemonEnv::Create(options));
  ASSERT_OK_AND_ASSIGN(auto client, env->NewClient("sbc1.test"));
  const std::string health = absl::StrCat("127.0.0.1:", env->daemon().health_port());

  EXPECT_FALSE(env->daemon().serving());
  EXPECT_THAT(HealthStatus(health, "shaken.v1.Shaken"), IsOkAndHolds(2));
  EXPECT_THAT(HealthStatus(health, "liveness"), IsOkAndHolds(1));
  auto refused = client->Sign({.attest = "A", .orig_tn = kOrig, .dest_tns = {kDest}});
  EXPECT_THAT(refused, StatusIs(absl::StatusCode::kUnavailable,
                                ::testing::AllOf(::testing::HasSubstr("profile token"),
                                                 ::testing::HasSubstr("could not be opened yet"))));
  ASSERT_OK_AND_ASSIGN(auto profiles, client->ListProfiles());
  for (const auto& p : profiles) {
    EXPECT_EQ(p.health, p.name == "token" ? client::ProfileInfo::Health::kDown
                                          : client::ProfileInfo::Health::kServing)
        << p.name;
    if (p.name == "token") {
      EXPECT_THAT(p.key, ::testing::StartsWith("pkcs11:"));
    }
  }
  ASSERT_OK_AND_ASSIGN(auto by_file, client->Sign({.profile = "file", .attest = "C",
                                                   .orig_tn = kOrig, .dest_tns = {kDest}}));
  ASSERT_OK_AND_ASSIGN(auto verdicts, client->Verify({.identities = {by_file.identity},
                                                      .from_tn = kOrig, .to_tns = {kDest}}));
  EXPECT_TRUE(verdicts.overall.passed) << verdicts.overall.detail;

  // The token comes back: the background opener finds it within its backoff (at most 1 s here).
  ASSERT_OK(fault.Configure("token_gone=0"));
  absl::StatusOr<client::SignResult> signed_by_token = refused.status();
  for (int i = 0; i < 100 && !signed_by_token.ok(); ++i) {  // at most ~10 s
    absl::SleepFor(absl::Milliseconds(100));
    signed_by_token = client->Sign({.attest = "A", .orig_tn = kOrig, .dest_tns = {kDest}});
  }
  ASSERT_OK(signed_by_token);
  ASSERT_OK_AND_ASSIGN(auto v, client->Verify({.identities = {signed_by_token->identity},
                                               .from_tn = kOrig, .to_tns = {kDest}}));
  EXPECT_TRUE(v.overall.passed) << v.overall.detail;
  bool serving = false;
  for (int i = 0; i < 100 && !serving; ++i) {  // the health monitor follows within a tick
    serving = env->daemon().serving();
    if (!serving) absl::SleepFor(absl::Milliseconds(50));
  }
  EXPECT_TRUE(serving);
  // The health listener follows at the monitor's next publication (every 250 ms).
  absl::StatusOr<int> published = HealthStatus(health, "shaken.v1.Shaken");
  for (int i = 0; i < 40 && !(published.ok() && *published == 1); ++i) {
    absl::SleepFor(absl::Milliseconds(50));
    published = HealthStatus(health, "shaken.v1.Shaken");
  }
  EXPECT_THAT(published, IsOkAndHolds(1));
}

// A replica whose token goes down sends GOAWAY on its API connections, so that a client that does
// not check health (pick_first, behind an L4 balancer or a Service) reconnects at once instead of
// sending its next calls into a replica that cannot sign. Its reconnection still reaches this
// replica (nothing else listens here), which answers.
TEST(DaemonFaultTest, TokenDownSendsGoawayToApiConnections) {
  void* dl = dlopen(SHAKEN_FAULT_P11_MODULE, RTLD_NOW | RTLD_LOCAL);
  ASSERT_NE(dl, nullptr) << dlerror();
  ASSERT_OK_AND_ASSIGN(FaultP11 fault, FaultP11::Attach(SHAKEN_FAULT_P11_MODULE));
  ASSERT_OK(fault.Configure("token_gone=0"));
  DaemonEnvOptions options;
  options.pkcs11_module = SHAKEN_FAULT_P11_MODULE;
  options.pkcs11_extra_yaml = "  backoff_initial: 100ms\n  backoff_max: 1s\n";
  ASSERT_OK_AND_ASSIGN(auto env, DaemonEnv::Create(options));
  ASSERT_OK_AND_ASSIGN(auto client, env->NewClient("sbc1.test"));

  // A plain gRPC channel: pick_first, no health checking, mTLS as sbc1.test.
  grpc::SslCredentialsOptions tls;
  tls.pem_root_certs = ReadFileOrEmpty(env->TlsCaFile());
  tls.pem_cert_chain = ReadFileOrEmpty(env->ClientCertFile("sbc1.test"));
  tls.pem_private_key = ReadFileOrEmpty(env->ClientKeyFile("sbc1.test"));
  grpc::ChannelArguments args;
  args.SetSslTargetNameOverride("localhost");
  auto channel = grpc::CreateCustomChannel(env->ApiTarget(), grpc::SslCredentials(tls), args);
  auto stub = shaken::v1::Shaken::NewStub(channel);
  auto list = [&] {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    shaken::v1::ListProfilesResponse out;
    grpc::Status s = stub->ListProfiles(&ctx, shaken::v1::ListProfilesRequest(), &out);
    return std::make_pair(s, out);
  };
  ASSERT_TRUE(list().first.ok());
  ASSERT_EQ(channel->GetState(false), GRPC_CHANNEL_READY);

  ASSERT_OK(fault.Configure("token_gone=1"));
  // The pool notices at its next token call.
  EXPECT_THAT(client->Sign({.attest = "A", .orig_tn = kOrig, .dest_tns = {kDest}}),
              StatusIs(absl::StatusCode::kUnavailable));
  bool down = false;
  for (int i = 0; i < 100 && !down; ++i) {  // at most ~5 s
    down = !env->daemon().serving();
    if (!down) absl::SleepFor(absl::Milliseconds(50));
  }
  ASSERT_TRUE(down) << "the daemon never left SERVING";

  // GOAWAY: the idle connection leaves READY without any call of ours (at the monitor's next
  // tick, every 250 ms). Without it the channel would stay READY on the unready replica.
  bool left_ready = false;
  for (int i = 0; i < 100 && !left_ready; ++i) {  // at most ~5 s
    left_ready = channel->GetState(false) != GRPC_CHANNEL_READY;
    if (!left_ready) absl::SleepFor(absl::Milliseconds(50));
  }
  EXPECT_TRUE(left_ready) << "the API connection was not told to go away";

  // The next call reconnects and reaches the replica's new API server, which answers with the
  // token profile DOWN; signing with the file key still works there.
  auto [status, profiles] = list();
  ASSERT_TRUE(status.ok()) << status.error_message();
  bool token_down = false;
  for (const auto& p : profiles.profiles()) {
    if (p.name() == "token") token_down = p.health() == shaken::v1::Profile::DOWN;
  }
  EXPECT_TRUE(token_down);
  ASSERT_OK(
      client->Sign({.profile = "file", .attest = "C", .orig_tn = kOrig, .dest_tns = {kDest}}));

  // The token comes back: signing through the replaced server works again, and the replica is
  // SERVING without another GOAWAY mattering.
  ASSERT_OK(fault.Configure("token_gone=0"));
  absl::StatusOr<client::SignResult> again = absl::UnavailableError("not yet");
  for (int i = 0; i < 100 && !again.ok(); ++i) {  // at most ~10 s
    absl::SleepFor(absl::Milliseconds(100));
    again = client->Sign({.attest = "A", .orig_tn = kOrig, .dest_tns = {kDest}});
  }
  ASSERT_OK(again);
}

// pkcs11.require_token_at_start: true keeps the strict behaviour: no start without the token.
TEST(DaemonFaultTest, RequireTokenAtStartRefusesToStartWithoutIt) {
  void* dl = dlopen(SHAKEN_FAULT_P11_MODULE, RTLD_NOW | RTLD_LOCAL);
  ASSERT_NE(dl, nullptr) << dlerror();
  ASSERT_OK_AND_ASSIGN(FaultP11 fault, FaultP11::Attach(SHAKEN_FAULT_P11_MODULE));
  ASSERT_OK(fault.Configure("token_gone=1"));
  DaemonEnvOptions options;
  options.pkcs11_module = SHAKEN_FAULT_P11_MODULE;
  options.pkcs11_extra_yaml = "  require_token_at_start: true\n";
  auto env = DaemonEnv::Create(options);
  EXPECT_THAT(env, StatusIs(absl::StatusCode::kNotFound,
                            ::testing::AllOf(::testing::HasSubstr("profile token"),
                                             ::testing::HasSubstr("no token matches"))));
  ASSERT_OK(fault.Configure("token_gone=0"));
}

}  // namespace
}  // namespace shaken::testing
