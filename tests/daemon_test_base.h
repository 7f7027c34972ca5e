// daemon_test_base.h: the fixture the shakend integration tests (daemon_test.cc,
// daemon_wire_test.cc) share: one DaemonEnv (real Daemon, SoftHSM2 token, mTLS, HTTPS x5u server)
// per test suite, clients by name, and the call they sign.
#ifndef SHAKEN_TESTS_DAEMON_TEST_BASE_H_
#define SHAKEN_TESTS_DAEMON_TEST_BASE_H_

#include <memory>
#include <string>

#include "gtest/gtest.h"
#include "shaken/client.h"
#include "tests/daemon_fixture.h"
#include "tests/testing/status_matchers.h"

namespace shaken::testing {

inline constexpr char kOrig[] = "+1 (215) 555-0121";
inline constexpr char kDest[] = "12155550131";

class DaemonTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto env = DaemonEnv::Create();
    ASSERT_TRUE(env.ok()) << env.status();
    env_ = env->release();
  }
  static void TearDownTestSuite() {
    delete env_;
    env_ = nullptr;
  }
  std::unique_ptr<client::Client> Client(const std::string& name = "sbc1.test") {
    auto c = env_->NewClient(name);
    EXPECT_OK(c);
    return c.ok() ? *std::move(c) : nullptr;
  }
  static client::SignParams Call(std::string profile = "", std::string attest = "A") {
    return {.profile = std::move(profile), .attest = std::move(attest), .orig_tn = kOrig,
            .dest_tns = {kDest}};
  }
  static inline DaemonEnv* env_ = nullptr;
};

}  // namespace shaken::testing

#endif  // SHAKEN_TESTS_DAEMON_TEST_BASE_H_
