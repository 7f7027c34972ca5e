#include "daemon/sip/sip_rules.h"

#include "gtest/gtest.h"
#include "stir/tn_auth_list.h"

namespace shaken::daemon::sip {
namespace {

TEST(TnFromUriUser, CutsRfc4904ParametersAndSeparators) {
  EXPECT_EQ(*TnFromUriUser("+12155550121"), "12155550121");
  EXPECT_EQ(*TnFromUriUser("+1-215-555-0121;npdi;rn=+12155550000"), "12155550121");
  EXPECT_EQ(*TnFromUriUser("+1(215)555.0121;isup-oli=62"), "12155550121");
  EXPECT_EQ(*TnFromUriUser("12155550121"), "12155550121");
}

TEST(TnFromUriUser, RefusesWhatIsNotANumber) {
  EXPECT_FALSE(TnFromUriUser("alice").ok());
  EXPECT_FALSE(TnFromUriUser("anonymous").ok());
  EXPECT_FALSE(TnFromUriUser("").ok());
  EXPECT_FALSE(TnFromUriUser(";npdi").ok());
}

TEST(AnswerForRefusal, OverloadIs503WithRetryAfter) {
  for (auto s : {absl::ResourceExhaustedError("q"), absl::UnavailableError("t"),
                 absl::DeadlineExceededError("d")}) {
    SipAnswer a = AnswerForRefusal(s);
    EXPECT_EQ(a.code, 503);
    EXPECT_TRUE(a.retry_after);
  }
  EXPECT_EQ(AnswerForRefusal(absl::PermissionDeniedError("x")).code, 403);
  EXPECT_EQ(AnswerForRefusal(absl::InvalidArgumentError("x")).code, 400);
  EXPECT_EQ(AnswerForRefusal(absl::FailedPreconditionError("x")).code, 503);
  EXPECT_FALSE(AnswerForRefusal(absl::FailedPreconditionError("x")).retry_after);
  EXPECT_EQ(AnswerForRefusal(stir::CheckOrigInScope({{stir::TnAuthEntry::Kind::kOne, "1", 0}},
                                                    "2", "profile x"))
                .code,
            400);
  EXPECT_EQ(AnswerForRefusal(absl::InternalError("x")).code, 500);
}

TEST(StirReason, QuotesTheText) {
  EXPECT_EQ(StirReason(438, "Invalid Identity Header"),
            "STIR;cause=438;text=\"Invalid Identity Header\"");
  EXPECT_EQ(StirReason(436, "a \"b\"\r\nX: y"), "STIR;cause=436;text=\"a \\\"b\\\"  X: y\"");
}

}  // namespace
}  // namespace shaken::daemon::sip
