// listen.sip when things go wrong, against a real shakend whose token signs through the
// fault-injecting PKCS#11 module (SoftHSM2 behind it): the token gone answers INVITEs 503 with
// Retry-After and OPTIONS 503 (NOT_SERVING) until it is back; a full signing queue answers 503
// with Retry-After; no 5xx carries an Identity; verify_failure: decline answers a failed
// verification 603 with the Reason; a CANCEL gets 487 and the late signature is dropped; a stale
// Date is not signed. The SBC is a UDP socket here: the cases need many distinct
// INVITEs at once and exact timing, which SIPp scenarios do not give.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <map>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/daemon_fixture.h"
#include "tests/testing/fault_pkcs11_control.h"
#include "tests/testing/status_matchers.h"

namespace shaken::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kNoFaults[] =
    "sign_delay_us=0\nsign_init_delay_us=0\nopen_session_delay_us=0\nlogin_delay_us=0\n"
    "sign_fail_every=0\ntoken_gone=0\n";

// Sbc is a SIP client on a UDP socket of 127.0.0.1.
class Sbc {
 public:
  explicit Sbc(int server_port) {
    fd_ = socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in local{};
    local.sin_family = AF_INET;
    inet_pton(AF_INET, "127.0.0.1", &local.sin_addr);
    bind(fd_, reinterpret_cast<sockaddr*>(&local), sizeof local);
    socklen_t len = sizeof local;
    getsockname(fd_, reinterpret_cast<sockaddr*>(&local), &len);
    port_ = ntohs(local.sin_port);
    to_ = local;
    to_.sin_port = htons(static_cast<uint16_t>(server_port));
  }
  ~Sbc() { close(fd_); }

  // Send sends a request: an INVITE (with `extra` header lines, each ending in CRLF) or OPTIONS,
  // Call-ID `id`.
  void Send(const std::string& method, const std::string& id, const std::string& extra = "") {
    const std::string msg = absl::StrCat(
        method, " sip:+12155550131@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.1:", port_,
        ";branch=z9hG4bK-", id, "\r\nMax-Forwards: 70\r\nFrom: <sip:+12155550121@127.0.0.1>;tag=",
        id, "\r\nTo: <sip:+12155550131@127.0.0.1>\r\nCall-ID: ", id, "\r\nCSeq: 1 ", method,
        "\r\n", extra, "Content-Length: 0\r\n\r\n");
    sendto(fd_, msg.data(), msg.size(), 0, reinterpret_cast<const sockaddr*>(&to_), sizeof to_);
  }

  // Finals collects final answers by Call-ID until `n` have come or `wait` passed.
  std::map<std::string, std::string> Finals(size_t n, absl::Duration wait) {
    std::map<std::string, std::string> out;
    const absl::Time until = absl::Now() + wait;
    for (int i = 0; i < 10000 && out.size() < n && absl::Now() < until; ++i) {
      pollfd p{fd_, POLLIN, 0};
      if (poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(until - absl::Now()))) <= 0) {
        break;
      }
      char buf[65536];
      const ssize_t got = recv(fd_, buf, sizeof buf, 0);
      if (got <= 0) break;
      std::string m(buf, static_cast<size_t>(got));
      if (absl::StartsWith(m, "SIP/2.0 1")) continue;
      const size_t c = m.find("\r\nCall-ID: ");
      if (c == std::string::npos) continue;
      out.emplace(m.substr(c + 11, m.find("\r\n", c + 11) - c - 11), m);
    }
    return out;
  }

 private:
  int fd_ = -1;
  int port_ = 0;
  sockaddr_in to_{};
};

class SipHealthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // The module instance is the process's: reset it before the daemon opens its sessions.
    if (absl::StatusOr<FaultP11> f = FaultP11::Attach(SHAKEN_FAULT_P11_MODULE); f.ok()) {
      ASSERT_OK(f->Configure(kNoFaults));
    }
    DaemonEnvOptions options;
    options.pool_size = 1;
    options.pkcs11_module = SHAKEN_FAULT_P11_MODULE;
    options.pkcs11_extra_yaml = "  queue_limit: 2\n  max_wait: 5s\n";
    options.listen_extra_yaml =
        "  sip: {udp: 127.0.0.1:0, verify_failure: decline, retry_after: 7s}\n";
    options.clients_extra_yaml = "  - {identity: sbc-sip, methods: [Sign, Verify], "
                                 "profiles: [token], sources: [127.0.0.1/32]}\n";
    ASSERT_OK_AND_ASSIGN(env_, DaemonEnv::Create(options));
    port_ = env_->daemon().sip_udp_port();
    ASSERT_OK_AND_ASSIGN(fault_, FaultP11::Attach(SHAKEN_FAULT_P11_MODULE));
  }
  void TearDown() override { EXPECT_OK(fault_.Configure(kNoFaults)); }

  FaultP11 fault_;
  std::unique_ptr<DaemonEnv> env_;
  int port_ = 0;
};

constexpr char kAttest[] = "Attestation-Info: A\r\n";

TEST_F(SipHealthTest, TokenGoneIs503ThenOptionsFollowsHealthUntilItIsBack) {
  Sbc sbc(port_);
  sbc.Send("INVITE", "before", kAttest);
  EXPECT_THAT(sbc.Finals(1, absl::Seconds(5))["before"], HasSubstr("SIP/2.0 302"));

  ASSERT_OK(fault_.Configure("token_gone=1"));
  sbc.Send("INVITE", "gone", kAttest);
  const std::string gone = sbc.Finals(1, absl::Seconds(10))["gone"];
  EXPECT_THAT(gone, HasSubstr("SIP/2.0 503"));
  EXPECT_THAT(gone, HasSubstr("\r\nRetry-After: 7"));
  EXPECT_THAT(gone, Not(HasSubstr("Identity:")));

  // The profile is DOWN: OPTIONS, the SBC's heartbeat, answers 503 (its circuit breaker opens).
  bool not_serving = false;
  for (int i = 0; i < 100 && !not_serving; ++i) {
    const std::string id = absl::StrCat("hb", i);
    sbc.Send("OPTIONS", id);
    not_serving = absl::StartsWith(sbc.Finals(1, absl::Seconds(2))[id], "SIP/2.0 503");
    if (!not_serving) absl::SleepFor(absl::Milliseconds(50));
  }
  EXPECT_TRUE(not_serving);

  ASSERT_OK(fault_.Configure("token_gone=0"));
  bool serving = false;
  for (int i = 0; i < 200 && !serving; ++i) {
    const std::string id = absl::StrCat("back", i);
    sbc.Send("OPTIONS", id);
    serving = absl::StartsWith(sbc.Finals(1, absl::Seconds(2))[id], "SIP/2.0 200");
    if (!serving) absl::SleepFor(absl::Milliseconds(50));
  }
  EXPECT_TRUE(serving);
  bool signs = false;
  for (int i = 0; i < 100 && !signs; ++i) {
    const std::string id = absl::StrCat("after", i);
    sbc.Send("INVITE", id, kAttest);
    signs = absl::StartsWith(sbc.Finals(1, absl::Seconds(5))[id], "SIP/2.0 302");
    if (!signs) absl::SleepFor(absl::Milliseconds(50));
  }
  EXPECT_TRUE(signs);
}

TEST_F(SipHealthTest, FullSigningQueueIs503WithRetryAfterAndNeverAnIdentity) {
  // One session signing for 300 ms each, two may wait: of twelve INVITEs at once, most are
  // refused at once (RESOURCE_EXHAUSTED in the core).
  ASSERT_OK(fault_.Configure("sign_delay_us=300000"));
  Sbc sbc(port_);
  for (int i = 0; i < 12; ++i) sbc.Send("INVITE", absl::StrCat("burst", i), kAttest);
  std::map<std::string, std::string> finals = sbc.Finals(12, absl::Seconds(15));
  EXPECT_EQ(finals.size(), 12u);
  int redirected = 0, overloaded = 0;
  for (const auto& [id, answer] : finals) {
    if (absl::StartsWith(answer, "SIP/2.0 302")) {
      ++redirected;
      EXPECT_THAT(answer, HasSubstr("\r\nIdentity: "));
    } else {
      ++overloaded;
      EXPECT_THAT(answer, HasSubstr("SIP/2.0 503"));
      EXPECT_THAT(answer, HasSubstr("\r\nRetry-After: 7"));
      EXPECT_THAT(answer, Not(HasSubstr("Identity:")));
    }
  }
  EXPECT_GE(redirected, 1);
  EXPECT_GE(overloaded, 6);
}

TEST_F(SipHealthTest, DeclinePolicyAnswersAFailedVerification603WithTheReason) {
  auto client = env_->NewClient("sbc1.test");
  ASSERT_OK(client);
  auto signed_call =
      (*client)->Sign({.attest = "A", .orig_tn = "12155550121", .dest_tns = {"12155550131"}});
  ASSERT_OK(signed_call);
  std::string identity = signed_call->identity;
  const size_t sig = identity.find('.', identity.find('.') + 1) + 5;
  identity[sig] = identity[sig] == 'A' ? 'B' : 'A';
  Sbc sbc(port_);
  sbc.Send("INVITE", "tampered", absl::StrCat("Identity: ", identity, "\r\n"));
  const std::string answer = sbc.Finals(1, absl::Seconds(10))["tampered"];
  EXPECT_THAT(answer, HasSubstr("SIP/2.0 603 Decline"));
  EXPECT_THAT(answer, HasSubstr("\r\nReason: STIR;cause=438;text=\"Invalid Identity Header\""));
  EXPECT_THAT(answer, HasSubstr(";verstat=TN-Validation-Failed>"));
  // A valid one still gets its 302.
  sbc.Send("INVITE", "valid", absl::StrCat("Identity: ", signed_call->identity, "\r\n"));
  EXPECT_THAT(sbc.Finals(1, absl::Seconds(10))["valid"], HasSubstr("SIP/2.0 302"));
}

TEST_F(SipHealthTest, CancelOfAnInviteBeingSignedIs487AndTheLateSignatureIsDropped) {
  ASSERT_OK(fault_.Configure("sign_delay_us=400000"));
  Sbc sbc(port_);
  sbc.Send("INVITE", "cancelled", kAttest);
  absl::SleepFor(absl::Milliseconds(100));
  sbc.Send("CANCEL", "cancelled");  // same branch and Call-ID: cancels that INVITE
  // Both answers share the Call-ID; collect everything for a second and sort by CSeq method.
  std::vector<std::string> answers;
  for (int i = 0; i < 4; ++i) {
    for (auto& [id, m] : sbc.Finals(1, absl::Milliseconds(300))) answers.push_back(m);
  }
  bool cancel_ok = false, invite_487 = false;
  for (const std::string& a : answers) {
    if (absl::StrContains(a, "CSeq: 1 CANCEL")) cancel_ok |= absl::StartsWith(a, "SIP/2.0 200");
    if (absl::StrContains(a, "CSeq: 1 INVITE")) {
      invite_487 |= absl::StartsWith(a, "SIP/2.0 487");
      EXPECT_THAT(a, Not(HasSubstr("Identity:")));  // never the late 302
    }
  }
  EXPECT_TRUE(cancel_ok);
  EXPECT_TRUE(invite_487);
  // The server goes on.
  ASSERT_OK(fault_.Configure("sign_delay_us=0"));
  sbc.Send("INVITE", "next", kAttest);
  EXPECT_THAT(sbc.Finals(1, absl::Seconds(5))["next"], HasSubstr("SIP/2.0 302"));
}

TEST_F(SipHealthTest, StaleDateIsNotSigned) {
  // RFC 8224 §6.1: no PASSporT for a request whose Date is outside the freshness policy.
  Sbc sbc(port_);
  sbc.Send("INVITE", "stale", absl::StrCat(kAttest, "Date: Sat, 13 Nov 2010 23:29:00 GMT\r\n"));
  const std::string answer = sbc.Finals(1, absl::Seconds(5))["stale"];
  EXPECT_THAT(answer, HasSubstr("SIP/2.0 403 Stale Date"));
  EXPECT_THAT(answer, Not(HasSubstr("Identity:")));
  // A current Date is signed, its time as the PASSporT's iat.
  const std::string now = absl::FormatTime("%a, %d %b %Y %H:%M:%S GMT", absl::Now(),
                                           absl::UTCTimeZone());
  sbc.Send("INVITE", "fresh", absl::StrCat(kAttest, "Date: ", now, "\r\n"));
  EXPECT_THAT(sbc.Finals(1, absl::Seconds(5))["fresh"], HasSubstr("SIP/2.0 302"));

  // SIGHUP with max_iat_skew: 2h: a Date an hour old is signed from then on.
  const std::string hour_ago = absl::FormatTime("%a, %d %b %Y %H:%M:%S GMT",
                                                absl::Now() - absl::Hours(1), absl::UTCTimeZone());
  sbc.Send("INVITE", "hour-old", absl::StrCat(kAttest, "Date: ", hour_ago, "\r\n"));
  EXPECT_THAT(sbc.Finals(1, absl::Seconds(5))["hour-old"], HasSubstr("SIP/2.0 403 Stale Date"));
  ASSERT_OK_AND_ASSIGN(daemon::Config next,
                       daemon::ParseConfig(env_->config_yaml() + "max_iat_skew: 2h\n", "next"));
  ASSERT_OK(env_->daemon().Reload(next));
  sbc.Send("INVITE", "hour-old-after-reload", absl::StrCat(kAttest, "Date: ", hour_ago, "\r\n"));
  EXPECT_THAT(sbc.Finals(1, absl::Seconds(5))["hour-old-after-reload"], HasSubstr("SIP/2.0 302"));
}

}  // namespace
}  // namespace shaken::testing
