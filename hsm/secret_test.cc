#include "hsm/secret.h"

#include <cstdio>
#include <cstdlib>
#include <fstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace shaken::hsm {
namespace {

using ::shaken::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

TEST(PinSourceTest, FileTrimsNewline) {
  std::string path = ::testing::TempDir() + "/pin_test_file";
  std::ofstream(path) << "1234\n";
  ASSERT_OK_AND_ASSIGN(SecretString pin, PinSource::FromFile(path).Read());
  EXPECT_EQ(pin.view(), "1234");
  std::remove(path.c_str());
}

TEST(PinSourceTest, MissingAndEmptyFile) {
  EXPECT_THAT(PinSource::FromFile("/nonexistent/pin").Read(), StatusIs(absl::StatusCode::kNotFound));
  std::string path = ::testing::TempDir() + "/pin_test_empty";
  std::ofstream(path) << "\n";
  EXPECT_THAT(PinSource::FromFile(path).Read(), StatusIs(absl::StatusCode::kInvalidArgument));
  std::remove(path.c_str());
}

TEST(PinSourceTest, EnvIsTakenOnceAndLeavesTheEnvironment) {
  ::setenv("SHAKEN_TEST_PIN_ENV", "9876\n", 1);
  ASSERT_OK_AND_ASSIGN(SecretString pin, PinSource::FromEnv("SHAKEN_TEST_PIN_ENV").Read());
  EXPECT_EQ(pin.view(), "9876");
  // Gone from the environment (and from children's); later reads use the value taken.
  EXPECT_EQ(std::getenv("SHAKEN_TEST_PIN_ENV"), nullptr);
  ASSERT_OK_AND_ASSIGN(SecretString again, PinSource::FromEnv("SHAKEN_TEST_PIN_ENV").Read());
  EXPECT_EQ(again.view(), "9876");
  absl::StatusOr<SecretString> never = PinSource::FromEnv("SHAKEN_TEST_PIN_NEVER_SET").Read();
  EXPECT_THAT(never,
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("env:SHAKEN_TEST_PIN_NEVER_SET")));
}

// PinSource::Parse is the one reader of a PIN or passphrase source (daemon configuration,
// shakenctl flags, a PKCS#11 URI's pin-source).
TEST(PinSourceParseTest, AcceptedForms) {
  ASSERT_OK_AND_ASSIGN(PinSource file, PinSource::Parse("file:/etc/shaken/pin"));
  EXPECT_EQ(file.Describe(), "file:/etc/shaken/pin");
  ASSERT_OK_AND_ASSIGN(PinSource file_uri, PinSource::Parse("file:///etc/shaken/pin"));
  EXPECT_EQ(file_uri.Describe(), "file:/etc/shaken/pin");
  ASSERT_OK_AND_ASSIGN(PinSource relative, PinSource::Parse("file:pin.txt"));
  EXPECT_EQ(relative.Describe(), "file:pin.txt");
  ASSERT_OK_AND_ASSIGN(PinSource bare_path, PinSource::Parse("/run/secrets/pin"));
  EXPECT_EQ(bare_path.Describe(), "file:/run/secrets/pin");
  ASSERT_OK_AND_ASSIGN(PinSource env, PinSource::Parse("env:SHAKEN_PIN"));
  EXPECT_EQ(env.Describe(), "env:SHAKEN_PIN");
}

TEST(PinSourceParseTest, RefusedFormsSayWhyAndNeverEchoTheValue) {
  const std::string kMust = "must be file:/path, env:VARIABLE or an absolute path";
  EXPECT_THAT(PinSource::Parse("file:"),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr(kMust), HasSubstr("\"file:\" names no file"))));
  EXPECT_THAT(PinSource::Parse("env:"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("names no variable")));
  EXPECT_THAT(PinSource::Parse("file://"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("must not name a host")));
  EXPECT_THAT(PinSource::Parse("file://host/pin"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("must not name a host")));
  EXPECT_THAT(PinSource::Parse(""), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(kMust)));
  // A relative bare name may be the secret itself typed where its source belongs.
  for (const char* secret : {"1234", "pin.txt", "correct horse battery", "FILE:/p"}) {
    absl::StatusOr<PinSource> r = PinSource::Parse(secret);
    EXPECT_THAT(r, StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(kMust))) << secret;
    EXPECT_THAT(std::string(r.status().message()), Not(HasSubstr(secret)));
  }
}

TEST(PinSourceParseTest, EqualWhenTheyNameTheSameSource) {
  EXPECT_EQ(*PinSource::Parse("file:/etc/pin"), *PinSource::Parse("/etc/pin"));
  EXPECT_EQ(*PinSource::Parse("file:///etc/pin"), PinSource::FromFile("/etc/pin"));
  EXPECT_NE(*PinSource::Parse("file:/etc/pin"), *PinSource::Parse("file:/etc/pin2"));
  EXPECT_NE(*PinSource::Parse("env:PIN"), PinSource::FromFile("PIN"));
  EXPECT_EQ(PinSource::FromValue("1234"), PinSource::FromValue("1234"));
  EXPECT_NE(PinSource::FromValue("1234"), PinSource::FromValue("1235"));
}

TEST(SecretStringTest, MoveLeavesSourceEmpty) {
  SecretString a("abc");
  SecretString b(std::move(a));
  EXPECT_TRUE(a.empty());  // NOLINT(bugprone-use-after-move): checking the moved-from state
  EXPECT_EQ(b.view(), "abc");
}

}  // namespace
}  // namespace shaken::hsm
