#include "stir/identity_header.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "stir/verdict.h"
#include "tests/testing/status_matchers.h"

namespace shaken::stir {
namespace {

using ::shaken::testing::StatusIs;
using ::testing::Optional;

constexpr char kJws[] = "aGVhZGVy.cGF5bG9hZA.c2ln";

TEST(IdentityHeaderTest, BuildsCanonicalFullForm) {
  EXPECT_EQ(BuildIdentityHeader(kJws, "https://cert.example.org/passport.cer"),
            "aGVhZGVy.cGF5bG9hZA.c2ln;info=<https://cert.example.org/passport.cer>;alg=ES256;"
            "ppt=shaken");
}

TEST(IdentityHeaderTest, ParsesCanonicalForm) {
  auto h = ParseIdentityHeader(BuildIdentityHeader(kJws, "https://x.example/c.pem"));
  ASSERT_OK(h);
  EXPECT_EQ(h->digest, kJws);
  EXPECT_THAT(h->info, Optional(std::string("https://x.example/c.pem")));
  EXPECT_THAT(h->alg, Optional(std::string("ES256")));
  EXPECT_THAT(h->ppt, Optional(std::string("shaken")));
}

TEST(IdentityHeaderTest, AcceptsAnyOrderWhitespaceCaseQuotedPptAndUnknownParams) {
  auto h = ParseIdentityHeader(
      std::string("  ") + kJws +
      " ; PPT = \"shaken\" ;foo=bar; Alg=ES256;flag ; INFO = <https://x.example/c.pem>\t");
  ASSERT_OK(h);
  EXPECT_EQ(h->digest, kJws);
  EXPECT_THAT(h->info, Optional(std::string("https://x.example/c.pem")));
  EXPECT_THAT(h->alg, Optional(std::string("ES256")));
  EXPECT_THAT(h->ppt, Optional(std::string("shaken")));
}

TEST(IdentityHeaderTest, MissingInfoIsNotAParseError) {
  auto h = ParseIdentityHeader(std::string(kJws) + ";alg=ES256;ppt=shaken");
  ASSERT_OK(h);
  EXPECT_FALSE(h->info.has_value());
}

TEST(IdentityHeaderTest, InfoMustBeAngleBracketedAbsoluteUri) {
  for (std::string bad : {";info=https://x.example/c", ";info=<>", ";info=<no-scheme>",
                          ";info=<https://x y>", ";info=\"<https://x>\""}) {
    auto h = ParseIdentityHeader(kJws + bad);
    EXPECT_THAT(h, StatusIs(absl::StatusCode::kInvalidArgument)) << bad;
    EXPECT_EQ(ReasonOf(h.status(), Reason::kPassed), Reason::kInfoInvalid) << bad;
  }
}

TEST(IdentityHeaderTest, RejectsMalformedValues) {
  for (std::string bad :
       {std::string(""), std::string(";info=<https://x>"), std::string(kJws) + "=;info=<https://x>",
        std::string(kJws) + " junk;info=<https://x>", std::string(kJws) + ";info=<https://x",
        std::string(kJws) + ";ppt=\"shaken", std::string(kJws) + ";=x",
        std::string(kJws) + ";info=<https://x>;info=<https://y>",
        std::string(kJws) + ";ppt=shaken;ppt=div", std::string(kJws) + ";alg=",
        std::string("a+b/c.d.e;info=<https://x>")}) {
    auto h = ParseIdentityHeader(bad);
    EXPECT_THAT(h, StatusIs(absl::StatusCode::kInvalidArgument)) << bad;
    EXPECT_EQ(ReasonOf(h.status(), Reason::kPassed), Reason::kIdentityMalformed) << bad;
  }
}

TEST(IdentityHeaderTest, EnforcesSizeLimit) {
  std::string big = std::string(kMaxIdentityHeaderBytes, 'a') + ";info=<https://x>";
  EXPECT_EQ(ReasonOf(ParseIdentityHeader(big).status(), Reason::kPassed),
            Reason::kIdentityMalformed);
}

TEST(IdentityHeaderTest, KeepsCompactFormDigest) {
  auto h = ParseIdentityHeader("..c2ln;info=<https://x.example/c>");
  ASSERT_OK(h);
  EXPECT_EQ(h->digest, "..c2ln");
}

}  // namespace
}  // namespace shaken::stir
