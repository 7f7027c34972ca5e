#include "hsm/ck.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace shaken::hsm::internal {
namespace {

using ::shaken::testing::StatusIs;
using ::testing::HasSubstr;

TEST(CkTest, MapsCodesAndNamesTheCall) {
  absl::Status st = Check(CKR_PIN_INCORRECT, "C_Login", "pkcs11:token=t");
  EXPECT_THAT(st, StatusIs(absl::StatusCode::kPermissionDenied,
                           HasSubstr("C_Login: CKR_PIN_INCORRECT (0xa0) [pkcs11:token=t]")));
  EXPECT_EQ(CkrOf(st), CKR_PIN_INCORRECT);
  EXPECT_THAT(Check(CKR_DEVICE_REMOVED, "C_Sign", ""), StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_THAT(Check(CKR_KEY_HANDLE_INVALID, "C_SignInit", ""), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(Check(CKR_USER_NOT_LOGGED_IN, "C_Sign", ""),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_OK(Check(CKR_OK, "C_Sign", ""));
  EXPECT_EQ(CkrOf(absl::OkStatus()), std::nullopt);
}

TEST(CkTest, RecoverableListIsIssue3) {
  for (CK_RV rv : {CKR_SESSION_HANDLE_INVALID, CKR_SESSION_CLOSED, CKR_DEVICE_REMOVED,
                   CKR_TOKEN_NOT_PRESENT, CKR_USER_NOT_LOGGED_IN, CKR_DEVICE_ERROR,
                   CKR_OBJECT_HANDLE_INVALID, CKR_KEY_HANDLE_INVALID,
                   CKR_KEY_FUNCTION_NOT_PERMITTED}) {
    EXPECT_TRUE(IsRecoverable(rv)) << CkrName(rv);
  }
  EXPECT_FALSE(IsRecoverable(CKR_PIN_INCORRECT));
  EXPECT_FALSE(IsRecoverable(CKR_MECHANISM_INVALID));
}

}  // namespace
}  // namespace shaken::hsm::internal
