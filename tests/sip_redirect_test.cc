// listen.sip end to end: SIPp (Debian's sip-tester) plays the SBC against a real shakend on
// loopback whose token is SoftHSM2: INVITE -> 302 with an Identity that shakenctl and secsipidx
// accept; INVITEs with a valid, tampered or stale Identity -> 302 with verstat and Reason; a
// retransmitted INVITE is one transaction; OPTIONS; a source outside the rules gets 403; garbage
// datagrams and an oversized TCP message get nothing beyond what SIP says, and the server goes on.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <utility>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "stir/base64url.h"
#include "stir/clock.h"
#include "stir/memory_signer.h"
#include "stir/passport.h"
#include "tests/daemon_fixture.h"
#include "tests/testing/kamailio.h"
#include "tests/testing/sip_messages.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/subprocess.h"

namespace shaken::testing {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr char kOrig[] = "12155550121";
constexpr char kDest[] = "12155550131";

// Scenario is a SIPp UAC scenario: one INVITE carrying `extra` header lines, an optional 100, the
// final answer `final_code`, and the ACK that a non-2xx answer needs (RFC 3261 §17.1.1.3).
// `expect_trying`: the 100 Trying must come first.
std::string Scenario(const std::string& extra, int final_code, bool expect_trying = false,
                     const std::string& called_at = "[remote_ip]:[remote_port]") {
  const std::string invite = absl::StrCat(R"(
  <send>
    <![CDATA[
      INVITE sip:+12155550131@)", called_at, R"(;user=phone SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=z9hG4bK-[pid]-[call_number]
      Max-Forwards: 70
      From: "Alice" <sip:+1-215-555-0121@[local_ip];user=phone>;tag=[pid]-[call_number]
      To: <sip:+12155550131@[remote_ip];user=phone>
      Call-ID: [call_id]
      CSeq: 1 INVITE
      Contact: <sip:sbc@[local_ip]:[local_port]>
)", extra, R"(
      Content-Length: 0

    ]]>
  </send>
)");
  return absl::StrCat(R"(<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="sbc">)", invite, R"(
  <recv response="100" optional=")", expect_trying ? "false" : "true", R"("/>
  <recv response=")", final_code, R"("/>
  <send>
    <![CDATA[
      ACK sip:+12155550131@)", called_at, R"(;user=phone SIP/2.0
      [last_Via:]
      Max-Forwards: 70
      [last_From:]
      [last_To:]
      Call-ID: [call_id]
      CSeq: 1 ACK
      Content-Length: 0

    ]]>
  </send>
  <pause milliseconds="200"/>
</scenario>
)");
}

constexpr char kOptionsScenario[] = R"(<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="heartbeat">
  <send>
    <![CDATA[
      OPTIONS sip:[remote_ip]:[remote_port] SIP/2.0
      Via: SIP/2.0/[transport] [local_ip]:[local_port];branch=[branch]
      Max-Forwards: 70
      From: <sip:sbc@[local_ip]>;tag=[pid]-[call_number]
      To: <sip:shakend@[remote_ip]>
      Call-ID: [call_id]
      CSeq: 1 OPTIONS
      Content-Length: 0

    ]]>
  </send>
  <recv response="CODE"/>
</scenario>
)";

struct SippResult {
  RunResult run;
  std::vector<std::string> responses;  // the responses SIPp received, in order
};

// ReceivedMessages: the messages a SIPp message log (-trace_msg) shows as received, in order.
// Each entry is a dashed line, "<TRANSPORT> message received [n] bytes :", a blank line, the
// message.
std::vector<std::string> ReceivedMessages(const std::string& log) {
  std::vector<std::string> out;
  bool first = true;
  for (absl::string_view part : absl::StrSplit(log, "message received")) {
    if (std::exchange(first, false) || !absl::StartsWith(part, " [")) continue;
    const size_t start = part.find("\n\n");
    if (start == absl::string_view::npos) continue;
    absl::string_view msg = part.substr(start + 2);
    out.emplace_back(msg.substr(0, msg.find("\n-------")));
  }
  return out;
}


class SipRedirectTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto env = DaemonEnv::Create({
        .listen_extra_yaml = "  sip: {udp: 127.0.0.1:0, tcp: 127.0.0.1:0}\n",
        .clients_extra_yaml =
            "  - {identity: sbc-sip, methods: [Sign, Verify], profiles: [token], "
            "sources: [127.0.0.1/32]}\n"
            // Another service provider's SBC: its own profile and attestation.
            "  - {identity: sbc-other-sp, methods: [Sign], profiles: [file], "
            "sources: [127.0.0.3/32], sip_profile: file, sip_default_attest: C}\n",
    });
    ASSERT_OK(env);
    env_ = env->release();
    ASSERT_GT(env_->daemon().sip_udp_port(), 0);
    ASSERT_GT(env_->daemon().sip_tcp_port(), 0);
  }
  static void TearDownTestSuite() {
    delete env_;
    env_ = nullptr;
  }

  // Sipp runs one call of `scenario` (UDP "u1" or TCP "t1") from `local_ip`; `keys` fill
  // [keyword]s of the scenario.
  SippResult Sipp(const std::string& scenario, const std::string& transport = "u1",
                  const std::vector<std::pair<std::string, std::string>>& keys = {},
                  const std::string& local_ip = "127.0.0.1", int target_port = 0) {
    static int n = 0;
    const std::string base = absl::StrCat(env_->dir(), "/sipp", ++n);
    std::ofstream(base + ".xml") << scenario;
    const int port = target_port != 0      ? target_port
                     : transport[0] == 't' ? env_->daemon().sip_tcp_port()
                                           : env_->daemon().sip_udp_port();
    std::vector<std::string> argv = {"sipp", absl::StrCat("127.0.0.1:", port),
                                     "-sf", base + ".xml",
                                     "-m", "1",
                                     "-i", local_ip,
                                     "-p", absl::StrCat(FreeLoopbackPort()),
                                     "-t", transport,
                                     "-nostdin",
                                     "-timeout", "20s",
                                     "-timeout_error",
                                     "-recv_timeout", "5000",
                                     "-trace_msg", "-message_file", base + ".msg",
                                     "-trace_err", "-error_file", base + ".err"};
    for (const auto& [k, v] : keys) {
      argv.push_back("-key");
      argv.push_back(k);
      argv.push_back(v);
    }
    SippResult r;
    r.run = RunCommand(argv, {.timeout = absl::Seconds(40)});
    const std::string log = ReadFileOrEmpty(base + ".msg");
    r.responses = ReceivedMessages(log);
    if (r.run.exit_code != 0) {
      ADD_FAILURE() << "sipp exit " << r.run.exit_code << "\n"
                    << r.run.output().substr(0, 4000) << "\nerrors:\n"
                    << ReadFileOrEmpty(base + ".err") << "\nmessages:\n" << log;
    }
    return r;
  }

  // Last: the final response of a run.
  static std::string Final(const SippResult& r) {
    for (auto it = r.responses.rbegin(); it != r.responses.rend(); ++it) {
      if (!absl::StartsWith(*it, "SIP/2.0 1")) return *it;
    }
    return "";
  }

  static double Metric(const std::string& series) {
    RunResult r = RunCommand(
        {"curl", "-s", absl::StrCat("http://127.0.0.1:", env_->daemon().metrics_port(), "/metrics")},
        {.timeout = absl::Seconds(10)});
    for (absl::string_view line : absl::StrSplit(r.out, '\n')) {
      if (absl::StartsWith(line, series + " ")) {
        double v = 0;
        if (absl::SimpleAtod(line.substr(series.size() + 1), &v)) return v;
      }
    }
    return 0;
  }

  static std::string SignViaGrpc() {
    auto client = env_->NewClient("sbc1.test");
    EXPECT_OK(client);
    auto signed_call =
        (*client)->Sign({.attest = "A", .orig_tn = kOrig, .dest_tns = {kDest}});
    EXPECT_OK(signed_call);
    return signed_call.ok() ? signed_call->identity : "";
  }

  static DaemonEnv* env_;
};

DaemonEnv* SipRedirectTest::env_ = nullptr;

constexpr char kSignHeaders[] =
    "      P-Asserted-Identity: \"Alice\" <sip:+12155550121;npdi;rn=+12155550000@[local_ip];"
    "user=phone>\n"
    "      Attestation-Info: A\n"
    "      Origination-ID: 3c3e5a9e-8d35-4a62-9d2b-0f1b52b8f6a1";

TEST_F(SipRedirectTest, InviteIsSignedInA302ThatShakenctlAndSecsipidxAccept) {
  SippResult r = Sipp(Scenario(kSignHeaders, 302));
  const std::string answer = Final(r);
  ASSERT_THAT(answer, HasSubstr("SIP/2.0 302"));
  EXPECT_THAT(Header(answer, "Contact"), HasSubstr("<sip:+12155550131@127.0.0.1:"));
  const std::string identity = Header(answer, "Identity");
  ASSERT_THAT(identity, HasSubstr(";info=<" + env_->token_x5u() + ">;alg=ES256;ppt=shaken"));

  RunResult v = RunCommand({SHAKENCTL_BINARY, "passport", "verify", "--ca-file",
                            env_->StiRootPath(), "--tls-ca-file", env_->TlsCaFile(),
                            "--allow-private-x5u", "--from", kOrig, "--to", kDest, "--json",
                            identity},
                           {.timeout = absl::Seconds(30)});
  EXPECT_EQ(v.exit_code, 0) << v.output();
  EXPECT_THAT(v.out, HasSubstr("\"passed\": true"));
  EXPECT_THAT(v.out, HasSubstr("\"attest\": \"A\""));
  EXPECT_THAT(v.out, HasSubstr("3c3e5a9e-8d35-4a62-9d2b-0f1b52b8f6a1"));

  RunResult s = RunCommand({"secsipidx", "-check", "-identity", identity, "-expire", "60", "-p",
                            env_->dir() + "/token-chain.pem"},
                           {.timeout = absl::Seconds(30)});
  EXPECT_EQ(s.exit_code, 0) << s.output();
}

TEST_F(SipRedirectTest, InviteOverTcpIsSigned) {
  SippResult r = Sipp(Scenario(kSignHeaders, 302), "t1");
  EXPECT_THAT(Header(Final(r), "Identity"), HasSubstr(";ppt=shaken"));
}

TEST_F(SipRedirectTest, ClientRuleChoosesTheProfileAndTheDefaultAttestation) {
  // From 127.0.0.3: the rule signs with profile "file" and attests C when no header says.
  SippResult r = Sipp(Scenario("      X-Nothing: 1", 302), "u1", {}, "127.0.0.3");
  const std::string identity = Header(Final(r), "Identity");
  ASSERT_THAT(identity, HasSubstr(";info=<" + env_->file_x5u() + ">;alg=ES256;ppt=shaken"));
  const std::vector<std::string> parts = absl::StrSplit(identity.substr(0, identity.find(';')), '.');
  ASSERT_EQ(parts.size(), 3u) << identity;
  absl::StatusOr<std::string> payload = stir::Base64UrlDecode(parts[1]);
  ASSERT_OK(payload);
  EXPECT_THAT(*payload, HasSubstr("\"attest\":\"C\""));
  // The listener's profile and the caller's header still apply to the other SBC.
  SippResult token = Sipp(Scenario(kSignHeaders, 302));
  EXPECT_THAT(Header(Final(token), "Identity"), HasSubstr(env_->token_x5u()));
}

TEST_F(SipRedirectTest, InviteWithoutAttestationIsABadRequest) {
  SippResult r = Sipp(Scenario("      X-Nothing: 1", 400));
  EXPECT_THAT(Header(Final(r), "Warning"), HasSubstr("no attestation level"));
  EXPECT_EQ(Header(Final(r), "Identity"), "");
}

TEST_F(SipRedirectTest, ValidIdentityIsVerifiedWithVerstatOnTheAssertedIdentity) {
  const std::string identity = SignViaGrpc();
  SippResult r = Sipp(Scenario("      P-Asserted-Identity: \"Alice\" "
                               "<sip:+12155550121@[local_ip];user=phone>\n"
                               "      Identity: [identity]",
                               302),
                      "u1", {{"identity", identity}});
  const std::string answer = Final(r);
  EXPECT_THAT(Header(answer, "P-Asserted-Identity"),
              HasSubstr("\"Alice\" <sip:+12155550121@127.0.0.1;user=phone;"
                        "verstat=TN-Validation-Passed>"));
  EXPECT_EQ(Header(answer, "Attestation-Info"), "A");
  EXPECT_EQ(Header(answer, "Reason"), "");
  EXPECT_EQ(Header(answer, "Identity"), "");
  EXPECT_THAT(Header(answer, "Contact"), HasSubstr("<sip:+12155550131@127.0.0.1:"));
}

TEST_F(SipRedirectTest, TamperedIdentityGetsFailedVerstatAndAStirReason) {
  std::string identity = SignViaGrpc();
  // Change one character of the signature (the third JWS part).
  const size_t sig = identity.find('.', identity.find('.') + 1) + 5;
  identity[sig] = identity[sig] == 'A' ? 'B' : 'A';
  SippResult r = Sipp(Scenario("      Identity: [identity]", 302), "u1", {{"identity", identity}});
  const std::string answer = Final(r);
  // No P-Asserted-Identity in the request: the From identity carries the verdict.
  EXPECT_THAT(Header(answer, "P-Asserted-Identity"),
              HasSubstr("\"Alice\" <sip:+1-215-555-0121@127.0.0.1;user=phone;"
                        "verstat=TN-Validation-Failed>"));
  EXPECT_EQ(Header(answer, "Reason"), "STIR;cause=438;text=\"Invalid Identity Header\"");
  EXPECT_EQ(Header(answer, "Attestation-Info"), "");
}

TEST_F(SipRedirectTest, StaleIdentityGetsStaleDateReason) {
  ASSERT_OK_AND_ASSIGN(auto key, stir::MemorySigner::FromPem(ReadFileOrEmpty(env_->FileKeyPath())));
  stir::FixedClock past(absl::Now() - absl::Minutes(10));
  ASSERT_OK_AND_ASSIGN(
      auto signer, stir::PassportSigner::Create(
                       key.get(), env_->file_x5u(), &past,
                       {.max_iat_skew = absl::ZeroDuration(), .x5u_policy = {.allow_any_port = true}}));
  ASSERT_OK_AND_ASSIGN(auto stale, signer->Sign({.attest = "C", .orig_tn = kOrig, .dest_tns = {kDest}}));
  SippResult r = Sipp(Scenario("      Identity: [identity]", 302), "u1", {{"identity", stale.identity}});
  const std::string answer = Final(r);
  EXPECT_THAT(Header(answer, "P-Asserted-Identity"), Not(HasSubstr("TN-Validation-Passed")));
  EXPECT_THAT(Header(answer, "P-Asserted-Identity"), HasSubstr(";verstat="));
  EXPECT_EQ(Header(answer, "Reason"), "STIR;cause=403;text=\"Stale Date\"");
}

TEST_F(SipRedirectTest, SlowVerificationGetsA100TryingFirst) {
  // The certificate's server answers after 700 ms: past SIP's T1 (500 ms), when the SBC would
  // retransmit an unanswered INVITE.
  env_->x5u_server().SetRoute("/slow.pem", {.body = ReadFileOrEmpty(env_->FileChainPath()),
                                            .delay_before = absl::Milliseconds(700)});
  ASSERT_OK_AND_ASSIGN(auto key, stir::MemorySigner::FromPem(ReadFileOrEmpty(env_->FileKeyPath())));
  stir::SystemClock clock;
  ASSERT_OK_AND_ASSIGN(auto signer,
                       stir::PassportSigner::Create(key.get(), env_->x5u_server().Url("/slow.pem"),
                                                    &clock, {.x5u_policy = {.allow_any_port = true}}));
  ASSERT_OK_AND_ASSIGN(auto slow, signer->Sign({.attest = "C", .orig_tn = kOrig, .dest_tns = {kDest}}));
  SippResult r = Sipp(Scenario("      Identity: [identity]", 302, /*expect_trying=*/true), "u1",
                      {{"identity", slow.identity}});
  ASSERT_FALSE(r.responses.empty());
  EXPECT_THAT(r.responses.front(), HasSubstr("SIP/2.0 100 Trying"));
  EXPECT_THAT(Header(Final(r), "P-Asserted-Identity"), HasSubstr(";verstat=TN-Validation-Passed>"));
  EXPECT_EQ(Header(Final(r), "Attestation-Info"), "C");
}

TEST_F(SipRedirectTest, OptionsAnswers200WhileServing) {
  std::string scenario = kOptionsScenario;
  scenario.replace(scenario.find("CODE"), 4, "200");
  SippResult r = Sipp(scenario);
  EXPECT_THAT(Final(r), HasSubstr("SIP/2.0 200"));
}

TEST_F(SipRedirectTest, SourceOutsideEveryRuleGets403) {
  SippResult r = Sipp(Scenario(kSignHeaders, 403), "u1", {}, "127.0.0.2");
  EXPECT_THAT(Final(r), HasSubstr("SIP/2.0 403"));
  EXPECT_EQ(Header(Final(r), "Identity"), "");
  std::string options = kOptionsScenario;
  options.replace(options.find("CODE"), 4, "403");
  Sipp(options, "u1", {}, "127.0.0.2");
}


TEST_F(SipRedirectTest, GarbageDatagramsGetNoAnswerAndTheServerGoesOn) {
  int local_port = 0;
  const int fd = LoopbackUdpSocket(&local_port);
  ASSERT_GE(fd, 0);
  const std::vector<std::string> garbage = {
      std::string("\x00\x01\x02\xff", 4), "hello", "INVITE", "INVITE sip: SIP/2.0\r\n\r\n",
      "SIP/2.0 200 OK\r\n\r\n", std::string(1400, 'A'), "\r\n\r\n",
      "INVITE sip:1@x SIP/2.0\r\nVia: nonsense\r\nContent-Length: 99999\r\n\r\n"};
  for (const std::string& g : garbage) ASSERT_TRUE(SendUdp(fd, env_->daemon().sip_udp_port(), g));
  // None of these is a request that can be answered (no usable Via): nothing comes back.
  EXPECT_EQ(Received(fd, absl::Milliseconds(500)), "");
  close(fd);
  std::string scenario = kOptionsScenario;
  scenario.replace(scenario.find("CODE"), 4, "200");
  EXPECT_THAT(Final(Sipp(scenario)), HasSubstr("SIP/2.0 200"));
}

TEST_F(SipRedirectTest, OneMegabyteTcpMessageIsRefusedAndTheServerGoesOn) {
  const int fd = socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in to{};
  to.sin_family = AF_INET;
  to.sin_port = htons(static_cast<uint16_t>(env_->daemon().sip_tcp_port()));
  inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
  ASSERT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof to), 0);
  const std::string body(1 << 20, 'x');
  const std::string msg = absl::StrCat(
      "INVITE sip:+12155550131@127.0.0.1 SIP/2.0\r\n"
      "Via: SIP/2.0/TCP 127.0.0.1:5999;branch=z9hG4bK-big\r\n"
      "Max-Forwards: 70\r\nFrom: <sip:+12155550121@127.0.0.1>;tag=1\r\n"
      "To: <sip:+12155550131@127.0.0.1>\r\nCall-ID: big@test\r\nCSeq: 1 INVITE\r\n"
      "Attestation-Info: A\r\nContent-Type: application/sdp\r\nContent-Length: ",
      body.size(), "\r\n\r\n", body);
  size_t sent = 0;
  for (int i = 0; i < 10000 && sent < msg.size(); ++i) {
    pollfd p{fd, POLLOUT, 0};
    if (poll(&p, 1, 2000) <= 0) break;
    const ssize_t n = send(fd, msg.data() + sent, msg.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;  // the server closed the connection: fine
    sent += static_cast<size_t>(n);
  }
  const std::string answer = Received(fd, absl::Seconds(2));
  close(fd);
  // Never a 302 (nor any Identity) for a message over listen.sip.max_message_bytes; at most an
  // error status before the connection closes.
  EXPECT_THAT(answer, Not(HasSubstr("Identity:")));
  EXPECT_THAT(answer, Not(HasSubstr("SIP/2.0 302")));
  std::string scenario = kOptionsScenario;
  scenario.replace(scenario.find("CODE"), 4, "200");
  EXPECT_THAT(Final(Sipp(scenario, "t1")), HasSubstr("SIP/2.0 200"));
}

// A retransmission is what SIPp cannot send on cue (it takes the answer to the first copy before
// its next step), so this SBC is a socket: the same INVITE datagram three times, two at once and
// one after the answer.
TEST_F(SipRedirectTest, RetransmittedInviteIsOneTransaction) {
  const std::string series = R"(shaken_sip_requests_total{code="302",role="sign"})";
  const double before = Metric(series);
  int local_port = 0;
  const int fd = LoopbackUdpSocket(&local_port);
  ASSERT_GE(fd, 0);
  const std::string invite = absl::StrCat(
      "INVITE sip:+12155550131@127.0.0.1 SIP/2.0\r\n"
      "Via: SIP/2.0/UDP 127.0.0.1:", local_port, ";branch=z9hG4bK-retransmitted\r\n"
      "Max-Forwards: 70\r\nFrom: <sip:+12155550121@127.0.0.1>;tag=r1\r\n"
      "To: <sip:+12155550131@127.0.0.1>\r\nCall-ID: retransmitted@test\r\nCSeq: 1 INVITE\r\n"
      "Attestation-Info: B\r\nContent-Length: 0\r\n\r\n");
  const int server = env_->daemon().sip_udp_port();
  auto send_invite = [&] { ASSERT_TRUE(SendUdp(fd, server, invite)); };
  send_invite();
  send_invite();
  std::vector<std::string> answers;
  auto collect = [&](absl::Duration wait) {
    const absl::Time until = absl::Now() + wait;
    for (int i = 0; i < 100 && absl::Now() < until; ++i) {
      pollfd p{fd, POLLIN, 0};
      if (poll(&p, 1, static_cast<int>(absl::ToInt64Milliseconds(until - absl::Now()))) <= 0) break;
      char buf[65536];
      const ssize_t n = recv(fd, buf, sizeof buf, 0);
      if (n > 0) answers.emplace_back(buf, static_cast<size_t>(n));
    }
  };
  collect(absl::Milliseconds(300));
  send_invite();  // after the answer: the server transaction sends its final answer again
  collect(absl::Milliseconds(500));
  close(fd);
  std::vector<std::string> finals;
  for (const std::string& a : answers) {
    if (!absl::StartsWith(a, "SIP/2.0 1")) finals.push_back(a);
  }
  ASSERT_GE(finals.size(), 2u);  // at least the answer and its retransmission
  for (const std::string& f : finals) {
    EXPECT_TRUE(absl::StartsWith(f, "SIP/2.0 302")) << f;
    EXPECT_EQ(f, finals.front());  // the same To tag, the same Identity: one transaction
  }
  EXPECT_EQ(Metric(series), before + 1);
}


// listen.sip.timer_i (500 ms by default here, RFC 3261's T4 is 5 s): an answered INVITE keeps
// its server transaction until the ACK (the 302 is retransmitted meanwhile), then only Timer I,
// so that the memory the stack holds follows calls per second x timer_i. The gauge
// shaken_sip_transactions shows it.
TEST_F(SipRedirectTest, AnsweredTransactionIsReleasedTimerIAfterItsAck) {
  const std::string gauge = "shaken_sip_transactions";
  int local_port = 0;
  const int fd = LoopbackUdpSocket(&local_port);
  ASSERT_GE(fd, 0);
  const std::string common = absl::StrCat(
      "Via: SIP/2.0/UDP 127.0.0.1:", local_port, ";branch=z9hG4bK-timer-i\r\n"
      "Max-Forwards: 70\r\nFrom: <sip:+12155550121@127.0.0.1>;tag=t1\r\n"
      "To: <sip:+12155550131@127.0.0.1>");
  const std::string invite = absl::StrCat(
      "INVITE sip:+12155550131@127.0.0.1 SIP/2.0\r\n", common,
      "\r\nCall-ID: timer-i@test\r\nCSeq: 1 INVITE\r\nAttestation-Info: B\r\n"
      "Content-Length: 0\r\n\r\n");
  const int server = env_->daemon().sip_udp_port();
  auto send = [&](const std::string& m) { ASSERT_TRUE(SendUdp(fd, server, m)); };
  // Waits (bounded) for the gauge to reach `want`; returns what it last read.
  auto wait_for = [&](auto want, absl::Duration limit) {
    const absl::Time until = absl::Now() + limit;
    double v = Metric(gauge);
    while (!want(v) && absl::Now() < until) {
      absl::SleepFor(absl::Milliseconds(50));
      v = Metric(gauge);
    }
    return v;
  };
  // Earlier tests of this process leave non-INVITE transactions for Timer J (32 s over UDP):
  // start from none, so that the count below is this INVITE's alone.
  ASSERT_EQ(wait_for([](double v) { return v == 0; }, absl::Seconds(40)), 0);
  send(invite);
  std::string answer;
  pollfd p{fd, POLLIN, 0};
  if (poll(&p, 1, 5000) == 1) {
    char buf[65536];
    const ssize_t n = recv(fd, buf, sizeof buf, 0);
    if (n > 0) answer.assign(buf, static_cast<size_t>(n));
  }
  ASSERT_TRUE(absl::StartsWith(answer, "SIP/2.0 302")) << answer;
  // Not yet ACKed: the transaction stays (Timer H, 32 s).
  EXPECT_GE(wait_for([](double v) { return v >= 1; }, absl::Seconds(2)), 1);
  absl::SleepFor(absl::Seconds(1));
  EXPECT_GE(Metric(gauge), 1);
  // The ACK carries the 302's To tag (RFC 3261 §17.1.1.3).
  (void)Received(fd, absl::ZeroDuration());  // the 302's retransmissions so far
  send(absl::StrCat("ACK sip:+12155550131@127.0.0.1 SIP/2.0\r\n",
                    common.substr(0, common.rfind("\r\n") + 2), "To: ", Header(answer, "To"),
                    "\r\nCall-ID: timer-i@test\r\nCSeq: 1 ACK\r\nContent-Length: 0\r\n\r\n"));
  // Gone within Timer I (500 ms) and a tick of the gauge; T4's 5 s would still hold it.
  EXPECT_EQ(wait_for([](double v) { return v == 0; }, absl::Seconds(3)), 0);
  close(fd);
}


// Kamailio as the SBC in front of shakend, with the configuration carriers copy
// (deploy/kamailio/shakend-redirect.cfg): SIPp's INVITE goes to Kamailio, Kamailio asks shakend
// and forwards the INVITE with what the 302 carried to a SIPp UAS, which answers 486 (the call
// ends there) and records what it received.
class KamailioTest : public SipRedirectTest {
 protected:
  void SetUp() override {
    uas_port_ = FreeLoopbackPort();
    const std::string dir = env_->dir();
    std::ofstream(dir + "/uas.xml") << R"(<?xml version="1.0" encoding="ISO-8859-1" ?>
<scenario name="uas">
  <recv request="INVITE"/>
  <send>
    <![CDATA[
      SIP/2.0 486 Busy Here
      [last_Via:]
      [last_From:]
      [last_To:];tag=uas-[pid]
      [last_Call-ID:]
      [last_CSeq:]
      Content-Length: 0

    ]]>
  </send>
  <recv request="ACK"/>
</scenario>
)";
    ::unlink((dir + "/uas.msg").c_str());
    auto uas = Child::Start({"sipp", "-sf", dir + "/uas.xml", "-i", "127.0.0.1", "-p",
                             absl::StrCat(uas_port_), "-m", "1", "-nostdin", "-timeout", "30s",
                             "-timeout_error", "-trace_msg", "-message_file", dir + "/uas.msg"},
                            dir + "/uas.log");
    ASSERT_OK(uas);
    uas_ = std::make_unique<Child>(*std::move(uas));
    auto k = Kamailio::Start(
        std::string(SHAKEN_SOURCE_DIR) + "/deploy/kamailio/shakend-redirect.cfg", dir,
        {{"SHAKEND_URI", absl::StrCat("sip:127.0.0.1:", env_->daemon().sip_udp_port())}});
    ASSERT_OK(k);
    kamailio_ = *std::move(k);
  }
  void TearDown() override {
    if (kamailio_ != nullptr) {
      EXPECT_TRUE(kamailio_->Stop());
    }
  }

  // Call sends one INVITE with `extra` headers through Kamailio; the UAS's 486 comes back. Returns
  // the INVITE the UAS received.
  std::string Call(const std::string& extra, const std::vector<std::pair<std::string, std::string>>& keys = {}) {
    SippResult r = Sipp(Scenario(extra, 486, false, absl::StrCat("127.0.0.1:", uas_port_)), "u1",
                        keys, "127.0.0.1", kamailio_->port());
    EXPECT_THAT(Final(r), HasSubstr("SIP/2.0 486"));
    std::optional<int> uas_exit = uas_->Wait(absl::Seconds(30));
    EXPECT_EQ(uas_exit, 0) << uas_->Log() << kamailio_->Log();
    std::vector<std::string> got = ReceivedMessages(ReadFileOrEmpty(env_->dir() + "/uas.msg"));
    for (const std::string& m : got) {
      if (absl::StartsWith(m, "INVITE ")) return m;
    }
    ADD_FAILURE() << "the UAS received no INVITE\n" << kamailio_->Log();
    return "";
  }

  int uas_port_ = 0;
  std::unique_ptr<Child> uas_;
  std::unique_ptr<Kamailio> kamailio_;
};

TEST_F(KamailioTest, AddsTheIdentityShakendSignedAndTheUasGetsIt) {
  const std::string invite = Call(kSignHeaders);
  EXPECT_THAT(invite, HasSubstr(absl::StrCat("INVITE sip:+12155550131@127.0.0.1:", uas_port_)));
  const std::string identity = Header(invite, "Identity");
  ASSERT_THAT(identity, HasSubstr(";info=<" + env_->token_x5u() + ">;alg=ES256;ppt=shaken"));
  RunResult v = RunCommand({SHAKENCTL_BINARY, "passport", "verify", "--ca-file",
                            env_->StiRootPath(), "--tls-ca-file", env_->TlsCaFile(),
                            "--allow-private-x5u", "--from", kOrig, "--to", kDest, identity},
                           {.timeout = absl::Seconds(30)});
  EXPECT_EQ(v.exit_code, 0) << v.output();
}

TEST_F(KamailioTest, ReplacesTheAssertedIdentityWithTheVerdictsAndTheUasGetsIt) {
  const std::string invite = Call("      P-Asserted-Identity: <sip:+12155550121@[local_ip];user=phone>\n"
                                  "      Identity: [identity]",
                                  {{"identity", SignViaGrpc()}});
  const std::vector<std::string> pai = AllHeaders(invite, "P-Asserted-Identity");
  ASSERT_EQ(pai.size(), 1u) << invite;
  EXPECT_EQ(pai[0], "<sip:+12155550121@127.0.0.1;user=phone;verstat=TN-Validation-Passed>");
  EXPECT_EQ(Header(invite, "Attestation-Info"), "A");
}

}  // namespace
}  // namespace shaken::testing
