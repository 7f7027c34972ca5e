// KeyPool on a real SoftHSM2 token: signatures verify with the exported public key, many threads
// sign at once, exactly two PKCS#11 calls per signature in steady state, several keys on two
// tokens share one module and one login per token.
#include <atomic>
#include <thread>
#include <vector>

#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "hsm/counting_function_list.h"
#include "hsm/key_manager.h"
#include "hsm/key_pool.h"
#include "hsm/module.h"
#include "stir/openssl_util.h"
#include "tests/testing/softhsm_token.h"
#include "tests/testing/status_matchers.h"

namespace shaken::hsm {
namespace {

using ::shaken::testing::SoftHsmToken;

std::shared_ptr<Token> OpenTestToken(const std::shared_ptr<Module>& module,
                                     const std::string& label = "") {
  auto& t = SoftHsmToken::Shared();
  auto uri = Pkcs11Uri::Parse(t.TokenUri(label));
  EXPECT_TRUE(uri.ok());
  auto token = module->OpenToken(*uri, PinSource::FromFile(t.pin_file()));
  EXPECT_TRUE(token.ok()) << token.status();
  return token.ok() ? *token : nullptr;
}

std::shared_ptr<Module> LoadSoftHsm() {
  SoftHsmToken::Shared();  // before the module reads SOFTHSM2_CONF
  auto m = Module::Load(SoftHsmToken::Shared().module_path());
  EXPECT_TRUE(m.ok()) << m.status();
  return *m;
}

// NewKey generates a P-256 key and returns its URI and public key.
std::pair<Pkcs11Uri, stir::EvpPkeyPtr> NewKey(Token& token, const std::string& label,
                                              const std::string& token_label = "") {
  auto info = GenerateP256Key(token, {.label = label});
  EXPECT_TRUE(info.ok()) << info.status();
  auto uri = Pkcs11Uri::Parse(SoftHsmToken::Shared().KeyUri(label, token_label));
  EXPECT_TRUE(uri.ok());
  auto pub = ExportPublicKey(token, *uri);
  EXPECT_TRUE(pub.ok()) << pub.status();
  auto pkey = stir::ReadPublicKeyPem(pub->pem);
  EXPECT_TRUE(pkey.ok());
  return {*uri, std::move(*pkey)};
}

stir::Sha256Digest DigestOf(int i) { return stir::Sha256("message " + std::to_string(i)); }

void WaitFilled(const KeyPool& pool) {
  for (int i = 0; i < 2000 && pool.stats().live < pool.stats().size; ++i) {
    absl::SleepFor(absl::Milliseconds(5));
  }
  ASSERT_EQ(pool.stats().live, pool.stats().size);
}

TEST(HsmPoolTest, SignaturesVerifyWithExportedPublicKey) {
  auto module = LoadSoftHsm();
  auto token = OpenTestToken(module);
  auto [uri, pub] = NewKey(*token, "verify-key");
  ASSERT_OK_AND_ASSIGN(auto pool, KeyPool::Create(token, uri, {.size = 2}));
  EXPECT_TRUE(pool->stats().key_copied);  // SoftHSM2 allows C_CopyObject: the best config
  for (int i = 0; i < 20; ++i) {
    ASSERT_OK_AND_ASSIGN(stir::Es256Signature sig, pool->SignDigest(DigestOf(i)));
    EXPECT_OK(stir::VerifyEs256(pub.get(), DigestOf(i), sig));
    // The signature is over this digest and no other.
    EXPECT_FALSE(stir::VerifyEs256(pub.get(), DigestOf(i + 1), sig).ok());
  }
  // Also through OpenSSL's DER path, as X.509 signing in shakenctl will use it.
  ASSERT_OK_AND_ASSIGN(stir::Es256Signature sig, pool->SignDigest(DigestOf(99)));
  ASSERT_OK_AND_ASSIGN(std::string der, stir::EcdsaRawToDer(sig));
  stir::EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new(pub.get(), nullptr));
  ASSERT_EQ(EVP_PKEY_verify_init(ctx.get()), 1);
  stir::Sha256Digest d = DigestOf(99);
  EXPECT_EQ(EVP_PKEY_verify(ctx.get(), reinterpret_cast<const unsigned char*>(der.data()),
                            der.size(), d.data(), d.size()),
            1);
}

TEST(HsmPoolTest, TokenObjectWithoutCopyAlsoSigns) {
  auto module = LoadSoftHsm();
  auto token = OpenTestToken(module);
  auto [uri, pub] = NewKey(*token, "nocopy-key");
  ASSERT_OK_AND_ASSIGN(auto pool, KeyPool::Create(token, uri, {.size = 1, .key_copy = KeyCopy::kNever}));
  EXPECT_FALSE(pool->stats().key_copied);
  ASSERT_OK_AND_ASSIGN(stir::Es256Signature sig, pool->SignDigest(DigestOf(1)));
  EXPECT_OK(stir::VerifyEs256(pub.get(), DigestOf(1), sig));
}

TEST(HsmPoolTest, EightThreadsSignAtOnceAndEverySignatureVerifies) {
  auto module = LoadSoftHsm();
  auto token = OpenTestToken(module);
  auto [uri, pub] = NewKey(*token, "threads-key");
  ASSERT_OK_AND_ASSIGN(auto pool, KeyPool::Create(token, uri, {.size = 4, .open_at_start = 2}));
  constexpr int kThreads = 8, kPerThread = 150;
  std::atomic<int> ok{0}, bad{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        stir::Sha256Digest d = DigestOf(t * 100000 + i);
        auto sig = pool->SignDigest(d, absl::Now() + absl::Seconds(30));
        if (sig.ok() && stir::VerifyEs256(pub.get(), d, *sig).ok()) {
          ++ok;
        } else {
          ++bad;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(ok.load(), kThreads * kPerThread);
  EXPECT_EQ(bad.load(), 0);
  EXPECT_EQ(pool->health(), Health::kServing);
}

TEST(HsmPoolTest, ExactlyTwoPkcs11CallsPerSignatureInSteadyState) {
  auto real = LoadSoftHsm();
  ASSERT_OK_AND_ASSIGN(auto counting, CountingFunctionList::Create(real->functions()));
  {
    ASSERT_OK_AND_ASSIGN(auto module, Module::Wrap(counting->list(), ModuleQuirks::SoftHsm2(),
                                                   "counting(softhsm2)"));
    auto token = OpenTestToken(module);
    auto [uri, pub] = NewKey(*token, "count-key");
    ASSERT_OK_AND_ASSIGN(auto pool, KeyPool::Create(token, uri, {.size = 3}));
    WaitFilled(*pool);
    absl::SleepFor(absl::Milliseconds(20));  // let the background thread go back to waiting

    counting->Reset();
    constexpr int kSignatures = 1000;
    std::vector<stir::Es256Signature> sigs(kSignatures);
    std::vector<std::thread> threads;
    for (int t = 0; t < 4; ++t) {
      threads.emplace_back([&, t] {
        for (int i = t; i < kSignatures; i += 4) {
          auto sig = pool->SignDigest(DigestOf(i));
          ASSERT_TRUE(sig.ok()) << sig.status();
          sigs[i] = *sig;
        }
      });
    }
    for (auto& th : threads) th.join();
    auto calls = counting->Snapshot();
    EXPECT_EQ(counting->Count("C_SignInit"), kSignatures);
    EXPECT_EQ(counting->Count("C_Sign"), kSignatures);
    EXPECT_EQ(counting->Total(), 2u * kSignatures) << ::testing::PrintToString(calls);
    for (int i = 0; i < kSignatures; ++i) EXPECT_OK(stir::VerifyEs256(pub.get(), DigestOf(i), sigs[i]));
  }
}

TEST(HsmPoolTest, SeveralKeysOnTwoTokensShareOneModuleAndOneLoginPerToken) {
  auto real = LoadSoftHsm();
  ASSERT_OK_AND_ASSIGN(auto counting, CountingFunctionList::Create(real->functions()));
  {
    ASSERT_OK_AND_ASSIGN(auto module, Module::Wrap(counting->list(), ModuleQuirks::SoftHsm2(),
                                                   "counting(softhsm2)"));
    auto t1 = OpenTestToken(module, "shaken-test");
    auto t2 = OpenTestToken(module, "shaken-test-2");
    ASSERT_NE(t1, t2);
    // The same token asked twice is the same Token (one login).
    EXPECT_EQ(OpenTestToken(module, "shaken-test"), t1);
    auto [ua, pa] = NewKey(*t1, "profile-a");
    auto [ub, pb] = NewKey(*t1, "profile-b");
    auto [uc, pc] = NewKey(*t2, "profile-c", "shaken-test-2");
    ASSERT_OK_AND_ASSIGN(auto a, KeyPool::Create(t1, ua, {.size = 2, .open_at_start = 2}));
    ASSERT_OK_AND_ASSIGN(auto b, KeyPool::Create(t1, ub, {.size = 2, .open_at_start = 2}));
    ASSERT_OK_AND_ASSIGN(auto c, KeyPool::Create(t2, uc, {.size = 2, .open_at_start = 2}));
    EXPECT_LE(counting->Count("C_Login"), 2u);
    for (int i = 0; i < 10; ++i) {
      stir::Sha256Digest d = DigestOf(i);
      ASSERT_OK_AND_ASSIGN(auto sa, a->SignDigest(d));
      ASSERT_OK_AND_ASSIGN(auto sb, b->SignDigest(d));
      ASSERT_OK_AND_ASSIGN(auto sc, c->SignDigest(d));
      EXPECT_OK(stir::VerifyEs256(pa.get(), d, sa));
      EXPECT_OK(stir::VerifyEs256(pb.get(), d, sb));
      EXPECT_OK(stir::VerifyEs256(pc.get(), d, sc));
      EXPECT_FALSE(stir::VerifyEs256(pa.get(), d, sb).ok());  // each profile its own key
    }
  }
}

TEST(HsmPoolTest, OpenKeyPoolFromConfigForTheCli) {
  auto& t = SoftHsmToken::Shared();
  auto module = LoadSoftHsm();
  auto token = OpenTestToken(module);
  auto [uri, pub] = NewKey(*token, "cli-key");
  ASSERT_OK_AND_ASSIGN(auto pool, OpenKeyPool({.module_path = t.module_path(),
                                               .key_uri = t.KeyUri("cli-key"),
                                               .pin = PinSource::FromFile(t.pin_file()),
                                               .pool = {.size = 1}}));
  stir::Signer& signer = *pool;
  ASSERT_OK_AND_ASSIGN(auto sig, signer.SignDigest(DigestOf(5)));
  EXPECT_OK(stir::VerifyEs256(pub.get(), DigestOf(5), sig));
  // The same through a URI that names its PIN (tests only).
  ASSERT_OK_AND_ASSIGN(auto pool2,
                       OpenKeyPool({.key_uri = t.KeyUri("cli-key") + "?module-path=" +
                                               t.module_path() + "&pin-value=" + t.pin(),
                                    .allow_pin_value = true}));
  ASSERT_OK_AND_ASSIGN(sig, pool2->SignDigest(DigestOf(6)));
  EXPECT_OK(stir::VerifyEs256(pub.get(), DigestOf(6), sig));
}

TEST(HsmPoolTest, DefaultQueueLimitLeavesRoomForBurstsOfASmallPool) {
  auto module = LoadSoftHsm();
  auto token = OpenTestToken(module);
  auto [uri, pub] = NewKey(*token, "queue-default-key");
  ASSERT_OK_AND_ASSIGN(auto small, KeyPool::Create(token, uri, {.size = 2}));
  EXPECT_EQ(small->stats().queue_limit, 256);
  ASSERT_OK_AND_ASSIGN(auto large, KeyPool::Create(token, uri, {.size = 20, .open_at_start = 1}));
  EXPECT_EQ(large->stats().queue_limit, 320);  // 16 per session
  ASSERT_OK_AND_ASSIGN(auto set, KeyPool::Create(token, uri, {.size = 2, .queue_limit = 3}));
  EXPECT_EQ(set->stats().queue_limit, 3);
}

TEST(HsmPoolTest, BusyPoolGivesDeadlineExceededOrResourceExhaustedNeverBlocks) {
  auto module = LoadSoftHsm();
  auto token = OpenTestToken(module);
  auto [uri, pub] = NewKey(*token, "busy-key");
  ASSERT_OK_AND_ASSIGN(auto pool, KeyPool::Create(token, uri, {.size = 1, .max_wait = absl::Microseconds(1)}));
  std::atomic<int> ok{0}, deadline{0}, exhausted{0}, other{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 200; ++i) {
        stir::Sha256Digest d = DigestOf(t * 1000 + i);
        // Half the callers bring a tight deadline, half rely on max_wait.
        absl::Time dl = (i % 2) ? absl::Now() + absl::Microseconds(1) : absl::InfiniteFuture();
        auto sig = pool->SignDigest(d, dl);
        if (sig.ok()) {
          if (stir::VerifyEs256(pub.get(), d, *sig).ok()) ++ok; else ++other;
        } else if (sig.status().code() == absl::StatusCode::kDeadlineExceeded) {
          ++deadline;
        } else if (sig.status().code() == absl::StatusCode::kResourceExhausted) {
          ++exhausted;
        } else {
          ++other;
        }
      }
    });
  }
  for (auto& th : threads) th.join();
  EXPECT_EQ(other.load(), 0);
  EXPECT_GT(ok.load(), 0);
  EXPECT_GT(deadline.load() + exhausted.load(), 0);
  // Every refusal had to wait first (the metric shaken_hsm_waits_total).
  EXPECT_GE(pool->stats().waits, static_cast<uint64_t>(deadline.load() + exhausted.load()));
}

}  // namespace
}  // namespace shaken::hsm
