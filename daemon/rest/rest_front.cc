#include "daemon/rest/rest_front.h"

#include <openssl/crypto.h>
#include <openssl/x509.h>

#include <cctype>
#include <limits>
#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "stir/absl_compat.h"
#include "stir/json.h"
#include "stir/openssl_util.h"
#include "stir/status_macros.h"

namespace shaken::daemon::rest {
namespace {

using stir::Json;

// Dialect is the vocabulary of a request, and so of its answer: ATIS-1000082, or the 3GPP
// TS 24.229 "Ms" API (identityHeader, verstatValue, verifyResults, plain {"error"} documents).
enum class Dialect { kAtis, k3gpp };

constexpr size_t kMaxRequestIdBytes = 128;

// RestError is one entry of the ATIS-1000082 error catalogue (docs/rest-api.md), filled in.
struct RestError {
  int status = 400;
  std::string_view message_id;
  std::string_view text;  // with %1, %2 for the variables
  std::vector<std::string> variables;
};

RestError MissingBody() { return {400, "SVC4000", "Missing request body", {}}; }
RestError MissingParameter(std::string name) {
  return {400, "SVC4001", "Missing mandatory parameter '%1'", {std::move(name)}};
}
RestError NotAcceptable(std::string type) {
  return {406, "SVC4002", "Requested response body type '%1' is not supported", {std::move(type)}};
}
RestError NotFound() { return {404, "SVC4003", "Requested resource was not found", {}}; }
RestError UnsupportedType() {
  return {415, "SVC4004", "Unsupported request body type, expected '%1'", {"application/json"}};
}
RestError InvalidValue(std::string name, std::string why, int status = 400) {
  return {status, "SVC4005", "Invalid '%1' parameter value: %2", {std::move(name), std::move(why)}};
}
RestError Unparseable(std::string why) {
  return {400, "SVC4006", "Failed to parse received message body: %1", {std::move(why)}};
}
RestError NoLength() { return {411, "SVC4007", "Missing mandatory Content-Length header", {}}; }
RestError MethodNotAllowed() { return {405, "POL4050", "Method not allowed", {}}; }
// shakend's addition to the catalogue: a client that TLS or the clients rules do not admit.
RestError Forbidden(std::string why) {
  return {403, "POL4030", "Client not authorized: %1", {std::move(why)}};
}
RestError Internal(int status) {
  return {status, "POL5000", "Internal Server Error. Please try again later", {}};
}

std::string Dump(const Json& j) {
  // Texts may quote untrusted bytes: replace what is not UTF-8 rather than throw.
  return j.dump(-1, ' ', false, Json::error_handler_t::replace);
}

std::string Expand(const RestError& e) {
  std::string out;
  for (size_t i = 0; i < e.text.size(); ++i) {
    if (e.text[i] == '%' && i + 1 < e.text.size() && e.text[i + 1] >= '1' && e.text[i + 1] <= '9') {
      const size_t k = static_cast<size_t>(e.text[i + 1] - '1');
      if (k < e.variables.size()) out += e.variables[k];
      ++i;
    } else {
      out += e.text[i];
    }
  }
  return out;
}

bool ValidRequestId(std::string_view id) {
  if (id.empty() || id.size() > kMaxRequestIdBytes) return false;
  for (char c : id) {
    if (c < 0x21 || c > 0x7e) return false;
  }
  return true;
}

http::Response JsonResponse(int status, const Json& body, std::string_view request_id) {
  http::Response r;
  r.status = status;
  r.headers.push_back({"Content-Type", "application/json"});
  if (ValidRequestId(request_id)) r.headers.push_back({"X-RequestID", std::string(request_id)});
  r.body = Dump(body);
  return r;
}

http::Response ErrorResponse(const RestError& e, Dialect dialect, std::string_view request_id) {
  Json body;
  if (dialect == Dialect::k3gpp) {
    body = Json{{"error", absl::StrCat(ToAbsl(e.message_id), ": ", Expand(e))}};
  } else {
    const bool policy = e.message_id.substr(0, 3) == "POL";
    body = Json{{"requestError",
                 {{policy ? "policyException" : "serviceException",
                   {{"messageId", e.message_id}, {"text", e.text}, {"variables", e.variables}}}}}};
  }
  http::Response r = JsonResponse(e.status, body, request_id);
  if (e.status == 503) r.headers.push_back({"Retry-After", "1"});
  if (e.status == 405) r.headers.push_back({"Allow", "POST"});
  return r;
}

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// MediaType is the type/subtype of a header value, lower-case, without parameters.
std::string MediaType(std::string_view value) {
  return Lower(Trim(value.substr(0, value.find(';'))));
}

// AcceptsJson: RFC 9110 §12.5.1, media ranges only (a q of 0 still counts: lenient).
bool AcceptsJson(std::string_view accept) {
  while (true) {
    const size_t comma = accept.find(',');
    const std::string type = MediaType(accept.substr(0, comma));
    if (type == "application/json" || type == "application/*" || type == "*/*" || type.empty()) {
      return true;
    }
    if (comma == std::string_view::npos) return false;
    accept.remove_prefix(comma + 1);
  }
}

// --- reading the request documents ---------------------------------------------------------------

// TnChars: ATIS-1000082 allows digits and * # + . - ( ) in a telephone number, and shakend a
// space too; the core removes the visual separators and '+' (RFC 8224 §8.3).
bool TnChars(std::string_view tn) {
  for (char c : tn) {
    if (!std::isdigit(static_cast<unsigned char>(c)) && std::string_view("*#+.-() ").find(c) ==
                                                            std::string_view::npos) {
      return false;
    }
  }
  return true;
}

bool IsUuid(std::string_view s) {
  if (s.size() != 36) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (s[i] != '-') return false;
    } else if (!std::isxdigit(static_cast<unsigned char>(s[i]))) {
      return false;
    }
  }
  return true;
}

// Fields reads the members of one request object, remembering the first error.
class Fields {
 public:
  Fields(const Json& object, std::string prefix) : o_(object), prefix_(std::move(prefix)) {}

  bool Has(const char* key) const { return o_.contains(key) && !o_[key].is_null(); }
  std::string Name(const char* key) const { return prefix_.empty() ? key : prefix_ + "." + key; }

  // String: a string member; nullopt when absent (or after an error).
  std::optional<std::string> String(const char* key, bool required) {
    if (!Has(key)) {
      if (required) Fail(MissingParameter(Name(key)));
      return std::nullopt;
    }
    if (!o_[key].is_string()) {
      Fail(InvalidValue(Name(key), "must be a string"));
      return std::nullopt;
    }
    return o_[key].get<std::string>();
  }
  std::optional<int64_t> Integer(const char* key, bool required) {
    if (!Has(key)) {
      if (required) Fail(MissingParameter(Name(key)));
      return std::nullopt;
    }
    const Json& v = o_[key];
    if (v.is_number_integer() && !(v.is_number_unsigned() &&
                                   v.get<uint64_t>() > uint64_t{std::numeric_limits<int64_t>::max()})) {
      return v.get<int64_t>();
    }
    Fail(InvalidValue(Name(key), "must be an integer (seconds since 1970, NumericDate)"));
    return std::nullopt;
  }
  const Json* Object(const char* key, bool required) {
    if (!Has(key)) {
      if (required) Fail(MissingParameter(Name(key)));
      return nullptr;
    }
    if (!o_[key].is_object()) {
      Fail(InvalidValue(Name(key), "must be an object"));
      return nullptr;
    }
    return &o_[key];
  }
  // Strings: an array of strings, or one string (the 3GPP to.tn; lenient elsewhere).
  std::vector<std::string> Strings(const char* key, bool required) {
    std::vector<std::string> out;
    if (!Has(key)) {
      if (required) Fail(MissingParameter(Name(key)));
      return out;
    }
    const Json& v = o_[key];
    if (v.is_string()) {
      out.push_back(v.get<std::string>());
      return out;
    }
    if (!v.is_array()) {
      Fail(InvalidValue(Name(key), "must be an array of strings"));
      return out;
    }
    for (const Json& e : v) {
      if (!e.is_string()) {
        Fail(InvalidValue(Name(key), "must be an array of strings"));
        return {};
      }
      out.push_back(e.get<std::string>());
    }
    return out;
  }
  void Fail(RestError e) {
    if (!error_.has_value()) error_ = std::move(e);
  }
  const std::optional<RestError>& error() const { return error_; }

 private:
  const Json& o_;
  std::string prefix_;
  std::optional<RestError> error_;
};

// ReadTns reads `key` (orig, dest, from, to): an object with `tn` (one number, or an array when
// `many`). The 3GPP `uri` form is refused: shakend signs and verifies telephone numbers only.
std::vector<std::string> ReadTns(Fields& parent, const char* key, bool many) {
  const Json* o = parent.Object(key, /*required=*/true);
  if (o == nullptr) return {};
  Fields f(*o, parent.Name(key));
  if (!f.Has("tn") && f.Has("uri")) {
    parent.Fail(InvalidValue(f.Name("uri"), "only telephone numbers (tn) are supported"));
    return {};
  }
  std::vector<std::string> tns;
  if (many) {
    tns = f.Strings("tn", true);
    if (f.error().has_value()) {
      parent.Fail(*f.error());
      return {};
    }
    if (tns.empty()) parent.Fail(InvalidValue(f.Name("tn"), "needs at least one number"));
  } else {
    std::optional<std::string> tn = f.String("tn", true);
    if (f.error().has_value()) {
      parent.Fail(*f.error());
      return {};
    }
    tns.push_back(*tn);
  }
  for (const std::string& tn : tns) {
    if (tn.empty() || tn.size() > 64 || !TnChars(tn)) {
      parent.Fail(InvalidValue(f.Name("tn"), absl::StrCat("\"", tn.substr(0, 64),
                                                          "\" is not a telephone number (digits "
                                                          "and * # + . - ( ) or space only)")));
      return {};
    }
  }
  return tns;
}

// ErrorFromCore maps the core's refusal to the catalogue (docs/rest-api.md#errors).
RestError ErrorFromCore(const absl::Status& s) {
  const std::string message(ToStd(s.message()));
  switch (s.code()) {
    case absl::StatusCode::kInvalidArgument: {
      // The core's messages start with the shaken.v1 field they are about.
      std::string field = message.substr(0, message.find(' '));
      if (message.rfind("unknown profile", 0) == 0 || field == "profile") field = "profileId";
      if (field == "request_id") field = "requestId";
      if (field.empty() || field.find_first_not_of("abcdefghijklmnopqrstuvwxyzI._") != std::string::npos) {
        field = "request";
      }
      return InvalidValue(field, message);
    }
    case absl::StatusCode::kPermissionDenied:
      return Forbidden(message);
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kResourceExhausted:
    case absl::StatusCode::kDeadlineExceeded:
    case absl::StatusCode::kFailedPrecondition:
      return Internal(503);
    default:
      return Internal(500);
  }
}

}  // namespace

// Call is one REST request in the core: what the core reads until it completes.
struct RestFrontEnd::Call {
  std::unique_ptr<http::Exchange> exchange;
  RestEndpoint endpoint = RestEndpoint::kOther;
  Dialect dialect = Dialect::kAtis;
  absl::Time start;
  std::string header_request_id;  // X-RequestID, echoed
  Caller caller;
  shaken::v1::SignRequest sign_request;
  shaken::v1::SignResponse sign_response;
  shaken::v1::VerifyRequest verify_request;
  shaken::v1::VerifyResponse verify_response;
  bool request_id_in_body = false;  // 3GPP requestId given: echoed in the document too
};

RestFrontEnd::RestFrontEnd(const ServiceCore* core, RestOptions options)
    : core_(core),
      options_(std::move(options)),
      signing_path_(options_.base_path + "/stir/v1/signing"),
      verification_path_(options_.base_path + "/stir/v1/verification") {}

RestEndpoint RestFrontEnd::EndpointOf(std::string_view path) const {
  if (path == signing_path_) return RestEndpoint::kSigning;
  if (path == verification_path_) return RestEndpoint::kVerification;
  return RestEndpoint::kOther;
}

std::optional<http::Response> RestFrontEnd::OnHeaders(const http::Request& r) {
  const std::string_view request_id = r.Header("X-RequestID").value_or("");
  const RestEndpoint endpoint = EndpointOf(r.path);
  std::optional<RestError> refusal;
  if (endpoint == RestEndpoint::kOther ||
      (endpoint == RestEndpoint::kVerification && !core_->verifying())) {
    refusal = NotFound();
  } else if (r.method != "POST") {
    refusal = MethodNotAllowed();
  } else if (options_.require_client_certificate &&
             r.client_cert != http::ClientCertificate::kVerified) {
    refusal = Forbidden(r.client_cert == http::ClientCertificate::kNone
                            ? "no client certificate"
                            : absl::StrCat("the client certificate is not trusted (",
                                           r.client_cert_problem, ")"));
  } else if (auto accept = r.Header("Accept"); accept.has_value() && !AcceptsJson(*accept)) {
    refusal = NotAcceptable(std::string(accept->substr(0, 64)));
  } else if (!r.content_length.has_value()) {
    refusal = NoLength();
  } else if (auto type = r.Header("Content-Type");
             !type.has_value() || MediaType(*type) != "application/json") {
    refusal = UnsupportedType();
  } else if (*r.content_length == 0) {
    refusal = MissingBody();
  }
  if (!refusal.has_value()) return std::nullopt;
  core_->metrics()->RecordRest(endpoint, refusal->status, absl::ZeroDuration());
  return ErrorResponse(*refusal, Dialect::kAtis, request_id);
}

http::Response RestFrontEnd::TooLarge(const http::Request& r, size_t max_body_bytes) {
  core_->metrics()->RecordRest(EndpointOf(r.path), 413, absl::ZeroDuration());
  return ErrorResponse(InvalidValue("Content-Length",
                                    absl::StrCat("the body is larger than ", max_body_bytes,
                                                 " bytes (listen.rest.max_body_bytes)"),
                                    413),
                       Dialect::kAtis, r.Header("X-RequestID").value_or(""));
}

http::Response RestFrontEnd::Unavailable() {
  core_->metrics()->RecordRest(RestEndpoint::kOther, 503, absl::ZeroDuration());
  return ErrorResponse(Internal(503), Dialect::kAtis, "");
}

void RestFrontEnd::Finish(const std::shared_ptr<Call>& call, http::Response response) const {
  core_->metrics()->RecordRest(call->endpoint, response.status, absl::Now() - call->start);
  call->exchange->Respond(std::move(response));
}

void RestFrontEnd::OnRequest(std::unique_ptr<http::Exchange> exchange) {
  auto call = std::make_shared<Call>();
  call->start = absl::Now();
  const http::Request& r = exchange->request();
  call->endpoint = EndpointOf(r.path);
  call->header_request_id = std::string(r.Header("X-RequestID").value_or(""));
  if (!ValidRequestId(call->header_request_id)) call->header_request_id.clear();
  call->exchange = std::move(exchange);
  // The caller, by the same rules as gRPC: a verified client certificate's names, or anonymous.
  if (r.client_cert == http::ClientCertificate::kVerified) {
    const auto* der = reinterpret_cast<const unsigned char*>(r.client_cert_der.data());
    stir::X509Ptr x(d2i_X509(nullptr, &der, static_cast<long>(r.client_cert_der.size())));
    // kVerified: OpenSSL parsed and verified this very DER in the HTTP layer.
    if (x == nullptr) {
      Finish(call, ErrorResponse(Internal(500), Dialect::kAtis, call->header_request_id));
      return;
    }
    call->caller = core_->authorizer().IdentifyCertificate(x.get());
  } else {
    call->caller = core_->authorizer().IdentifyCertificate(nullptr);
  }
  if (call->endpoint == RestEndpoint::kSigning) {
    Sign(std::move(call));
  } else {
    Verify(std::move(call));
  }
}

namespace {

// ParseBody: the request document and its top member `top`, or the error to answer.
absl::StatusOr<Json> ParseBody(const std::string& body) {
  return stir::ParseStrictJson(body, {.max_bytes = body.size() + 1, .max_depth = 8});
}

}  // namespace

void RestFrontEnd::Sign(std::shared_ptr<Call> call) {
  absl::StatusOr<Json> doc = ParseBody(call->exchange->request().body);
  if (!doc.ok()) {
    Finish(call, ErrorResponse(Unparseable(std::string(ToStd(doc.status().message()))),
                               Dialect::kAtis, call->header_request_id));
    return;
  }
  Fields root(*doc, "");
  const Json* sr = root.Object("signingRequest", true);
  if (sr == nullptr) {
    Finish(call, ErrorResponse(*root.error(), Dialect::kAtis, call->header_request_id));
    return;
  }
  Fields f(*sr, "");
  for (const char* key : {"requestId", "profileId", "ppt", "rph", "sph", "div"}) {
    if (f.Has(key)) call->dialect = Dialect::k3gpp;
  }
  shaken::v1::SignRequest& req = call->sign_request;
  std::optional<std::string> attest = f.String("attest", true);
  if (attest.has_value() && *attest != "A" && *attest != "B" && *attest != "C") {
    f.Fail(InvalidValue("attest", "must be A, B or C"));
  }
  std::vector<std::string> orig = ReadTns(f, "orig", /*many=*/false);
  std::vector<std::string> dest = ReadTns(f, "dest", /*many=*/true);
  std::optional<int64_t> iat = f.Integer("iat", false);
  std::optional<std::string> origid = f.String("origid", false);
  if (origid.has_value() && !IsUuid(*origid)) f.Fail(InvalidValue("origid", "must be a UUID"));
  if (std::optional<std::string> ppt = f.String("ppt", false);
      ppt.has_value() && !ppt->empty() && *ppt != "shaken") {
    f.Fail(InvalidValue("ppt", "shakend signs shaken PASSporTs only"));
  }
  for (const char* key : {"rph", "sph", "div"}) {
    if (f.Has(key)) f.Fail(InvalidValue(key, "shakend signs shaken PASSporTs only"));
  }
  std::optional<std::string> profile = f.String("profileId", false);
  std::optional<std::string> request_id = f.String("requestId", false);
  if (f.error().has_value()) {
    Finish(call, ErrorResponse(*f.error(), call->dialect, call->header_request_id));
    return;
  }
  req.set_attest(*attest);
  req.mutable_orig()->set_tn(orig.front());
  for (auto& tn : dest) req.mutable_dest()->add_tn(std::move(tn));
  if (iat.has_value()) req.set_iat(*iat);
  if (origid.has_value()) req.set_origid(*origid);
  if (profile.has_value()) req.set_profile(*profile);
  call->request_id_in_body = request_id.has_value();
  req.set_request_id(request_id.has_value() ? *request_id : call->header_request_id);

  Call& c = *call;
  core_->StartSign({&c.caller, Front::kRest, Method::kSign, absl::Now() + options_.request_timeout},
                   c.sign_request, &c.sign_response, [this, call](absl::Status status) {
                     if (!status.ok()) {
                       Finish(call, ErrorResponse(ErrorFromCore(status), call->dialect,
                                                  call->header_request_id));
                       return;
                     }
                     Json answer;
                     if (call->dialect == Dialect::k3gpp) {
                       answer["identityHeader"] = call->sign_response.identity();
                       if (call->request_id_in_body) {
                         answer["requestId"] = call->sign_response.request_id();
                       }
                     } else {
                       answer["identity"] = call->sign_response.identity();
                     }
                     Finish(call, JsonResponse(200, Json{{"signingResponse", answer}},
                                               call->header_request_id));
                   });
}

namespace {

// VerdictFields: the ATIS-1000082 verificationResponse members of one verdict: verstat alone
// when it passed, with reasoncode, reasontext and reasondesc when not.
Json AtisVerdict(int code, std::string_view reason, std::string_view detail,
                 std::string_view verstat, bool passed) {
  Json v;
  if (!passed) {
    v["reasoncode"] = code;
    v["reasontext"] = reason;
    v["reasondesc"] = detail;
  }
  v["verstat"] = verstat;
  return v;
}

// MsResult: one 3GPP verifyResults entry.
Json MsResult(std::string_view ppt, int code, std::string_view reason, std::string_view detail,
              bool passed) {
  Json r{{"ppt", ppt.empty() ? std::string_view("shaken") : ppt},
         {"status", passed ? "pass" : "fail"}};
  if (!passed) {
    r["reasonCode"] = code;
    r["reasonText"] = reason;
    r["reasonDescription"] = detail;
  }
  return Json{{"verifyResult", r}};
}

constexpr std::string_view kNoIdentityText = "Use Identity Header";
constexpr std::string_view kNoIdentityDesc = "The request carries no Identity header to verify";

}  // namespace

void RestFrontEnd::Verify(std::shared_ptr<Call> call) {
  absl::StatusOr<Json> doc = ParseBody(call->exchange->request().body);
  if (!doc.ok()) {
    Finish(call, ErrorResponse(Unparseable(std::string(ToStd(doc.status().message()))),
                               Dialect::kAtis, call->header_request_id));
    return;
  }
  Fields root(*doc, "");
  const Json* vr = root.Object("verificationRequest", true);
  if (vr == nullptr) {
    Finish(call, ErrorResponse(*root.error(), Dialect::kAtis, call->header_request_id));
    return;
  }
  Fields f(*vr, "");
  for (const char* key : {"identityHeader", "identityHeaders", "requestId", "profileId",
                          "displayName", "protectedHeaders", "dest"}) {
    if (f.Has(key)) call->dialect = Dialect::k3gpp;
  }
  // The Identity header values: ATIS `identity` (one, or an array: lenient); 3GPP
  // `identityHeader` (the shaken one) then `identityHeaders` (div, rph, ...).
  std::vector<std::string> identities = f.Strings("identity", false);
  if (std::optional<std::string> h = f.String("identityHeader", false)) identities.push_back(*h);
  for (auto& h : f.Strings("identityHeaders", false)) identities.push_back(std::move(h));
  std::erase_if(identities, [](const std::string& s) { return s.empty(); });
  std::optional<std::string> request_id = f.String("requestId", false);
  if (f.error().has_value()) {
    Finish(call, ErrorResponse(*f.error(), call->dialect, call->header_request_id));
    return;
  }
  call->request_id_in_body = request_id.has_value() && ValidRequestId(*request_id);
  const std::string echo_id = call->request_id_in_body ? *request_id : call->header_request_id;
  if (identities.empty()) {
    // No Identity at all: Oracle's SBC sends such a verificationRequest as a heartbeat. RFC 8224
    // answers a call without Identity 428; an SBC's circuit breaker must see a 200 here.
    if (!Authorizer::MayCall(call->caller, "Verify")) {
      Finish(call, ErrorResponse(Forbidden(absl::StrCat("client ", call->caller.identity,
                                                        " may not call Verify")),
                                 call->dialect, call->header_request_id));
      return;
    }
    Json answer;
    if (call->dialect == Dialect::k3gpp) {
      answer = Json{{"verstatValue", "No-TN-Validation"},
                    {"verifyResults",
                     Json::array({MsResult("shaken", 428, kNoIdentityText, kNoIdentityDesc, false)})}};
      if (call->request_id_in_body) answer["requestId"] = echo_id;
    } else {
      answer = AtisVerdict(428, kNoIdentityText, kNoIdentityDesc, "No-TN-Validation", false);
    }
    Finish(call, JsonResponse(200, Json{{"verificationResponse", answer}}, call->header_request_id));
    return;
  }
  std::vector<std::string> from = ReadTns(f, "from", /*many=*/false);
  std::vector<std::string> to = ReadTns(f, "to", /*many=*/true);
  std::optional<int64_t> time = f.Integer("time", true);
  if (f.error().has_value()) {
    Finish(call, ErrorResponse(*f.error(), call->dialect, call->header_request_id));
    return;
  }
  shaken::v1::VerifyRequest& req = call->verify_request;
  for (auto& id : identities) req.add_identity(std::move(id));
  req.mutable_from()->set_tn(from.front());
  for (auto& tn : to) req.mutable_to()->add_tn(std::move(tn));
  req.set_time(*time);
  req.set_request_id(echo_id);

  Call& c = *call;
  core_->StartVerify(
      {&c.caller, Front::kRest, Method::kVerify, absl::Now() + options_.request_timeout},
      c.verify_request, &c.verify_response, [this, call](absl::Status status) {
        if (!status.ok()) {
          Finish(call,
                 ErrorResponse(ErrorFromCore(status), call->dialect, call->header_request_id));
          return;
        }
        const shaken::v1::Verdict& v = call->verify_response.verdict();
        Json answer;
        if (call->dialect == Dialect::k3gpp) {
          answer["verstatValue"] = v.verstat();
          Json results = Json::array();
          for (const shaken::v1::Verdict& h : call->verify_response.identities()) {
            results.push_back(MsResult(h.ppt(), h.sip_code(), h.sip_reason(), h.detail(), h.passed()));
          }
          answer["verifyResults"] = std::move(results);
          if (call->request_id_in_body) answer["requestId"] = call->verify_response.request_id();
        } else {
          answer = AtisVerdict(v.sip_code(), v.sip_reason(), v.detail(), v.verstat(), v.passed());
        }
        Finish(call,
               JsonResponse(200, Json{{"verificationResponse", answer}}, call->header_request_id));
      });
}

absl::StatusOr<std::unique_ptr<RestListener>> RestListener::Start(const Config& config,
                                                                  const ServiceCore* core) {
  const RestListenConfig& rc = *config.rest;
  http::ServerOptions o;
  o.address = rc.address;
  o.max_body_bytes = rc.max_body_bytes;
  o.max_connections = rc.max_connections;
  o.idle_timeout = rc.idle_timeout;
  o.threads = rc.threads;
  RestOptions ro;
  ro.base_path = rc.base_path;
  ro.request_timeout = rc.request_timeout;
  if (const TlsConfig* tls = rc.EffectiveTls(config.tls); tls != nullptr) {
    const std::string key = rc.tls.has_value() ? "listen.rest.tls" : "listen.tls";
    http::TlsFiles files;
    auto read = [&key](const std::string& what, const std::string& path,
                       std::string* out) -> absl::Status {
      absl::StatusOr<std::string> text = stir::ReadFile(path);
      if (!text.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat(key, ".", what, " (for listen.rest): ", text.status().message()));
      }
      *out = *std::move(text);
      return absl::OkStatus();
    };
    RETURN_IF_ERROR(read("cert_file", tls->cert_file, &files.cert_pem));
    RETURN_IF_ERROR(read("key_file", tls->key_file, &files.key_pem));
    if (!tls->client_ca_file.empty()) {
      RETURN_IF_ERROR(read("client_ca_file", tls->client_ca_file, &files.client_ca_pem));
      ro.require_client_certificate = true;
    }
    o.tls = std::move(files);
    OPENSSL_cleanse(files.key_pem.data(), files.key_pem.size());  // moved-from: usually empty
  }
  std::unique_ptr<RestListener> l(new RestListener());
  l->front_ = std::make_unique<RestFrontEnd>(core, std::move(ro));
  absl::StatusOr<std::unique_ptr<http::Server>> server = http::Server::Start(std::move(o), l->front_.get());
  if (!server.ok()) {
    return absl::Status(server.status().code(),
                        absl::StrCat("listen.rest.address: ", server.status().message()));
  }
  l->server_ = *std::move(server);
  return l;
}

RestListener::~RestListener() {
  if (server_ != nullptr) server_->Stop(absl::Now());
}

}  // namespace shaken::daemon::rest
