// shaken_fault_pkcs11 (tests/testing/fault_pkcs11.h) in front of a real SoftHSM2 token, driven
// through hsm::KeyPool: the pool never runs more C_Sign calls at once than it has sessions,
// injected C_Sign failures are handled as hsm/key_pool.h documents, and a token that goes away
// makes signing UNAVAILABLE until it comes back and the pool reconnects. Every wait is bounded;
// no assertion is about speed.
#include <atomic>
#include <cstdlib>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "hsm/key_manager.h"
#include "hsm/key_pool.h"
#include "hsm/module.h"
#include "stir/openssl_util.h"
#include "tests/testing/fault_pkcs11_control.h"
#include "tests/testing/softhsm_token.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/test_pki.h"

namespace shaken::hsm {
namespace {

using ::shaken::testing::FaultP11;
using ::shaken::testing::SoftHsmToken;
using ::shaken::testing::StatusIs;
using ::testing::HasSubstr;

// Every fault off: each test starts from here (the module's state is process-wide).
constexpr char kNoFaults[] =
    "sign_delay_us=0\nsign_init_delay_us=0\nopen_session_delay_us=0\nlogin_delay_us=0\n"
    "sign_fail_every=0\nsign_fail_rv=CKR_DEVICE_ERROR\ntoken_gone=0\n";

// Files the module watches; the environment is set before its first load.
const ::shaken::testing::TempDir& Files() {
  static auto* dir = new ::shaken::testing::TempDir();
  return *dir;
}
std::string ControlPath() { return Files().path() + "/control"; }
std::string StatsPath() { return Files().path() + "/stats"; }

class FaultPkcs11Test : public ::testing::Test {
 protected:
  void SetUp() override {
    SoftHsmToken& t = SoftHsmToken::Shared();  // before SoftHSM2 reads SOFTHSM2_CONF
    ::setenv("SHAKEN_FAULT_P11_CONTROL", ControlPath().c_str(), 1);
    ::setenv("SHAKEN_FAULT_P11_STATS", StatsPath().c_str(), 1);
    ASSERT_OK_AND_ASSIGN(module_, Module::Load(SHAKEN_FAULT_P11_MODULE));
    ASSERT_OK_AND_ASSIGN(fault_, FaultP11::Attach(SHAKEN_FAULT_P11_MODULE));
    ASSERT_OK(fault_.Configure(kNoFaults));
    ASSERT_OK_AND_ASSIGN(token_, module_->OpenToken(*Pkcs11Uri::Parse(t.TokenUri()),
                                                    PinSource::FromFile(t.pin_file())));
  }
  void TearDown() override { EXPECT_OK(fault_.Configure(kNoFaults)); }

  // NewKey generates a P-256 key through the fault module and returns its URI and public key.
  std::pair<Pkcs11Uri, stir::EvpPkeyPtr> NewKey(const std::string& label) {
    auto info = GenerateP256Key(*token_, {.label = label});
    EXPECT_TRUE(info.ok()) << info.status();
    auto uri = Pkcs11Uri::Parse(SoftHsmToken::Shared().KeyUri(label));
    EXPECT_TRUE(uri.ok());
    auto pub = ExportPublicKey(*token_, *uri);
    EXPECT_TRUE(pub.ok()) << pub.status();
    auto pkey = stir::ReadPublicKeyPem(pub->pem);
    EXPECT_TRUE(pkey.ok());
    return {*uri, std::move(*pkey)};
  }

  std::shared_ptr<Module> module_;
  FaultP11 fault_;
  std::shared_ptr<Token> token_;
};

stir::Sha256Digest DigestOf(int i) { return stir::Sha256("fault module " + std::to_string(i)); }

KeyPoolOptions FastOptions(int size) {
  return {.size = size,
          .open_at_start = size,
          .open_interval = absl::Milliseconds(1),
          .max_wait = absl::Seconds(10),
          .backoff_initial = absl::Milliseconds(10),
          .backoff_max = absl::Milliseconds(50)};
}

// ExpectRecovers waits (bounded) until the pool signs again and is back to full strength.
void ExpectRecovers(const KeyPool& pool, const EVP_PKEY* pub) {
  bool signed_ok = false;
  for (int i = 0; i < 1000 && !signed_ok; ++i) {
    auto sig = pool.SignDigest(DigestOf(i), absl::Now() + absl::Seconds(5));
    signed_ok = sig.ok();
    if (signed_ok) {
      EXPECT_OK(stir::VerifyEs256(pub, DigestOf(i), *sig));
    } else {
      absl::SleepFor(absl::Milliseconds(10));
    }
  }
  EXPECT_TRUE(signed_ok) << "pool did not recover: " << pool.stats().last_error;
  for (int i = 0; i < 1000 && pool.health() != Health::kServing; ++i) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  EXPECT_EQ(pool.health(), Health::kServing) << pool.stats().last_error;
}

TEST_F(FaultPkcs11Test, LoadedWithTheQuirksOfTheModuleItWraps) {
  // C_GetInfo is forwarded: SoftHSM2's manufacturer gives SoftHSM2's quirks, whatever the path.
  const ModuleQuirks expected = ModuleQuirks::SoftHsm2();
  EXPECT_EQ(module_->quirks().finalize_on_unload, expected.finalize_on_unload);
  EXPECT_EQ(module_->quirks().close_pooled_sessions, expected.close_pooled_sessions);
  EXPECT_EQ(module_->quirks().reinitialize_on_token_loss, expected.reinitialize_on_token_loss);
  EXPECT_TRUE(ModuleQuirks::ForPath(SHAKEN_FAULT_P11_MODULE).finalize_on_unload)
      << "the test is vacuous: the module's path alone already names SoftHSM2";
}

TEST_F(FaultPkcs11Test, ConcurrentSignsNeverExceedThePoolSize) {
  auto [uri, pub] = NewKey("fault-concurrency");
  ASSERT_OK_AND_ASSIGN(auto pool, KeyPool::Create(token_, uri, FastOptions(4)));
  ASSERT_OK(fault_.Configure("sign_delay_us=30000"));
  fault_.Reset();
  constexpr int kThreads = 8, kPerThread = 5;
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        stir::Sha256Digest d = DigestOf(t * 100 + i);
        auto sig = pool->SignDigest(d, absl::Now() + absl::Seconds(30));
        if (sig.ok() && stir::VerifyEs256(pub.get(), d, *sig).ok()) ++ok;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(ok.load(), kThreads * kPerThread) << pool->stats().last_error;
  ShakenFaultP11Stats s = fault_.Stats();
  EXPECT_EQ(s.sign_calls, static_cast<uint64_t>(kThreads * kPerThread));
  // 8 callers, 4 sessions, each C_Sign held 30 ms: the sessions are the only limit.
  EXPECT_EQ(s.sign_max_in_flight, 4u);
  EXPECT_EQ(s.sign_in_flight, 0u);
  EXPECT_GT(pool->stats().waits, 0u);
}

TEST_F(FaultPkcs11Test, RecoverableSignFailureIsRetriedOnAFreshSession) {
  auto [uri, pub] = NewKey("fault-device-error");
  ASSERT_OK_AND_ASSIGN(auto pool, KeyPool::Create(token_, uri, FastOptions(2)));
  ASSERT_OK(fault_.Configure("sign_fail_every=5\nsign_fail_rv=CKR_DEVICE_ERROR"));
  fault_.Reset();
  // CKR_DEVICE_ERROR drops the session and retries once on a new one: every call succeeds.
  for (int i = 0; i < 20; ++i) {
    ASSERT_OK_AND_ASSIGN(auto sig, pool->SignDigest(DigestOf(i), absl::Now() + absl::Seconds(5)));
    EXPECT_OK(stir::VerifyEs256(pub.get(), DigestOf(i), sig));
  }
  ShakenFaultP11Stats s = fault_.Stats();
  EXPECT_EQ(s.injected_failures, 4u);  // the 5th, 10th, 15th and 20th C_Sign
  EXPECT_EQ(s.sign_calls, 24u);
  EXPECT_EQ(pool->stats().sign_failures, 4u);
  EXPECT_GE(pool->stats().sessions_dropped, 4u);
  ASSERT_OK(fault_.Configure("sign_fail_every=0"));
  ExpectRecovers(*pool, pub.get());
}

TEST_F(FaultPkcs11Test, OtherSignFailureFailsTheCallAndThePoolGoesOn) {
  auto [uri, pub] = NewKey("fault-function-failed");
  ASSERT_OK_AND_ASSIGN(auto pool, KeyPool::Create(token_, uri, FastOptions(2)));
  ASSERT_OK(fault_.Configure("sign_fail_every=3\nsign_fail_rv=CKR_FUNCTION_FAILED"));
  // Not a session loss: the call fails (no retry), mapped as hsm/ck.h says, naming the call.
  int failed = 0;
  for (int i = 0; i < 9; ++i) {
    auto sig = pool->SignDigest(DigestOf(i), absl::Now() + absl::Seconds(5));
    if (sig.ok()) {
      EXPECT_OK(stir::VerifyEs256(pub.get(), DigestOf(i), *sig));
      continue;
    }
    ++failed;
    EXPECT_EQ(i % 3, 2) << "only every third call fails: " << sig.status();
    EXPECT_THAT(sig, StatusIs(absl::StatusCode::kUnavailable));
    EXPECT_THAT(sig.status().message(), HasSubstr("C_Sign"));
    EXPECT_THAT(sig.status().message(), HasSubstr("CKR_FUNCTION_FAILED"));
    // The session was dropped; until the background thread has replaced it a caller may find the
    // pool empty ("token down, reconnecting"): wait for it, bounded.
    for (int j = 0; j < 500 && pool->stats().live < 2; ++j) absl::SleepFor(absl::Milliseconds(5));
    ASSERT_EQ(pool->stats().live, 2) << pool->stats().last_error;
  }
  EXPECT_EQ(failed, 3);
  EXPECT_EQ(pool->stats().sign_failures, 3u);
  ASSERT_OK(fault_.Configure("sign_fail_every=0"));
  ExpectRecovers(*pool, pub.get());
}

TEST_F(FaultPkcs11Test, TokenGoneMakesSigningUnavailableUntilItComesBack) {
  auto [uri, pub] = NewKey("fault-token-gone");
  ASSERT_OK_AND_ASSIGN(auto pool, KeyPool::Create(token_, uri, FastOptions(3)));
  for (int i = 0; i < 5; ++i) ASSERT_OK(pool->SignDigest(DigestOf(i)).status());
  const uint64_t opened_before = pool->stats().sessions_opened;

  ASSERT_OK(fault_.Configure("token_gone=1"));
  for (int i = 0; i < 20; ++i) {
    const absl::Time start = absl::Now();
    auto sig = pool->SignDigest(DigestOf(100 + i), start + absl::Seconds(2));
    EXPECT_THAT(sig, StatusIs(absl::StatusCode::kUnavailable)) << i;
    EXPECT_LT(absl::Now() - start, absl::Seconds(5)) << "SignDigest overran its deadline";
  }
  for (int i = 0; i < 500 && pool->health() != Health::kDown; ++i) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  EXPECT_EQ(pool->health(), Health::kDown) << pool->stats().last_error;
  EXPECT_GT(fault_.Stats().gone_refusals, 0u);

  ASSERT_OK(fault_.Configure("token_gone=0"));
  ExpectRecovers(*pool, pub.get());
  EXPECT_GT(pool->stats().sessions_opened, opened_before) << "the pool reconnected";
}

TEST_F(FaultPkcs11Test, ControlAndStatsFilesForAnotherProcess) {
  auto [uri, pub] = NewKey("fault-files");
  ASSERT_OK_AND_ASSIGN(auto pool, KeyPool::Create(token_, uri, FastOptions(1)));
  const uint64_t loads = fault_.Stats().control_loads;
  ASSERT_OK(::shaken::testing::WriteFaultP11Control(ControlPath(),
                                                    "# as a test would\nsign_fail_every=1\n"));
  // The polling thread applies it within milliseconds (bounded wait, not a speed assertion).
  for (int i = 0; i < 1000 && fault_.Stats().control_loads == loads; ++i) {
    absl::SleepFor(absl::Milliseconds(2));
  }
  ASSERT_GT(fault_.Stats().control_loads, loads);
  // Every C_Sign now fails CKR_DEVICE_ERROR, the retry too.
  EXPECT_THAT(pool->SignDigest(DigestOf(1), absl::Now() + absl::Seconds(5)),
              StatusIs(absl::StatusCode::kUnavailable));
  ASSERT_OK(::shaken::testing::WriteFaultP11Control(ControlPath(), "sign_fail_every=0"));
  ExpectRecovers(*pool, pub.get());
  const uint64_t calls = fault_.Stats().sign_calls;
  ASSERT_OK_AND_ASSIGN(
      ShakenFaultP11Stats s,
      ::shaken::testing::WaitForFaultP11Stats(
          StatsPath(), [&](const ShakenFaultP11Stats& s) { return s.sign_calls >= calls; },
          absl::Seconds(10)));
  EXPECT_GE(s.injected_failures, 2u);
  // A bad control file is refused as a whole.
  EXPECT_THAT(fault_.Configure("sign_delay_us=5\nno_such_key=1"),
              StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(fault_.Configure("token_gone=2"), StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace shaken::hsm
