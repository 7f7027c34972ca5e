// rph (RFC 8443) and rich call data (RFC 9795) through shakend's gRPC API, with the C++ client
// library: Sign, then Verify, against the real daemon (SoftHSM2 token profile and file profile),
// with icon and jCard content served by the fixture's HTTPS server on 127.0.0.1.
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "shaken/client.h"
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

}  // namespace
}  // namespace shaken::testing
