// Integration tests of reloading a running shakend: SIGHUP (Daemon::Reload) with changed client
// rules, profiles and verifier settings, renewed certificate files, and what waits for a restart.
#include <cstdio>
#include <fstream>
#include <future>

#include "absl/strings/match.h"
#include "daemon/config.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "shaken/client.h"
#include "stir/memory_signer.h"
#include "stir/openssl_util.h"
#include "stir/passport.h"
#include "stir/status_macros.h"
#include "tests/daemon_fixture.h"
#include "tests/daemon_test_base.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/subprocess.h"

namespace shaken::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

TEST(DaemonReloadTest, SighupReloadSwapsARenewedCertificateAndRefusesAMismatchedOne) {
  ASSERT_OK_AND_ASSIGN(auto env, DaemonEnv::Create());
  ASSERT_OK_AND_ASSIGN(auto c, env->NewClient("sbc1.test"));
  auto serial_of_file_profile = [&]() -> std::string {
    auto profiles = c->ListProfiles();
    if (!profiles.ok()) return "";
    for (const auto& p : *profiles) {
      if (p.name == "file") return p.certificate.serial;
    }
    return "";
  };
  const std::string before = serial_of_file_profile();
  ASSERT_FALSE(before.empty());

  // A renewal: a new certificate for the same key.
  ASSERT_OK_AND_ASSIGN(auto key, stir::ReadPrivateKeyPem(ReadFileOrEmpty(env->FileKeyPath())));
  LeafOptions renewed;
  renewed.spc = "123A";
  renewed.common_name = "SHAKEN 123A";
  renewed.subject_public_key = key.get();
  ASSERT_OK_AND_ASSIGN(TestCert cert, env->pki().IssueLeaf(renewed));
  {
    std::ofstream(env->FileChainPath()) << env->pki().ChainPem(cert);
  }
  EXPECT_OK(env->daemon().Reload());
  const std::string after = serial_of_file_profile();
  EXPECT_NE(after, before);

  // A certificate for another key is refused; the renewed one stays in force.
  ASSERT_OK_AND_ASSIGN(TestCert other, env->pki().IssueLeaf({.spc = "123A"}));
  {
    std::ofstream(env->FileChainPath()) << env->pki().ChainPem(other);
  }
  EXPECT_THAT(env->daemon().Reload(), StatusIs(absl::StatusCode::kFailedPrecondition,
                                               HasSubstr("does not match certificate")));
  EXPECT_EQ(serial_of_file_profile(), after);
  // Signing goes on with the profile in force.
  EXPECT_OK(c->Sign({.profile = "file", .attest = "C", .orig_tn = kOrig, .dest_tns = {kDest}}));
}

// SIGHUP with the file read again: client rules change in place (a call that arrives after the
// reload gets the new rules), other changed sections are named as restart_required and stay.
TEST(DaemonReloadTest, ClientRulesChangeInPlaceAndOtherSectionsWaitForARestart) {
  ASSERT_OK_AND_ASSIGN(auto env, DaemonEnv::Create());
  ASSERT_OK_AND_ASSIGN(auto c, env->NewClient("sbc1.test"));
  ASSERT_OK(c->Sign({.profile = "file", .attest = "C", .orig_tn = kOrig, .dest_tns = {kDest}}));
  ASSERT_OK_AND_ASSIGN(daemon::Config next,
                       daemon::ParseConfig(env->config_yaml(), env->config_path()));
  for (daemon::ClientRule& rule : next.clients) {
    if (rule.identity == "sbc1.test") rule.methods = {"Verify", "ListProfiles"};
  }
  next.drain_grace += absl::Seconds(1);
  next.max_request_bytes += 1024;
  ::testing::internal::CaptureStderr();
  EXPECT_OK(env->daemon().Reload(next));
  const std::string log = ::testing::internal::GetCapturedStderr();
  EXPECT_THAT(log, HasSubstr("applied=clients"));
  EXPECT_THAT(log, HasSubstr("restart_required"));
  EXPECT_THAT(log, HasSubstr("max_request_bytes, drain_grace"));
  // The same connection, the new rules.
  EXPECT_THAT(c->Sign({.profile = "file", .attest = "C", .orig_tn = kOrig, .dest_tns = {kDest}}),
              StatusIs(absl::StatusCode::kPermissionDenied));
  EXPECT_OK(c->ListProfiles());
  // And back.
  ASSERT_OK_AND_ASSIGN(daemon::Config original,
                       daemon::ParseConfig(env->config_yaml(), env->config_path()));
  EXPECT_OK(env->daemon().Reload(original));
  EXPECT_OK(c->Sign({.profile = "file", .attest = "C", .orig_tn = kOrig, .dest_tns = {kDest}}));
}

// SIGHUP applies profiles and the verifier section too, all at once: a profile added, one
// removed, the verifier rebuilt; a verification in progress finishes on the verifier it started
// with. A reload whose new profile cannot be opened changes nothing.
TEST(DaemonReloadTest, ProfilesAndVerifierChangeInPlaceAndAFailedReloadChangesNothing) {
  ASSERT_OK_AND_ASSIGN(auto env, DaemonEnv::Create());
  ASSERT_OK_AND_ASSIGN(auto c, env->NewClient("sbc1.test"));
  // A verification in flight across the reload: its x5u answers after 1.5 s.
  env->x5u_server().SetRoute("/slow.pem", {.body = ReadFileOrEmpty(env->FileChainPath()),
                                           .delay_before = absl::Milliseconds(1500)});
  ASSERT_OK_AND_ASSIGN(auto key, stir::MemorySigner::FromPem(ReadFileOrEmpty(env->FileKeyPath())));
  stir::SystemClock clock;
  ASSERT_OK_AND_ASSIGN(auto ps, stir::PassportSigner::Create(
                                    key.get(), env->x5u_server().Url("/slow.pem"), &clock,
                                    stir::PassportSigner::Options{.x5u_policy = {.allow_any_port = true}}));
  ASSERT_OK_AND_ASSIGN(auto slow, ps->Sign({.attest = "C", .orig_tn = kOrig, .dest_tns = {kDest}}));
  auto in_flight = std::async(std::launch::async, [&] {
    return c->Verify({.identities = {slow.identity}, .from_tn = kOrig, .to_tns = {kDest}},
                     absl::Seconds(10));
  });
  for (int i = 0; i < 100 && env->x5u_server().RequestCount("/slow.pem") == 0; ++i) {
    absl::SleepFor(absl::Milliseconds(20));
  }
  ASSERT_EQ(env->x5u_server().RequestCount("/slow.pem"), 1);

  ASSERT_OK_AND_ASSIGN(daemon::Config next,
                       daemon::ParseConfig(env->config_yaml(), env->config_path()));
  daemon::ProfileConfig file2;
  for (const daemon::ProfileConfig& p : next.profiles) {
    if (p.name == "file") file2 = p;
  }
  ASSERT_FALSE(file2.name.empty());
  file2.name = "file2";
  std::erase_if(next.profiles, [](const daemon::ProfileConfig& p) { return p.name == "file"; });
  next.profiles.push_back(file2);
  next.verifier.iat_window += absl::Seconds(1);
  ::testing::internal::CaptureStderr();
  EXPECT_OK(env->daemon().Reload(next));
  std::string log = ::testing::internal::GetCapturedStderr();
  EXPECT_THAT(log, HasSubstr("profiles (added file2; removed file)"));
  EXPECT_THAT(log, HasSubstr("verifier"));
  EXPECT_THAT(log, Not(HasSubstr("restart_required")));

  // The verification that started before the reload completes, with its verdict.
  ASSERT_OK_AND_ASSIGN(auto verdict, in_flight.get());
  EXPECT_TRUE(verdict.overall.passed) << verdict.overall.detail;
  // The new profile signs, the removed one is gone, the token profile was kept.
  EXPECT_THAT(c->Sign({.profile = "file", .attest = "C", .orig_tn = kOrig, .dest_tns = {kDest}}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("unknown profile")));
  ASSERT_OK_AND_ASSIGN(auto signed2, c->Sign({.profile = "file2", .attest = "C",
                                              .orig_tn = kOrig, .dest_tns = {kDest}}));
  EXPECT_EQ(signed2.profile, "file2");
  ASSERT_OK_AND_ASSIGN(auto v2, c->Verify({.identities = {signed2.identity}, .from_tn = kOrig,
                                           .to_tns = {kDest}}));
  EXPECT_TRUE(v2.overall.passed) << v2.overall.detail;
  ASSERT_OK(c->Sign({.attest = "A", .orig_tn = kOrig, .dest_tns = {kDest}}));
  ASSERT_OK_AND_ASSIGN(auto profiles, c->ListProfiles());
  std::vector<std::string> names;
  for (const auto& p : profiles) names.push_back(p.name);
  EXPECT_THAT(names, ::testing::UnorderedElementsAre("token", "file2"));

  // A profile that cannot be opened: the reload fails and nothing changes, the clients section
  // that came with it included.
  daemon::Config broken = next;
  daemon::ProfileConfig bad = file2;
  bad.name = "broken";
  bad.certificate_file = env->dir() + "/no-such-chain.pem";
  broken.profiles.push_back(bad);
  broken.clients.clear();
  ::testing::internal::CaptureStderr();
  const absl::Status failed = env->daemon().Reload(broken);
  EXPECT_FALSE(failed.ok());
  EXPECT_THAT(std::string(failed.message()), HasSubstr("profile broken"));
  log = ::testing::internal::GetCapturedStderr();
  EXPECT_THAT(log, HasSubstr("reload_failed"));
  EXPECT_THAT(c->Sign({.profile = "broken", .attest = "C", .orig_tn = kOrig, .dest_tns = {kDest}}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("unknown profile")));
  ASSERT_OK_AND_ASSIGN(auto rogue, env->NewClient("verify-only.test"));
  EXPECT_THAT(rogue->Sign({.profile = "file2", .attest = "C", .orig_tn = kOrig,
                           .dest_tns = {kDest}}),
              StatusIs(absl::StatusCode::kPermissionDenied));  // the old rules still hold
  EXPECT_OK(c->Sign({.profile = "file2", .attest = "C", .orig_tn = kOrig, .dest_tns = {kDest}}));
}

// A renewed certificate (same key) written over the profile's certificate file is picked up
// without SIGHUP, every certificate_check_interval; a file that does not match the key is
// refused and the certificate in force stays.
TEST(DaemonReloadTest, ARenewedCertificateFileIsPickedUpWithoutASignal) {
  ASSERT_OK_AND_ASSIGN(auto env, DaemonEnv::Create({.extra_yaml = "certificate_check_interval: 1s\n"}));
  ASSERT_OK_AND_ASSIGN(auto c, env->NewClient("sbc1.test"));
  auto file_serial = [&]() -> std::string {
    auto profiles = c->ListProfiles();
    if (!profiles.ok()) return "";
    for (const auto& p : *profiles) {
      if (p.name == "file") return p.certificate.serial;
    }
    return "";
  };
  const std::string before = file_serial();
  ASSERT_FALSE(before.empty());
  ASSERT_OK_AND_ASSIGN(auto key, stir::ReadPrivateKeyPem(ReadFileOrEmpty(env->FileKeyPath())));
  LeafOptions o;
  o.spc = "123A";
  o.common_name = "SHAKEN 123A renewed";
  o.subject_public_key = key.get();
  ASSERT_OK_AND_ASSIGN(TestCert renewed, env->pki().IssueLeaf(o));
  // Written as deployment tools do: a new file renamed over the old one.
  const std::string tmp = env->FileChainPath() + ".new";
  std::ofstream(tmp) << env->pki().ChainPem(renewed);
  ASSERT_EQ(std::rename(tmp.c_str(), env->FileChainPath().c_str()), 0);
  std::string after = before;
  for (int i = 0; i < 100 && after == before; ++i) {  // at most ~10 s; checked every second
    absl::SleepFor(absl::Milliseconds(100));
    after = file_serial();
  }
  EXPECT_NE(after, before);
  EXPECT_OK(c->Sign({.profile = "file", .attest = "C", .orig_tn = kOrig, .dest_tns = {kDest}}));

  // A certificate for another key: refused, the renewed one stays in force.
  stir::EvpPkeyPtr other(EVP_EC_gen("P-256"));
  ASSERT_NE(other, nullptr);
  o.subject_public_key = other.get();
  ASSERT_OK_AND_ASSIGN(TestCert wrong, env->pki().IssueLeaf(o));
  std::ofstream(tmp) << env->pki().ChainPem(wrong);
  ::testing::internal::CaptureStderr();
  ASSERT_EQ(std::rename(tmp.c_str(), env->FileChainPath().c_str()), 0);
  absl::SleepFor(absl::Milliseconds(2500));  // two checks
  const std::string log = ::testing::internal::GetCapturedStderr();
  EXPECT_THAT(log, HasSubstr("does not match certificate"));
  EXPECT_EQ(file_serial(), after);
  EXPECT_OK(c->Sign({.profile = "file", .attest = "C", .orig_tn = kOrig, .dest_tns = {kDest}}));
}

}  // namespace
}  // namespace shaken::testing
