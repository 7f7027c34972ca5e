// crl_dp_test: revocation through the signing certificate's CRL distribution point, end to end in
// a VerificationStack with no crl_files: a real HTTPS x5u server and a plain-HTTP CRL server on
// 127.0.0.1 (CrlPolicy allows http), the libcurl fetcher's loop, OpenSSL's CRL checks.
#include <atomic>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "stir/verification_stack.h"
#include "tests/testing/https_server.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/test_pki.h"

namespace shaken::stir {
namespace {

using ::shaken::testing::HttpsServer;
using ::shaken::testing::HttpsServerOptions;
using ::shaken::testing::LeafOptions;
using ::shaken::testing::TempDir;
using ::shaken::testing::TestCert;
using ::shaken::testing::TestPki;
using ::shaken::testing::TlsServerPki;
using ::testing::HasSubstr;

class CrlDpTest : public ::testing::Test {
 protected:
  void SetUp() override {
    now_ = absl::FromUnixSeconds(absl::ToUnixSeconds(absl::Now()));
    ASSERT_OK_AND_ASSIGN(pki_, TestPki::Create(now_));
    ASSERT_OK_AND_ASSIGN(tls_, TlsServerPki::Create(now_));
    HttpsServerOptions so;
    so.cert_pem = tls_.server.cert_pem;
    so.key_pem = tls_.server.key_pem;
    ASSERT_OK_AND_ASSIGN(x5u_server_, HttpsServer::Start(so));
    HttpsServerOptions plain;
    plain.tls = false;
    ASSERT_OK_AND_ASSIGN(crl_server_, HttpsServer::Start(plain));
    // The x5u policy stays https-only: the CRL is fetched over http all the same.
    settings_.x5u_policy.allow_any_port = true;           // ephemeral ports
    settings_.x5u_policy.allow_private_addresses = true;  // 127.0.0.1
    settings_.fetcher.tls_ca_file = dir_.Write("tls-ca.pem", tls_.ca.cert_pem);
    settings_.fetcher.total_timeout = absl::Milliseconds(1500);
    settings_.validator.ca_file = dir_.Write("sti-ca.pem", pki_->root().cert_pem);
    settings_.crl.on_soft_fail = [this](std::string_view) { soft_fail_logs_++; };
  }

  std::unique_ptr<VerificationStack> Stack() {
    auto stack = VerificationStack::New(settings_);
    EXPECT_TRUE(stack.ok()) << stack.status();
    return stack.ok() ? *std::move(stack) : nullptr;
  }

  // Serve issues a leaf whose CRLDP is `crl_url` (cRLIssuer: the intermediate) and serves its
  // chain; returns the x5u URL.
  std::string Serve(const std::string& crl_url) {
    LeafOptions o;
    o.crl_url = crl_url;
    o.crl_issuer = true;
    auto leaf = pki_->IssueLeaf(o);
    EXPECT_TRUE(leaf.ok()) << leaf.status();
    leaf_ = std::move(*leaf);
    x5u_server_->SetRoute("/sp.pem", {.body = pki_->ChainPem(leaf_)});
    return x5u_server_->Url("/sp.pem");
  }

  void ServeCrl(bool revoke_leaf, absl::Duration next_update = absl::Hours(24)) {
    std::vector<const X509*> revoked;
    if (revoke_leaf) revoked.push_back(leaf_.cert.get());
    auto crl = pki_->CrlPem(revoked, /*issuer_is_root=*/false, next_update);
    ASSERT_TRUE(crl.ok()) << crl.status();
    crl_server_->SetRoute("/sti.crl", {.body = *crl});
  }

  absl::Time now_;
  TempDir dir_;
  std::unique_ptr<TestPki> pki_;
  TlsServerPki tls_;
  std::unique_ptr<HttpsServer> x5u_server_;
  std::unique_ptr<HttpsServer> crl_server_;
  VerifierSettings settings_;
  TestCert leaf_;
  std::atomic<int> soft_fail_logs_{0};
};

TEST_F(CrlDpTest, RevokedCertificateRefusedThroughItsCrldp) {
  ASSERT_TRUE(settings_.validator.crl_files.empty());
  std::string x5u = Serve(crl_server_->Url("/sti.crl"));
  ServeCrl(/*revoke_leaf=*/true);
  auto stack = Stack();
  CertificateResult r = stack->certificates().Lookup(x5u, now_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.reason, Reason::kCertRevoked) << r.detail;
  EXPECT_EQ(ReasonSipCode(r.reason), 437);
  EXPECT_EQ(ReasonName(r.reason), "cert_revoked");
  EXPECT_EQ(stack->crl_checker()->Stats().revoked, 1u);
}

TEST_F(CrlDpTest, GoodCertificatePassesAndACachedOneCostsNoCrlRequest) {
  std::string x5u = Serve(crl_server_->Url("/sti.crl"));
  ServeCrl(/*revoke_leaf=*/false);
  auto stack = Stack();
  CertificateResult r = stack->certificates().Lookup(x5u, now_);
  ASSERT_TRUE(r.ok()) << ReasonName(r.reason) << ": " << r.detail;
  EXPECT_TRUE(stack->certificates().Lookup(x5u, now_ + absl::Minutes(5)).ok());
  EXPECT_EQ(crl_server_->RequestCount("/sti.crl"), 1);
  EXPECT_EQ(x5u_server_->RequestCount("/sp.pem"), 1);
  CrlStats s = stack->crl_checker()->Stats();
  EXPECT_EQ(s.fetch_ok, 1u);
  EXPECT_EQ(s.cached, 1u);
  EXPECT_EQ(s.soft_failed, 0u);
}

TEST_F(CrlDpTest, HardFailChecksACachedChainAgainPastNextUpdateWithoutRefetchingIt) {
  settings_.crl.on_unavailable = CrlFailureMode::kHardFail;
  std::string x5u = Serve(crl_server_->Url("/sti.crl"));
  ServeCrl(/*revoke_leaf=*/false, /*next_update=*/absl::Hours(1));
  auto stack = Stack();
  ASSERT_TRUE(stack->certificates().Lookup(x5u, now_).ok());
  // Past the CRL's nextUpdate the cached chain's verdict has run out: the next lookup waits for a
  // fresh CRL (hard-fail cannot answer without one), which now revokes the certificate. The
  // chain itself is not fetched again.
  ServeCrl(/*revoke_leaf=*/true, absl::Hours(24));
  CertificateResult r = stack->certificates().Lookup(x5u, now_ + absl::Hours(2));
  EXPECT_EQ(r.reason, Reason::kCertRevoked) << r.detail;
  EXPECT_EQ(crl_server_->RequestCount("/sti.crl"), 2);
  EXPECT_EQ(x5u_server_->RequestCount("/sp.pem"), 1);
}

// Polls `count` until it reaches `want` or 15 s pass (the background work runs on the fetcher's
// and the timer's threads); returns the last value.
template <typename F>
int WaitForCount(F count, int want) {
  const absl::Time give_up = absl::Now() + absl::Seconds(15);
  int n = count();
  while (n < want && absl::Now() < give_up) {
    absl::SleepFor(absl::Milliseconds(20));
    n = count();
  }
  return n;
}

TEST_F(CrlDpTest, SoftFailAnswersACachedChainAtOnceAndChecksItsCrlBehindTheCall) {
  std::string x5u = Serve(crl_server_->Url("/sti.crl"));
  ServeCrl(/*revoke_leaf=*/false, /*next_update=*/absl::Hours(1));
  auto stack = Stack();
  ASSERT_TRUE(stack->certificates().Lookup(x5u, now_).ok());
  // Past nextUpdate: answered from the cache without waiting for the network (the CRL server
  // holds its answer until released)...
  auto revoking = pki_->CrlPem({leaf_.cert.get()}, /*issuer_is_root=*/false, absl::Hours(24));
  ASSERT_TRUE(revoking.ok());
  crl_server_->SetRoute("/sti.crl", {.body = *revoking, .hold_until_release = true});
  CertificateResult r = stack->certificates().Lookup(x5u, now_ + absl::Hours(2));
  EXPECT_TRUE(r.ok()) << r.detail;
  // ...while the fresh CRL is fetched behind it; it revokes the certificate for later calls.
  EXPECT_EQ(WaitForCount([&] { return crl_server_->HeldCount(); }, 1), 1);
  crl_server_->ReleaseHeld("/sti.crl", /*stop_holding=*/true);
  const absl::Time later = now_ + absl::Hours(2) + absl::Seconds(1);
  CertificateResult after = stack->certificates().Lookup(x5u, later);
  for (int i = 0; i < 100 && after.ok(); ++i) {  // the recheck lands just after the fetch
    absl::SleepFor(absl::Milliseconds(20));
    after = stack->certificates().Lookup(x5u, later);
  }
  EXPECT_EQ(after.reason, Reason::kCertRevoked) << after.detail;
  EXPECT_EQ(x5u_server_->RequestCount("/sp.pem"), 1);
  EXPECT_GE(stack->certificate_cache()->Stats().rechecks, 1u);
}

TEST_F(CrlDpTest, CrlInUseIsRefreshedBeforeItsNextUpdate) {
  settings_.crl.on_unavailable = CrlFailureMode::kHardFail;  // a check would otherwise wait
  std::string x5u = Serve(crl_server_->Url("/sti.crl"));
  // nextUpdate in 5 s: refreshed in the background at 80 % of that, with no call asking.
  ServeCrl(/*revoke_leaf=*/false, /*next_update=*/absl::Seconds(5));
  auto stack = Stack();
  ASSERT_TRUE(stack->certificates().Lookup(x5u, now_).ok());
  ServeCrl(/*revoke_leaf=*/true, absl::Hours(24));
  EXPECT_EQ(WaitForCount([&] { return crl_server_->RequestCount("/sti.crl"); }, 2), 2);
  EXPECT_EQ(WaitForCount([&] { return static_cast<int>(stack->crl_checker()->Stats().fetch_ok); },
                         2),
            2);
  EXPECT_EQ(stack->crl_checker()->Stats().refreshes, 1u);
  // Past the first CRL's nextUpdate the cached chain is judged against the refreshed CRL from
  // the cache: no request is made during the call.
  crl_server_->SetRoute("/sti.crl", {.status = 503});
  CertificateResult r = stack->certificates().Lookup(x5u, now_ + absl::Seconds(10));
  EXPECT_EQ(r.reason, Reason::kCertRevoked) << r.detail;
  EXPECT_EQ(crl_server_->RequestCount("/sti.crl"), 2);
  EXPECT_EQ(x5u_server_->RequestCount("/sp.pem"), 1);
}

TEST_F(CrlDpTest, FailedRefreshKeepsTheCrlInForce) {
  settings_.crl.on_unavailable = CrlFailureMode::kHardFail;
  settings_.crl.retry_after = absl::Seconds(60);
  std::string x5u = Serve(crl_server_->Url("/sti.crl"));
  ServeCrl(/*revoke_leaf=*/false, /*next_update=*/absl::Seconds(4));
  auto stack = Stack();
  ASSERT_TRUE(stack->certificates().Lookup(x5u, now_).ok());
  crl_server_->SetRoute("/sti.crl", {.status = 503});
  EXPECT_EQ(WaitForCount([&] { return static_cast<int>(
                                           stack->crl_checker()->Stats().fetch_failed); },
                         1),
            1);
  // The CRL fetched first is still in force: checking the chain afresh before its nextUpdate
  // uses it (under hard-fail, a failure entry would refuse the certificate).
  const int crl_requests = crl_server_->RequestCount("/sti.crl");
  stack->certificate_cache()->Clear();
  CertificateResult r = stack->certificates().Lookup(x5u, now_ + absl::Seconds(1));
  EXPECT_TRUE(r.ok()) << ReasonName(r.reason) << ": " << r.detail;
  EXPECT_EQ(crl_server_->RequestCount("/sti.crl"), crl_requests);
  EXPECT_EQ(x5u_server_->RequestCount("/sp.pem"), 2);
}

TEST_F(CrlDpTest, UnreachableCrlSoftFailsByDefault) {
  ASSERT_EQ(settings_.crl.on_unavailable, CrlFailureMode::kSoftFail);
  std::string x5u = Serve(crl_server_->Url("/missing.crl"));  // 404
  auto stack = Stack();
  CertificateResult r = stack->certificates().Lookup(x5u, now_);
  ASSERT_TRUE(r.ok()) << ReasonName(r.reason) << ": " << r.detail;
  CrlStats s = stack->crl_checker()->Stats();
  EXPECT_EQ(s.fetch_failed, 1u);
  EXPECT_EQ(s.soft_failed, 1u);
  EXPECT_EQ(soft_fail_logs_.load(), 1);
}

TEST_F(CrlDpTest, UnreachableCrlRefusedUnderHardFail) {
  settings_.crl.on_unavailable = CrlFailureMode::kHardFail;
  std::string x5u = Serve(crl_server_->Url("/missing.crl"));
  auto stack = Stack();
  CertificateResult r = stack->certificates().Lookup(x5u, now_);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.reason, Reason::kCertUntrusted);
  EXPECT_EQ(ReasonSipCode(r.reason), 437);
  EXPECT_THAT(r.detail, HasSubstr("revocation status unknown"));
  EXPECT_EQ(stack->crl_checker()->Stats().hard_failed, 1u);
}

TEST_F(CrlDpTest, MalformedHugeOrWronglySignedCrlsAreUnusable) {
  settings_.crl.on_unavailable = CrlFailureMode::kHardFail;
  settings_.fetcher.max_crl_bytes = 4096;
  std::string x5u = Serve(crl_server_->Url("/sti.crl"));
  auto stack = Stack();
  crl_server_->SetRoute("/sti.crl", {.body = std::string(300, '\x30')});
  CertificateResult r = stack->certificates().Lookup(x5u, now_);
  EXPECT_EQ(r.reason, Reason::kCertUntrusted) << r.detail;
  EXPECT_THAT(r.detail, HasSubstr("not a DER or PEM CRL"));
  EXPECT_EQ(stack->crl_checker()->Stats().fetch_invalid, 1u);

  crl_server_->SetRoute("/sti.crl", {.body = std::string(8192, 'A')});
  r = stack->certificates().Lookup(x5u, now_ + absl::Minutes(2));  // past retry_after
  EXPECT_EQ(r.reason, Reason::kCertUntrusted) << r.detail;
  EXPECT_THAT(r.detail, HasSubstr("fetch_too_large"));

  // Signed by the root, which is not the cRLIssuer the leaf names.
  auto by_root = pki_->CrlPem({}, /*issuer_is_root=*/true);
  ASSERT_TRUE(by_root.ok());
  crl_server_->SetRoute("/sti.crl", {.body = *by_root});
  r = stack->certificates().Lookup(x5u, now_ + absl::Minutes(4));
  EXPECT_EQ(r.reason, Reason::kCertUntrusted) << r.detail;
  EXPECT_THAT(r.detail, HasSubstr("revocation status unknown"));
}

TEST_F(CrlDpTest, ProductionPolicyStillGuardsCrlAddresses) {
  settings_.x5u_policy.allow_private_addresses = false;  // loopback refused, for CRLs too
  X5uPolicy crl = CrlPolicy(settings_.x5u_policy);
  EXPECT_TRUE(crl.allow_http);
  EXPECT_FALSE(crl.allow_private_addresses);
  EXPECT_TRUE(CheckX5uUrl("http://crl.example/sti.crl", crl).ok());
  EXPECT_FALSE(CheckX5uUrl("http://crl.example/sti.crl?x=1", crl).ok());
  EXPECT_FALSE(CheckX5uUrl("ftp://crl.example/sti.crl", crl).ok());
}

}  // namespace
}  // namespace shaken::stir
