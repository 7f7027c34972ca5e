#include "daemon/rest/rest_json.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "nlohmann/json.hpp"
#include "stir/tn_auth_list.h"

namespace shaken::daemon::rest {
namespace {

using Json = nlohmann::json;

TEST(RestJson, AtisSigningRequestWithEveryField) {
  SigningInput in = ParseSigningRequest(R"({"signingRequest":{"attest":"A",
    "dest":{"tn":["12155550131","+1 215 555 0132"]},"iat":1443208345,
    "orig":{"tn":"+1-215-555-0121"},"origid":"123e4567-e89b-12d3-a456-426655440000",
    "unknown":{"ignored":true}}})");
  ASSERT_FALSE(in.error.has_value()) << in.error->message_id;
  EXPECT_EQ(in.dialect, Dialect::kAtis);
  EXPECT_EQ(in.attest, "A");
  EXPECT_EQ(in.orig_tn, "+1-215-555-0121");
  EXPECT_EQ(in.dest_tns, (std::vector<std::string>{"12155550131", "+1 215 555 0132"}));
  EXPECT_EQ(in.iat, 1443208345);
  EXPECT_EQ(in.origid, "123e4567-e89b-12d3-a456-426655440000");
  EXPECT_FALSE(in.request_id.has_value());
  EXPECT_EQ(Json::parse(SigningAnswer(in.dialect, "jws;info=<x>", in.request_id)),
            Json::parse(R"({"signingResponse":{"identity":"jws;info=<x>"}})"));
}

TEST(RestJson, ThreeGppSigningRequestIsAnsweredInKind) {
  SigningInput in = ParseSigningRequest(
      R"({"signingRequest":{"attest":"C","orig":{"tn":"1"},"dest":{"tn":["2"]},"iat":1,)"
      R"("ppt":"","profileId":"file","requestId":"r-1"}})");
  ASSERT_FALSE(in.error.has_value());
  EXPECT_EQ(in.dialect, Dialect::k3gpp);
  EXPECT_EQ(in.profile, "file");
  EXPECT_EQ(Json::parse(SigningAnswer(in.dialect, "jws", in.request_id)),
            Json::parse(R"({"signingResponse":{"identityHeader":"jws","requestId":"r-1"}})"));
  // ppt rph (RFC 8443): rph.auth and sph, no attest.
  SigningInput rph = ParseSigningRequest(
      R"({"signingRequest":{"orig":{"tn":"1"},"dest":{"tn":["2"]},"ppt":"rph",)"
      R"("rph":{"auth":["ets.0","wps.1"]},"sph":"psap-callback"}})");
  ASSERT_FALSE(rph.error.has_value()) << rph.error->variables[0];
  EXPECT_EQ(rph.rph_auth, (std::vector<std::string>{"ets.0", "wps.1"}));
  EXPECT_EQ(rph.sph, "psap-callback");
  EXPECT_EQ(rph.attest, "");
  const std::pair<const char*, std::string_view> bad_bodies[] = {
      {R"({"signingRequest":{"attest":"A","orig":{"tn":"1"},"dest":{"tn":["2"]},"ppt":"div"}})",
       "SVC4005"},
      {R"({"signingRequest":{"attest":"A","orig":{"tn":"1"},"dest":{"tn":["2"]},"rph":{}}})",
       "SVC4005"},
      {R"({"signingRequest":{"orig":{"tn":"1"},"dest":{"tn":["2"]},"ppt":"rph","rph":[]}})",
       "SVC4005"},
      {R"({"signingRequest":{"orig":{"tn":"1"},"dest":{"tn":["2"]},"ppt":"rph","rph":{}}})",
       "SVC4001"},  // rph.auth missing
      {R"({"signingRequest":{"attest":"A","orig":{"tn":"1"},"dest":{"tn":["2"]},"sph":"x"}})",
       "SVC4005"},
      {R"({"signingRequest":{"attest":"A","orig":{"tn":"1"},"dest":{"tn":["2"]},"ppt":"rcd"}})",
       "SVC4005"},
      {R"({"signingRequest":{"attest":"A","orig":{"tn":"1"},"dest":{"tn":["2"]},"div":{}}})",
       "SVC4005"},
      {R"({"signingRequest":{"attest":"A","orig":{"uri":"sip:a@b"},"dest":{"tn":["2"]}}})",
       "SVC4005"}};
  for (const auto& [body, message_id] : bad_bodies) {
    SigningInput bad = ParseSigningRequest(body);
    ASSERT_TRUE(bad.error.has_value()) << body;
    EXPECT_EQ(bad.error->message_id, message_id) << body;
  }
}

TEST(RestJson, SigningErrorsNameTheMember) {
  struct Case {
    const char* body;
    std::string_view id;
    std::string variable;
  };
  for (const Case& c : std::vector<Case>{
           {"", "SVC4006", ""},
           {"[]", "SVC4006", ""},
           {R"({"signingRequest":1})", "SVC4005", "signingRequest"},
           {R"({"other":{}})", "SVC4001", "signingRequest"},
           {R"({"signingRequest":{"orig":{"tn":"1"},"dest":{"tn":["2"]}}})", "SVC4001", "attest"},
           {R"({"signingRequest":{"attest":"A","dest":{"tn":["2"]}}})", "SVC4001", "orig"},
           {R"({"signingRequest":{"attest":"A","orig":{},"dest":{"tn":["2"]}}})", "SVC4001", "orig.tn"},
           {R"({"signingRequest":{"attest":"A","orig":{"tn":"1"}}})", "SVC4001", "dest"},
           {R"({"signingRequest":{"attest":"A","orig":{"tn":"1"},"dest":{"tn":[]}}})", "SVC4005", "dest.tn"},
           {R"({"signingRequest":{"attest":"A","orig":{"tn":"1"},"dest":{"tn":[2]}}})", "SVC4005", "dest.tn"},
           {R"({"signingRequest":{"attest":"A","orig":{"tn":"1x"},"dest":{"tn":["2"]}}})", "SVC4005", "orig.tn"},
           {R"({"signingRequest":{"attest":"a","orig":{"tn":"1"},"dest":{"tn":["2"]}}})", "SVC4005", "attest"},
           {R"({"signingRequest":{"attest":"A","orig":{"tn":"1"},"dest":{"tn":["2"]},"iat":1.5}})", "SVC4005", "iat"},
           {R"({"signingRequest":{"attest":"A","orig":{"tn":"1"},"dest":{"tn":["2"]},"origid":"x"}})", "SVC4005", "origid"},
       }) {
    SigningInput in = ParseSigningRequest(c.body);
    ASSERT_TRUE(in.error.has_value()) << c.body;
    EXPECT_EQ(in.error->message_id, c.id) << c.body;
    if (!c.variable.empty()) {
      ASSERT_FALSE(in.error->variables.empty()) << c.body;
      EXPECT_EQ(in.error->variables[0], c.variable) << c.body;
    }
  }
}

TEST(RestJson, VerificationRequestsAndTheHeartbeat) {
  VerificationInput in = ParseVerificationRequest(R"({"verificationRequest":{
    "from":{"tn":"12155550121"},"to":{"tn":["12155550131"]},"time":1443208345,"identity":"h1"}})");
  ASSERT_FALSE(in.error.has_value());
  EXPECT_FALSE(in.heartbeat);
  EXPECT_EQ(in.dialect, Dialect::kAtis);
  EXPECT_EQ(in.identities, std::vector<std::string>{"h1"});
  EXPECT_EQ(in.to_tns, std::vector<std::string>{"12155550131"});
  EXPECT_EQ(in.time, 1443208345);

  VerificationInput ms = ParseVerificationRequest(R"({"verificationRequest":{
    "identityHeader":"h1","identityHeaders":["h2","h3"],"from":{"tn":"1"},"to":{"tn":"2"},
    "time":5,"requestId":"r"}})");
  ASSERT_FALSE(ms.error.has_value());
  EXPECT_EQ(ms.dialect, Dialect::k3gpp);
  EXPECT_EQ(ms.identities, (std::vector<std::string>{"h1", "h2", "h3"}));
  EXPECT_EQ(ms.to_tns, std::vector<std::string>{"2"});

  for (const char* body : {R"({"verificationRequest":{}})",
                           R"({"verificationRequest":{"identity":"","from":"bad"}})",
                           R"({"verificationRequest":{"identityHeaders":[]}})"}) {
    VerificationInput hb = ParseVerificationRequest(body);
    EXPECT_FALSE(hb.error.has_value()) << body;
    EXPECT_TRUE(hb.heartbeat) << body;
  }
  EXPECT_EQ(Json::parse(HeartbeatAnswer(Dialect::kAtis, std::nullopt)),
            Json::parse(R"({"verificationResponse":{"reasoncode":428,
              "reasontext":"Use Identity Header",
              "reasondesc":"The request carries no Identity header to verify",
              "verstat":"No-TN-Validation"}})"));
  EXPECT_EQ(Json::parse(HeartbeatAnswer(Dialect::k3gpp, "r"))["verificationResponse"]["requestId"],
            "r");

  VerificationInput no_time = ParseVerificationRequest(
      R"({"verificationRequest":{"identity":"h","from":{"tn":"1"},"to":{"tn":["2"]}}})");
  ASSERT_TRUE(no_time.error.has_value());
  EXPECT_EQ(no_time.error->message_id, "SVC4001");
  EXPECT_EQ(no_time.error->variables, std::vector<std::string>{"time"});
}

TEST(RestJson, ProtectedHeadersAndCallExtras) {
  VerificationInput in = ParseVerificationRequest(
      R"({"verificationRequest":{"identityHeader":"h","from":{"tn":"1"},"to":{"tn":"2"},)"
      R"("time":1,"protectedHeaders":["Resource-Priority: ets.0, wps.1","Via: x",)"
      R"(" RESOURCE-PRIORITY :esnet.0"]}})");
  ASSERT_FALSE(in.error.has_value());
  EXPECT_EQ(in.resource_priority, (std::vector<std::string>{"ets.0, wps.1", "esnet.0"}));
  VerificationInput bad = ParseVerificationRequest(
      R"({"verificationRequest":{"identityHeader":"h","from":{"tn":"1"},"to":{"tn":"2"},)"
      R"("time":1,"protectedHeaders":["no colon"]}})");
  ASSERT_TRUE(bad.error.has_value());
  EXPECT_EQ(bad.error->variables.front(), "protectedHeaders");

  VerdictText pass{.passed = true, .verstat = "TN-Validation-Passed", .ppt = "shaken"};
  const CallExtras extras{.verstat_priority = "RPH-Validation-Passed",
                          .div_results = {{"12155550131", "TN-Validation-Passed"}},
                          .display_name = "Acme"};
  const Json ms = Json::parse(VerificationAnswer(Dialect::k3gpp, pass, {pass}, "r", extras));
  EXPECT_EQ(ms["verificationResponse"]["verstatPriority"], "RPH-Validation-Passed");
  EXPECT_EQ(ms["verificationResponse"]["displayName"], "Acme");
  EXPECT_EQ(ms["verificationResponse"]["divResult"][0]["div"]["tn"], "12155550131");
  // The ATIS dialect has none of them.
  EXPECT_EQ(Json::parse(VerificationAnswer(Dialect::kAtis, pass, {pass}, std::nullopt, extras)),
            Json::parse(R"({"verificationResponse":{"verstat":"TN-Validation-Passed"}})"));
}

TEST(RestJson, VerificationAnswers) {
  VerdictText pass{.passed = true, .verstat = "TN-Validation-Passed", .ppt = "shaken"};
  VerdictText fail{.passed = false, .verstat = "TN-Validation-Failed", .sip_code = 438,
                   .sip_reason = "Invalid Identity Header", .detail = "bad \xff signature",
                   .ppt = ""};
  EXPECT_EQ(Json::parse(VerificationAnswer(Dialect::kAtis, pass, {pass}, std::nullopt)),
            Json::parse(R"({"verificationResponse":{"verstat":"TN-Validation-Passed"}})"));
  const Json f = Json::parse(VerificationAnswer(Dialect::kAtis, fail, {fail}, std::nullopt));
  EXPECT_EQ(f["verificationResponse"]["reasoncode"], 438);
  EXPECT_EQ(f["verificationResponse"]["reasondesc"], "bad \xef\xbf\xbd signature")
      << "invalid UTF-8 in a text is replaced, never thrown";
  const Json ms = Json::parse(VerificationAnswer(Dialect::k3gpp, pass, {pass, fail}, "r"));
  EXPECT_EQ(ms, Json::parse(R"({"verificationResponse":{"verstatValue":"TN-Validation-Passed",
    "verifyResults":[{"verifyResult":{"ppt":"shaken","status":"pass"}},
      {"verifyResult":{"ppt":"shaken","status":"fail","reasonCode":438,
       "reasonText":"Invalid Identity Header","reasonDescription":"bad \ufffd signature"}}],
    "requestId":"r"}})"));
}

TEST(RestJson, ErrorDocumentsAndStatusMapping) {
  EXPECT_EQ(Json::parse(ErrorDocument(MissingParameter("to"), Dialect::kAtis)),
            Json::parse(R"({"requestError":{"serviceException":{"messageId":"SVC4001",
              "text":"Missing mandatory parameter '%1'","variables":["to"]}}})"));
  EXPECT_EQ(Json::parse(ErrorDocument(Internal(503), Dialect::kAtis)),
            Json::parse(R"({"requestError":{"policyException":{"messageId":"POL5000",
              "text":"Internal Server Error. Please try again later","variables":[]}}})"));
  EXPECT_EQ(Json::parse(ErrorDocument(InvalidValue("iat", "too old"), Dialect::k3gpp)),
            Json::parse(R"({"error":"SVC4005: Invalid 'iat' parameter value: too old"})"));
  EXPECT_EQ(ErrorFromStatus(absl::InvalidArgumentError("orig.tn is required")).variables[0],
            "orig.tn");
  EXPECT_EQ(ErrorFromStatus(absl::InvalidArgumentError("unknown profile \"x\"")).variables[0],
            "profileId");
  EXPECT_EQ(ErrorFromStatus(absl::InvalidArgumentError("Weird: thing")).variables[0], "request");
  EXPECT_EQ(ErrorFromStatus(absl::PermissionDeniedError("no")).status, 403);
  EXPECT_EQ(ErrorFromStatus(absl::UnavailableError("token")).status, 503);
  // A delegate profile's scope refusal is the request's number; other preconditions are ours.
  const RestError scope = ErrorFromStatus(stir::CheckOrigInScope(
      {{stir::TnAuthEntry::Kind::kOne, "12155551000", 0}}, "12155550199", "profile x"));
  EXPECT_EQ(scope.status, 400);
  EXPECT_EQ(scope.message_id, "SVC4005");
  EXPECT_EQ(scope.variables[0], "orig.tn");
  EXPECT_EQ(ErrorFromStatus(absl::FailedPreconditionError("certificate expired")).status, 503);
  EXPECT_EQ(ErrorFromStatus(absl::ResourceExhaustedError("queue")).status, 503);
  EXPECT_EQ(ErrorFromStatus(absl::InternalError("bug")).status, 500);
}

TEST(RestJson, MediaTypes) {
  EXPECT_TRUE(AcceptsJson("application/json"));
  EXPECT_TRUE(AcceptsJson("text/html, application/*;q=0.5"));
  EXPECT_TRUE(AcceptsJson("*/*"));
  EXPECT_FALSE(AcceptsJson("text/html, application/xml"));
  EXPECT_EQ(MediaType(" Application/JSON ; charset=utf-8"), "application/json");
  EXPECT_TRUE(ValidRequestId("abc-123"));
  EXPECT_FALSE(ValidRequestId(""));
  EXPECT_FALSE(ValidRequestId("a b"));
  EXPECT_FALSE(ValidRequestId(std::string(129, 'a')));
}

}  // namespace
}  // namespace shaken::daemon::rest
