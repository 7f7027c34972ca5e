// Integration tests of shakend: a real Daemon on loopback with a SoftHSM2 token, mTLS, a real
// HTTPS x5u server, through the C++ client library and the C ABI: signing, verification, requests
// and their errors, authorization, health. The wire level (raw gRPC, reflection, metrics, reload)
// is in daemon_wire_test.cc.
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
#include "daemon/profiles.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "shaken/client.h"
#include "shaken/shaken_client.h"
#include "shaken/v1/shaken.grpc.pb.h"
#include "stir/openssl_util.h"
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

// ABI 1.1 verdicts carry ppt and dest; a program built against ABI 1.0 still links the 1.0
// shaken_verify and shaken_verify_result_free and gets the 1.0 verdict layout from them.
struct VerdictAbi10 {
  int passed;
  char* verstat;
  int sip_code;
  char* sip_reason;
  char* reason;
  char* detail;
  char* attest;
  char* origid;
  char* orig_tn;
  int64_t iat;
  char* x5u;
  char* cert_subject;
  char* cert_spc;
  char* cert_serial;
  int64_t cert_not_after;
};
struct VerifyResultAbi10 {
  VerdictAbi10 overall;
  size_t num_identities;
  VerdictAbi10* identities;
};
extern "C" int shaken_verify_abi1_0_for_test(shaken_client*, const shaken_verify_request*,
                                             VerifyResultAbi10*, shaken_error*)
    __asm__("shaken_verify");
extern "C" void shaken_verify_result_free_abi1_0_for_test(VerifyResultAbi10*)
    __asm__("shaken_verify_result_free");

TEST_F(DaemonTest, CAbiVerdictsCarryPptAndDestAndTheAbi10SymbolsStillWork) {
  static_assert(SHAKEN_CLIENT_ABI_VERSION == 1 && SHAKEN_CLIENT_ABI_MINOR >= 1);
  shaken_client* client = CClient(*env_, "sbc1.test");
  ASSERT_NE(client, nullptr);
  auto c = Client();
  ASSERT_OK_AND_ASSIGN(client::SignResult s, c->Sign(Call("file", "C")));
  const char* ids[] = {s.identity.c_str()};
  const char* dest[] = {kDest};
  shaken_verify_request vreq = {};
  vreq.identities = ids;
  vreq.num_identities = 1;
  vreq.from_tn = kOrig;
  vreq.to_tns = dest;
  vreq.num_to_tns = 1;
  vreq.timeout_ms = 5000;
  shaken_error err;
  shaken_verify_result now = {};
  ASSERT_EQ(shaken_verify(client, &vreq, &now, &err), 0) << err.message;
  EXPECT_TRUE(now.overall.passed) << now.overall.reason;
  EXPECT_STREQ(now.overall.ppt, "shaken");
  ASSERT_EQ(now.overall.num_dest_tns, 1u);
  EXPECT_STREQ(now.overall.dest_tns[0], "12155550131");
  ASSERT_EQ(now.num_identities, 1u);
  EXPECT_STREQ(now.identities[0].ppt, "shaken");
  shaken_verify_result_free(&now);
  EXPECT_EQ(now.overall.ppt, nullptr);

  VerifyResultAbi10 old = {};
  ASSERT_EQ(shaken_verify_abi1_0_for_test(client, &vreq, &old, &err), 0) << err.message;
  EXPECT_TRUE(old.overall.passed) << old.overall.reason;
  EXPECT_STREQ(old.overall.verstat, "TN-Validation-Passed");
  EXPECT_STREQ(old.overall.cert_spc, "123A");
  ASSERT_EQ(old.num_identities, 1u);
  EXPECT_STREQ(old.identities[0].attest, "C");
  shaken_verify_result_free_abi1_0_for_test(&old);
  EXPECT_EQ(old.identities, nullptr);
  shaken_client_free(client);
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

}  // namespace
}  // namespace shaken::testing
