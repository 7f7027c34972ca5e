#include "hsm/pkcs11_uri.h"

#include <cstdlib>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace shaken::hsm {
namespace {

using ::shaken::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

TEST(Pkcs11UriTest, ParsesTokenObjectIdType) {
  ASSERT_OK_AND_ASSIGN(Pkcs11Uri uri,
                       Pkcs11Uri::Parse("pkcs11:token=my%20token;object=sp-key;id=%01%02;type=private"));
  EXPECT_EQ(uri.token_label(), "my token");
  EXPECT_EQ(uri.object_label(), "sp-key");
  EXPECT_EQ(uri.object_id(), std::string("\x01\x02", 2));
  EXPECT_EQ(uri.object_class(), CKO_PRIVATE_KEY);
  EXPECT_THAT(uri.redacted(), HasSubstr("object=sp-key"));
  EXPECT_FALSE(uri.slot_id().has_value());
}

TEST(Pkcs11UriTest, MatchesTokenInfo) {
  ASSERT_OK_AND_ASSIGN(Pkcs11Uri uri, Pkcs11Uri::Parse("pkcs11:token=alpha"));
  CK_TOKEN_INFO info{};
  std::memset(info.label, ' ', sizeof(info.label));
  std::memcpy(info.label, "alpha", 5);
  std::memset(info.manufacturerID, ' ', sizeof(info.manufacturerID));
  std::memset(info.model, ' ', sizeof(info.model));
  std::memset(info.serialNumber, ' ', sizeof(info.serialNumber));
  EXPECT_TRUE(uri.MatchesToken(info));
  std::memcpy(info.label, "beta ", 5);
  EXPECT_FALSE(uri.MatchesToken(info));
}

TEST(Pkcs11UriTest, RejectsPinValueUnlessAllowedAndNeverEchoesIt) {
  absl::StatusOr<Pkcs11Uri> bad = Pkcs11Uri::Parse("pkcs11:token=t;object=k?pin-value=s3cr3t");
  EXPECT_THAT(bad, StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("pin-value")));
  EXPECT_THAT(std::string(bad.status().message()), Not(HasSubstr("s3cr3t")));

  ASSERT_OK_AND_ASSIGN(Pkcs11Uri ok, Pkcs11Uri::Parse("pkcs11:token=t;object=k?pin-value=s3cr3t",
                                                      {.allow_pin_value = true}));
  EXPECT_THAT(ok.redacted(), Not(HasSubstr("s3cr3t")));
  ASSERT_OK_AND_ASSIGN(PinSource pin, ok.PinFromUri());
  ASSERT_OK_AND_ASSIGN(SecretString value, pin.Read());
  EXPECT_EQ(value.view(), "s3cr3t");
  EXPECT_EQ(pin.Describe(), "value");
}

// Found while fuzzing the redaction: "pin-value=" inside another attribute's value is text, not a
// PIN. The URI parses without allow_pin_value, keeps its pin-source, and holds no pin-value.
TEST(Pkcs11UriTest, PinValueTextInsideAPinSourcePathIsNotAPin) {
  ASSERT_OK_AND_ASSIGN(Pkcs11Uri uri,
                       Pkcs11Uri::Parse("pkcs11:token=t;object=k?pin-source=file:/run/pin-value=x/pin"));
  ASSERT_OK_AND_ASSIGN(PinSource pin, uri.PinFromUri());
  EXPECT_EQ(pin.Describe(), "file:/run/pin-value=x/pin");
  EXPECT_THAT(uri.redacted(), HasSubstr("pin-source="));
}

TEST(Pkcs11UriTest, PinSourceFile) {
  ASSERT_OK_AND_ASSIGN(Pkcs11Uri uri,
                       Pkcs11Uri::Parse("pkcs11:token=t;object=k?pin-source=file:/etc/shaken/pin"));
  ASSERT_OK_AND_ASSIGN(PinSource pin, uri.PinFromUri());
  EXPECT_EQ(pin.Describe(), "file:/etc/shaken/pin");
}

TEST(Pkcs11UriTest, PinSourceIsReadByPinSourceParse) {
  ASSERT_OK_AND_ASSIGN(Pkcs11Uri env,
                       Pkcs11Uri::Parse("pkcs11:token=t;object=k?pin-source=env:SHAKEN_PIN"));
  ASSERT_OK_AND_ASSIGN(PinSource from_env, env.PinFromUri());
  EXPECT_EQ(from_env.Describe(), "env:SHAKEN_PIN");
  ASSERT_OK_AND_ASSIGN(Pkcs11Uri bare, Pkcs11Uri::Parse("pkcs11:token=t;object=k?pin-source=file:"));
  EXPECT_THAT(bare.PinFromUri(),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("pin-source must be file:/path"), HasSubstr("names no file"))));
}

TEST(Pkcs11UriTest, NoPinIsNotFound) {
  ASSERT_OK_AND_ASSIGN(Pkcs11Uri uri, Pkcs11Uri::Parse("pkcs11:token=t;object=k"));
  EXPECT_THAT(uri.PinFromUri(), StatusIs(absl::StatusCode::kNotFound));
}

TEST(Pkcs11UriTest, RejectsGarbage) {
  EXPECT_THAT(Pkcs11Uri::Parse("http://example.com"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(Pkcs11Uri::Parse("pkcs11:token=%zz"), StatusIs(absl::StatusCode::kInvalidArgument));
  EXPECT_THAT(Pkcs11Uri::Parse("pkcs11:bogus=1"), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(Pkcs11UriTest, SlotIdAndModulePath) {
  ASSERT_OK_AND_ASSIGN(Pkcs11Uri uri,
                       Pkcs11Uri::Parse("pkcs11:slot-id=7;object=k?module-path=/usr/lib/x.so"));
  EXPECT_EQ(uri.slot_id(), CK_SLOT_ID{7});
  EXPECT_EQ(uri.module_path(), "/usr/lib/x.so");
}

}  // namespace
}  // namespace shaken::hsm
