#include "stir/json.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace shaken::stir {
namespace {

using ::shaken::testing::IsOk;
using ::shaken::testing::StatusIs;
using ::testing::HasSubstr;

std::string Canonical(const Json& j) {
  std::string out;
  EXPECT_OK(AppendCanonicalJson(j, &out));
  return out;
}

TEST(CanonicalJsonTest, SortsKeysByCodePointRecursively) {
  Json j = Json::parse(R"({"z":1,"a":{"y":[3,{"b":true,"a":null}],"B":"x"},"é":2,"Z":0})");
  EXPECT_EQ(Canonical(j), R"({"Z":0,"a":{"B":"x","y":[3,{"a":null,"b":true}]},"z":1,"é":2})");
}

TEST(CanonicalJsonTest, MinimalEscaping) {
  Json j = {{"s", "a/b\"c\\d\n\x01\xc3\xa9"}};
  // '/' and non-ASCII are not escaped (docs/standards.md P23); '"', '\\' and controls are.
  EXPECT_EQ(Canonical(j), "{\"s\":\"a/b\\\"c\\\\d\\n\\u0001\xc3\xa9\"}");
}

TEST(CanonicalJsonTest, RejectsFloatsAndBadUtf8) {
  std::string out;
  EXPECT_THAT(AppendCanonicalJson(Json{{"iat", 1.5}}, &out),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("integers")));
  EXPECT_THAT(AppendCanonicalJson(Json{{"s", std::string("\xff")}}, &out),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(CanonicalJsonTest, NegativeAndLargeIntegers) {
  EXPECT_EQ(Canonical(Json{{"a", -5}, {"b", uint64_t{18446744073709551615u}}}),
            R"({"a":-5,"b":18446744073709551615})");
}

TEST(Utf8Test, Validity) {
  EXPECT_TRUE(IsValidUtf8("plain"));
  EXPECT_TRUE(IsValidUtf8("\xe2\x82\xac\xf0\x9f\x98\x80"));
  EXPECT_FALSE(IsValidUtf8("\xc0\xaf"));          // overlong '/'
  EXPECT_FALSE(IsValidUtf8("\xed\xa0\x80"));      // surrogate
  EXPECT_FALSE(IsValidUtf8("\xf4\x90\x80\x80"));  // > U+10FFFF
  EXPECT_FALSE(IsValidUtf8("\xe2\x82"));          // truncated
}

TEST(StrictJsonTest, AcceptsObjects) {
  EXPECT_THAT(ParseStrictJson(R"({"a":{"b":[1,2]},"c":"d"})"), IsOk());
}

TEST(StrictJsonTest, RejectsDuplicateNamesAtAnyDepth) {
  EXPECT_THAT(ParseStrictJson(R"({"a":1,"a":2})"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("duplicate")));
  EXPECT_THAT(ParseStrictJson(R"({"o":{"tn":"1","tn":"2"}})"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("duplicate")));
  // The same name in sibling objects is fine.
  EXPECT_THAT(ParseStrictJson(R"({"a":{"x":1},"b":{"x":1}})"), IsOk());
}

TEST(StrictJsonTest, RejectsNonObjectsTrailingDataAndComments) {
  EXPECT_THAT(ParseStrictJson("[1]"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseStrictJson("\"s\""), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseStrictJson("{} {}"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseStrictJson("{/*c*/}"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseStrictJson("{\"a\":1,}"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(ParseStrictJson(""), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(StrictJsonTest, RejectsInvalidUtf8) {
  EXPECT_THAT(ParseStrictJson("{\"a\":\"\xff\"}"), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(StrictJsonTest, EnforcesDepthAndSize) {
  std::string deep;
  for (int i = 0; i < 40; ++i) deep += "{\"a\":";
  deep += "1";
  for (int i = 0; i < 40; ++i) deep += "}";
  EXPECT_THAT(ParseStrictJson(deep), StatusIs(absl::StatusCode::kInvalidArgument,
                                              HasSubstr("deeper")));
  std::string arrays = "{\"a\":" + std::string(40, '[') + std::string(40, ']') + "}";
  EXPECT_THAT(ParseStrictJson(arrays), StatusIs(absl::StatusCode::kInvalidArgument));
  std::string big = "{\"a\":\"" + std::string(5000, 'x') + "\"}";
  EXPECT_THAT(ParseStrictJson(big), StatusIs(absl::StatusCode::kInvalidArgument,
                                             HasSubstr("exceeds")));
  EXPECT_THAT(ParseStrictJson(big, JsonLimits{.max_bytes = 8192}), IsOk());
}

}  // namespace
}  // namespace shaken::stir
