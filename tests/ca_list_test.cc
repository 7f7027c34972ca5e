// ca_list_test: verifier.ca_list_url end to end: shakend fetches an STI-PA CA list (a PEM bundle)
// from a real HTTPS server on 127.0.0.1 on its own thread, puts it in force without a restart
// (a root added is trusted, a root removed is not, cached chains included), keeps the last good
// list when a fetch fails or a list is refused, and starts from its cache file when the STI-PA is
// unreachable.
#include <string>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "stir/memory_signer.h"
#include "stir/openssl_util.h"
#include "stir/passport.h"
#include "stir/status_macros.h"
#include "tests/daemon_fixture.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/subprocess.h"
#include "tests/testing/test_pki.h"

namespace shaken::testing {
namespace {

constexpr char kOrig[] = "12155550121";
constexpr char kDest[] = "12155550131";

class CaListTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(env_, DaemonEnv::Create({.start_daemon = false}));
    // A second STI PKI: its root is trusted only when the CA list names it.
    ASSERT_OK_AND_ASSIGN(other_, TestPki::Create(absl::Now()));
    ASSERT_OK_AND_ASSIGN(TestCert leaf, other_->IssueLeaf());
    other_chain_ = other_->ChainPem(leaf);
    env_->x5u_server().SetRoute("/other.pem", {.body = other_chain_});
    ASSERT_OK_AND_ASSIGN(auto key, stir::MemorySigner::FromPem(leaf.key_pem));
    stir::SystemClock clock;
    ASSERT_OK_AND_ASSIGN(auto ps, stir::PassportSigner::Create(
                                      key.get(), env_->x5u_server().Url("/other.pem"), &clock,
                                      stir::PassportSigner::Options{
                                          .x5u_policy = {.allow_any_port = true}}));
    ASSERT_OK_AND_ASSIGN(auto signed_passport,
                         ps->Sign({.attest = "A", .orig_tn = kOrig, .dest_tns = {kDest}}));
    identity_ = signed_passport.identity;
    root1_ = env_->pki().root().cert_pem;
    root2_ = other_->root().cert_pem;
    cache_file_ = env_->dir() + "/ca-list.pem";
  }

  // Starts shakend with the CA list at /ca-list.pem of the x5u server, fetched every second.
  void StartWithList() {
    DaemonEnvOptions options;
    options.verifier_extra_yaml =
        absl::StrCat("  ca_list_url: ", env_->x5u_server().Url("/ca-list.pem"),
                     "\n  ca_list_refresh: 1s\n  ca_list_retry: 200ms\n  ca_list_cache_file: ",
                     cache_file_, "\n");
    ASSERT_OK(env_->RestartWith(options));
    ASSERT_OK_AND_ASSIGN(client_, env_->NewClient("sbc1.test"));
  }

  absl::StatusOr<bool> Passes() {
    ASSIGN_OR_RETURN(client::VerifyResult v,
                     client_->Verify({.identities = {identity_}, .from_tn = kOrig,
                                      .to_tns = {kDest}}));
    last_reason_ = v.overall.reason;
    return v.overall.passed;
  }
  // Eventually waits (at most ~10 s) until the verdict is `want`.
  bool Eventually(bool want) {
    for (int i = 0; i < 100; ++i) {
      absl::StatusOr<bool> p = Passes();
      if (p.ok() && *p == want) return true;
      absl::SleepFor(absl::Milliseconds(100));
    }
    return false;
  }
  // WaitForFetches waits until the list was asked for `n` more times (the refresher's schedule).
  void WaitForFetches(int n) {
    const int target = env_->x5u_server().RequestCount("/ca-list.pem") + n;
    for (int i = 0; i < 200 && env_->x5u_server().RequestCount("/ca-list.pem") < target; ++i) {
      absl::SleepFor(absl::Milliseconds(50));
    }
    ASSERT_GE(env_->x5u_server().RequestCount("/ca-list.pem"), target);
  }

  std::unique_ptr<DaemonEnv> env_;
  std::unique_ptr<TestPki> other_;
  std::unique_ptr<client::Client> client_;
  std::string other_chain_, identity_, root1_, root2_, cache_file_, last_reason_;
};

TEST_F(CaListTest, AListUpdateAddsAndRemovesARootWithoutARestart) {
  env_->x5u_server().SetRoute("/ca-list.pem", {.body = root1_});
  StartWithList();
  WaitForFetches(1);
  ASSERT_OK_AND_ASSIGN(bool passed, Passes());
  EXPECT_FALSE(passed);
  EXPECT_EQ(last_reason_, "cert_untrusted");

  // The STI-PA approves the second root: trusted at the next refresh, no restart, no signal.
  env_->x5u_server().SetRoute("/ca-list.pem", {.body = root1_ + root2_});
  EXPECT_TRUE(Eventually(true)) << last_reason_;
  // The list in force went to the cache file.
  EXPECT_THAT(ReadFileOrEmpty(cache_file_), ::testing::HasSubstr(root2_.substr(0, 200)));

  // ... and withdraws it: refused again, though the chain is in the certificate cache.
  env_->x5u_server().SetRoute("/ca-list.pem", {.body = root1_});
  EXPECT_TRUE(Eventually(false));
  EXPECT_EQ(last_reason_, "cert_untrusted");
}

TEST_F(CaListTest, AFailedFetchOrARefusedListKeepsTheLastGoodOne) {
  env_->x5u_server().SetRoute("/ca-list.pem", {.body = root1_ + root2_});
  StartWithList();
  ASSERT_TRUE(Eventually(true)) << last_reason_;

  // The STI-PA answers 503, then something that is not a list, then a list holding an end-entity
  // certificate: each time the list in force stays.
  for (const HttpResponse& bad :
       {HttpResponse{.status = 503, .body = "down"}, HttpResponse{.body = "<html>not a list</html>"},
        HttpResponse{.body = root1_ + other_chain_}}) {
    env_->x5u_server().SetRoute("/ca-list.pem", bad);
    WaitForFetches(2);
    ASSERT_OK_AND_ASSIGN(bool passed, Passes());
    EXPECT_TRUE(passed) << "the last good list was dropped after a bad answer (status "
                        << bad.status << "): " << last_reason_;
  }
}

TEST_F(CaListTest, ARestartDuringAnOutageStartsFromTheCachedList) {
  env_->x5u_server().SetRoute("/ca-list.pem", {.body = root1_ + root2_});
  StartWithList();
  ASSERT_TRUE(Eventually(true)) << last_reason_;

  env_->x5u_server().SetRoute("/ca-list.pem", {.status = 503, .body = "down"});
  StartWithList();  // a restart while the STI-PA is down
  ASSERT_OK_AND_ASSIGN(bool passed, Passes());
  EXPECT_TRUE(passed) << last_reason_;

  // Without the cache file, only ca_file is trusted until a fetch succeeds.
  env_->StopDaemon();
  ASSERT_EQ(std::remove(cache_file_.c_str()), 0);
  StartWithList();
  WaitForFetches(1);
  ASSERT_OK_AND_ASSIGN(passed, Passes());
  EXPECT_FALSE(passed);
}

}  // namespace
}  // namespace shaken::testing
