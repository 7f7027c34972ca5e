// div (RFC 8946) against an implementation shakend did not write: Kamailio's secsipid module
// (libsecsipid), configured by tests/kamailio-secsipid-div.cfg as a call-forwarding server.
// Kamailio -> shakend: Kamailio answers an INVITE carrying shakend's shaken PASSporT with a 302
// whose ppt=div Identity it signed with secsipid_sign; shakend verifies the pair and links the
// chain. shakend -> Kamailio: secsipid_check accepts shakend's shaken PASSporTs but refuses any
// div, its own included (libsecsipid checks ppt=shaken only): recorded in docs/standards.md.
#include <memory>
#include <string>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "shaken/client.h"
#include "tests/daemon_fixture.h"
#include "tests/daemon_test_base.h"
#include "tests/testing/kamailio.h"
#include "tests/testing/sip_messages.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/subprocess.h"

namespace shaken::testing {
namespace {

using ::testing::HasSubstr;

constexpr char kForwardTo[] = "12155550141";
constexpr char kOrigDigits[] = "12155550121";

class KamailioDivTest : public DaemonTest {
 protected:
  void SetUp() override {
    // Kamailio's checks need the file profile's public key alone.
    pub_path_ = env_->dir() + "/file-pub.pem";
    RunResult pub = RunCommand({"openssl", "x509", "-in", env_->FileChainPath(), "-noout",
                                "-pubkey", "-out", pub_path_},
                               {.timeout = absl::Seconds(10)});
    ASSERT_EQ(pub.exit_code, 0) << pub.output();
    auto k = Kamailio::Start(std::string(SHAKEN_SOURCE_DIR) + "/tests/kamailio-secsipid-div.cfg",
                             env_->dir(),
                             {{"KEY_PATH", env_->FileKeyPath()},
                              {"PUB_PATH", pub_path_},
                              {"X5U", env_->file_x5u()},
                              {"FORWARD_TO", kForwardTo}});
    ASSERT_OK(k);
    kamailio_ = *std::move(k);
    port_ = kamailio_->port();
  }
  void TearDown() override {
    if (kamailio_ != nullptr) {
      EXPECT_TRUE(kamailio_->Stop());
    }
  }

  // Request sends one request (INVITE or OPTIONS) with `extra` header lines to Kamailio and
  // returns its answer.
  std::string Request(const std::string& method, const std::string& extra) {
    static int n = 0;
    const std::string id = absl::StrCat("kdiv-", ++n, "-", absl::ToUnixNanos(absl::Now()));
    const std::string uri = absl::StrCat("sip:", kDest, "@127.0.0.1:", port_);
    return UdpRequest(
        port_,
        absl::StrCat(method, " ", uri,
                     " SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:[local_port];branch=z9hG4bK-", id,
                     "\r\nMax-Forwards: 70\r\nFrom: <sip:", kOrigDigits, "@127.0.0.1>;tag=", id,
                     "\r\nTo: <", uri, ">\r\nCall-ID: ", id, "@test\r\nCSeq: 1 ", method, "\r\n",
                     extra, "Content-Length: 0\r\n\r\n"),
        absl::Seconds(5));
  }

  std::string pub_path_;
  int port_ = 0;
  std::unique_ptr<Kamailio> kamailio_;
};

TEST_F(KamailioDivTest, ShakendLinksADivThatKamailioSigned) {
  auto c = Client();
  ASSERT_OK_AND_ASSIGN(client::SignResult shaken, c->Sign(Call()));
  const std::string answer =
      Request("INVITE", absl::StrCat("Identity: ", shaken.identity, "\r\n"));
  ASSERT_THAT(answer, HasSubstr("SIP/2.0 302")) << answer << kamailio_->Log();
  EXPECT_THAT(Header(answer, "Contact"), HasSubstr(absl::StrCat("<sip:", kForwardTo, "@")));
  const std::string div = Header(answer, "Identity");
  ASSERT_THAT(div, HasSubstr(";ppt=div")) << answer;

  ASSERT_OK_AND_ASSIGN(client::VerifyResult v,
                       c->Verify({.identities = {shaken.identity, div}, .from_tn = kOrig,
                                  .to_tns = {kForwardTo}}));
  EXPECT_TRUE(v.overall.passed) << v.overall.reason << ": " << v.overall.detail;
  ASSERT_EQ(v.identities.size(), 2u);
  EXPECT_TRUE(v.identities[1].passed) << v.identities[1].reason << ": " << v.identities[1].detail;
  EXPECT_EQ(v.identities[1].ppt, "div");
  EXPECT_EQ(v.identities[1].div_tn, kDest);
  EXPECT_EQ(v.identities[1].diverts, 0);
  EXPECT_EQ(v.identities[1].certificate.spc, "123A");  // the file profile's certificate
  ASSERT_EQ(v.divs.size(), 1u);
  EXPECT_TRUE(v.divs[0].passed) << v.divs[0].reason;
  EXPECT_EQ(v.divs[0].verstat, "TN-Validation-Passed");

  // Kamailio's div claims a diversion from kDest: to any other target the chain does not hold.
  ASSERT_OK_AND_ASSIGN(v, c->Verify({.identities = {shaken.identity, div}, .from_tn = kOrig,
                                     .to_tns = {"12155550199"}}));
  EXPECT_FALSE(v.overall.passed);
  EXPECT_EQ(v.overall.reason, "dest_mismatch");
}

TEST_F(KamailioDivTest, SecsipidCheckAcceptsShakendsShakenButNoDiv) {
  auto c = Client();
  ASSERT_OK_AND_ASSIGN(client::SignResult shaken, c->Sign(Call("file", "C")));
  std::string answer = Request("OPTIONS", absl::StrCat("Identity: ", shaken.identity, "\r\n"));
  EXPECT_EQ(Header(answer, "X-Secsipid-Check"), "1") << answer << kamailio_->Log();

  ASSERT_OK_AND_ASSIGN(client::SignResult div,
                       c->Sign({.profile = "file", .dest_tns = {kForwardTo},
                                .div_original = shaken.identity}));
  answer = Request("OPTIONS", absl::StrCat("Identity: ", div.identity, "\r\n"));
  const std::string rc = Header(answer, "X-Secsipid-Check");
  ASSERT_FALSE(rc.empty()) << answer;
  EXPECT_NE(rc, "1") << "libsecsipid now accepts ppt=div: update docs/standards.md";
  // Its own div fares no better: the refusal is of the PASSporT type, not of shakend's token.
  const std::string own = Header(Request("INVITE", absl::StrCat("Identity: ", shaken.identity,
                                                                 "\r\n")),
                                 "Identity");
  ASSERT_THAT(own, HasSubstr(";ppt=div"));
  EXPECT_EQ(Header(Request("OPTIONS", absl::StrCat("Identity: ", own, "\r\n")), "X-Secsipid-Check"),
            rc);
}

}  // namespace
}  // namespace shaken::testing
