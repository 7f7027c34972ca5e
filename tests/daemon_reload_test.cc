// Integration tests of shakend's configuration life cycle: SIGHUP reload (certificates, client
// rules, profiles, verifier), a renewed certificate file picked up without a signal, certificate
// validity and encrypted keys at start-up. Each test makes its own DaemonEnv.
#include <curl/curl.h>
#include <google/protobuf/descriptor.pb.h>
#include <google/protobuf/unknown_field_set.h>
#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>

#include <fstream>
#include <future>
#include <regex>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/str_split.h"
#include "daemon/log.h"
#include "daemon/metrics.h"
#include "daemon/profiles.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "shaken/client.h"
#include "shaken/shaken_client.h"
#include "shaken/v1/shaken.grpc.pb.h"
#include "stir/memory_signer.h"
#include "stir/openssl_util.h"
#include "stir/passport.h"
#include "stir/status_macros.h"
#include "tests/daemon_fixture.h"
#include "tests/daemon_test_base.h"
#include "tests/testing/source_path.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/subprocess.h"
#include "yaml-cpp/yaml.h"

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

// A profile whose certificate is expired or not yet valid refuses to sign (FAILED_PRECONDITION
// naming the profile and the validity), is DOWN in ListProfiles and makes grpc.health
// NOT_SERVING; a valid certificate brings it back.
TEST(DaemonCertificateValidityTest, ExpiredOrNotYetValidCertificateRefusesAndReportsDown) {
  ASSERT_OK_AND_ASSIGN(auto env, DaemonEnv::Create());
  ASSERT_OK_AND_ASSIGN(auto c, env->NewClient("sbc1.test"));
  ASSERT_OK_AND_ASSIGN(auto key, stir::ReadPrivateKeyPem(ReadFileOrEmpty(env->FileKeyPath())));
  const std::string health = absl::StrCat("127.0.0.1:", env->daemon().health_port());
  auto install = [&](absl::Duration not_before, absl::Duration not_after) -> absl::Status {
    LeafOptions o;
    o.spc = "123A";
    o.common_name = "SHAKEN 123A";
    o.subject_public_key = key.get();
    o.not_before_offset = not_before;
    o.not_after_offset = not_after;
    ASSIGN_OR_RETURN(TestCert cert, env->pki().IssueLeaf(o));
    std::ofstream(env->FileChainPath()) << env->pki().ChainPem(cert);
    return env->daemon().Reload();
  };
  auto file_health = [&]() {
    auto profiles = c->ListProfiles();
    if (!profiles.ok()) return client::ProfileInfo::Health::kUnspecified;
    for (const auto& p : *profiles) {
      if (p.name == "file") return p.health;
    }
    return client::ProfileInfo::Health::kUnspecified;
  };
  // The health monitor publishes every 250 ms.
  auto health_becomes = [&](int want) {
    for (int i = 0; i < 40; ++i) {
      if (HealthStatus(health, "") == absl::StatusOr<int>(want)) return true;
      absl::SleepFor(absl::Milliseconds(100));
    }
    return false;
  };
  const client::SignParams file_call{.profile = "file", .attest = "C", .orig_tn = kOrig,
                                     .dest_tns = {kDest}};
  ASSERT_OK(c->Sign(file_call));
  ASSERT_TRUE(health_becomes(1));

  struct Case {
    const char* name;
    absl::Duration not_before, not_after;
    const char* message;
  };
  for (const Case& tc : {Case{"expired", -absl::Hours(48), -absl::Hours(1), "has expired"},
                         Case{"not yet valid", absl::Hours(1), absl::Hours(48),
                              "is not yet valid"}}) {
    ASSERT_OK(install(tc.not_before, tc.not_after)) << tc.name;
    EXPECT_THAT(c->Sign(file_call),
                StatusIs(absl::StatusCode::kFailedPrecondition,
                         AllOf(HasSubstr("profile file"), HasSubstr(tc.message),
                               HasSubstr("notBefore"), HasSubstr("notAfter"))))
        << tc.name;
    EXPECT_EQ(file_health(), client::ProfileInfo::Health::kDown) << tc.name;
    EXPECT_TRUE(health_becomes(2)) << tc.name;  // NOT_SERVING
    // The other profile still signs.
    EXPECT_OK(c->Sign({.attest = "A", .orig_tn = kOrig, .dest_tns = {kDest}})) << tc.name;
  }
  ASSERT_OK(install(-absl::Hours(1), absl::Hours(48)));
  EXPECT_OK(c->Sign(file_call));
  EXPECT_EQ(file_health(), client::ProfileInfo::Health::kServing);
  EXPECT_TRUE(health_becomes(1));
}

// A software-key profile may keep its PEM key encrypted at rest; the passphrase comes from a
// file or the environment, never from the configuration itself.
TEST(DaemonEncryptedKeyTest, FileProfileWithAnEncryptedKeySignsAndErrorsSayWhatToFix) {
  ASSERT_OK_AND_ASSIGN(auto env, DaemonEnv::Create({.start_daemon = false}));
  ASSERT_OK_AND_ASSIGN(stir::EvpPkeyPtr key,
                       stir::ReadPrivateKeyPem(ReadFileOrEmpty(env->FileKeyPath())));
  ASSERT_OK_AND_ASSIGN(std::string sealed, stir::PrivateKeyToPem(key.get(), "lab passphrase"));
  const std::string sealed_path = env->dir() + "/file-sealed.key";
  const std::string pass_path = env->dir() + "/file-key.pass";
  std::ofstream(sealed_path) << sealed;
  std::ofstream(pass_path) << "lab passphrase\n";

  auto profile_with = [&](const std::string& extra) -> absl::StatusOr<std::string> {
    const std::string from = absl::StrCat("key: file:", env->FileKeyPath(), "\n");
    std::string yaml = env->config_yaml();
    const size_t at = yaml.find(from);
    if (at == std::string::npos) return absl::InternalError("no file key in the configuration");
    yaml.replace(at, from.size(), absl::StrCat("key: file:", sealed_path, "\n", extra));
    ASSIGN_OR_RETURN(daemon::Config config, daemon::ParseConfig(yaml, "test"));
    for (const auto& p : config.profiles) {
      if (p.name != "file") continue;
      ASSIGN_OR_RETURN(auto profile,
                       daemon::SigningProfile::Open(p, config, &stir::SystemClock::Shared()));
      ASSIGN_OR_RETURN(stir::SignedPassport signed_passport,
                       profile->Sign({.attest = "C", .orig_tn = "12155550121",
                                      .dest_tns = {"12155550131"}},
                                     absl::InfiniteFuture()));
      return signed_passport.identity;
    }
    return absl::InternalError("no file profile");
  };
  EXPECT_THAT(profile_with(absl::StrCat("    key_passphrase_source: file:", pass_path, "\n")),
              IsOkAndHolds(HasSubstr(";ppt=shaken")));
  EXPECT_THAT(profile_with(""),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("profile file"), HasSubstr("is encrypted: set key_passphrase_source"))));
  std::ofstream(env->dir() + "/wrong.pass") << "not it\n";
  EXPECT_THAT(profile_with(absl::StrCat("    key_passphrase_source: file:", env->dir(),
                                        "/wrong.pass\n")),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("wrong passphrase")));
  EXPECT_THAT(profile_with("    key_passphrase_source: env:SHAKEN_TEST_UNSET_PASSPHRASE\n"),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("key_passphrase_source")));
  EXPECT_THAT(profile_with("    key_passphrase_source: lab passphrase\n"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("never the passphrase")));
}

// logging.audit_on_failure: refuse (the default). A Sign whose audit record cannot be written is
// followed by refusals naming the audit file, counted in shaken_audit_write_failures_total, until
// a record can be written again.

}  // namespace
}  // namespace shaken::testing
