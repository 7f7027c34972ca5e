#include "stir/tn.h"

#include <set>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace shaken::stir {
namespace {

using ::shaken::testing::IsOkAndHolds;
using ::shaken::testing::StatusIs;
using ::testing::HasSubstr;

TEST(CanonicalizeTnTest, StripsSeparatorsAndLeadingPlus) {
  EXPECT_THAT(CanonicalizeTn("+1 (215) 555-0121"), IsOkAndHolds(std::string("12155550121")));
  EXPECT_THAT(CanonicalizeTn("1.215.555.0121"), IsOkAndHolds(std::string("12155550121")));
  EXPECT_THAT(CanonicalizeTn("12155550121"), IsOkAndHolds(std::string("12155550121")));
  EXPECT_THAT(CanonicalizeTn("*67#"), IsOkAndHolds(std::string("*67#")));
}

TEST(CanonicalizeTnTest, RejectsOtherCharacters) {
  EXPECT_THAT(CanonicalizeTn("1215555012a"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("'a' at position 10")));
  EXPECT_THAT(CanonicalizeTn("1+2155550121"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(CanonicalizeTn("++12155550121"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(CanonicalizeTn("sip:12155550121@x"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(CanonicalizeTn(std::string("1\0002", 3)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("0x0")));
}

TEST(CanonicalizeTnTest, RejectsEmptyAndOverlong) {
  EXPECT_THAT(CanonicalizeTn(""), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(CanonicalizeTn("+ -()"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(CanonicalizeTn(std::string(kMaxTnLength, '1')).status(), ::shaken::testing::IsOk());
  EXPECT_THAT(CanonicalizeTn(std::string(kMaxTnLength + 1, '1')),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("longer")));
}

TEST(CanonicalTnTest, Recognizes) {
  EXPECT_TRUE(IsCanonicalTn("12155550121"));
  EXPECT_FALSE(IsCanonicalTn("+12155550121"));
  EXPECT_FALSE(IsCanonicalTn(""));
}

TEST(UuidTest, Format) {
  EXPECT_TRUE(IsUuid("123e4567-e89b-12d3-a456-426655440000"));
  EXPECT_TRUE(IsUuid("123E4567-E89B-12D3-A456-426655440000"));
  EXPECT_FALSE(IsUuid("123e4567e89b12d3a456426655440000"));
  EXPECT_FALSE(IsUuid("123e4567-e89b-12d3-a456-42665544000g"));
  EXPECT_FALSE(IsUuid("{123e4567-e89b-12d3-a456-426655440000}"));
}

TEST(UuidTest, NewV4IsWellFormedAndUnique) {
  std::set<std::string> seen;
  for (int i = 0; i < 100; ++i) {
    std::string u = NewUuidV4();
    EXPECT_TRUE(IsUuid(u)) << u;
    EXPECT_EQ(u[14], '4');
    EXPECT_NE(std::string("89ab").find(u[19]), std::string::npos);
    seen.insert(u);
  }
  EXPECT_EQ(seen.size(), 100u);
}

}  // namespace
}  // namespace shaken::stir
