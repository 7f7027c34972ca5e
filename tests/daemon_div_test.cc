// div (RFC 8946) through shakend's gRPC API, with the C++ client library: Sign a shaken
// PASSporT, Sign its div, Verify both headers together.
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "shaken/client.h"
#include "tests/daemon_fixture.h"
#include "tests/daemon_test_base.h"
#include "tests/testing/status_matchers.h"

namespace shaken::testing {
namespace {

using ::testing::HasSubstr;

constexpr char kForwardedTo[] = "12155550141";

TEST_F(DaemonTest, SignADivAndVerifyTheChain) {
  auto c = Client();
  ASSERT_OK_AND_ASSIGN(client::SignResult shaken, c->Sign(Call()));
  ASSERT_OK_AND_ASSIGN(client::SignResult div,
                       c->Sign({.profile = "file", .dest_tns = {"+1 215 555 0141"},
                                .div_original = shaken.identity, .div_hi = "1.2"}));
  EXPECT_THAT(div.identity, HasSubstr(";alg=ES256;ppt=div"));
  EXPECT_TRUE(div.origid.empty());
  ASSERT_OK_AND_ASSIGN(client::VerifyResult v,
                       c->Verify({.identities = {shaken.identity, div.identity},
                                  .from_tn = kOrig, .to_tns = {kForwardedTo}}));
  EXPECT_TRUE(v.overall.passed) << v.overall.reason << ": " << v.overall.detail;
  EXPECT_EQ(v.overall.ppt, "shaken");
  EXPECT_EQ(v.overall.attest, "A");
  ASSERT_EQ(v.identities.size(), 2u);
  EXPECT_TRUE(v.identities[0].passed) << v.identities[0].detail;
  EXPECT_TRUE(v.identities[1].passed) << v.identities[1].detail;
  EXPECT_EQ(v.identities[1].ppt, "div");
  EXPECT_EQ(v.identities[1].div_tn, kDest);
  EXPECT_EQ(v.identities[1].div_hi, "1.2");
  EXPECT_EQ(v.identities[1].diverts, 0);
  EXPECT_EQ(v.identities[1].certificate.spc, "123A");  // signed by the retargeting profile
  ASSERT_EQ(v.divs.size(), 1u);
  EXPECT_EQ(v.divs[0].identity, 1);
  EXPECT_EQ(v.divs[0].tn, kDest);
  EXPECT_TRUE(v.divs[0].passed);
  EXPECT_EQ(v.divs[0].verstat, "TN-Validation-Passed");
  EXPECT_EQ(v.divs[0].diverts, 0);

  // The same pair to the wrong target: both fail, and the div says why.
  ASSERT_OK_AND_ASSIGN(v, c->Verify({.identities = {shaken.identity, div.identity},
                                     .from_tn = kOrig, .to_tns = {"12155550199"}}));
  EXPECT_FALSE(v.overall.passed);
  EXPECT_EQ(v.overall.reason, "dest_mismatch");
  ASSERT_EQ(v.divs.size(), 1u);
  EXPECT_FALSE(v.divs[0].passed);
  EXPECT_EQ(v.divs[0].reason, "dest_mismatch");
  // The div alone diverts nothing.
  ASSERT_OK_AND_ASSIGN(v, c->Verify({.identities = {div.identity}, .from_tn = kOrig,
                                     .to_tns = {kForwardedTo}}));
  EXPECT_EQ(v.overall.reason, "div_unlinked");
}

TEST_F(DaemonTest, DivRequestsAreCheckedFieldByField) {
  auto c = Client();
  ASSERT_OK_AND_ASSIGN(client::SignResult shaken, c->Sign(Call()));
  struct Case {
    const char* name;
    client::SignParams params;
    absl::StatusCode code;
    const char* message;
  };
  const auto kInvalid = absl::StatusCode::kInvalidArgument;
  std::vector<Case> cases = {
      {"attest", {.attest = "A", .dest_tns = {kForwardedTo}, .div_original = shaken.identity},
       kInvalid, "attest must be empty with div"},
      {"orig", {.orig_tn = kOrig, .dest_tns = {kForwardedTo}, .div_original = shaken.identity},
       kInvalid, "orig.tn must be empty with div"},
      {"origid",
       {.dest_tns = {kForwardedTo}, .origid = "123e4567-e89b-12d3-a456-426655440000",
        .div_original = shaken.identity},
       kInvalid, "origid must be empty with div"},
      {"no original", {.dest_tns = {kForwardedTo}, .div_hi = "1"}, kInvalid,
       "div.original is required"},
      {"bad original", {.dest_tns = {kForwardedTo}, .div_original = "garbage"}, kInvalid,
       "div.original: "},
      {"no dest", {.div_original = shaken.identity}, kInvalid, "dest.tn"},
      {"bad dest", {.dest_tns = {"12a"}, .div_original = shaken.identity}, kInvalid,
       "dest tn #1"},
      {"bad hi", {.dest_tns = {kForwardedTo}, .div_original = shaken.identity, .div_hi = "1..2"},
       kInvalid, "div.hi must be a History-Info index"},
      {"div tn not a dest",
       {.dest_tns = {kForwardedTo}, .div_original = shaken.identity, .div_tn = kForwardedTo},
       kInvalid, "div.tn 12155550141 is not a dest TN of the original"},
  };
  for (const Case& k : cases) {
    EXPECT_THAT(c->Sign(k.params), StatusIs(k.code, HasSubstr(k.message))) << k.name;
  }
}

}  // namespace
}  // namespace shaken::testing
