// Concurrency of shakend under production latency: a token that takes milliseconds per signature
// (the fault-injecting PKCS#11 module in front of SoftHSM2) and x5u servers that do not answer
// (the HTTPS test server's tarpit). What is asserted is behaviour: how many signatures the token
// sees at once, which calls complete while others wait, what a waiting call is answered. Speed is
// measured in bench/load_bench (--only=slowhsm, --only=storm), never here.
#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "shaken/client.h"
#include "stir/clock.h"
#include "stir/memory_signer.h"
#include "stir/openssl_util.h"
#include "stir/passport.h"
#include "tests/daemon_fixture.h"
#include "tests/testing/fault_pkcs11_control.h"
#include "tests/testing/status_matchers.h"

namespace shaken::testing {
namespace {

using ::testing::HasSubstr;

constexpr char kOrig[] = "12155550121";
constexpr char kDest[] = "12155550131";
// Every key the tests set, back to "no fault": the module instance is shared by the process.
constexpr char kNoFaults[] =
    "sign_delay_us=0\nsign_init_delay_us=0\nopen_session_delay_us=0\nlogin_delay_us=0\n"
    "sign_fail_every=0\ntoken_gone=0\n";

client::SignParams Call(std::string request_id = "") {
  return {.attest = "A", .orig_tn = kOrig, .dest_tns = {kDest},
          .request_id = std::move(request_id)};
}

// SlowTokenEnv starts a daemon whose token profile signs through the fault module.
std::unique_ptr<DaemonEnv> SlowTokenEnv(int pool_size, std::string pkcs11_extra = "") {
  // Reset before the daemon opens its sessions (a previous test may have left a fault set).
  if (absl::StatusOr<FaultP11> f = FaultP11::Attach(SHAKEN_FAULT_P11_MODULE); f.ok()) {
    EXPECT_OK(f->Configure(kNoFaults));
  }
  DaemonEnvOptions options;
  options.pool_size = pool_size;
  options.pkcs11_module = SHAKEN_FAULT_P11_MODULE;
  options.pkcs11_extra_yaml = std::move(pkcs11_extra);
  auto env = DaemonEnv::Create(options);
  EXPECT_OK(env);
  return env.ok() ? *std::move(env) : nullptr;
}

FaultP11 Fault() {
  absl::StatusOr<FaultP11> f = FaultP11::Attach(SHAKEN_FAULT_P11_MODULE);
  EXPECT_OK(f);
  return *f;
}

// RunConcurrently runs fn(i) for i in [0, n) on n threads and joins them.
void RunConcurrently(int n, const std::function<void(int)>& fn) {
  std::vector<std::thread> threads;
  threads.reserve(n);
  for (int i = 0; i < n; ++i) threads.emplace_back([&fn, i] { fn(i); });
  for (auto& t : threads) t.join();
}

std::unique_ptr<client::Client> NoRetryClient(const DaemonEnv& env) {
  client::ClientOptions o = env.ClientOptionsFor("sbc1.test");
  o.retry.max_attempts = 1;
  auto c = client::Client::New(o);
  EXPECT_OK(c);
  return c.ok() ? *std::move(c) : nullptr;
}

TEST(DaemonConcurrencyTest, SignaturesInFlightAreThePoolsSessionsNotTheRpcThreads) {
  auto env = SlowTokenEnv(/*pool_size=*/8);
  ASSERT_NE(env, nullptr);
  FaultP11 fault = Fault();
  ASSERT_OK(fault.Configure("sign_delay_us=100000"));  // a network HSM at 100 ms
  fault.Reset();
  ASSERT_OK_AND_ASSIGN(auto c, env->NewClient("sbc1.test"));
  std::atomic<int> ok{0};
  RunConcurrently(16, [&](int) {
    if (c->Sign(Call(), absl::Seconds(30)).ok()) ++ok;
  });
  EXPECT_EQ(ok.load(), 16);
  const ShakenFaultP11Stats stats = fault.Stats();
  // 16 callers, 8 sessions: the token signs 8 at a time, never more (gRPC has 2 cores' worth of
  // callback threads; signing on them gave 2).
  EXPECT_EQ(stats.sign_max_in_flight, 8u);
  EXPECT_EQ(stats.sign_calls, 16u);
}

TEST(DaemonConcurrencyTest, SignStreamSignsConcurrentlyAndAnswersInOrder) {
  auto env = SlowTokenEnv(/*pool_size=*/8);
  ASSERT_NE(env, nullptr);
  FaultP11 fault = Fault();
  ASSERT_OK(fault.Configure("sign_delay_us=100000"));
  fault.Reset();
  ASSERT_OK_AND_ASSIGN(auto c, env->NewClient("sbc1.test"));
  ASSERT_OK_AND_ASSIGN(auto stream, c->OpenSignStream(absl::Seconds(60)));
  constexpr int kRequests = 24;
  for (int i = 0; i < kRequests; ++i) ASSERT_OK(stream->Send(Call(absl::StrCat("r", i))));
  ASSERT_OK(stream->CloseSend());
  for (int i = 0; i < kRequests; ++i) {
    ASSERT_OK_AND_ASSIGN(client::StreamedSign s, stream->Next());
    EXPECT_EQ(s.request_id, absl::StrCat("r", i));
    EXPECT_OK(s.result);
  }
  EXPECT_THAT(stream->Next(), StatusIs(absl::StatusCode::kOutOfRange));
  EXPECT_EQ(fault.Stats().sign_max_in_flight, 8u);
}

TEST(DaemonConcurrencyTest, AFullQueueFailsAtOnceNamingTheProfileAndTheQueue) {
  // One session and room for two waiting: of eight callers, three are served and five refused
  // (two and six when a third call arrives before the session's worker has taken the first out of
  // the queue: a busy machine does that).
  auto env = SlowTokenEnv(/*pool_size=*/1, "  queue_limit: 2\n");
  ASSERT_NE(env, nullptr);
  FaultP11 fault = Fault();
  ASSERT_OK(fault.Configure("sign_delay_us=400000"));
  fault.Reset();
  auto c = NoRetryClient(*env);
  ASSERT_NE(c, nullptr);
  std::atomic<int> ok{0}, refused{0}, refused_before_any_signature{0};
  RunConcurrently(8, [&](int) {
    absl::StatusOr<client::SignResult> r = c->Sign(Call(), absl::Seconds(30));
    if (r.ok()) {
      ++ok;
      return;
    }
    EXPECT_THAT(r, StatusIs(absl::StatusCode::kResourceExhausted));
    EXPECT_THAT(r.status().message(), HasSubstr("profile token"));
    EXPECT_THAT(r.status().message(), HasSubstr("queue full"));
    ++refused;
    // Refused at once: before the token finished its first signature.
    if (ok.load() == 0) ++refused_before_any_signature;
  });
  EXPECT_GE(ok.load(), 2);
  EXPECT_LE(ok.load(), 3);
  EXPECT_EQ(ok.load() + refused.load(), 8);
  EXPECT_EQ(refused_before_any_signature.load(), refused.load());
}

TEST(DaemonConcurrencyTest, ACallThatWaitsMaxWaitInTheQueueIsRefused) {
  auto env = SlowTokenEnv(/*pool_size=*/1, "  max_wait: 100ms\n");
  ASSERT_NE(env, nullptr);
  FaultP11 fault = Fault();
  ASSERT_OK(fault.Configure("sign_delay_us=600000"));
  fault.Reset();
  auto c = NoRetryClient(*env);
  ASSERT_NE(c, nullptr);
  std::atomic<int> ok{0}, waited_out{0};
  std::atomic<int> answered_while_signing{0};
  RunConcurrently(3, [&](int) {
    absl::StatusOr<client::SignResult> r = c->Sign(Call(), absl::Seconds(30));
    if (r.ok()) {
      ++ok;
      return;
    }
    EXPECT_THAT(r, StatusIs(absl::StatusCode::kResourceExhausted));
    if (absl::StrContains(r.status().message(), "max_wait")) ++waited_out;
    // The first signature (600 ms) is still being made: the queue answered when max_wait passed.
    if (ok.load() == 0) ++answered_while_signing;
  });
  EXPECT_EQ(ok.load(), 1);
  EXPECT_EQ(waited_out.load(), 2);
  EXPECT_EQ(answered_while_signing.load(), 2);
}

TEST(DaemonConcurrencyTest, ATokenThatGoesAwayFailsTheQueuedCallsUnavailableThenRecovers) {
  auto env = SlowTokenEnv(/*pool_size=*/2);
  ASSERT_NE(env, nullptr);
  FaultP11 fault = Fault();
  ASSERT_OK(fault.Configure("sign_delay_us=300000"));
  fault.Reset();
  auto c = NoRetryClient(*env);
  ASSERT_NE(c, nullptr);
  std::atomic<int> ok{0}, unavailable{0}, other{0};
  std::thread callers([&] {
    RunConcurrently(8, [&](int) {
      absl::StatusOr<client::SignResult> r = c->Sign(Call(), absl::Seconds(30));
      if (r.ok()) {
        ++ok;
      } else if (r.status().code() == absl::StatusCode::kUnavailable) {
        ++unavailable;
      } else {
        ++other;
        ADD_FAILURE() << r.status();
      }
    });
  });
  // Two signatures under way, six queued: then the token goes away.
  const absl::Time until = absl::Now() + absl::Seconds(10);
  while (fault.Stats().sign_in_flight < 2 && absl::Now() < until) absl::SleepFor(absl::Milliseconds(2));
  ASSERT_OK(fault.Configure("token_gone=1"));
  callers.join();
  EXPECT_EQ(ok.load() + unavailable.load(), 8);
  EXPECT_GE(unavailable.load(), 6);  // the queued ones; the two under way may have finished
  EXPECT_EQ(other.load(), 0);

  // The token comes back: the pool reconnects and signing works again.
  ASSERT_OK(fault.Configure("token_gone=0\nsign_delay_us=0"));
  bool recovered = false;
  for (int i = 0; i < 200 && !recovered; ++i) {
    recovered = c->Sign(Call(), absl::Seconds(5)).ok();
    if (!recovered) absl::SleepFor(absl::Milliseconds(50));
  }
  EXPECT_TRUE(recovered);
}

// TarpitEnv: the default daemon (SoftHSM2) and Identity headers whose x5u is a fresh URL on the
// x5u server's tarpit, which holds every request until the test releases it.
class TarpitTest : public ::testing::Test {
 protected:
  void SetUp() override {
    DaemonEnvOptions options;
    options.drain_grace = absl::Seconds(20);
    auto env = DaemonEnv::Create(options);
    ASSERT_OK(env);
    env_ = *std::move(env);
    ASSERT_OK_AND_ASSIGN(std::string chain, stir::ReadFile(env_->FileChainPath()));
    HttpResponse held;
    held.body = chain;
    held.hold_until_release = true;
    env_->x5u_server().SetPrefixRoute("/tarpit/", held);
    ASSERT_OK_AND_ASSIGN(std::string key, stir::ReadFile(env_->FileKeyPath()));
    ASSERT_OK_AND_ASSIGN(signer_, stir::MemorySigner::FromPem(key));
    ASSERT_OK_AND_ASSIGN(client_, env_->NewClient("sbc1.test"));
  }
  void TearDown() override {
    if (env_ != nullptr) env_->x5u_server().ReleaseHeld("", /*stop_holding=*/true);
  }

  // TarpitIdentity signs a PASSporT (attest C, the file profile's key) whose x5u is
  // /tarpit/<name>.pem: a URL never fetched before, so never a cache hit.
  std::string TarpitIdentity(const std::string& name) {
    auto ps = stir::PassportSigner::Create(
        signer_.get(), env_->x5u_server().Url(absl::StrCat("/tarpit/", name, ".pem")),
        &stir::SystemClock::Shared(), stir::PassportSigner::Options{.x5u_policy = {.allow_any_port = true}});  // a loopback port
    EXPECT_OK(ps);
    stir::ShakenClaims claims;
    claims.attest = "C";
    claims.orig_tn = kOrig;
    claims.dest_tns = {kDest};
    auto signed_passport = (*ps)->Sign(claims);
    EXPECT_OK(signed_passport);
    return signed_passport->identity;
  }
  client::VerifyParams VerifyCall(std::string identity) {
    return {.identities = {std::move(identity)}, .from_tn = kOrig, .to_tns = {kDest}};
  }

  std::unique_ptr<DaemonEnv> env_;
  std::unique_ptr<stir::MemorySigner> signer_;
  std::unique_ptr<client::Client> client_;
};

TEST_F(TarpitTest, SlowX5uServersStallNeitherSigningNorCachedVerification) {
  // A call whose certificate is cached (fetched once, normally).
  ASSERT_OK_AND_ASSIGN(client::SignResult cached, client_->Sign({.profile = "file",
                                                                 .attest = "C",
                                                                 .orig_tn = kOrig,
                                                                 .dest_tns = {kDest}}));
  ASSERT_OK_AND_ASSIGN(client::VerifyResult warm, client_->Verify(VerifyCall(cached.identity)));
  ASSERT_TRUE(warm.overall.passed) << warm.overall.detail;

  constexpr int kHeld = 100;
  std::vector<std::string> identities;
  for (int i = 0; i < kHeld; ++i) identities.push_back(TarpitIdentity(absl::StrCat("storm", i)));
  std::atomic<int> answered{0}, passed{0};
  std::vector<std::thread> verifiers;
  for (int i = 0; i < kHeld; ++i) {
    verifiers.emplace_back([&, i] {
      absl::StatusOr<client::VerifyResult> v =
          client_->Verify(VerifyCall(identities[i]), absl::Seconds(60));
      ++answered;
      EXPECT_OK(v);
      if (v.ok() && v->overall.passed) ++passed;
    });
  }
  // The tarpit holds as many fetches as the per-host limit lets through; the rest wait for a slot.
  ASSERT_TRUE(env_->x5u_server().WaitForHeld(4, absl::Seconds(20)));

  // Meanwhile signing (token and file keys) and verification with a cached certificate work.
  for (int i = 0; i < 20; ++i) {
    EXPECT_OK(client_->Sign(Call(), absl::Seconds(5)));
    EXPECT_OK(client_->Sign({.profile = "file", .attest = "C", .orig_tn = kOrig,
                             .dest_tns = {kDest}},
                            absl::Seconds(5)));
    absl::StatusOr<client::VerifyResult> v =
        client_->Verify(VerifyCall(cached.identity), absl::Seconds(5));
    ASSERT_OK(v);
    EXPECT_TRUE(v->overall.passed) << v->overall.detail;
  }
  EXPECT_EQ(answered.load(), 0);  // the held calls are still waiting: nothing was dropped

  // Released, every held call gets its verdict.
  env_->x5u_server().ReleaseHeld("", /*stop_holding=*/true);
  for (auto& t : verifiers) t.join();
  EXPECT_EQ(answered.load(), kHeld);
  EXPECT_EQ(passed.load(), kHeld);
}

TEST_F(TarpitTest, ADeadlineShorterThanTheTarpitGetsA436VerdictBeforeTheDeadline) {
  absl::StatusOr<client::VerifyResult> v =
      client_->Verify(VerifyCall(TarpitIdentity("short")), absl::Seconds(1));
  // Answered while the tarpit still holds the fetch.
  EXPECT_GE(env_->x5u_server().HeldCount(), 1);
  ASSERT_OK(v);
  EXPECT_FALSE(v->overall.passed);
  EXPECT_EQ(v->overall.sip_code, 436);
  EXPECT_EQ(v->overall.reason, "fetch_timeout");
}

TEST_F(TarpitTest, CallsWaitingForAFetchSlotGet436WhenTheirDeadlineComes) {
  // Twelve fresh URLs on one host: four fetches run (the per-host limit), eight wait for a slot.
  constexpr int kCalls = 12;
  std::vector<std::string> identities;
  for (int i = 0; i < kCalls; ++i) identities.push_back(TarpitIdentity(absl::StrCat("slot", i)));
  std::atomic<int> timed_out{0};
  RunConcurrently(kCalls, [&](int i) {
    absl::StatusOr<client::VerifyResult> v =
        client_->Verify(VerifyCall(identities[i]), absl::Milliseconds(1500));
    ASSERT_OK(v);
    EXPECT_EQ(v->overall.sip_code, 436);
    if (v->overall.reason == "fetch_timeout") ++timed_out;
  });
  EXPECT_EQ(timed_out.load(), kCalls);
  EXPECT_EQ(env_->x5u_server().HeldCount(), 4);  // never more than the per-host limit
}

TEST_F(TarpitTest, DrainingFinishesTheCallsAcceptedBeforeIt) {
  constexpr int kCalls = 6;
  std::vector<std::string> identities;
  for (int i = 0; i < kCalls; ++i) identities.push_back(TarpitIdentity(absl::StrCat("drain", i)));
  std::atomic<int> passed{0};
  std::vector<std::thread> verifiers;
  for (int i = 0; i < kCalls; ++i) {
    verifiers.emplace_back([&, i] {
      absl::StatusOr<client::VerifyResult> v =
          client_->Verify(VerifyCall(identities[i]), absl::Seconds(30));
      EXPECT_OK(v);
      if (v.ok() && v->overall.passed) ++passed;
    });
  }
  ASSERT_TRUE(env_->x5u_server().WaitForHeld(4, absl::Seconds(20)));
  absl::Notification drained;
  std::thread shutdown([&] {
    env_->daemon().Shutdown();
    drained.Notify();
  });
  // Draining has begun (health NOT_SERVING) while the calls still wait on the x5u server.
  absl::SleepFor(absl::Milliseconds(300));
  EXPECT_FALSE(drained.HasBeenNotified());
  env_->x5u_server().ReleaseHeld("", /*stop_holding=*/true);
  for (auto& t : verifiers) t.join();
  shutdown.join();
  EXPECT_EQ(passed.load(), kCalls);
}

}  // namespace
}  // namespace shaken::testing
