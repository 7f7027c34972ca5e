// The REST front end (listen.rest, docs/rest-api.md) end to end with real clients: the curl
// command-line tool and a Python http.client script (tests/rest_client.py), over mTLS on
// loopback, against an in-process shakend with a SoftHSM2 token. Identities it signs verify
// through the gRPC API and with secsipidx.
#include <unistd.h>

#include <algorithm>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "tests/daemon_fixture.h"
#include "tests/testing/fault_pkcs11_control.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/subprocess.h"

namespace shaken::testing {
namespace {

using Json = nlohmann::json;
using ::testing::HasSubstr;

constexpr char kOrig[] = "12155550121";
constexpr char kDest[] = "12155550131";

struct Answer {
  int status = 0;
  std::string headers;
  std::string body;
  Json json;  // null when the body is not JSON
  int connects = -1;
  std::string error;  // curl's complaint when it failed
};

class RestTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    auto env = DaemonEnv::Create({.listen_extra_yaml = "  rest:\n"
                                                      "    address: 127.0.0.1:0\n"
                                                      "    max_body_bytes: 4096\n"});
    ASSERT_TRUE(env.ok()) << env.status();
    env_ = env->release();
  }
  static void TearDownTestSuite() {
    delete env_;
    env_ = nullptr;
  }

  static std::string Url(const std::string& path) {
    return absl::StrCat("https://localhost:", env_->daemon().rest_port(), path);
  }

  // Curl runs the curl tool: one request, or several on one connection (`more`).
  static std::vector<std::string> CurlBase(const std::string& client) {
    std::vector<std::string> argv = {
        "curl", "-sS", "--http1.1", "--max-time", "10", "--cacert", env_->TlsCaFile(),
        "--resolve", absl::StrCat("localhost:", env_->daemon().rest_port(), ":127.0.0.1")};
    if (!client.empty()) {
      argv.insert(argv.end(), {"--cert", env_->ClientCertFile(client), "--key",
                               env_->ClientKeyFile(client)});
    }
    return argv;
  }

  static Answer Post(const std::string& path, const std::string& body,
                     const std::vector<std::string>& headers = {"Content-Type: application/json"},
                     const std::string& client = "sbc1.test", const std::string& method = "POST") {
    std::vector<std::string> argv = CurlBase(client);
    const std::string header_file = absl::StrCat(env_->dir(), "/curl-headers-", getpid());
    argv.insert(argv.end(), {"-X", method, "-D", header_file, "-o", "-", "-w",
                             "\n%{http_code} %{num_connects}"});
    for (const auto& h : headers) argv.insert(argv.end(), {"-H", h});
    if (!body.empty() || method == "POST") argv.insert(argv.end(), {"--data-binary", body});
    argv.push_back(Url(path));
    RunResult r = RunCommand(argv, {.timeout = absl::Seconds(20)});
    Answer a;
    a.error = r.err;
    const size_t nl = r.out.rfind('\n');
    if (nl == std::string::npos) return a;
    a.body = r.out.substr(0, nl);
    std::vector<std::string> tail = absl::StrSplit(r.out.substr(nl + 1), ' ');
    if (tail.size() == 2) {
      (void)absl::SimpleAtoi(tail[0], &a.status);
      (void)absl::SimpleAtoi(tail[1], &a.connects);
    }
    a.headers = ReadFileOrEmpty(header_file);
    a.json = Json::parse(a.body, nullptr, /*allow_exceptions=*/false);
    return a;
  }

  static std::string SignBody(const std::string& attest = "A") {
    return Json{{"signingRequest",
                 {{"attest", attest},
                  {"orig", {{"tn", kOrig}}},
                  {"dest", {{"tn", {kDest}}}},
                  {"iat", absl::ToUnixSeconds(absl::Now())},
                  {"origid", "123e4567-e89b-12d3-a456-426655440000"}}}}
        .dump();
  }
  static std::string VerifyBody(const std::string& identity, const std::string& from = kOrig) {
    return Json{{"verificationRequest",
                 {{"from", {{"tn", from}}},
                  {"to", {{"tn", {kDest}}}},
                  {"time", absl::ToUnixSeconds(absl::Now())},
                  {"identity", identity}}}}
        .dump();
  }

  // ExpectError checks an ATIS-1000082 error document.
  static void ExpectError(const Answer& a, int status, const std::string& kind,
                          const std::string& message_id) {
    EXPECT_EQ(a.status, status) << a.body << a.error;
    ASSERT_TRUE(a.json.is_object()) << a.body;
    const Json& e = a.json["requestError"][kind];
    EXPECT_EQ(e["messageId"], message_id) << a.body;
    EXPECT_TRUE(e["text"].is_string()) << a.body;
    EXPECT_TRUE(e["variables"].is_array()) << a.body;
  }

  static DaemonEnv* env_;
};
DaemonEnv* RestTest::env_ = nullptr;

TEST_F(RestTest, SignsAndTheIdentityVerifiesOverRestGrpcAndSecsipidx) {
  Answer s = Post("/stir/v1/signing", SignBody(), {"Content-Type: application/json",
                                                   "Accept: application/json",
                                                   "X-RequestID: req-42"});
  ASSERT_EQ(s.status, 200) << s.body << s.error;
  EXPECT_THAT(s.headers, HasSubstr("X-RequestID: req-42"));
  EXPECT_THAT(s.headers, HasSubstr("Content-Type: application/json"));
  const std::string identity = s.json["signingResponse"]["identity"];
  EXPECT_THAT(identity, HasSubstr(";info=<" + env_->token_x5u() + ">;alg=ES256;ppt=shaken"));
  EXPECT_EQ(s.json["signingResponse"].size(), 1u) << "ATIS-1000082 answers identity only";

  Answer v = Post("/stir/v1/verification", VerifyBody(identity));
  ASSERT_EQ(v.status, 200) << v.body;
  EXPECT_EQ(v.json, Json::parse(R"({"verificationResponse":{"verstat":"TN-Validation-Passed"}})"));

  auto c = env_->NewClient("sbc1.test");
  ASSERT_OK(c);
  auto g = (*c)->Verify({.identities = {identity}, .from_tn = kOrig, .to_tns = {kDest}});
  ASSERT_OK(g);
  EXPECT_TRUE(g->overall.passed) << g->overall.detail;
  EXPECT_EQ(g->overall.attest, "A");
  EXPECT_EQ(g->overall.origid, "123e4567-e89b-12d3-a456-426655440000");

  if (access("/usr/bin/secsipidx", X_OK) == 0) {
    RunResult r = RunCommand({"/usr/bin/secsipidx", "-check", "-identity", identity, "-expire",
                              "60", "-p", env_->token_x5u(), "-timeout", "5"},
                             {.env = {{"SSL_CERT_FILE", env_->TlsCaFile()}}});
    EXPECT_EQ(r.exit_code, 0) << r.output();
  }
}

TEST_F(RestTest, FailedVerificationIsHttp200WithItsReason) {
  Answer s = Post("/stir/v1/signing", SignBody());
  ASSERT_EQ(s.status, 200) << s.body;
  std::string identity = s.json["signingResponse"]["identity"];
  // The orig of the PASSporT is not the call's from: E16, 438, No-TN-Validation.
  Answer v = Post("/stir/v1/verification", VerifyBody(identity, "12155550199"));
  ASSERT_EQ(v.status, 200) << v.body;
  const Json& r = v.json["verificationResponse"];
  EXPECT_EQ(r["verstat"], "No-TN-Validation");
  EXPECT_EQ(r["reasoncode"], 438);
  EXPECT_EQ(r["reasontext"], "Invalid Identity Header");
  EXPECT_TRUE(r["reasondesc"].is_string() && !r["reasondesc"].get<std::string>().empty());
  // A tampered signature: E18, 438, TN-Validation-Failed.
  const size_t semi = identity.find(';');
  identity[semi - 2] = identity[semi - 2] == 'A' ? 'B' : 'A';
  Answer t = Post("/stir/v1/verification", VerifyBody(identity));
  ASSERT_EQ(t.status, 200) << t.body;
  EXPECT_EQ(t.json["verificationResponse"]["verstat"], "TN-Validation-Failed") << t.body;
  EXPECT_EQ(t.json["verificationResponse"]["reasoncode"], 438) << t.body;
  // Garbage in the identity is a verdict too (438), not a request error.
  Answer g = Post("/stir/v1/verification", VerifyBody("not a jws;info=<x>"));
  EXPECT_EQ(g.status, 200) << g.body;
  EXPECT_EQ(g.json["verificationResponse"]["reasoncode"], 438) << g.body;
}

TEST_F(RestTest, HeartbeatWithoutIdentityIs428NotAnError) {
  // Oracle's SBC probes with a verificationRequest that carries no identity.
  for (const char* body :
       {R"({"verificationRequest":{}})",
        R"({"verificationRequest":{"from":{"tn":"12155550121"},"to":{"tn":["12155550131"]},"time":1}})",
        R"({"verificationRequest":{"identity":""}})"}) {
    Answer a = Post("/stir/v1/verification", body);
    EXPECT_EQ(a.status, 200) << body << a.body;
    EXPECT_EQ(a.json, Json::parse(R"({"verificationResponse":{"reasoncode":428,
      "reasontext":"Use Identity Header",
      "reasondesc":"The request carries no Identity header to verify",
      "verstat":"No-TN-Validation"}})")) << a.body;
  }
}

TEST_F(RestTest, ThreeGppMsNamesAreAcceptedAndAnsweredInKind) {
  Answer s = Post("/stir/v1/signing",
                  R"({"signingRequest":{"attest":"B","orig":{"tn":"+1 (215) 555-0121"},)"
                  R"("dest":{"tn":["12155550131"]},"iat":)" +
                      std::to_string(absl::ToUnixSeconds(absl::Now())) +
                      R"(,"requestId":"ms-1","ppt":"shaken"}})");
  ASSERT_EQ(s.status, 200) << s.body;
  const Json& sr = s.json["signingResponse"];
  EXPECT_FALSE(sr.contains("identity"));
  EXPECT_EQ(sr["requestId"], "ms-1");
  const std::string identity = sr["identityHeader"];
  Answer v = Post("/stir/v1/verification",
                  Json{{"verificationRequest",
                        {{"identityHeader", identity},
                         {"from", {{"tn", kOrig}}},
                         {"to", {{"tn", kDest}}},  // a string in the Ms API
                         {"time", absl::ToUnixSeconds(absl::Now())},
                         {"requestId", "ms-2"}}}}
                      .dump());
  ASSERT_EQ(v.status, 200) << v.body;
  EXPECT_EQ(v.json, Json::parse(R"({"verificationResponse":{"verstatValue":"TN-Validation-Passed",
    "verifyResults":[{"verifyResult":{"ppt":"shaken","status":"pass"}}],"requestId":"ms-2"}})"))
      << v.body;
  // identityHeaders[] alongside: every header gets its result, in order.
  Answer two = Post("/stir/v1/verification",
                    Json{{"verificationRequest",
                          {{"identityHeader", identity},
                           {"identityHeaders", {"garbage;info=<https://x.test/c.pem>"}},
                           {"from", {{"tn", kOrig}}},
                           {"to", {{"tn", kDest}}},
                           {"time", absl::ToUnixSeconds(absl::Now())}}}}
                        .dump());
  ASSERT_EQ(two.status, 200) << two.body;
  const Json& r = two.json["verificationResponse"];
  EXPECT_EQ(r["verstatValue"], "TN-Validation-Passed");
  ASSERT_EQ(r["verifyResults"].size(), 2u) << two.body;
  EXPECT_EQ(r["verifyResults"][1]["verifyResult"]["status"], "fail");
  EXPECT_EQ(r["verifyResults"][1]["verifyResult"]["reasonCode"], 438);
  // Ms errors are plain {"error": ...} documents.
  Answer e = Post("/stir/v1/signing", R"({"signingRequest":{"attest":"A","requestId":"x"}})");
  EXPECT_EQ(e.status, 400);
  EXPECT_EQ(e.json["error"], "SVC4001: Missing mandatory parameter 'orig'") << e.body;
}

// rph (RFC 8443) in the Ms dialect: a signingRequest with ppt "rph", then a verificationRequest
// whose protectedHeaders carry the Resource-Priority: verstatPriority; and divResult for a div.
TEST_F(RestTest, ThreeGppRphAndDivResults) {
  const int64_t now = absl::ToUnixSeconds(absl::Now());
  Answer shaken = Post("/stir/v1/signing", SignBody());
  ASSERT_EQ(shaken.status, 200) << shaken.body;
  Answer rph = Post("/stir/v1/signing",
                    Json{{"signingRequest",
                          {{"ppt", "rph"}, {"rph", {{"auth", {"ets.0"}}}},
                           {"orig", {{"tn", kOrig}}}, {"dest", {{"tn", {kDest}}}},
                           {"iat", now}, {"requestId", "rph-1"}}}}
                        .dump());
  ASSERT_EQ(rph.status, 200) << rph.body;
  const std::string rph_identity = rph.json["signingResponse"]["identityHeader"];
  EXPECT_NE(rph_identity.find(";ppt=rph"), std::string::npos);
  auto verify = [&](const std::string& priority) {
    return Post("/stir/v1/verification",
                Json{{"verificationRequest",
                      {{"identityHeader", shaken.json["signingResponse"]["identity"]},
                       {"identityHeaders", {rph_identity}},
                       {"protectedHeaders", {"Via: SIP/2.0/TLS x", "resource-priority: " + priority}},
                       {"from", {{"tn", kOrig}}},
                       {"to", {{"tn", kDest}}},
                       {"time", now}}}}
                    .dump());
  };
  Answer v = verify("ets.0");
  ASSERT_EQ(v.status, 200) << v.body;
  const Json& r = v.json["verificationResponse"];
  EXPECT_EQ(r["verstatValue"], "TN-Validation-Passed");
  EXPECT_EQ(r["verstatPriority"], "RPH-Validation-Passed") << v.body;
  EXPECT_EQ(r["verifyResults"][1]["verifyResult"]["ppt"], "rph");
  EXPECT_FALSE(r.contains("divResult"));
  EXPECT_FALSE(r.contains("displayName"));
  v = verify("wps.1");
  EXPECT_EQ(v.json["verificationResponse"]["verstatPriority"], "RPH-Validation-Failed") << v.body;
  EXPECT_EQ(v.json["verificationResponse"]["verifyResults"][1]["verifyResult"]["status"], "fail");
  v = verify("ets");
  EXPECT_EQ(v.status, 400) << v.body;

  // A div signed through gRPC, verified through REST: one divResult.
  auto c = env_->NewClient("sbc1.test");
  ASSERT_OK(c);
  absl::StatusOr<client::SignResult> div =
      (*c)->Sign({.dest_tns = {"12155550141"},
                  .div_original = shaken.json["signingResponse"]["identity"].get<std::string>()});
  ASSERT_OK(div);
  v = Post("/stir/v1/verification",
           Json{{"verificationRequest",
                 {{"identityHeader", shaken.json["signingResponse"]["identity"]},
                  {"identityHeaders", {div->identity}},
                  {"from", {{"tn", kOrig}}},
                  {"to", {{"tn", "12155550141"}}},
                  {"time", now}}}}
               .dump());
  ASSERT_EQ(v.status, 200) << v.body;
  EXPECT_EQ(v.json["verificationResponse"]["divResult"],
            Json::parse(R"([{"div":{"tn":"12155550131"},"verstatValue":"TN-Validation-Passed"}])"))
      << v.body;
}

TEST_F(RestTest, EveryErrorDocument) {
  const std::string ok = SignBody();
  const std::vector<std::string> json = {"Content-Type: application/json"};
  ExpectError(Post("/stir/v1/nothing", ok), 404, "serviceException", "SVC4003");
  ExpectError(Post("/stir/v1/signing", "", json, "sbc1.test", "GET"), 405, "policyException",
              "POL4050");
  ExpectError(Post("/stir/v1/signing", ok, {"Content-Type: application/json", "Accept: text/html"}),
              406, "serviceException", "SVC4002");
  ExpectError(Post("/stir/v1/signing", ok, {"Content-Type: text/plain"}), 415, "serviceException",
              "SVC4004");
  // Without Content-Length (chunked): 411.
  ExpectError(Post("/stir/v1/signing", ok, {"Content-Type: application/json",
                                            "Transfer-Encoding: chunked"}),
              411, "serviceException", "SVC4007");
  ExpectError(Post("/stir/v1/signing", "", json), 400, "serviceException", "SVC4000");
  ExpectError(Post("/stir/v1/signing", std::string(5000, ' '), json), 413, "serviceException",
              "SVC4005");
  ExpectError(Post("/stir/v1/signing", "{\"signingRequest\":", json), 400, "serviceException",
              "SVC4006");
  ExpectError(Post("/stir/v1/signing", "[1,2]", json), 400, "serviceException", "SVC4006");
  Answer missing = Post("/stir/v1/signing", R"({"signingRequest":{"attest":"A"}})");
  ExpectError(missing, 400, "serviceException", "SVC4001");
  EXPECT_EQ(missing.json["requestError"]["serviceException"]["variables"], Json::array({"orig"}));
  ExpectError(Post("/stir/v1/signing", "{}"), 400, "serviceException", "SVC4001");
  for (const auto& [body, field] : std::vector<std::pair<std::string, std::string>>{
           {R"({"signingRequest":{"attest":"D","orig":{"tn":"1"},"dest":{"tn":["2"]}}})", "attest"},
           {R"({"signingRequest":{"attest":"A","orig":{"tn":"12a"},"dest":{"tn":["2"]}}})", "orig.tn"},
           {R"({"signingRequest":{"attest":"A","orig":{"tn":"1"},"dest":{"tn":[]}}})", "dest.tn"},
           {R"({"signingRequest":{"attest":"A","orig":{"tn":"1"},"dest":{"tn":["2"]},"origid":"x"}})",
            "origid"},
           {R"({"signingRequest":{"attest":"A","orig":{"tn":"1"},"dest":{"tn":["2"]},"iat":"now"}})",
            "iat"},
           {R"({"signingRequest":{"attest":"A","orig":{"uri":"sip:a@b"},"dest":{"tn":["2"]}}})",
            "orig.uri"},
       }) {
    Answer a = Post("/stir/v1/signing", body);
    ExpectError(a, 400, "serviceException", "SVC4005");
    EXPECT_EQ(a.json["requestError"]["serviceException"]["variables"][0], field) << a.body;
  }
  // Hostile documents: deep nesting, invalid UTF-8, numbers out of range.
  ExpectError(Post("/stir/v1/signing", "{\"signingRequest\":" + std::string(200, '[') +
                                           std::string(200, ']') + "}"),
              400, "serviceException", "SVC4006");
  ExpectError(Post("/stir/v1/signing", "{\"signingRequest\":{\"attest\":\"\xff\"}}"), 400,
              "serviceException", "SVC4006");
  ExpectError(Post("/stir/v1/signing", R"({"signingRequest":{"attest":"A","attest":"B"}})"), 400,
              "serviceException", "SVC4006");
  for (const char* iat : {"1e30", "18446744073709551615", "-1.5", "null"}) {
    Answer a = Post("/stir/v1/signing",
                    absl::StrCat(R"({"signingRequest":{"attest":"A","orig":{"tn":"12155550121"},)",
                                 R"("dest":{"tn":["12155550131"]},"iat":)", iat, "}}"));
    if (std::string(iat) == "null") {
      EXPECT_EQ(a.status, 200) << a.body;  // null is absent: the server's clock
    } else {
      ExpectError(a, 400, "serviceException", "SVC4005");
    }
  }
  // A profile the daemon does not have (the core's refusal, mapped).
  Answer p = Post("/stir/v1/signing",
                  R"({"signingRequest":{"attest":"A","orig":{"tn":"1"},"dest":{"tn":["2"]},)"
                  R"("profileId":"nope"}})");
  EXPECT_EQ(p.status, 400) << p.body;
  EXPECT_THAT(p.json["error"].get<std::string>(), HasSubstr("SVC4005: Invalid 'profileId'"));
  // Verification requests: E1 (missing), E2 (malformed).
  for (const auto& [body, id, field] : std::vector<std::array<std::string, 3>>{
           {R"({"verificationRequest":{"identity":"x","to":{"tn":["1"]},"time":1}})", "SVC4001", "from"},
           {R"({"verificationRequest":{"identity":"x","from":{"tn":"1"},"time":1}})", "SVC4001", "to"},
           {R"({"verificationRequest":{"identity":"x","from":{"tn":"1"},"to":{"tn":["1"]}}})", "SVC4001", "time"},
           {R"({"verificationRequest":{"identity":"x","from":{"tn":"1"},"to":{"tn":["1"]},"time":1.5}})", "SVC4005", "time"},
           {R"({"verificationRequest":{"identity":7,"from":{"tn":"1"},"to":{"tn":["1"]},"time":1}})", "SVC4005", "identity"},
           {R"({"verificationRequest":{"identity":"x","from":"1","to":{"tn":["1"]},"time":1}})", "SVC4005", "from"},
       }) {
    Answer a = Post("/stir/v1/verification", body);
    ExpectError(a, 400, "serviceException", id);
    EXPECT_EQ(a.json["requestError"]["serviceException"]["variables"][0], field) << a.body;
  }
}

TEST_F(RestTest, MutualTlsRefusals) {
  const std::string ok = SignBody();
  // No client certificate, one from a CA the server does not trust, and one whose name no rule
  // grants: 403 with a policyException, before anything is signed.
  for (const std::string client : {"", "rogue.test", "san-other.test"}) {
    Answer a = Post("/stir/v1/signing", ok, {"Content-Type: application/json"}, client);
    ExpectError(a, 403, "policyException", "POL4030");
  }
  Answer none = Post("/stir/v1/signing", ok, {"Content-Type: application/json"}, "");
  EXPECT_THAT(none.body, HasSubstr("no client certificate"));
  Answer rogue = Post("/stir/v1/signing", ok, {"Content-Type: application/json"}, "rogue.test");
  EXPECT_THAT(rogue.body, HasSubstr("not trusted"));
  // A client that may only Verify cannot sign, and may verify.
  ExpectError(Post("/stir/v1/signing", ok, {"Content-Type: application/json"}, "verify-only.test"),
              403, "policyException", "POL4030");
  EXPECT_EQ(Post("/stir/v1/verification", R"({"verificationRequest":{}})",
                 {"Content-Type: application/json"}, "verify-only.test")
                .status,
            200);
  // A client limited to profile "file" signs there (attest C) and not with the default.
  EXPECT_EQ(Post("/stir/v1/signing", ok, {"Content-Type: application/json"}, "file-only.test").status,
            403);
  Answer file = Post("/stir/v1/signing",
                     R"({"signingRequest":{"attest":"C","orig":{"tn":"12155550121"},)"
                     R"("dest":{"tn":["12155550131"]},"profileId":"file"}})",
                     {"Content-Type: application/json"}, "file-only.test");
  EXPECT_EQ(file.status, 200) << file.body;
}

TEST_F(RestTest, KeepAliveSeveralRequestsOnOneConnection) {
  std::vector<std::string> argv = CurlBase("sbc1.test");
  const std::string body = SignBody();
  for (int i = 0; i < 5; ++i) {
    if (i > 0) argv.push_back("--next");
    argv.insert(argv.end(), {"-H", "Content-Type: application/json", "--data-binary", body, "-o",
                             "/dev/null", "-w", "%{http_code} %{num_connects}\n",
                             Url("/stir/v1/signing")});
    argv.insert(argv.end(), {"--cacert", env_->TlsCaFile(), "--cert",
                             env_->ClientCertFile("sbc1.test"), "--key",
                             env_->ClientKeyFile("sbc1.test"), "--resolve",
                             absl::StrCat("localhost:", env_->daemon().rest_port(), ":127.0.0.1")});
  }
  RunResult r = RunCommand(argv);
  ASSERT_EQ(r.exit_code, 0) << r.output();
  EXPECT_EQ(r.out, "200 1\n200 0\n200 0\n200 0\n200 0\n") << "one connection, reused";
}

// Many SBC connections at once, each with keep-alive requests; token signatures complete on the
// key pool's workers, which resume the suspended HTTP requests.
TEST_F(RestTest, ConcurrentConnectionsEachAnsweredInOrder) {
  constexpr int kClients = 8, kRequests = 20;
  std::vector<std::thread> threads;
  std::vector<RunResult> results(kClients);
  for (int c = 0; c < kClients; ++c) {
    threads.emplace_back([&, c] {
      std::vector<std::string> argv = CurlBase("sbc1.test");
      for (int i = 0; i < kRequests; ++i) {
        if (i > 0) {
          argv.push_back("--next");
          std::vector<std::string> base = CurlBase("sbc1.test");
          argv.insert(argv.end(), base.begin() + 1, base.end());
        }
        argv.insert(argv.end(), {"-H", "Content-Type: application/json", "-H",
                                 absl::StrCat("X-RequestID: c", c, "-", i), "--data-binary",
                                 SignBody(), "-o", "/dev/null", "-w", "%{http_code}\n",
                                 Url("/stir/v1/signing")});
      }
      results[c] = RunCommand(argv, {.timeout = absl::Seconds(60)});
    });
  }
  for (auto& t : threads) t.join();
  for (const RunResult& r : results) {
    EXPECT_EQ(r.exit_code, 0) << r.output();
    EXPECT_EQ(std::count(r.out.begin(), r.out.end(), '\n'), kRequests) << r.out;
    EXPECT_EQ(r.out.find_first_not_of("200\n"), std::string::npos) << r.out;
  }
}

TEST_F(RestTest, PythonClient) {
  RunResult r = RunCommand(
      {"python3", std::string(SHAKEN_SOURCE_DIR) + "/tests/rest_client.py", "--port",
       std::to_string(env_->daemon().rest_port()), "--ca", env_->TlsCaFile(), "--cert",
       env_->ClientCertFile("sbc1.test"), "--key", env_->ClientKeyFile("sbc1.test"),
       "--untrusted-cert", env_->ClientCertFile("rogue.test"), "--untrusted-key",
       env_->ClientKeyFile("rogue.test"), "--x5u", env_->token_x5u()},
      {.timeout = absl::Seconds(60)});
  EXPECT_EQ(r.exit_code, 0) << r.output();
  EXPECT_THAT(r.out, HasSubstr("rest_client: all checks passed"));
}

TEST_F(RestTest, MetricsCountRestRequests) {
  ASSERT_EQ(Post("/stir/v1/signing", SignBody()).status, 200);
  RunResult m = RunCommand({"curl", "-sS", "--max-time", "10",
                            absl::StrCat("http://127.0.0.1:", env_->daemon().metrics_port(),
                                         "/metrics")});
  EXPECT_THAT(m.out, HasSubstr("shaken_rest_requests_total{endpoint=\"signing\",status=\"200\"}"));
  EXPECT_THAT(m.out, HasSubstr("shaken_rest_duration_seconds_count{endpoint=\"signing\"}"));
}

// Oracle's SBC uses a base path; plain HTTP only when the configuration says so.
TEST(RestBasePathTest, OracleBasePath) {
  auto env = DaemonEnv::Create({.listen_extra_yaml = "  rest:\n"
                                                     "    address: 127.0.0.1:0\n"
                                                     "    base_path: /StirShakenWeb/resources/v1\n"});
  ASSERT_OK(env);
  const int port = (*env)->daemon().rest_port();
  auto post = [&](const std::string& path) {
    return RunCommand({"curl", "-sS", "--max-time", "10", "-o", "/dev/null", "-w", "%{http_code}",
                       "--cacert", (*env)->TlsCaFile(), "--cert",
                       (*env)->ClientCertFile("sbc1.test"), "--key",
                       (*env)->ClientKeyFile("sbc1.test"), "--resolve",
                       absl::StrCat("localhost:", port, ":127.0.0.1"), "-H",
                       "Content-Type: application/json", "--data-binary",
                       R"({"verificationRequest":{}})",
                       absl::StrCat("https://localhost:", port, path)})
        .out;
  };
  EXPECT_EQ(post("/StirShakenWeb/resources/v1/stir/v1/verification"), "200");
  EXPECT_EQ(post("/stir/v1/verification"), "404");
}

// SIGHUP with a changed listen.rest: a restart setting; the listener keeps what it was started
// with, reload after reload.
TEST(RestReloadTest, ListenRestChangesOnlyAtRestart) {
  auto env = DaemonEnv::Create({.listen_extra_yaml = "  rest:\n    address: 127.0.0.1:0\n"});
  ASSERT_OK(env);
  const int port = (*env)->daemon().rest_port();
  auto heartbeat = [&](const std::string& path) {
    return RunCommand({"curl", "-sS", "--max-time", "10", "-o", "/dev/null", "-w", "%{http_code}",
                       "--cacert", (*env)->TlsCaFile(), "--cert",
                       (*env)->ClientCertFile("sbc1.test"), "--key",
                       (*env)->ClientKeyFile("sbc1.test"), "--resolve",
                       absl::StrCat("localhost:", port, ":127.0.0.1"), "-H",
                       "Content-Type: application/json", "--data-binary",
                       R"({"verificationRequest":{}})",
                       absl::StrCat("https://localhost:", port, path)})
        .out;
  };
  std::string yaml = (*env)->config_yaml();
  const std::string at = "    address: 127.0.0.1:0\n";
  yaml.replace(yaml.find(at), at.size(), at + "    base_path: /StirShakenWeb/resources/v1\n");
  ASSERT_OK_AND_ASSIGN(daemon::Config next, daemon::ParseConfig(yaml, "next.yaml"));
  for (int i = 0; i < 2; ++i) {
    (void)(*env)->daemon().Reload(next);
    EXPECT_EQ(heartbeat("/stir/v1/verification"), "200") << "reload " << i;
    EXPECT_EQ(heartbeat("/StirShakenWeb/resources/v1/stir/v1/verification"), "404");
    EXPECT_EQ((*env)->daemon().rest_port(), port);
  }
}

// SIGTERM's drain on the REST listener: a request in progress (a slow token signature) is
// finished, a new one meanwhile gets 503 POL5000.
TEST(RestDrainTest, DrainFinishesInFlightAndRefusesNew) {
  if (absl::StatusOr<FaultP11> f = FaultP11::Attach(SHAKEN_FAULT_P11_MODULE); f.ok()) {
    ASSERT_OK(f->Configure("sign_delay_us=0"));
  }
  auto env = DaemonEnv::Create({.listen_extra_yaml = "  rest:\n    address: 127.0.0.1:0\n",
                                .pkcs11_module = SHAKEN_FAULT_P11_MODULE});
  ASSERT_OK(env);
  absl::StatusOr<FaultP11> fault = FaultP11::Attach(SHAKEN_FAULT_P11_MODULE);
  ASSERT_OK(fault);
  ASSERT_OK(fault->Configure("sign_delay_us=1500000"));
  const int port = (*env)->daemon().rest_port();
  auto sign = [&]() {
    return RunCommand({"curl", "-sS", "--max-time", "20", "-o", "/dev/null", "-w", "%{http_code}",
                       "--cacert", (*env)->TlsCaFile(), "--cert",
                       (*env)->ClientCertFile("sbc1.test"), "--key",
                       (*env)->ClientKeyFile("sbc1.test"), "--resolve",
                       absl::StrCat("localhost:", port, ":127.0.0.1"), "-H",
                       "Content-Type: application/json", "--data-binary",
                       R"({"signingRequest":{"attest":"A","orig":{"tn":"12155550121"},)"
                       R"("dest":{"tn":["12155550131"]}}})",
                       absl::StrCat("https://localhost:", port, "/stir/v1/signing")},
                      {.timeout = absl::Seconds(30)});
  };
  RunResult in_flight;
  std::thread first([&] { in_flight = sign(); });
  absl::SleepFor(absl::Milliseconds(400));  // the first request waits on the token
  std::thread stop([&] { (*env)->daemon().Shutdown(); });
  absl::SleepFor(absl::Milliseconds(200));
  RunResult refused = sign();
  first.join();
  stop.join();
  ASSERT_OK(fault->Configure("sign_delay_us=0"));
  EXPECT_EQ(in_flight.out, "200") << in_flight.output();
  EXPECT_EQ(refused.out, "503") << refused.output();
}

}  // namespace
}  // namespace shaken::testing
