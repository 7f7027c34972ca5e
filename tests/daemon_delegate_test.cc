// Delegate certificates through shakend (RFC 9060; ATIS-1000092): a profile whose certificate is a
// delegate certificate (issued by an SP-CA under the STI-CA) signs the numbers of its TNAuthList
// only. The refusal is FAILED_PRECONDITION over gRPC and SVC4005 orig.tn over REST, both from
// ServiceCore; what it signs verifies through the daemon's own Verify (DL-2, DL-3).
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "shaken/client.h"
#include "tests/daemon_fixture.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/subprocess.h"

namespace shaken::testing {
namespace {

using ::testing::HasSubstr;

class DelegateDaemonTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto env = DaemonEnv::Create({.listen_extra_yaml = "  rest:\n    address: 127.0.0.1:0\n",
                                  .delegate_profile = true});
    ASSERT_TRUE(env.ok()) << env.status();
    env_ = env->release();
  }
  static void TearDownTestSuite() {
    delete env_;
    env_ = nullptr;
  }
  std::unique_ptr<client::Client> Client() {
    auto c = env_->NewClient("sbc1.test");
    EXPECT_OK(c);
    return c.ok() ? *std::move(c) : nullptr;
  }
  static client::SignParams Call(std::string orig) {
    return {.profile = "delegate", .attest = "A", .orig_tn = std::move(orig),
            .dest_tns = {"12155550131"}};
  }

  static inline DaemonEnv* env_ = nullptr;
};

TEST_F(DelegateDaemonTest, SignsItsNumbersAndTheChainVerifies) {
  auto c = Client();
  for (const char* orig : {"+1 215 555 0120", "12155550129", "12155551000"}) {
    ASSERT_OK_AND_ASSIGN(client::SignResult s, c->Sign(Call(orig)));
    EXPECT_EQ(s.profile, "delegate");
    ASSERT_OK_AND_ASSIGN(client::VerifyResult v,
                         c->Verify({.identities = {s.identity}, .from_tn = orig,
                                    .to_tns = {"12155550131"}}));
    EXPECT_TRUE(v.overall.passed) << orig << ": " << v.overall.reason << ": " << v.overall.detail;
    EXPECT_EQ(v.overall.verstat, "TN-Validation-Passed");
  }
}

TEST_F(DelegateDaemonTest, RefusesAnOrigOutsideItsTnAuthListOverGrpc) {
  auto c = Client();
  for (const char* orig : {"12155550119", "12155550130", "12155550140", "19995550123"}) {
    absl::StatusOr<client::SignResult> s = c->Sign(Call(orig));
    EXPECT_THAT(s, StatusIs(absl::StatusCode::kFailedPrecondition,
                            HasSubstr(absl::StrCat(
                                "is outside the delegate certificate's TNAuthList "
                                "(12155550120-12155550129, 12155551000) of profile delegate"))))
        << orig;
  }
  EXPECT_THAT(c->Sign(Call("12155550199")),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("orig 12155550199 is outside the delegate certificate's")));
  // The other profiles (SPC certificates) sign any orig, as before.
  EXPECT_OK(c->Sign({.attest = "A", .orig_tn = "19995550123", .dest_tns = {"12155550131"}}));
}

TEST_F(DelegateDaemonTest, RefusesAnOrigOutsideItsTnAuthListOverRest) {
  auto post = [](const std::string& orig) {
    const std::string body =
        nlohmann::json{{"signingRequest",
                        {{"attest", "A"},
                         {"orig", {{"tn", orig}}},
                         {"dest", {{"tn", {"12155550131"}}}},
                         {"iat", absl::ToUnixSeconds(absl::Now())},
                         {"origid", "123e4567-e89b-12d3-a456-426655440000"},
                         {"profileId", "delegate"}}}}
            .dump();
    const int port = env_->daemon().rest_port();
    return RunCommand(
        {"curl", "-sS", "--http1.1", "--max-time", "10", "--cacert", env_->TlsCaFile(),
         "--resolve", absl::StrCat("localhost:", port, ":127.0.0.1"), "--cert",
         env_->ClientCertFile("sbc1.test"), "--key", env_->ClientKeyFile("sbc1.test"), "-H",
         "Content-Type: application/json", "-w", "\n%{http_code}", "--data-binary", body,
         absl::StrCat("https://localhost:", port, "/stir/v1/signing")},
        {.timeout = absl::Seconds(20)});
  };
  RunResult ok = post("12155550121");
  EXPECT_THAT(ok.out, HasSubstr("\n200")) << ok.out << ok.err;
  EXPECT_THAT(ok.out, HasSubstr("identity"));
  RunResult refused = post("12155550199");
  EXPECT_THAT(refused.out, HasSubstr("\n400")) << refused.out << refused.err;
  EXPECT_THAT(refused.out, HasSubstr("SVC4005"));
  EXPECT_THAT(refused.out, HasSubstr("orig.tn"));
  EXPECT_THAT(refused.out, HasSubstr("outside the delegate certificate's TNAuthList"));
}

}  // namespace
}  // namespace shaken::testing
