// Integration tests of shakend: a real Daemon on loopback with a SoftHSM2 token, mTLS, a real
// HTTPS x5u server, through the C++ client library, the C ABI and raw gRPC.
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
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "shaken/client.h"
#include "shaken/shaken_client.h"
#include "shaken/v1/shaken.grpc.pb.h"
#include "stir/memory_signer.h"
#include "stir/openssl_util.h"
#include "stir/passport.h"
#include "daemon/log.h"
#include "daemon/profiles.h"
#include "stir/status_macros.h"
#include "tests/daemon_fixture.h"
#include "tests/testing/source_path.h"
#include "tests/testing/subprocess.h"
#include "nlohmann/json.hpp"
#include "yaml-cpp/yaml.h"
#include "tests/testing/status_matchers.h"

namespace shaken::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kOrig[] = "+1 (215) 555-0121";
constexpr char kDest[] = "12155550131";

class DaemonTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto env = DaemonEnv::Create();
    ASSERT_TRUE(env.ok()) << env.status();
    env_ = env->release();
  }
  static void TearDownTestSuite() {
    delete env_;
    env_ = nullptr;
  }
  std::unique_ptr<client::Client> Client(const std::string& name = "sbc1.test") {
    auto c = env_->NewClient(name);
    EXPECT_OK(c);
    return c.ok() ? *std::move(c) : nullptr;
  }
  static client::SignParams Call(std::string profile = "", std::string attest = "A") {
    return {.profile = std::move(profile), .attest = std::move(attest), .orig_tn = kOrig,
            .dest_tns = {kDest}};
  }
  static DaemonEnv* env_;
};
DaemonEnv* DaemonTest::env_ = nullptr;

TEST_F(DaemonTest, SignVerifyRoundTripWithTheTokenKey) {
  auto c = Client();
  ASSERT_OK_AND_ASSIGN(client::SignResult s, c->Sign(Call()));
  EXPECT_EQ(s.profile, "token");
  EXPECT_THAT(s.identity, HasSubstr(";info=<" + env_->token_x5u() + ">;alg=ES256;ppt=shaken"));
  EXPECT_EQ(s.identity.substr(0, s.passport.size()), s.passport);
  ASSERT_OK_AND_ASSIGN(client::VerifyResult v,
                       c->Verify({.identities = {s.identity}, .from_tn = "12155550121",
                                  .to_tns = {kDest}}));
  EXPECT_TRUE(v.overall.passed) << v.overall.reason << ": " << v.overall.detail;
  EXPECT_EQ(v.overall.verstat, "TN-Validation-Passed");
  EXPECT_EQ(v.overall.attest, "A");
  EXPECT_EQ(v.overall.origid, s.origid);
  EXPECT_EQ(v.overall.certificate.spc, "709J");
  ASSERT_EQ(v.identities.size(), 1u);
}

TEST_F(DaemonTest, SignVerifyRoundTripWithTheFileKey) {
  auto c = Client();
  ASSERT_OK_AND_ASSIGN(client::SignResult s, c->Sign(Call("file", "C")));
  ASSERT_OK_AND_ASSIGN(client::VerifyResult v,
                       c->Verify({.identities = {s.identity}, .from_tn = kOrig, .to_tns = {kDest}}));
  EXPECT_TRUE(v.overall.passed) << v.overall.detail;
  EXPECT_EQ(v.overall.certificate.spc, "123A");
}

TEST_F(DaemonTest, SignVerifyRoundTripThroughTheCAbi) {
  shaken_client_options o;
  shaken_client_options_init(&o);
  const std::string target = env_->ApiTarget(), ca = env_->TlsCaFile(),
                    cert = env_->ClientCertFile("sbc1.test"),
                    key = env_->ClientKeyFile("sbc1.test");
  o.target = target.c_str();
  o.root_ca_file = ca.c_str();
  o.client_cert_file = cert.c_str();
  o.client_key_file = key.c_str();
  o.server_name_override = "localhost";
  o.default_timeout_ms = 5000;
  shaken_client* client = nullptr;
  shaken_error err;
  ASSERT_EQ(shaken_client_new(&o, &client, &err), 0) << err.message;

  const char* dest[] = {kDest};
  shaken_sign_request req = {};
  req.attest = "B";
  req.orig_tn = kOrig;
  req.dest_tns = dest;
  req.num_dest_tns = 1;
  shaken_sign_result res = {};
  ASSERT_EQ(shaken_sign(client, &req, &res, &err), 0) << err.message;

  const char* ids[] = {res.identity};
  shaken_verify_request vreq = {};
  vreq.identities = ids;
  vreq.num_identities = 1;
  vreq.from_tn = "12155550121";
  vreq.to_tns = dest;
  vreq.num_to_tns = 1;
  shaken_verify_result vres = {};
  ASSERT_EQ(shaken_verify(client, &vreq, &vres, &err), 0) << err.message;
  EXPECT_TRUE(vres.overall.passed) << vres.overall.reason;
  EXPECT_STREQ(vres.overall.verstat, "TN-Validation-Passed");
  EXPECT_STREQ(vres.overall.attest, "B");

  // A malformed request is an error with a message that says what to fix.
  req.attest = "D";
  shaken_sign_result bad = {};
  EXPECT_EQ(shaken_sign(client, &req, &bad, &err), 3);
  EXPECT_THAT(err.message, HasSubstr("A, B or C"));

  shaken_verify_result_free(&vres);
  shaken_sign_result_free(&res);
  shaken_sign_result_free(&bad);
  shaken_client_free(client);
}

// CClient opens a C ABI client with the mTLS identity `name`.
shaken_client* CClient(const DaemonEnv& env, const std::string& name) {
  shaken_client_options o;
  shaken_client_options_init(&o);
  const std::string target = env.ApiTarget(), ca = env.TlsCaFile(),
                    cert = env.ClientCertFile(name), key = env.ClientKeyFile(name);
  o.target = target.c_str();
  o.root_ca_file = ca.c_str();
  o.client_cert_file = cert.c_str();
  o.client_key_file = key.c_str();
  o.server_name_override = "localhost";
  shaken_client* client = nullptr;
  shaken_error err;
  EXPECT_EQ(shaken_client_new(&o, &client, &err), 0) << err.message;
  return client;
}

TEST_F(DaemonTest, ListProfilesThroughTheCAbi) {
  shaken_client* client = CClient(*env_, "sbc1.test");
  ASSERT_NE(client, nullptr);
  shaken_error err;
  shaken_profile_list list = {};
  ASSERT_EQ(shaken_list_profiles(client, 5000, &list, &err), 0) << err.message;
  ASSERT_EQ(list.num_profiles, 2u);
  const shaken_profile* token = nullptr;
  const shaken_profile* file = nullptr;
  for (size_t i = 0; i < list.num_profiles; ++i) {
    const std::string name = list.profiles[i].name;
    if (name == "token") token = &list.profiles[i];
    if (name == "file") file = &list.profiles[i];
  }
  ASSERT_NE(token, nullptr);
  ASSERT_NE(file, nullptr);
  EXPECT_EQ(token->health, SHAKEN_PROFILE_SERVING);
  EXPECT_TRUE(token->is_default);
  EXPECT_THAT(token->key, HasSubstr("pkcs11:"));
  EXPECT_THAT(token->key, Not(HasSubstr("pin")));
  EXPECT_EQ(token->x5u, env_->token_x5u());
  EXPECT_STREQ(token->allowed_attest, "A,B,C");
  EXPECT_STRNE(token->cert_spc, "");
  EXPECT_GT(token->cert_not_after, absl::ToUnixSeconds(absl::Now()));
  EXPECT_FALSE(file->is_default);
  EXPECT_STREQ(file->allowed_attest, "C");
  EXPECT_THAT(file->key, HasSubstr("file:"));
  shaken_profile_list_free(&list);
  EXPECT_EQ(list.num_profiles, 0u);
  EXPECT_EQ(list.profiles, nullptr);
  shaken_profile_list_free(&list);  // a zeroed list is ignored
  EXPECT_EQ(shaken_list_profiles(client, 5000, nullptr, &err), 3);
  EXPECT_EQ(shaken_list_profiles(nullptr, 5000, &list, &err), 3);
  shaken_client_free(client);

  // A client restricted to one profile sees that profile only.
  shaken_client* file_only = CClient(*env_, "file-only.test");
  ASSERT_NE(file_only, nullptr);
  ASSERT_EQ(shaken_list_profiles(file_only, 5000, &list, &err), 0) << err.message;
  ASSERT_EQ(list.num_profiles, 1u);
  EXPECT_STREQ(list.profiles[0].name, "file");
  shaken_profile_list_free(&list);
  shaken_client_free(file_only);

  // A client that may not list profiles gets the server's refusal as a code and a message.
  shaken_client* verify_only = CClient(*env_, "verify-only.test");
  ASSERT_NE(verify_only, nullptr);
  EXPECT_EQ(shaken_list_profiles(verify_only, 5000, &list, &err), 7);
  EXPECT_THAT(err.message, HasSubstr("may not call ListProfiles"));
  EXPECT_EQ(list.num_profiles, 0u);
  shaken_client_free(verify_only);
}

TEST_F(DaemonTest, SignStreamThroughTheCAbi) {
  shaken_client* client = CClient(*env_, "sbc1.test");
  ASSERT_NE(client, nullptr);
  shaken_error err;
  shaken_sign_stream* stream = nullptr;
  ASSERT_EQ(shaken_sign_stream_open(client, 10000, &stream, &err), 0) << err.message;
  shaken_client_free(client);  // the stream keeps the channel

  const char* dest[] = {kDest};
  shaken_sign_request req = {};
  req.orig_tn = kOrig;
  req.dest_tns = dest;
  req.num_dest_tns = 1;
  const std::vector<std::pair<const char*, const char*>> sends = {
      {"c-1", "A"}, {"c-2", "D"}, {"c-3", "B"}};
  for (const auto& [id, attest] : sends) {
    req.request_id = id;
    req.attest = attest;
    ASSERT_EQ(shaken_sign_stream_send(stream, &req, &err), 0) << err.message;
  }
  req.attest = nullptr;
  EXPECT_EQ(shaken_sign_stream_send(stream, &req, &err), 3);  // checked locally, not sent
  EXPECT_THAT(err.message, HasSubstr("request->attest is NULL"));
  ASSERT_EQ(shaken_sign_stream_close_send(stream, &err), 0) << err.message;
  EXPECT_EQ(shaken_sign_stream_close_send(stream, &err), 0);  // idempotent
  req.attest = "A";
  EXPECT_EQ(shaken_sign_stream_send(stream, &req, &err), 9);  // after close_send

  // Answers in order; the bad request fails alone.
  for (const auto& [id, attest] : sends) {
    shaken_stream_sign out = {};
    ASSERT_EQ(shaken_sign_stream_next(stream, &out, &err), 0) << err.message;
    EXPECT_STREQ(out.request_id, id);
    if (std::string(attest) == "D") {
      EXPECT_EQ(out.code, 3);
      EXPECT_THAT(out.message, HasSubstr("A, B or C"));
      EXPECT_EQ(out.result.identity, nullptr);
    } else {
      EXPECT_EQ(out.code, 0) << out.message;
      EXPECT_STREQ(out.message, "");
      EXPECT_THAT(out.result.identity, HasSubstr(";info=<"));
      EXPECT_STREQ(out.result.request_id, id);
    }
    shaken_stream_sign_free(&out);
    EXPECT_EQ(out.request_id, nullptr);
  }
  shaken_stream_sign_free(nullptr);
  shaken_stream_sign end = {};
  EXPECT_EQ(shaken_sign_stream_next(stream, &end, &err), 11);
  EXPECT_THAT(err.message, HasSubstr("end of stream"));
  EXPECT_EQ(end.request_id, nullptr);
  shaken_sign_stream_free(stream);
  shaken_sign_stream_free(nullptr);

  EXPECT_EQ(shaken_sign_stream_open(nullptr, 0, &stream, &err), 3);
  EXPECT_EQ(stream, nullptr);
  EXPECT_EQ(shaken_sign_stream_send(nullptr, &req, &err), 3);
  EXPECT_EQ(shaken_sign_stream_next(nullptr, &end, &err), 3);
  EXPECT_EQ(shaken_sign_stream_close_send(nullptr, &err), 3);
}

// The example programs of client/examples, as an SBC developer runs them: mTLS from the
// environment, against this daemon.
TEST_F(DaemonTest, ClientExamplesSignAndVerify) {
  RunOptions options;
  options.env = {{"SHAKEN_TARGET", env_->ApiTarget()},
                 {"SHAKEN_CA", env_->TlsCaFile()},
                 {"SHAKEN_CERT", env_->ClientCertFile("sbc1.test")},
                 {"SHAKEN_KEY", env_->ClientKeyFile("sbc1.test")},
                 {"SHAKEN_SERVER_NAME", "localhost"}};
  RunResult cxx = RunCommand({CLIENT_EXAMPLE}, options);
  EXPECT_EQ(cxx.exit_code, 0) << cxx.output();
  EXPECT_THAT(cxx.out, HasSubstr("verstat=TN-Validation-Passed"));

  RunResult c = RunCommand({CLIENT_EXAMPLE_C}, options);
  EXPECT_EQ(c.exit_code, 0) << c.output();
  EXPECT_THAT(c.out, HasSubstr("profile token (default) health=SERVING attest=A,B,C"));
  EXPECT_THAT(c.out, HasSubstr("profile file health=SERVING attest=C"));
  EXPECT_THAT(c.out, HasSubstr("Identity: eyJ"));
  EXPECT_THAT(c.out, HasSubstr("verstat=TN-Validation-Passed"));

  // Without a client certificate the mTLS listener refuses the example: exit 2 and the reason.
  options.env.erase("SHAKEN_CERT");
  options.env.erase("SHAKEN_KEY");
  RunResult refused = RunCommand({CLIENT_EXAMPLE_C}, options);
  EXPECT_EQ(refused.exit_code, 2) << refused.output();
  EXPECT_THAT(refused.err, HasSubstr("UNAVAILABLE"));
}

TEST_F(DaemonTest, FailedVerificationIsASuccessfulRpcWithItsVerdict) {
  auto c = Client();
  ASSERT_OK_AND_ASSIGN(client::SignResult s, c->Sign(Call()));
  // Wrong caller: 438 orig_mismatch.
  ASSERT_OK_AND_ASSIGN(client::VerifyResult v,
                       c->Verify({.identities = {s.identity}, .from_tn = "12155550199",
                                  .to_tns = {kDest}}));
  EXPECT_FALSE(v.overall.passed);
  EXPECT_EQ(v.overall.sip_code, 438);
  EXPECT_EQ(v.overall.reason, "orig_mismatch");
  EXPECT_EQ(v.overall.verstat, "No-TN-Validation");
  // Tampered signature: 438 signature_invalid, TN-Validation-Failed.
  std::string forged = s.identity;
  size_t semi = forged.find(';');
  forged[semi - 5] = forged[semi - 5] == 'A' ? 'B' : 'A';
  ASSERT_OK_AND_ASSIGN(v, c->Verify({.identities = {forged}, .from_tn = kOrig, .to_tns = {kDest}}));
  EXPECT_EQ(v.overall.reason, "signature_invalid");
  EXPECT_EQ(v.overall.verstat, "TN-Validation-Failed");
  // Stale Date header: 403.
  ASSERT_OK_AND_ASSIGN(v, c->Verify({.identities = {s.identity}, .from_tn = kOrig,
                                     .to_tns = {kDest},
                                     .date = absl::ToUnixSeconds(absl::Now()) - 600}));
  EXPECT_EQ(v.overall.sip_code, 403);
}

TEST_F(DaemonTest, BadRequestsAreInvalidArgumentWithMessagesThatSayWhatToFix) {
  auto c = Client();
  struct Case {
    const char* name;
    client::SignParams params;
    const char* message;
  };
  std::vector<Case> cases = {
      {"non-digit tn", {.attest = "A", .orig_tn = "1215555O121", .dest_tns = {kDest}}, "'O'"},
      {"attest D", {.attest = "D", .orig_tn = kOrig, .dest_tns = {kDest}}, "A, B or C"},
      {"empty dest", {.attest = "A", .orig_tn = kOrig, .dest_tns = {}}, "dest.tn"},
      {"no orig", {.attest = "A", .orig_tn = "", .dest_tns = {kDest}}, "orig.tn is required"},
      {"unknown profile",
       {.profile = "nope", .attest = "A", .orig_tn = kOrig, .dest_tns = {kDest}},
       "unknown profile \"nope\"; profiles this client may use: token, file"},
      {"attest not allowed",
       {.profile = "file", .attest = "A", .orig_tn = kOrig, .dest_tns = {kDest}},
       "profile file signs attest C only"},
      {"long tn", {.attest = "A", .orig_tn = std::string(100, '1'), .dest_tns = {kDest}},
       "too long"},
      {"long request id",
       {.attest = "A", .orig_tn = kOrig, .dest_tns = {kDest}, .request_id = std::string(200, 'r')},
       "request_id"},
      {"bad origid",
       {.attest = "A", .orig_tn = kOrig, .dest_tns = {kDest}, .origid = "call-17"},
       "UUID"},
      {"stale iat",
       {.attest = "A", .orig_tn = kOrig, .dest_tns = {kDest},
        .iat = absl::ToUnixSeconds(absl::Now()) - 3600},
       "iat"},
      {"too many dest",
       {.attest = "A", .orig_tn = kOrig, .dest_tns = std::vector<std::string>(40, kDest)},
       "at most 32"},
  };
  for (const Case& tc : cases) {
    EXPECT_THAT(c->Sign(tc.params),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(tc.message)))
        << tc.name;
  }
  EXPECT_THAT(c->Verify({.identities = {}, .from_tn = kOrig, .to_tns = {kDest}}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("identity is required")));
  EXPECT_THAT(c->Verify({.identities = {"x"}, .from_tn = "", .to_tns = {kDest}}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("from.tn")));
  // The documented limits of VerifyRequest (proto): at most 32 To numbers.
  EXPECT_THAT(c->Verify({.identities = {"x"}, .from_tn = kOrig,
                         .to_tns = std::vector<std::string>(5000, kDest)}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("at most 32")));
  EXPECT_THAT(c->Verify({.identities = {"x"}, .from_tn = kOrig,
                         .to_tns = {std::string(100, '1')}}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("too long")));
  // A message over max_request_bytes (160 KiB by default) is refused by gRPC itself.
  client::VerifyParams huge{.identities = {std::string(200 * 1024, 'a')}, .from_tn = kOrig,
                            .to_tns = {kDest}};
  EXPECT_THAT(c->Verify(huge), StatusIs(absl::StatusCode::kResourceExhausted));
}

// The default max_request_bytes admits a Verify at the documented limits (16 Identity values of
// 8 KiB, 32 To numbers); a value over 8 KiB is that header's 438 verdict, not an RPC error.
TEST_F(DaemonTest, VerifyAtTheDocumentedLimitsAndAnOversizedIdentityValue) {
  auto c = Client();
  ASSERT_OK_AND_ASSIGN(client::SignResult s, c->Sign(Call()));
  const std::string suffix = ";info=<https://x.example/a.pem>";
  const std::string at_limit = std::string(8192 - suffix.size(), 'a') + suffix;
  ASSERT_EQ(at_limit.size(), 8192u);
  std::vector<std::string> identities(15, at_limit);
  identities.insert(identities.begin(), s.identity);
  ASSERT_OK_AND_ASSIGN(client::VerifyResult full,
                       c->Verify({.identities = identities, .from_tn = kOrig,
                                  .to_tns = std::vector<std::string>(32, kDest)}));
  ASSERT_EQ(full.identities.size(), 16u);

  const std::string oversized = std::string(9000, 'a') + suffix;
  ASSERT_OK_AND_ASSIGN(client::VerifyResult v,
                       c->Verify({.identities = {oversized, s.identity}, .from_tn = kOrig,
                                  .to_tns = {kDest}}));
  ASSERT_EQ(v.identities.size(), 2u);
  EXPECT_EQ(v.identities[0].sip_code, 438);
  EXPECT_EQ(v.identities[0].reason, "identity_malformed");
  EXPECT_TRUE(v.identities[1].passed) << v.identities[1].detail;
  EXPECT_TRUE(v.overall.passed);
}

TEST_F(DaemonTest, MutualTlsRefusesMissingAndUntrustedClientCertificates) {
  for (const char* name : {"", "rogue.test"}) {
    auto opts = env_->ClientOptionsFor(name);
    opts.retry.max_attempts = 1;
    ASSERT_OK_AND_ASSIGN(auto c, client::Client::New(opts));
    EXPECT_THAT(c->Sign(Call(), absl::Seconds(2)), StatusIs(absl::StatusCode::kUnavailable))
        << name;
  }
}

// authz.h: SAN DNS and URI names, the CN only without any SAN, never an email SAN.
TEST_F(DaemonTest, AuthorizationMatchesOnlyTheDocumentedCertificateNames) {
  // SAN DNS:other.host with CN sbc1.test is other.host, which no rule names.
  EXPECT_THAT(Client("san-other.test")->Sign(Call()),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("other.host")));
  EXPECT_THAT(Client("san-email.test")->Sign(Call()),
              StatusIs(absl::StatusCode::kPermissionDenied));
  EXPECT_THAT(Client("san-othername.test")->Sign(Call()),
              StatusIs(absl::StatusCode::kPermissionDenied));
  EXPECT_OK(Client("cn-only.test")->Sign(Call()));
  auto uri = Client("san-uri.test");
  EXPECT_OK(uri->ListProfiles());
  EXPECT_THAT(uri->Sign(Call()),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("spiffe://shaken.test/sbc")));
}

TEST_F(DaemonTest, AuthorizationByMethodAndProfile) {
  auto verify_only = Client("verify-only.test");
  EXPECT_THAT(verify_only->Sign(Call()),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("verify-only.test")));
  ASSERT_OK_AND_ASSIGN(client::SignResult s, Client()->Sign(Call()));
  EXPECT_OK(verify_only->Verify({.identities = {s.identity}, .from_tn = kOrig, .to_tns = {kDest}}));

  auto file_only = Client("file-only.test");
  EXPECT_THAT(file_only->Sign(Call("token")),
              StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr("profile token")));
  // The default profile is "token", which this client may not use either.
  EXPECT_THAT(file_only->Sign(Call("", "C")), StatusIs(absl::StatusCode::kPermissionDenied));
  EXPECT_OK(file_only->Sign(Call("file", "C")));
  ASSERT_OK_AND_ASSIGN(auto profiles, file_only->ListProfiles());
  ASSERT_EQ(profiles.size(), 1u);
  EXPECT_EQ(profiles[0].name, "file");
  EXPECT_THAT(file_only->Verify({.identities = {s.identity}, .from_tn = kOrig, .to_tns = {kDest}}),
              StatusIs(absl::StatusCode::kPermissionDenied));
}

TEST_F(DaemonTest, ListProfilesDescribesKeysWithoutSecrets) {
  ASSERT_OK_AND_ASSIGN(auto profiles, Client()->ListProfiles());
  ASSERT_EQ(profiles.size(), 2u);
  EXPECT_EQ(profiles[0].name, "token");
  EXPECT_TRUE(profiles[0].is_default);
  EXPECT_THAT(profiles[0].key, HasSubstr("pkcs11:"));
  EXPECT_THAT(profiles[0].key, Not(HasSubstr("pin")));
  EXPECT_EQ(profiles[0].health, client::ProfileInfo::Health::kServing);
  EXPECT_EQ(profiles[0].certificate.spc, "709J");
  EXPECT_GT(profiles[0].certificate.not_after, absl::ToUnixSeconds(absl::Now()));
  EXPECT_EQ(profiles[1].allowed_attest, std::vector<std::string>{"C"});
}

TEST_F(DaemonTest, DeadlinesAreHonoured) {
  auto c = Client();
  EXPECT_THAT(c->Sign(Call(), absl::Microseconds(1)),
              StatusIs(absl::StatusCode::kDeadlineExceeded));
  EXPECT_OK(c->Sign(Call(), absl::Seconds(5)));
}

TEST_F(DaemonTest, ConcurrentSigningFromManyThreadsAllVerify) {
  auto c = Client();
  std::vector<std::string> identities(8 * 25);
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 8; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < 25; ++i) {
        auto s = c->Sign(Call(i % 2 ? "file" : "token", i % 2 ? "C" : "A"));
        if (!s.ok()) {
          ++failures;
          continue;
        }
        identities[t * 25 + i] = s->identity;
      }
    });
  }
  for (auto& th : threads) th.join();
  ASSERT_EQ(failures.load(), 0);
  for (const auto& id : identities) {
    ASSERT_OK_AND_ASSIGN(auto v, c->Verify({.identities = {id}, .from_tn = kOrig, .to_tns = {kDest}}));
    EXPECT_TRUE(v.overall.passed) << v.overall.detail;
  }
  // One fetch per x5u for all of them: the certificate cache (single-flight + TTL).
  EXPECT_EQ(env_->x5u_server().RequestCount("/token.pem"), 1);
  EXPECT_EQ(env_->x5u_server().RequestCount("/file.pem"), 1);
}

TEST_F(DaemonTest, SignStreamAnswersInOrderAndSurvivesABadRequest) {
  ASSERT_OK_AND_ASSIGN(auto stream, Client()->OpenSignStream(absl::Seconds(30)));
  for (int i = 0; i < 100; ++i) {
    client::SignParams p = Call();
    p.request_id = "r" + std::to_string(i);
    if (i == 50) p.attest = "Z";
    ASSERT_OK(stream->Send(p));
  }
  ASSERT_OK(stream->CloseSend());
  for (int i = 0; i < 100; ++i) {
    ASSERT_OK_AND_ASSIGN(client::StreamedSign r, stream->Next());
    EXPECT_EQ(r.request_id, "r" + std::to_string(i));
    if (i == 50) {
      EXPECT_THAT(r.result, StatusIs(absl::StatusCode::kInvalidArgument));
    } else {
      EXPECT_OK(r.result);
    }
  }
  EXPECT_THAT(stream->Next(), StatusIs(absl::StatusCode::kOutOfRange));
}

TEST_F(DaemonTest, HealthOnThePlaintextListener) {
  const std::string target = absl::StrCat("127.0.0.1:", env_->daemon().health_port());
  for (const char* service : {"", "shaken.v1.Shaken"}) {
    EXPECT_THAT(HealthStatus(target, service), IsOkAndHolds(1)) << service;  // SERVING
  }
  EXPECT_THAT(HealthStatus(target, "no.such.Service"), StatusIs(absl::StatusCode::kNotFound));
}

// A client that Watches a made-up service name gets SERVICE_UNKNOWN, and the name must stay
// unknown: gRPC's SetServingStatus(bool) overload would turn every watched name SERVING and keep
// it in the health service's map forever (memory grows with each name a client invents).
TEST_F(DaemonTest, HealthWatchOfAMadeUpServiceStaysUnknown) {
  const std::string target = absl::StrCat("127.0.0.1:", env_->daemon().health_port());
  const std::string service = "made.up.Service";
  grpc::GenericStub stub(grpc::CreateChannel(target, grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  grpc::CompletionQueue cq;
  auto call = stub.PrepareCall(&ctx, "/grpc.health.v1.Health/Watch", &cq);
  auto step = [&](intptr_t want) {
    void* tag = nullptr;
    bool ok = false;
    return cq.Next(&tag, &ok) && ok && reinterpret_cast<intptr_t>(tag) == want;
  };
  // HealthCheckRequest { string service = 1; }
  grpc::Slice slice(std::string(1, '\x0a') + static_cast<char>(service.size()) + service);
  grpc::ByteBuffer request(&slice, 1), response;
  call->StartCall(reinterpret_cast<void*>(1));
  ASSERT_TRUE(step(1));
  call->WriteLast(request, grpc::WriteOptions(), reinterpret_cast<void*>(2));
  ASSERT_TRUE(step(2));
  call->Read(&response, reinterpret_cast<void*>(3));
  ASSERT_TRUE(step(3));
  std::vector<grpc::Slice> slices;
  ASSERT_TRUE(response.Dump(&slices).ok());
  std::string bytes;
  for (const auto& s : slices) bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  EXPECT_EQ(bytes, std::string("\x08\x03"));  // SERVICE_UNKNOWN

  // Several health-monitor ticks (250 ms) later, with the watch still open, the name is unknown.
  absl::SleepFor(absl::Milliseconds(800));
  EXPECT_THAT(HealthStatus(target, service), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(HealthStatus(target, ""), IsOkAndHolds(1));

  ctx.TryCancel();
  call->Read(&response, reinterpret_cast<void*>(4));
  void* tag = nullptr;
  bool ok = false;
  ASSERT_TRUE(cq.Next(&tag, &ok));
  grpc::Status status;
  call->Finish(&status, reinterpret_cast<void*>(5));
  while (cq.Next(&tag, &ok) && reinterpret_cast<intptr_t>(tag) != 5) {
  }
  cq.Shutdown();
  while (cq.Next(&tag, &ok)) {
  }
  EXPECT_THAT(HealthStatus(target, service), StatusIs(absl::StatusCode::kNotFound));
}

// ApiChannel is a raw gRPC channel to the API listener with `name`'s client certificate.
std::shared_ptr<grpc::Channel> ApiChannel(const DaemonEnv& env, const std::string& name) {
  grpc::SslCredentialsOptions tls;
  tls.pem_root_certs = ReadFileOrEmpty(env.TlsCaFile());
  tls.pem_cert_chain = ReadFileOrEmpty(env.ClientCertFile(name));
  tls.pem_private_key = ReadFileOrEmpty(env.ClientKeyFile(name));
  grpc::ChannelArguments args;
  args.SetSslTargetNameOverride("localhost");
  return grpc::CreateCustomChannel(env.ApiTarget(), grpc::SslCredentials(tls), args);
}

grpc::ByteBuffer Bytes(const std::string& bytes) {
  grpc::Slice slice(bytes);
  return grpc::ByteBuffer(&slice, 1);
}

std::string BytesOf(const grpc::ByteBuffer& buffer) {
  std::vector<grpc::Slice> slices;
  if (!buffer.Dump(&slices).ok()) return "";
  std::string bytes;
  for (const auto& s : slices) bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  return bytes;
}

// Reflect makes one grpc.reflection.v1alpha call over `channel`: a ServerReflectionRequest whose
// only field is the string `value` at field number `field` (7 list_services, 4
// file_containing_symbol), encoded by hand (the reflection proto is not installed). Returns the
// response's bytes.
absl::StatusOr<std::string> Reflect(const std::shared_ptr<grpc::Channel>& channel, int field,
                                    const std::string& value) {
  std::string request;
  request.push_back(static_cast<char>(field << 3 | 2));  // length-delimited
  request.push_back(static_cast<char>(value.size()));    // < 128
  request.append(value);
  grpc::GenericStub stub(channel);
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  grpc::CompletionQueue cq;
  auto call =
      stub.PrepareCall(&ctx, "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo", &cq);
  auto step = [&](intptr_t want) {
    void* tag = nullptr;
    bool ok = false;
    return cq.Next(&tag, &ok) && ok && reinterpret_cast<intptr_t>(tag) == want;
  };
  grpc::Slice slice(request);
  grpc::ByteBuffer out(&slice, 1), in;
  grpc::Status status;
  call->StartCall(reinterpret_cast<void*>(1));
  bool ok = step(1);
  if (ok) {
    call->Write(out, reinterpret_cast<void*>(2));
    ok = step(2);
  }
  if (ok) {
    call->Read(&in, reinterpret_cast<void*>(3));
    ok = step(3);
  }
  call->WritesDone(reinterpret_cast<void*>(4));
  step(4);
  call->Finish(&status, reinterpret_cast<void*>(5));
  step(5);
  if (!status.ok()) {
    return absl::Status(static_cast<absl::StatusCode>(status.error_code()), status.error_message());
  }
  if (!ok) return absl::InternalError("reflection stream failed");
  std::vector<grpc::Slice> slices;
  if (!in.Dump(&slices).ok()) return absl::InternalError("unreadable response");
  std::string bytes;
  for (const auto& s : slices) bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  return bytes;
}

// Fields returns the length-delimited values of field `number` in the protobuf message `bytes`.
std::vector<std::string> Fields(const std::string& bytes, int number) {
  google::protobuf::UnknownFieldSet set;
  std::vector<std::string> out;
  if (!set.ParseFromString(bytes)) return out;
  for (int i = 0; i < set.field_count(); ++i) {
    const google::protobuf::UnknownField& f = set.field(i);
    if (f.number() == number && f.type() == google::protobuf::UnknownField::TYPE_LENGTH_DELIMITED) {
      out.push_back(f.length_delimited());
    }
  }
  return out;
}

// Server reflection (grpcurl, Postman) lists and describes shaken.v1 on the mTLS API listener
// (listen.reflection: api, the default); the plaintext health listener does not offer it.
TEST_F(DaemonTest, ReflectionListsAndDescribesTheApi) {
  grpc::SslCredentialsOptions tls;
  tls.pem_root_certs = ReadFileOrEmpty(env_->TlsCaFile());
  tls.pem_cert_chain = ReadFileOrEmpty(env_->ClientCertFile("sbc1.test"));
  tls.pem_private_key = ReadFileOrEmpty(env_->ClientKeyFile("sbc1.test"));
  grpc::ChannelArguments args;
  args.SetSslTargetNameOverride("localhost");
  auto api = grpc::CreateCustomChannel(env_->ApiTarget(), grpc::SslCredentials(tls), args);

  ASSERT_OK_AND_ASSIGN(std::string listed, Reflect(api, 7, "*"));
  std::vector<std::string> names;
  for (const std::string& list : Fields(listed, 6)) {       // list_services_response
    for (const std::string& service : Fields(list, 1)) {    // service
      for (const std::string& name : Fields(service, 1)) names.push_back(name);
    }
  }
  EXPECT_THAT(names, ::testing::IsSupersetOf({"shaken.v1.Shaken", "grpc.health.v1.Health"}));

  ASSERT_OK_AND_ASSIGN(std::string described, Reflect(api, 4, "shaken.v1.Shaken"));
  bool found = false;
  for (const std::string& files : Fields(described, 4)) {  // file_descriptor_response
    for (const std::string& file : Fields(files, 1)) {     // file_descriptor_proto
      google::protobuf::FileDescriptorProto proto;
      ASSERT_TRUE(proto.ParseFromString(file));
      if (proto.package() != "shaken.v1" || proto.service_size() != 1) continue;
      std::vector<std::string> methods;
      for (const auto& m : proto.service(0).method()) methods.push_back(m.name());
      EXPECT_THAT(methods, ::testing::UnorderedElementsAre("Sign", "SignStream", "Verify",
                                                           "ListProfiles"));
      found = true;
    }
  }
  EXPECT_TRUE(found) << "no descriptor of shaken.v1.Shaken in the reflection answer";

  auto health = grpc::CreateChannel(absl::StrCat("127.0.0.1:", env_->daemon().health_port()),
                                    grpc::InsecureChannelCredentials());
  EXPECT_THAT(Reflect(health, 7, "*"), StatusIs(absl::StatusCode::kUnimplemented));
  EXPECT_THAT(HealthStatus(absl::StrCat("127.0.0.1:", env_->daemon().health_port()), ""),
              IsOkAndHolds(1));
}

// listen.reflection: off serves reflection on no listener.
TEST(DaemonReflectionTest, ReflectionOffIsServedNowhere) {
  ASSERT_OK_AND_ASSIGN(auto env, DaemonEnv::Create({.listen_extra_yaml = "  reflection: off\n"}));
  EXPECT_THAT(Reflect(ApiChannel(*env, "sbc1.test"), 7, "*"),
              StatusIs(absl::StatusCode::kUnimplemented));
  auto health = grpc::CreateChannel(absl::StrCat("127.0.0.1:", env->daemon().health_port()),
                                    grpc::InsecureChannelCredentials());
  EXPECT_THAT(Reflect(health, 7, "*"), StatusIs(absl::StatusCode::kUnimplemented));
  // The API itself is unaffected.
  ASSERT_OK_AND_ASSIGN(auto c, env->NewClient("sbc1.test"));
  EXPECT_OK(c->ListProfiles());
}

// Field 1 (length-delimited) announces 5 bytes and carries 2: no protobuf message decodes it.
const std::string kUndecodable("\x0a\x05" "ab", 4);

// A request whose bytes are not its message is INVALID_ARGUMENT saying so (gRPC's typed callback
// handlers would answer UNIMPLEMENTED with an empty message).
TEST_F(DaemonTest, UndecodableUnaryRequestsAreInvalidArgument) {
  grpc::GenericStub stub(ApiChannel(*env_, "sbc1.test"));
  for (const char* method : {"Sign", "Verify", "ListProfiles"}) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
    grpc::ByteBuffer request = Bytes(kUndecodable), response;
    std::promise<grpc::Status> done;
    stub.UnaryCall(&ctx, absl::StrCat("/shaken.v1.Shaken/", method), grpc::StubOptions(),
                   &request, &response, [&done](grpc::Status s) { done.set_value(std::move(s)); });
    grpc::Status status = done.get_future().get();
    EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << method;
    EXPECT_THAT(status.error_message(), HasSubstr("is not a valid shaken.v1.")) << method;
  }
}

// SignStream [good, undecodable, good]: three answers in order, the middle one an error, and the
// stream ends OK; nothing is dropped.
TEST_F(DaemonTest, SignStreamAnswersAnUndecodableRequestAndGoesOn) {
  grpc::GenericStub stub(ApiChannel(*env_, "sbc1.test"));
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  grpc::CompletionQueue cq;
  auto call = stub.PrepareCall(&ctx, "/shaken.v1.Shaken/SignStream", &cq);
  auto step = [&](intptr_t want) {
    void* tag = nullptr;
    bool ok = false;
    return cq.Next(&tag, &ok) && ok && reinterpret_cast<intptr_t>(tag) == want;
  };
  auto good = [](const std::string& id) {
    shaken::v1::SignRequest r;
    r.set_attest("A");
    r.mutable_orig()->set_tn(kOrig);
    r.mutable_dest()->add_tn(kDest);
    r.set_request_id(id);
    return r.SerializeAsString();
  };
  call->StartCall(reinterpret_cast<void*>(1));
  ASSERT_TRUE(step(1));
  intptr_t tag = 10;
  for (const std::string& bytes : {good("first"), kUndecodable, good("third")}) {
    call->Write(Bytes(bytes), reinterpret_cast<void*>(tag));
    ASSERT_TRUE(step(tag++));
  }
  call->WritesDone(reinterpret_cast<void*>(2));
  ASSERT_TRUE(step(2));
  std::vector<shaken::v1::SignStreamResponse> answers;
  for (;;) {
    grpc::ByteBuffer in;
    call->Read(&in, reinterpret_cast<void*>(tag));
    if (!step(tag++)) break;
    shaken::v1::SignStreamResponse r;
    ASSERT_TRUE(r.ParseFromString(BytesOf(in)));
    answers.push_back(std::move(r));
  }
  grpc::Status status;
  call->Finish(&status, reinterpret_cast<void*>(3));
  ASSERT_TRUE(step(3));
  EXPECT_TRUE(status.ok()) << status.error_code() << ": " << status.error_message();
  ASSERT_EQ(answers.size(), 3u);
  EXPECT_EQ(answers[0].request_id(), "first");
  EXPECT_TRUE(answers[0].has_response());
  EXPECT_EQ(answers[1].request_id(), "");
  EXPECT_EQ(answers[1].error().code(), 3);  // INVALID_ARGUMENT
  EXPECT_THAT(answers[1].error().message(), HasSubstr("not a valid shaken.v1.SignRequest"));
  EXPECT_EQ(answers[2].request_id(), "third");
  EXPECT_TRUE(answers[2].has_response());
  cq.Shutdown();
  void* t = nullptr;
  bool ok = false;
  while (cq.Next(&t, &ok)) {
  }
}

size_t Append(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

std::string Scrape(int port) {
  CURL* curl = curl_easy_init();
  std::string body;
  std::string url = absl::StrCat("http://127.0.0.1:", port, "/metrics");
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, Append);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT, 5L);
  EXPECT_EQ(curl_easy_perform(curl), CURLE_OK);
  curl_easy_cleanup(curl);
  return body;
}

// Value reads one series' value from a Prometheus text exposition; -1 when absent.
double Value(const std::string& body, const std::string& series) {
  size_t at = body.find("\n" + series + " ");
  if (at == std::string::npos) return -1;
  return std::stod(body.substr(at + series.size() + 2));
}

// ExpectExportedSeries checks that every shaken_* series `expr` names is in the exposition
// `body`, and every label value it matches (=, =~ alternatives) is used by some series.
void ExpectExportedSeries(const std::string& body, const std::string& expr,
                          const std::string& where) {
  const std::regex metric(R"(\bshaken_[a-z0-9_]+)");
  const std::regex matcher(R"re(\b([a-z_]+)\s*(=~|!~|!=|=)\s*"([^"]*)")re");
  for (std::sregex_iterator it(expr.begin(), expr.end(), metric), end; it != end; ++it) {
    const std::string series = it->str();
    EXPECT_TRUE(absl::StrContains(body, "\n" + series + "{") ||
                absl::StrContains(body, "\n" + series + " "))
        << where << ": " << series << " is not exported";
  }
  for (std::sregex_iterator it(expr.begin(), expr.end(), matcher), end; it != end; ++it) {
    const std::string label = (*it)[1], values = (*it)[3];
    if (label == "job" || label == "instance") continue;  // Prometheus' own target labels
    for (absl::string_view value : absl::StrSplit(values, '|')) {
      EXPECT_TRUE(absl::StrContains(body, absl::StrCat(label, "=\"", value, "\"")))
          << where << ": no series has " << label << "=\"" << value << "\"";
    }
  }
}

// Every panel of the Grafana dashboard in deploy/grafana queries series this daemon exports.
TEST_F(DaemonTest, DashboardPanelsQueryExportedSeries) {
  const std::string body = Scrape(env_->daemon().metrics_port());
  std::ifstream in(SourcePath("deploy/grafana/shakend.json"));
  const nlohmann::json dashboard = nlohmann::json::parse(in);
  int targets = 0;
  for (const nlohmann::json& panel : dashboard.at("panels")) {
    const std::string title = panel.at("title");
    EXPECT_FALSE(panel.at("targets").empty()) << title;
    for (const nlohmann::json& target : panel.at("targets")) {
      ExpectExportedSeries(body, target.at("expr"), title);
      ++targets;
    }
  }
  for (const nlohmann::json& var : dashboard.at("templating").at("list")) {
    if (var.contains("query") && var.at("query").is_string()) {
      ExpectExportedSeries(body, var.at("query"), "variable " + var.at("name").get<std::string>());
    }
  }
  EXPECT_GE(targets, 20);
}

// The alerting rules shipped in deploy/prometheus name only series this daemon exports, with
// label values it uses: a renamed metric cannot silently disarm an alert.
TEST_F(DaemonTest, AlertRulesNameExportedSeriesAndLabelValues) {
  const std::string body = Scrape(env_->daemon().metrics_port());
  YAML::Node rules = YAML::LoadFile(SourcePath("deploy/prometheus/shakend-alerts.yaml"));
  ASSERT_TRUE(rules["groups"].IsSequence());
  const std::regex metric(R"(\bshaken_[a-z0-9_]+)");
  const std::regex matcher(R"re(\b([a-z_]+)\s*(=~|!~|!=|=)\s*"([^"]*)")re");
  int alerts = 0;
  for (const YAML::Node& group : rules["groups"]) {
    for (const YAML::Node& rule : group["rules"]) {
      const std::string name = rule["alert"].as<std::string>();
      const std::string expr = rule["expr"].as<std::string>();
      ++alerts;
      EXPECT_THAT(rule["labels"]["severity"].as<std::string>(),
                  ::testing::AnyOf("warning", "critical"))
          << name;
      EXPECT_FALSE(rule["annotations"]["summary"].as<std::string>().empty()) << name;
      for (std::sregex_iterator it(expr.begin(), expr.end(), metric), end; it != end; ++it) {
        const std::string series = it->str();
        EXPECT_TRUE(absl::StrContains(body, "\n" + series + "{") ||
                    absl::StrContains(body, "\n" + series + " "))
            << name << ": " << series << " is not exported";
      }
      for (std::sregex_iterator it(expr.begin(), expr.end(), matcher), end; it != end; ++it) {
        const std::string label = (*it)[1], values = (*it)[3];
        if (label == "job") continue;  // Prometheus' own target label
        for (absl::string_view value : absl::StrSplit(values, '|')) {
          EXPECT_TRUE(absl::StrContains(body, absl::StrCat(label, "=\"", value, "\"")))
              << name << ": no series has " << label << "=\"" << value << "\"";
        }
      }
    }
  }
  EXPECT_GE(alerts, 8);
}

TEST_F(DaemonTest, PrometheusMetrics) {
  const int port = env_->daemon().metrics_port();
  const std::string sign_ok = "shaken_rpc_requests_total{code=\"OK\",method=\"Sign\"}";
  const std::string passed = "shaken_verify_verdicts_total{reason=\"passed\"}";
  const std::string before = Scrape(port);
  auto c = Client();
  ASSERT_OK_AND_ASSIGN(client::SignResult s, c->Sign(Call("file", "C")));
  ASSERT_OK(c->Verify({.identities = {s.identity}, .from_tn = kOrig, .to_tns = {kDest}}).status());
  const std::string body = Scrape(port);
  EXPECT_EQ(Value(body, sign_ok) - Value(before, sign_ok), 1);
  EXPECT_EQ(Value(body, passed) - Value(before, passed), 1);
  EXPECT_THAT(body, HasSubstr("shaken_sign_duration_seconds_bucket{profile=\"file\""));
  EXPECT_EQ(Value(body, "shaken_hsm_sessions{profile=\"token\",state=\"size\"}"), 2);
  EXPECT_GT(Value(body, "shaken_certificate_not_after_seconds{profile=\"file\"}"),
            absl::ToUnixSeconds(absl::Now()));
  EXPECT_GE(Value(body, "shaken_x5u_fetch_duration_seconds_count{result=\"ok\"}"), 1);
  EXPECT_GE(Value(body, "shaken_x5u_cache_hits_total") + Value(body, "shaken_x5u_cache_misses_total"),
            1);
  EXPECT_THAT(body, Not(HasSubstr("12155550121")));  // never a TN in a label
}

}  // namespace
}  // namespace shaken::testing

namespace shaken::testing {
namespace {

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
TEST_F(DaemonTest, SigningIsRefusedWhileAuditCannotBeWritten) {
  if (access("/dev/full", W_OK) != 0) GTEST_SKIP() << "no writable /dev/full here";
  auto c = Client();
  ASSERT_OK(daemon::InitLogging(daemon::LogFormat::kText, daemon::LogLevel::kInfo, "/dev/full"));
  const uint64_t before = daemon::AuditWriteFailures();
  EXPECT_OK(c->Sign(Call()));  // its record is lost: audit is now known to fail
  EXPECT_THAT(c->Sign(Call()),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("/dev/full")));
  EXPECT_GE(daemon::AuditWriteFailures(), before + 2);  // every lost record counts
  EXPECT_GE(Value(Scrape(env_->daemon().metrics_port()), "shaken_audit_write_failures_total"),
            2.0);
  EXPECT_EQ(Value(Scrape(env_->daemon().metrics_port()), "shaken_audit_available"), 0.0);
  ASSERT_OK(daemon::InitLogging(daemon::LogFormat::kText, daemon::LogLevel::kInfo, ""));
  EXPECT_OK(c->Sign(Call()));
}

}  // namespace
}  // namespace shaken::testing
