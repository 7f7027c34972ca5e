#include "stir/verification_stack.h"

#include <atomic>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "stir/memory_signer.h"
#include "stir/passport.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/test_pki.h"

namespace shaken::stir {
namespace {

using ::shaken::testing::StatusIs;
using ::shaken::testing::TempDir;
using ::shaken::testing::TestCert;
using ::shaken::testing::TestPki;
using ::testing::HasSubstr;

const absl::Time kNow = absl::FromUnixSeconds(1767225600);  // 2026-01-01T00:00:00Z
constexpr char kX5u[] = "https://cert.example.com/709J.pem";
constexpr char kOrig[] = "12155550121";
constexpr char kDest[] = "12155550131";

// ChainFetcher answers every URL with one body and counts the fetches.
class ChainFetcher : public CertificateFetcher {
 public:
  explicit ChainFetcher(std::string body) : body_(std::move(body)) {}
  FetchResult Fetch(std::string_view) const override {
    ++calls;
    FetchResult r;
    r.http_status = 200;
    r.body = body_;
    return r;
  }
  mutable std::atomic<int> calls{0};

 private:
  std::string body_;
};

// CountingWrapper passes fetches on and counts them (what shakend's metered fetcher does).
class CountingWrapper : public CertificateFetcher {
 public:
  explicit CountingWrapper(std::shared_ptr<const CertificateFetcher> inner)
      : inner_(std::move(inner)) {}
  FetchResult Fetch(std::string_view url) const override {
    ++calls;
    return inner_->Fetch(url);
  }
  mutable std::atomic<int> calls{0};

 private:
  std::shared_ptr<const CertificateFetcher> inner_;
};

class VerificationStackTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(pki_, TestPki::Create(kNow));
    ASSERT_OK_AND_ASSIGN(TestCert leaf, pki_->IssueLeaf());
    ca_file_ = dir_.Write("ca.pem", pki_->root().cert_pem);
    fetcher_ = std::make_shared<ChainFetcher>(pki_->ChainPem(leaf));
    ASSERT_OK_AND_ASSIGN(auto key, MemorySigner::FromPem(leaf.key_pem));
    ASSERT_OK_AND_ASSIGN(auto signer, PassportSigner::Create(key.get(), kX5u, &clock_));
    ASSERT_OK_AND_ASSIGN(SignedPassport sp,
                         signer->Sign({.attest = "A", .orig_tn = kOrig, .dest_tns = {kDest}}));
    identity_ = sp.identity;
  }

  VerifierSettings Settings() const {
    VerifierSettings s;
    s.validator.ca_file = ca_file_;
    s.validator.strictness = ProfileStrictness::kStrict;
    return s;
  }

  TempDir dir_;
  std::unique_ptr<TestPki> pki_;
  std::string ca_file_;
  std::shared_ptr<ChainFetcher> fetcher_;
  FixedClock clock_{kNow};
  std::string identity_;
};

TEST_F(VerificationStackTest, BuiltInOneCallVerifiesAndCaches) {
  ASSERT_OK_AND_ASSIGN(auto stack,
                       VerificationStack::New(Settings(), &clock_, {.fetcher = fetcher_}));
  for (int i = 0; i < 2; ++i) {
    ASSERT_OK_AND_ASSIGN(VerifyResult r,
                         stack->verifier().Verify({identity_}, {.from_tn = kOrig,
                                                                .to_tns = {kDest}}));
    EXPECT_TRUE(r.overall.passed) << r.overall.detail;
  }
  EXPECT_EQ(fetcher_->calls.load(), 1);  // the second call was answered from the cache
  ASSERT_NE(stack->certificate_cache(), nullptr);
  EXPECT_EQ(stack->certificate_cache()->Stats().hits, 1u);
  EXPECT_EQ(stack->x5u_fetcher(), nullptr);  // a given fetcher
  ASSERT_NE(stack->validator(), nullptr);
  EXPECT_EQ(stack->validator()->strictness(), ProfileStrictness::kStrict);
  EXPECT_OK(stack->ReloadTrust());
}

TEST_F(VerificationStackTest, VerifyAsyncThroughTheStack) {
  ASSERT_OK_AND_ASSIGN(auto stack,
                       VerificationStack::New(Settings(), &clock_, {.fetcher = fetcher_}));
  std::vector<std::string_view> headers = {identity_};
  bool passed = false;
  stack->verifier().VerifyAsync(headers, {.from_tn = kOrig, .to_tns = {kDest}},
                                absl::Now() + absl::Seconds(5),
                                [&](absl::StatusOr<VerifyResult> r) {
                                  passed = r.ok() && r->overall.passed;
                                });
  EXPECT_TRUE(passed);  // the test fetcher answers inline, so done ran before VerifyAsync returned
}

TEST_F(VerificationStackTest, OneX5uPolicyForFetcherAndVerifier) {
  VerifierSettings s = Settings();
  s.x5u_policy.allow_http = true;
  s.x5u_policy.allow_any_port = true;
  s.fetcher.allow_private_addresses = true;  // replaced by x5u_policy: not a second policy
  s.fetcher.connect_timeout = absl::Seconds(3);
  ASSERT_OK_AND_ASSIGN(auto stack, VerificationStack::New(s, &clock_));
  ASSERT_NE(stack->x5u_fetcher(), nullptr);
  const X5uFetcherOptions& fo = stack->x5u_fetcher()->options();
  EXPECT_TRUE(fo.allow_http);
  EXPECT_TRUE(fo.allow_any_port);
  EXPECT_FALSE(fo.allow_private_addresses);
  EXPECT_EQ(fo.connect_timeout, absl::Seconds(3));
  EXPECT_TRUE(stack->verifier().options().x5u_policy.allow_http);
  EXPECT_TRUE(stack->verifier().options().x5u_policy.allow_any_port);
}

TEST_F(VerificationStackTest, WrapFetcherSeesEveryFetch) {
  std::shared_ptr<CountingWrapper> wrapper;
  VerificationStackParts parts;
  parts.fetcher = fetcher_;
  parts.wrap_fetcher = [&](std::shared_ptr<const CertificateFetcher> inner) {
    wrapper = std::make_shared<CountingWrapper>(std::move(inner));
    return wrapper;
  };
  ASSERT_OK_AND_ASSIGN(auto stack, VerificationStack::New(Settings(), &clock_, parts));
  ASSERT_OK_AND_ASSIGN(VerifyResult r,
                       stack->verifier().Verify({identity_}, {.from_tn = kOrig,
                                                              .to_tns = {kDest}}));
  EXPECT_TRUE(r.overall.passed) << r.overall.detail;
  ASSERT_NE(wrapper, nullptr);
  EXPECT_EQ(wrapper->calls.load(), 1);
}

TEST_F(VerificationStackTest, SharedValidatorAndOwnSource) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<CertValidator> v, CertValidator::New(Settings().validator));
  std::shared_ptr<const CertValidator> shared = std::move(v);
  const CertValidator* seen = nullptr;
  VerificationStackParts parts;
  parts.fetcher = fetcher_;
  parts.validator = shared;
  parts.make_source = [&](std::shared_ptr<const CertificateFetcher> fetcher,
                          std::shared_ptr<const CertValidator> validator)
      -> absl::StatusOr<std::unique_ptr<CertificateSource>> {
    seen = validator.get();
    return X5uCertificateSource::New(std::move(fetcher), std::move(validator));
  };
  ASSERT_OK_AND_ASSIGN(auto stack, VerificationStack::New(Settings(), &clock_, parts));
  EXPECT_EQ(seen, shared.get());
  EXPECT_EQ(stack->certificate_cache(), nullptr);  // the caller's source
  ASSERT_OK_AND_ASSIGN(VerifyResult r,
                       stack->verifier().Verify({identity_}, {.from_tn = kOrig,
                                                              .to_tns = {kDest}}));
  EXPECT_TRUE(r.overall.passed) << r.overall.detail;
  EXPECT_THAT(stack->ReloadTrust(), StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST_F(VerificationStackTest, ErrorsNameThePart) {
  VerifierSettings no_anchors;
  EXPECT_THAT(VerificationStack::New(no_anchors, &clock_).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("verifier trust anchors: ")));
  VerifierSettings bad_limits = Settings();
  bad_limits.fetcher.max_in_flight = 0;
  EXPECT_THAT(VerificationStack::New(bad_limits, &clock_).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("x5u fetcher: ")));
  VerifierSettings bad_cache = Settings();
  bad_cache.cache.max_entries = 0;
  EXPECT_THAT(VerificationStack::New(bad_cache, &clock_, {.fetcher = fetcher_}).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("certificate cache: ")));
  EXPECT_THAT(VerificationStack::New(Settings(), &clock_, {.without_validator = true}).status(),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("make_source")));
}

}  // namespace
}  // namespace shaken::stir
