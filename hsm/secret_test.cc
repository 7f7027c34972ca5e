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

TEST(PinSourceTest, Env) {
  ::setenv("SHAKEN_TEST_PIN_ENV", "9876", 1);
  ASSERT_OK_AND_ASSIGN(SecretString pin, PinSource::FromEnv("SHAKEN_TEST_PIN_ENV").Read());
  EXPECT_EQ(pin.view(), "9876");
  ::unsetenv("SHAKEN_TEST_PIN_ENV");
  absl::StatusOr<SecretString> gone = PinSource::FromEnv("SHAKEN_TEST_PIN_ENV").Read();
  EXPECT_THAT(gone, StatusIs(absl::StatusCode::kNotFound, HasSubstr("env:SHAKEN_TEST_PIN_ENV")));
}

TEST(SecretStringTest, MoveLeavesSourceEmpty) {
  SecretString a("abc");
  SecretString b(std::move(a));
  EXPECT_TRUE(a.empty());  // NOLINT(bugprone-use-after-move): checking the moved-from state
  EXPECT_EQ(b.view(), "abc");
}

}  // namespace
}  // namespace shaken::hsm
