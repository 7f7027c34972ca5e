// x5u_source_test: X5uCertificateSource end to end: a real HTTPS server on 127.0.0.1 serving a
// test STI PKI, the libcurl fetcher, OpenSSL chain + SHAKEN profile validation, and the cache.
#include <atomic>
#include <thread>

#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "stir/cert_cache.h"
#include "tests/testing/https_server.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/test_pki.h"

namespace shaken::stir {
namespace {

using ::shaken::testing::HttpResponse;
using ::shaken::testing::HttpsServer;
using ::shaken::testing::HttpsServerOptions;
using ::shaken::testing::LeafOptions;
using ::shaken::testing::TempDir;
using ::shaken::testing::TestCert;
using ::shaken::testing::TestPki;
using ::shaken::testing::TlsServerPki;
using ::testing::HasSubstr;

class X5uSourceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    now_ = absl::FromUnixSeconds(absl::ToUnixSeconds(absl::Now()));
    ASSERT_OK_AND_ASSIGN(pki_, TestPki::Create(now_));
    ASSERT_OK_AND_ASSIGN(tls_, TlsServerPki::Create(now_));
    HttpsServerOptions so;
    so.cert_pem = tls_.server.cert_pem;
    so.key_pem = tls_.server.key_pem;
    ASSERT_OK_AND_ASSIGN(server_, HttpsServer::Start(so));
    fetch_options_.tls_ca_file = dir_.Write("tls-ca.pem", tls_.ca.cert_pem);
    fetch_options_.allow_any_port = true;           // ephemeral port
    fetch_options_.allow_private_addresses = true;  // 127.0.0.1
    fetch_options_.total_timeout = absl::Milliseconds(1500);
    validator_options_.ca_file = dir_.Write("sti-ca.pem", pki_->root().cert_pem);
  }

  std::unique_ptr<X5uCertificateSource> Source(CertCacheOptions cache_options = {}) {
    auto fetcher = X5uFetcher::New(fetch_options_);
    EXPECT_TRUE(fetcher.ok()) << fetcher.status();
    auto validator = CertValidator::New(validator_options_);
    EXPECT_TRUE(validator.ok()) << validator.status();
    validator_ = std::shared_ptr<CertValidator>(std::move(*validator));
    auto source = X5uCertificateSource::New(std::shared_ptr<X5uFetcher>(std::move(*fetcher)),
                                            validator_, cache_options);
    EXPECT_TRUE(source.ok()) << source.status();
    return std::move(*source);
  }

  // Serve issues a leaf with `o` and serves its chain at `path`; returns the URL.
  std::string Serve(const std::string& path, const LeafOptions& o = {},
                    std::vector<std::pair<std::string, std::string>> headers = {}) {
    auto leaf = pki_->IssueLeaf(o);
    EXPECT_TRUE(leaf.ok()) << leaf.status();
    leaves_.push_back(std::move(*leaf));
    headers.emplace_back("Content-Type", "application/pem-certificate-chain");
    server_->SetRoute(path, {.headers = headers, .body = pki_->ChainPem(leaves_.back())});
    return server_->Url(path);
  }

  absl::Time now_;
  TempDir dir_;
  std::unique_ptr<TestPki> pki_;
  TlsServerPki tls_;
  std::unique_ptr<HttpsServer> server_;
  X5uFetcherOptions fetch_options_;
  CertValidatorOptions validator_options_;
  std::shared_ptr<CertValidator> validator_;
  std::vector<TestCert> leaves_;
};

TEST_F(X5uSourceTest, GoodChainThenCacheHit) {
  std::string url = Serve("/709J.pem");
  auto source = Source();
  CertificateResult r = source->Lookup(url, now_);
  ASSERT_TRUE(r.ok()) << ReasonName(r.reason) << ": " << r.detail;
  EXPECT_EQ(r.cert->info.spc, "709J");
  EXPECT_TRUE(IsP256Key(r.cert->public_key.get()));
  EXPECT_TRUE(source->Lookup(url, now_ + absl::Hours(1)).ok());
  EXPECT_EQ(server_->RequestCount("/709J.pem"), 1);
}

TEST_F(X5uSourceTest, MaxAgeExpiryViaNow) {
  std::string url = Serve("/709J.pem", {}, {{"Cache-Control", "max-age=60"}});
  auto source = Source();
  ASSERT_TRUE(source->Lookup(url, now_).ok());
  ASSERT_TRUE(source->Lookup(url, now_ + absl::Seconds(59)).ok());
  EXPECT_EQ(server_->RequestCount("/709J.pem"), 1);
  ASSERT_TRUE(source->Lookup(url, now_ + absl::Seconds(61)).ok());
  EXPECT_EQ(server_->RequestCount("/709J.pem"), 2);
}

TEST_F(X5uSourceTest, MaxAgeCappedByNotAfter) {
  LeafOptions o;
  o.not_after_offset = absl::Minutes(10);
  std::string url = Serve("/short.pem", o, {{"Cache-Control", "max-age=86400"}});
  auto source = Source();
  ASSERT_TRUE(source->Lookup(url, now_).ok());
  ASSERT_TRUE(source->Lookup(url, now_ + absl::Minutes(9)).ok());
  EXPECT_EQ(server_->RequestCount("/short.pem"), 1);
  EXPECT_EQ(source->Lookup(url, now_ + absl::Minutes(11)).reason, Reason::kCertExpired);
  EXPECT_EQ(server_->RequestCount("/short.pem"), 2);
}

TEST_F(X5uSourceTest, FetchFailuresAreNegativelyCached) {
  auto source = Source();
  const std::string url = server_->Url("/later.pem");
  CertificateResult r = source->Lookup(url, now_);
  EXPECT_EQ(r.reason, Reason::kFetchHttpStatus);
  EXPECT_THAT(r.detail, HasSubstr("404"));
  Serve("/later.pem");
  EXPECT_EQ(source->Lookup(url, now_ + absl::Seconds(10)).reason, Reason::kFetchHttpStatus);
  EXPECT_EQ(server_->RequestCount("/later.pem"), 1);
  EXPECT_TRUE(source->Lookup(url, now_ + absl::Seconds(31)).ok());
  EXPECT_EQ(server_->RequestCount("/later.pem"), 2);
}

TEST_F(X5uSourceTest, EveryFetchFailureHasItsReason) {
  server_->SetRoute("/500", {.status = 500});
  server_->SetRoute("/redirect", {.status = 301, .headers = {{"Location", "/709J.pem"}}});
  server_->SetRoute("/html", {.body = "<html></html>"});
  server_->SetRoute("/junk-pem", {.body = "-----BEGIN CERTIFICATE-----\nnot base64!\n"
                                          "-----END CERTIFICATE-----\n"});
  server_->SetRoute("/big", {.body = std::string(20000, 'A')});
  server_->SetRoute("/slow", {.body = "x", .delay_before = absl::Seconds(30)});
  fetch_options_.total_timeout = absl::Milliseconds(300);
  auto source = Source();
  EXPECT_EQ(source->Lookup(server_->Url("/500"), now_).reason, Reason::kFetchHttpStatus);
  EXPECT_EQ(source->Lookup(server_->Url("/redirect"), now_).reason, Reason::kFetchRedirect);
  EXPECT_EQ(source->Lookup(server_->Url("/html"), now_).reason, Reason::kFetchNotPem);
  EXPECT_EQ(source->Lookup(server_->Url("/junk-pem"), now_).reason, Reason::kFetchNotPem);
  EXPECT_EQ(source->Lookup(server_->Url("/big"), now_).reason, Reason::kFetchTooLarge);
  EXPECT_EQ(source->Lookup(server_->Url("/slow"), now_).reason, Reason::kFetchTimeout);
  std::string http = server_->Url("/709J.pem");
  http.replace(0, 5, "http");
  EXPECT_EQ(source->Lookup(http, now_).reason, Reason::kX5uNotAllowed);
  EXPECT_EQ(source->Stats().fetch_errors, 6u);         // the junk PEM was fetched fine...
  EXPECT_EQ(source->Stats().validation_failures, 1u);  // ...and failed to parse
}

TEST_F(X5uSourceTest, SsrfGuardByDefault) {
  std::string url = Serve("/709J.pem");
  fetch_options_.allow_private_addresses = false;
  auto source = Source();
  EXPECT_EQ(source->Lookup(url, now_).reason, Reason::kFetchAddressBlocked);
  EXPECT_EQ(server_->TotalRequests(), 0);
}

TEST_F(X5uSourceTest, CertificateFailures) {
  auto source = Source();
  LeafOptions expired;
  expired.not_before_offset = -absl::Hours(48);
  expired.not_after_offset = -absl::Hours(1);
  EXPECT_EQ(source->Lookup(Serve("/expired.pem", expired), now_).reason, Reason::kCertExpired);
  LeafOptions future;
  future.not_before_offset = absl::Hours(1);
  EXPECT_EQ(source->Lookup(Serve("/future.pem", future), now_).reason, Reason::kCertNotYetValid);
  LeafOptions no_tn;
  no_tn.tn_auth_list = false;
  EXPECT_EQ(source->Lookup(Serve("/no-tn.pem", no_tn), now_).reason, Reason::kCertNoTnAuthList);
  LeafOptions self;
  self.self_signed = true;
  EXPECT_EQ(source->Lookup(Serve("/self.pem", self), now_).reason, Reason::kCertUntrusted);
  LeafOptions p384;
  p384.key_type = LeafOptions::KeyType::kP384;
  EXPECT_EQ(source->Lookup(Serve("/p384.pem", p384), now_).reason, Reason::kCertKeyType);
  LeafOptions ku;
  ku.key_usage = LeafOptions::KeyUsage::kKeyCertSign;
  EXPECT_EQ(source->Lookup(Serve("/ku.pem", ku), now_).reason, Reason::kCertKeyUsage);
  // Wrong chain: a leaf of another PKI.
  ASSERT_OK_AND_ASSIGN(auto other, TestPki::Create(now_));
  ASSERT_OK_AND_ASSIGN(TestCert foreign, other->IssueLeaf());
  server_->SetRoute("/foreign.pem", {.body = other->ChainPem(foreign)});
  EXPECT_EQ(source->Lookup(server_->Url("/foreign.pem"), now_).reason, Reason::kCertUntrusted);
  LeafOptions bad_der;
  bad_der.tn_auth_list_der = std::string("\x30\x84\x7f\xff\xff\xff", 6);
  EXPECT_EQ(source->Lookup(Serve("/bad-der.pem", bad_der), now_).reason, Reason::kCertInvalid);
}

TEST_F(X5uSourceTest, PolicyStrictVsLenient) {
  LeafOptions v1;
  v1.policy_oids = {"2.16.840.1.114569.1.1.1"};
  std::string url = Serve("/v1.pem", v1);
  CertificateResult lenient = Source()->Lookup(url, now_);
  ASSERT_TRUE(lenient.ok()) << lenient.detail;
  EXPECT_FALSE(lenient.cert->info.profile_warnings.empty());
  validator_options_.strictness = ProfileStrictness::kStrict;
  EXPECT_EQ(Source()->Lookup(url, now_).reason, Reason::kCertPolicy);
}

TEST_F(X5uSourceTest, RevokedViaCrl) {
  std::string url = Serve("/revoked.pem");
  ASSERT_OK_AND_ASSIGN(std::string crl, pki_->CrlPem({leaves_.back().cert.get()}, false));
  validator_options_.crl_files = {dir_.Write("sti.crl", crl)};
  EXPECT_EQ(Source()->Lookup(url, now_).reason, Reason::kCertRevoked);
}

TEST_F(X5uSourceTest, SingleFlightWithManyThreads) {
  Serve("/709J.pem");
  // Slow the response down so that every thread arrives while the leader's fetch is in flight;
  // stragglers would hit the cache, so the server sees one request either way.
  HttpResponse slow{.body = pki_->ChainPem(leaves_.back()),
                    .delay_before = absl::Milliseconds(200)};
  server_->SetRoute("/709J.pem", slow);
  auto source = Source();
  const std::string url = server_->Url("/709J.pem");
  constexpr int kThreads = 12;
  std::atomic<int> ready{0};
  std::atomic<int> ok{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < kThreads; ++i) {
    threads.emplace_back([&] {
      ready++;
      while (ready.load() < kThreads) std::this_thread::yield();
      if (source->Lookup(url, now_).ok()) ok++;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), kThreads);
  EXPECT_EQ(server_->RequestCount("/709J.pem"), 1);
  EXPECT_EQ(source->Stats().fetches, 1u);
}

TEST_F(X5uSourceTest, LookupAsyncHitsAnswerInlineAndMissesOnTheFetchThread) {
  const std::string url = Serve("/709J.pem");
  auto source = Source();
  absl::Notification missed;
  bool miss_inline = true, miss_ok = false;
  std::atomic<bool> returned{false};
  source->LookupAsync(url, now_, absl::InfiniteFuture(), [&](CertificateResult r) {
    miss_inline = !returned.load();
    miss_ok = r.ok();
    missed.Notify();
  });
  returned = true;
  ASSERT_TRUE(missed.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_FALSE(miss_inline);
  EXPECT_TRUE(miss_ok);
  bool hit = false;
  source->LookupAsync(url, now_, absl::InfiniteFuture(),
                      [&](CertificateResult r) { hit = r.ok(); });
  EXPECT_TRUE(hit);  // answered before LookupAsync returned
  EXPECT_EQ(source->Stats().fetches, 1u);
}

TEST_F(X5uSourceTest, AWaiterGetsItsDeadlineWhileTheFlightGoesOnAndIsCached) {
  Serve("/held.pem");
  HttpResponse held{.body = pki_->ChainPem(leaves_.back())};
  held.hold_until_release = true;
  server_->SetRoute("/held.pem", held);
  fetch_options_.total_timeout = absl::Seconds(20);
  auto source = Source();
  const std::string url = server_->Url("/held.pem");
  absl::Notification short_done, long_done;
  CertificateResult short_result, long_result;
  source->LookupAsync(url, now_, absl::InfiniteFuture(), [&](CertificateResult r) {
    long_result = std::move(r);
    long_done.Notify();
  });
  ASSERT_TRUE(server_->WaitForHeld(1, absl::Seconds(10)));
  source->LookupAsync(url, now_, absl::Now() + absl::Milliseconds(200), [&](CertificateResult r) {
    short_result = std::move(r);
    short_done.Notify();
  });
  ASSERT_TRUE(short_done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_EQ(short_result.reason, Reason::kFetchTimeout);
  EXPECT_FALSE(long_done.HasBeenNotified());  // the flight goes on for the other waiter
  server_->ReleaseHeld("", /*stop_holding=*/true);
  ASSERT_TRUE(long_done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_TRUE(long_result.ok()) << long_result.detail;
  // One fetch in all, and its result serves the next call from the cache.
  EXPECT_TRUE(source->Lookup(url, now_).ok());
  EXPECT_EQ(server_->RequestCount("/held.pem"), 1);
  EXPECT_EQ(source->Stats().coalesced, 1u);
}

TEST_F(X5uSourceTest, AShedFetchIsNotRemembered) {
  // One slot per host, held by a first URL: a second URL's fetch is shed at its deadline.
  Serve("/first.pem");
  const std::string good = Serve("/second.pem");
  HttpResponse held{.body = pki_->ChainPem(leaves_.front())};
  held.hold_until_release = true;
  server_->SetRoute("/first.pem", held);
  fetch_options_.total_timeout = absl::Seconds(20);
  fetch_options_.max_per_host = 1;
  auto source = Source();
  absl::Notification first_done, second_done;
  CertificateResult second;
  source->LookupAsync(server_->Url("/first.pem"), now_, absl::InfiniteFuture(),
                      [&](CertificateResult) { first_done.Notify(); });
  ASSERT_TRUE(server_->WaitForHeld(1, absl::Seconds(10)));
  source->LookupAsync(good, now_, absl::Now() + absl::Milliseconds(200), [&](CertificateResult r) {
    second = std::move(r);
    second_done.Notify();
  });
  ASSERT_TRUE(second_done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_EQ(second.reason, Reason::kFetchTimeout);
  server_->ReleaseHeld("", /*stop_holding=*/true);
  ASSERT_TRUE(first_done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  // Our overload said nothing about /second.pem's server: the next lookup fetches it.
  EXPECT_TRUE(source->Lookup(good, now_).ok());
  EXPECT_EQ(server_->RequestCount("/second.pem"), 1);
}

TEST_F(X5uSourceTest, BoundsEvict) {
  CertCacheOptions o;
  o.max_entries = 2;
  auto source = Source(o);
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(source->Lookup(Serve("/" + std::to_string(i) + ".pem"), now_).ok());
  }
  EXPECT_EQ(source->Stats().entries, 2u);
  ASSERT_TRUE(source->Lookup(server_->Url("/0.pem"), now_).ok());
  EXPECT_EQ(server_->RequestCount("/0.pem"), 2);
}

}  // namespace
}  // namespace shaken::stir
