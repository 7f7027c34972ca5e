#include "stir/base64url.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace shaken::stir {
namespace {

using ::shaken::testing::IsOkAndHolds;
using ::shaken::testing::StatusIs;
using ::testing::HasSubstr;

TEST(Base64UrlTest, RoundTripsEveryLength) {
  std::string data;
  for (int n = 0; n < 70; ++n) {
    std::string enc = Base64UrlEncode(data);
    EXPECT_EQ(enc.find('='), std::string::npos);
    EXPECT_THAT(Base64UrlDecode(enc), IsOkAndHolds(data)) << n;
    data.push_back(static_cast<char>(n * 37 + 250));
  }
}

TEST(Base64UrlTest, UsesUrlAlphabet) {
  EXPECT_EQ(Base64UrlEncode("\xfb\xff\xbf"), "-_-_");
  EXPECT_THAT(Base64UrlDecode("-_-_"), IsOkAndHolds(std::string("\xfb\xff\xbf")));
}

TEST(Base64UrlTest, RejectsPadding) {
  EXPECT_THAT(Base64UrlDecode("YQ=="), StatusIs(absl::StatusCode::kInvalidArgument,
                                               HasSubstr("padding")));
}

TEST(Base64UrlTest, RejectsStandardAlphabetAndWhitespace) {
  EXPECT_THAT(Base64UrlDecode("+/+/"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(Base64UrlDecode("YW J j"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(Base64UrlDecode(std::string("YW\0j", 4)), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(Base64UrlTest, RejectsImpossibleLength) {
  EXPECT_THAT(Base64UrlDecode("YWJjZ"), StatusIs(absl::StatusCode::kInvalidArgument,
                                                HasSubstr("length")));
}

TEST(Base64UrlTest, RejectsNonZeroTrailingBits) {
  // "YQ" is the only encoding of "a"; "YR" decodes to the same byte with a stray bit set.
  EXPECT_THAT(Base64UrlDecode("YQ"), IsOkAndHolds(std::string("a")));
  EXPECT_THAT(Base64UrlDecode("YR"), StatusIs(absl::StatusCode::kInvalidArgument,
                                             HasSubstr("trailing bits")));
  EXPECT_THAT(Base64UrlDecode("YWI"), IsOkAndHolds(std::string("ab")));
  EXPECT_THAT(Base64UrlDecode("YWJ"), StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace shaken::stir
