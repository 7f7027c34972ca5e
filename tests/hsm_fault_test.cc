// Fault recovery on a real SoftHSM2 token (hsm/README.md): sessions closed behind the pool's back,
// the token directory removed and restored, the key deleted under a running pool. The pool
// recovers, never returns a wrong signature, and never hangs: every call is bounded by a deadline
// and every wait loop by an iteration limit.
#include <dlfcn.h>

#include <atomic>
#include <cstdio>
#include <filesystem>
#include <map>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "hsm/key_manager.h"
#include "hsm/key_pool.h"
#include "hsm/module.h"
#include "stir/openssl_util.h"
#include "tests/testing/softhsm_token.h"
#include "tests/testing/status_matchers.h"

namespace shaken::hsm {
namespace {

using ::shaken::testing::SoftHsmToken;

struct Fixture {
  std::shared_ptr<Module> module;
  std::shared_ptr<Token> token;
  Pkcs11Uri uri;
  stir::EvpPkeyPtr pub;
};

// Make generates a key whose label is unique per parameter (tests may share a process).
Fixture Make(std::string label) {
  auto& t = SoftHsmToken::Shared();
  label += "-" + std::to_string(static_cast<int>(
                     ::testing::TestWithParam<KeyCopy>::GetParam()));
  Fixture f;
  f.module = *Module::Load(t.module_path());
  f.token = *f.module->OpenToken(*Pkcs11Uri::Parse(t.TokenUri()), PinSource::FromFile(t.pin_file()));
  EXPECT_OK(GenerateP256Key(*f.token, {.label = label}).status());
  f.uri = *Pkcs11Uri::Parse(t.KeyUri(label));
  auto pub = ExportPublicKey(*f.token, f.uri);
  EXPECT_TRUE(pub.ok()) << pub.status();
  f.pub = std::move(*stir::ReadPublicKeyPem(pub->pem));
  return f;
}

// Fast backoff so that tests recover in milliseconds.
KeyPoolOptions FastOptions(int size, KeyCopy copy = KeyCopy::kIfAllowed) {
  return {.size = size,
          .open_at_start = size,
          .open_interval = absl::Milliseconds(1),
          .key_copy = copy,
          .max_wait = absl::Seconds(2),
          .backoff_initial = absl::Milliseconds(10),
          .backoff_max = absl::Milliseconds(100)};
}

stir::Sha256Digest DigestOf(int i) { return stir::Sha256("fault " + std::to_string(i)); }

// Signs once with a deadline; returns the status code, and fails the test on a signature that
// does not verify or on a call that outlives its deadline.
absl::StatusCode SignOnce(const KeyPool& pool, const EVP_PKEY* pub, int i) {
  const absl::Time start = absl::Now();
  const absl::Time deadline = start + absl::Seconds(1);
  auto sig = pool.SignDigest(DigestOf(i), deadline);
  EXPECT_LT(absl::Now() - start, absl::Seconds(3)) << "SignDigest overran its deadline";
  if (sig.ok()) {
    EXPECT_OK(stir::VerifyEs256(pub, DigestOf(i), *sig)) << "wrong signature returned";
    return absl::StatusCode::kOk;
  }
  return sig.status().code();
}

// Waits (bounded) until the pool signs again and is back to full strength.
void ExpectRecovers(const KeyPool& pool, const EVP_PKEY* pub) {
  bool signed_ok = false;
  for (int i = 0; i < 500 && !signed_ok; ++i) {
    signed_ok = SignOnce(pool, pub, 10000 + i) == absl::StatusCode::kOk;
    if (!signed_ok) absl::SleepFor(absl::Milliseconds(10));
  }
  EXPECT_TRUE(signed_ok) << "pool did not recover: " << pool.stats().last_error;
  for (int i = 0; i < 500 && pool.health() != Health::kServing; ++i) {
    absl::SleepFor(absl::Milliseconds(10));
  }
  EXPECT_EQ(pool.health(), Health::kServing) << pool.stats().last_error;
}

// CloseAllSessionsElsewhere closes every session of the token through another handle on the same
// module, as a second library in the process (or an HSM-side session reaper) might.
void CloseAllSessionsElsewhere(CK_SLOT_ID slot) {
  void* dl = dlopen(SoftHsmToken::Shared().module_path().c_str(), RTLD_NOW | RTLD_LOCAL);
  ASSERT_NE(dl, nullptr);
  auto get = reinterpret_cast<CK_C_GetFunctionList>(dlsym(dl, "C_GetFunctionList"));
  ASSERT_NE(get, nullptr);
  CK_FUNCTION_LIST* fl = nullptr;
  ASSERT_EQ(get(&fl), CKR_OK);
  ASSERT_EQ(fl->C_CloseAllSessions(slot), CKR_OK);
  dlclose(dl);  // only drops our reference; the module stays loaded
}

class HsmFaultTest : public ::testing::TestWithParam<KeyCopy> {};

TEST_P(HsmFaultTest, SessionsClosedBehindThePoolsBack) {
  Fixture f = Make("closed-key");
  ASSERT_OK_AND_ASSIGN(auto pool, KeyPool::Create(f.token, f.uri, FastOptions(4, GetParam())));
  for (int i = 0; i < 20; ++i) ASSERT_EQ(SignOnce(*pool, f.pub.get(), i), absl::StatusCode::kOk);

  CloseAllSessionsElsewhere(f.token->slot());

  // The first request finds its session gone, drops it and retries once on a fresh session
  // (new login included): it succeeds.
  EXPECT_EQ(SignOnce(*pool, f.pub.get(), 100), absl::StatusCode::kOk) << pool->stats().last_error;
  // The other stale sessions were dropped with it; concurrent signing goes on.
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 100; ++i) {
        if (SignOnce(*pool, f.pub.get(), 1000 * t + i) != absl::StatusCode::kOk) ++failures;
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(failures.load(), 0) << pool->stats().last_error;
  EXPECT_GE(pool->stats().sessions_dropped, 4u);
  ExpectRecovers(*pool, f.pub.get());
}

TEST_P(HsmFaultTest, TokenDirectoryRemovedAndRestored) {
  Fixture f = Make("moved-key");
  ASSERT_OK_AND_ASSIGN(auto pool, KeyPool::Create(f.token, f.uri, FastOptions(2, GetParam())));
  for (int i = 0; i < 10; ++i) ASSERT_EQ(SignOnce(*pool, f.pub.get(), i), absl::StatusCode::kOk);

  // Out of tokendir: SoftHSM2 takes every subdirectory of tokendir for a token, whatever its name.
  std::vector<std::string> dirs = SoftHsmToken::Shared().TokenSubdirs();
  ASSERT_FALSE(dirs.empty());
  auto away = [](const std::string& d) {
    return SoftHsmToken::Shared().dir() + "/away-" + std::filesystem::path(d).filename().string();
  };
  for (const auto& d : dirs) std::filesystem::rename(d, away(d));
  // Whatever the module makes of it, every answer is a verified signature or an error, in time.
  std::map<absl::StatusCode, int> seen;
  for (int i = 0; i < 40; ++i) ++seen[SignOnce(*pool, f.pub.get(), 100 + i)];
  // The loss becomes visible to everyone: sessions closed as a token removal would.
  CloseAllSessionsElsewhere(f.token->slot());
  for (int i = 0; i < 40; ++i) ++seen[SignOnce(*pool, f.pub.get(), 200 + i)];
  for (const auto& [code, n] : seen) {
    std::printf("token away: %s x%d\n", absl::StatusCodeToString(code).c_str(), n);
  }
  std::printf("health while away: %s; last error: %s\n",
              std::string(HealthName(pool->health())).c_str(), pool->stats().last_error.c_str());
  EXPECT_NE(pool->health(), Health::kServing);

  for (const auto& d : dirs) std::filesystem::rename(away(d), d);
  ExpectRecovers(*pool, f.pub.get());
}

TEST_P(HsmFaultTest, KeyDeletedUnderARunningPoolNeverSignsWithAnythingElse) {
  Fixture f = Make("doomed-key");
  ASSERT_OK_AND_ASSIGN(auto pool, KeyPool::Create(f.token, f.uri, FastOptions(2, GetParam())));
  ASSERT_EQ(SignOnce(*pool, f.pub.get(), 1), absl::StatusCode::kOk);
  ASSERT_OK(DeleteKey(*f.token, f.uri).status());
  // With a session copy the pool may keep signing with the copy (the same key: signatures still
  // verify); with the token object it must fail. SignOnce checks every signature it gets.
  std::map<absl::StatusCode, int> seen;
  for (int i = 0; i < 20; ++i) ++seen[SignOnce(*pool, f.pub.get(), 100 + i)];
  if (GetParam() == KeyCopy::kNever) {
    EXPECT_EQ(seen[absl::StatusCode::kOk], 0);
    EXPECT_GT(seen[absl::StatusCode::kUnavailable], 0);
  }
  // Sessions reopened from now on cannot find the key: the pool reports it.
  CloseAllSessionsElsewhere(f.token->slot());
  for (int i = 0; i < 10; ++i) {
    EXPECT_NE(SignOnce(*pool, f.pub.get(), 200 + i), absl::StatusCode::kOk);
  }
  for (int i = 0; i < 100 && pool->health() != Health::kDown; ++i) absl::SleepFor(absl::Milliseconds(5));
  EXPECT_EQ(pool->health(), Health::kDown);
  EXPECT_THAT(pool->stats().last_error, ::testing::HasSubstr("object=doomed-key"));
  // Down means fail fast, not wait for the deadline.
  const absl::Time start = absl::Now();
  auto sig = pool->SignDigest(DigestOf(1), absl::Now() + absl::Seconds(10));
  EXPECT_THAT(sig, ::shaken::testing::StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_LT(absl::Now() - start, absl::Milliseconds(500));
}

INSTANTIATE_TEST_SUITE_P(KeyCopyModes, HsmFaultTest,
                         ::testing::Values(KeyCopy::kIfAllowed, KeyCopy::kNever),
                         [](const auto& info) {
                           return info.param == KeyCopy::kNever ? std::string("TokenObject")
                                                                : std::string("SessionCopy");
                         });

}  // namespace
}  // namespace shaken::hsm
