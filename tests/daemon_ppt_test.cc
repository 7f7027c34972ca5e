// rph (RFC 8443) and rich call data (RFC 9795) through shakend's gRPC API, with the C++ client
// library: Sign, then Verify, against the real daemon (SoftHSM2 token profile and file profile),
// with icon and jCard content served by the fixture's HTTPS server on 127.0.0.1.
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "shaken/client.h"
#include "shaken/shaken_client.h"
#include "stir/rcd.h"
#include "tests/daemon_fixture.h"
#include "tests/daemon_test_base.h"
#include "tests/testing/status_matchers.h"

namespace shaken::testing {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

TEST_F(DaemonTest, SignAnRphAndVerifyItAgainstResourcePriority) {
  auto c = Client();
  ASSERT_OK_AND_ASSIGN(client::SignResult shaken, c->Sign(Call()));
  ASSERT_OK_AND_ASSIGN(client::SignResult rph,
                       c->Sign({.orig_tn = kOrig, .dest_tns = {kDest},
                                .rph_auth = {"ets.0", "wps.1"}, .rph_sph = "psap-callback"}));
  EXPECT_THAT(rph.identity, HasSubstr(";alg=ES256;ppt=rph"));
  EXPECT_TRUE(rph.origid.empty());

  ASSERT_OK_AND_ASSIGN(client::VerifyResult v,
                       c->Verify({.identities = {shaken.identity, rph.identity},
                                  .from_tn = kOrig, .to_tns = {kDest},
                                  .resource_priority = {"ets.0"}}));
  EXPECT_TRUE(v.overall.passed) << v.overall.detail;
  EXPECT_EQ(v.overall.ppt, "shaken");
  EXPECT_EQ(v.verstat_priority, "RPH-Validation-Passed");
  ASSERT_EQ(v.identities.size(), 2u);
  EXPECT_TRUE(v.identities[1].passed) << v.identities[1].detail;
  EXPECT_EQ(v.identities[1].ppt, "rph");
  EXPECT_THAT(v.identities[1].rph_auth, ElementsAre("ets.0", "wps.1"));
  EXPECT_EQ(v.identities[1].sph, "psap-callback");

  // A priority the rph PASSporT does not vouch for.
  ASSERT_OK_AND_ASSIGN(v, c->Verify({.identities = {shaken.identity, rph.identity},
                                     .from_tn = kOrig, .to_tns = {kDest},
                                     .resource_priority = {"dsn.flash"}}));
  EXPECT_TRUE(v.overall.passed);
  EXPECT_EQ(v.verstat_priority, "RPH-Validation-Failed");
  EXPECT_EQ(v.identities[1].reason, "rph_mismatch");
  // Without an rph header there is nothing to say about priority.
  ASSERT_OK_AND_ASSIGN(v, c->Verify({.identities = {shaken.identity}, .from_tn = kOrig,
                                     .to_tns = {kDest}, .resource_priority = {"ets.0"}}));
  EXPECT_EQ(v.verstat_priority, "");
  // A malformed Resource-Priority value is a malformed request.
  EXPECT_THAT(c->Verify({.identities = {shaken.identity}, .from_tn = kOrig, .to_tns = {kDest},
                         .resource_priority = {"ets"}}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("resource_priority")));
}

TEST_F(DaemonTest, RphAndRcdRequestsAreCheckedFieldByField) {
  auto c = Client();
  const auto kInvalid = absl::StatusCode::kInvalidArgument;
  struct Case {
    const char* name;
    client::SignParams params;
    const char* message;
  };
  std::vector<Case> cases = {
      {"attest with rph", {.attest = "A", .orig_tn = kOrig, .dest_tns = {kDest},
                           .rph_auth = {"ets.0"}}, "attest must be empty with ppt \"rph\""},
      {"bad r-value", {.orig_tn = kOrig, .dest_tns = {kDest}, .rph_auth = {"ets"}},
       "rph.auth: \"ets\" is not a Resource-Priority r-value"},
      {"bad sph", {.orig_tn = kOrig, .dest_tns = {kDest}, .rph_auth = {"ets.0"},
                   .rph_sph = "a b"}, "rph.sph"},
      {"ppt rph without rph", {.orig_tn = kOrig, .dest_tns = {kDest}, .ppt = "rph"},
       "rph is required with ppt \"rph\""},
      {"unknown ppt", {.attest = "A", .orig_tn = kOrig, .dest_tns = {kDest}, .ppt = "div-o"},
       "ppt \"div-o\" is not a PASSporT type this server signs"},
      {"rcd without rcd", {.orig_tn = kOrig, .dest_tns = {kDest}, .ppt = "rcd"},
       "rcd is required with ppt \"rcd\""},
      {"rcd with rph", {.orig_tn = kOrig, .dest_tns = {kDest}, .rph_auth = {"ets.0"},
                        .rcd = {.nam = "Acme"}}, "rcd goes in a shaken or an rcd PASSporT"},
      {"rcd http icon", {.attest = "A", .orig_tn = kOrig, .dest_tns = {kDest},
                         .rcd = {.icn = "http://127.0.0.1/logo.png"}}, "rcd.icn: "},
      {"rcd bad jcd", {.orig_tn = kOrig, .dest_tns = {kDest}, .ppt = "rcd",
                       .rcd = {.jcd = "{}"}}, "rcd.jcd: must be a jCard"},
      {"rcd crn only", {.orig_tn = kOrig, .dest_tns = {kDest}, .ppt = "rcd",
                        .rcd = {.crn = "Refill"}}, "rcd needs at least one of"},
  };
  for (const Case& k : cases) {
    EXPECT_THAT(c->Sign(k.params), StatusIs(kInvalid, HasSubstr(k.message))) << k.name;
  }
  // Content that cannot be fetched: the server says so, it does not sign without the digest.
  const std::string gone = env_->x5u_server().Url("/brand/gone.png", "localhost");
  EXPECT_THAT(c->Sign({.attest = "A", .orig_tn = kOrig, .dest_tns = {kDest},
                       .rcd = {.nam = "Acme", .icn = gone}}),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("rcd.icn: fetching")));
}

TEST_F(DaemonTest, RichCallDataReachesTheCallerOnlyWhenItVerifies) {
  HttpsServer& server = env_->x5u_server();
  server.SetRoute("/brand/logo.png", {.body = "PNG logo v1"});
  server.SetRoute("/brand/card.json",
                  {.body = R"(["vcard",[["version",{},"text","4.0"],["fn",{},"text","Acme"]]])"});
  const std::string icon = server.Url("/brand/logo.png", "localhost");
  const std::string card = server.Url("/brand/card.json", "localhost");
  auto c = Client();
  // Rich call data in the shaken PASSporT (ATIS-1000094), signed by the token profile.
  ASSERT_OK_AND_ASSIGN(client::SignResult shaken,
                       c->Sign({.attest = "A", .orig_tn = kOrig, .dest_tns = {kDest},
                                .rcd = {.nam = "Acme Pharmacy", .icn = icon,
                                        .crn = "Your prescription is ready"}}));
  // And an rcd PASSporT of its own with a jCard by reference, signed by the file profile.
  ASSERT_OK_AND_ASSIGN(client::SignResult rcd,
                       c->Sign({.profile = "file", .orig_tn = kOrig, .dest_tns = {kDest},
                                .ppt = "rcd", .rcd = {.nam = "Acme", .jcl = card}}));
  EXPECT_THAT(rcd.identity, HasSubstr(";ppt=rcd"));

  ASSERT_OK_AND_ASSIGN(client::VerifyResult v,
                       c->Verify({.identities = {shaken.identity, rcd.identity},
                                  .from_tn = kOrig, .to_tns = {kDest}}));
  EXPECT_TRUE(v.overall.passed) << v.overall.detail;
  ASSERT_EQ(v.rcds.size(), 2u);
  EXPECT_TRUE(v.rcds[0].passed) << v.rcds[0].reason << ": " << v.rcds[0].detail;
  EXPECT_EQ(v.rcds[0].identity, 0);
  EXPECT_EQ(v.rcds[0].rcd.nam, "Acme Pharmacy");
  EXPECT_EQ(v.rcds[0].rcd.icn, icon);
  EXPECT_EQ(v.rcds[0].rcd.crn, "Your prescription is ready");
  EXPECT_TRUE(v.rcds[1].passed) << v.rcds[1].detail;
  EXPECT_EQ(v.rcds[1].rcd.jcl, card);
  EXPECT_EQ(v.display_name, "Acme Pharmacy");

  // The icon changed after signing: its rich call data is dropped, the call still verifies, and
  // the display name comes from the rcd PASSporT whose jCard still matches.
  server.SetRoute("/brand/logo.png", {.body = "PNG logo v2"});
  ASSERT_OK_AND_ASSIGN(v, c->Verify({.identities = {shaken.identity, rcd.identity},
                                     .from_tn = kOrig, .to_tns = {kDest}}));
  EXPECT_TRUE(v.overall.passed);
  ASSERT_EQ(v.rcds.size(), 2u);
  EXPECT_FALSE(v.rcds[0].passed);
  EXPECT_EQ(v.rcds[0].reason, "rcdi_mismatch");
  EXPECT_EQ(v.rcds[0].rcd.nam, "");
  EXPECT_EQ(v.rcds[0].rcd.crn, "");
  EXPECT_EQ(v.display_name, "Acme");
  // The icon is gone: dropped with the fetch's reason.
  server.SetRoute("/brand/logo.png", {.status = 404});
  ASSERT_OK_AND_ASSIGN(v, c->Verify({.identities = {shaken.identity}, .from_tn = kOrig,
                                     .to_tns = {kDest}}));
  ASSERT_EQ(v.rcds.size(), 1u);
  EXPECT_EQ(v.rcds[0].reason, "fetch_http_status");
  EXPECT_EQ(v.display_name, "");
  // A PASSporT that does not verify (the wrong caller) shows nothing.
  server.SetRoute("/brand/logo.png", {.body = "PNG logo v1"});
  ASSERT_OK_AND_ASSIGN(v, c->Verify({.identities = {shaken.identity}, .from_tn = "12155550199",
                                     .to_tns = {kDest}}));
  ASSERT_EQ(v.rcds.size(), 1u);
  EXPECT_EQ(v.rcds[0].reason, "orig_mismatch");
  EXPECT_EQ(v.display_name, "");
}

// The C ABI 1.2 functions against the real daemon: an rph PASSporT and an rcd one signed with
// shaken_sign_ppt, both verified with shaken_verify_ppt and the call's Resource-Priority.
TEST_F(DaemonTest, CAbiSignsAndVerifiesRphAndRcd) {
  const std::string target = env_->ApiTarget(), ca = env_->TlsCaFile(),
                    cert = env_->ClientCertFile("sbc1.test"), key = env_->ClientKeyFile("sbc1.test");
  shaken_client_options o;
  shaken_client_options_init(&o);
  o.target = target.c_str();
  o.root_ca_file = ca.c_str();
  o.client_cert_file = cert.c_str();
  o.client_key_file = key.c_str();
  o.server_name_override = "localhost";
  o.default_timeout_ms = 5000;
  shaken_error err;
  shaken_client* c = nullptr;
  ASSERT_EQ(shaken_client_new(&o, &c, &err), 0) << err.message;

  const char* dest[] = {kDest};
  shaken_sign_request req = {};
  req.orig_tn = kOrig;
  req.dest_tns = dest;
  req.num_dest_tns = 1;
  const char* auth[] = {"ets.0"};
  shaken_ppt_request ppt = {};
  ppt.rph_auth = auth;
  ppt.num_rph_auth = 1;
  shaken_sign_result rph = {};
  ASSERT_EQ(shaken_sign_ppt(c, &req, &ppt, &rph, &err), 0) << err.message;
  EXPECT_THAT(rph.identity, HasSubstr(";ppt=rph"));
  shaken_ppt_request rcd_ppt = {};
  rcd_ppt.ppt = "rcd";
  rcd_ppt.rcd_nam = "Acme";
  rcd_ppt.rcd_crn = "Refill";
  shaken_sign_result rcd = {};
  ASSERT_EQ(shaken_sign_ppt(c, &req, &rcd_ppt, &rcd, &err), 0) << err.message;
  // Errors come back named as the API names them.
  const char* bad_auth[] = {"ets"};
  ppt.rph_auth = bad_auth;
  shaken_sign_result none = {};
  EXPECT_EQ(shaken_sign_ppt(c, &req, &ppt, &none, &err), 3);
  EXPECT_THAT(err.message, HasSubstr("rph.auth"));
  EXPECT_EQ(shaken_sign_ppt(c, &req, nullptr, &none, &err), 3);
  EXPECT_THAT(err.message, HasSubstr("ppt is NULL"));

  const char* identities[] = {rph.identity, rcd.identity};
  shaken_verify_request vr = {};
  vr.identities = identities;
  vr.num_identities = 2;
  vr.from_tn = kOrig;
  vr.to_tns = dest;
  vr.num_to_tns = 1;
  const char* priority[] = {"ets.0"};
  shaken_verify_ppt_result v = {};
  ASSERT_EQ(shaken_verify_ppt(c, &vr, priority, 1, &v, &err), 0) << err.message;
  EXPECT_EQ(v.call.overall.passed, 1) << v.call.overall.detail;
  EXPECT_STREQ(v.call.overall.ppt, "rph");
  ASSERT_EQ(v.call.num_identities, 2u);
  EXPECT_STREQ(v.verstat_priority, "RPH-Validation-Passed");
  EXPECT_STREQ(v.display_name, "Acme");
  ASSERT_EQ(v.num_rcds, 1u);
  EXPECT_EQ(v.rcds[0].identity, 1u);
  EXPECT_EQ(v.rcds[0].passed, 1);
  EXPECT_STREQ(v.rcds[0].crn, "Refill");
  shaken_verify_ppt_result_free(&v);
  EXPECT_EQ(v.rcds, nullptr);
  EXPECT_EQ(shaken_verify_ppt(c, &vr, nullptr, 1, &v, &err), 3);
  EXPECT_THAT(err.message, HasSubstr("resource_priority is NULL"));
  EXPECT_EQ(shaken_verify_ppt(c, &vr, priority, 1, nullptr, &err), 3);
  shaken_sign_result_free(&rph);
  shaken_sign_result_free(&rcd);
  shaken_client_free(c);
}

}  // namespace
}  // namespace shaken::testing
