#include "daemon/rest/rest_json.h"

#include <cctype>
#include <limits>
#include <utility>

#include "absl/strings/str_cat.h"
#include "stir/absl_compat.h"
#include "stir/json.h"
#include "stir/passport.h"
#include "stir/tn_auth_list.h"

namespace shaken::daemon::rest {
namespace {

using stir::Json;

constexpr size_t kMaxRequestIdBytes = 128;
constexpr size_t kMaxTnBytes = 64;
constexpr std::string_view kNoIdentityText = "Use Identity Header";
constexpr std::string_view kNoIdentityDesc = "The request carries no Identity header to verify";

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

// TnChars: ATIS-1000082 allows digits and * # + . - ( ) in a telephone number, and shakend a
// space too; the core removes the visual separators and '+' (RFC 8224 §8.3).
bool TnChars(std::string_view tn) {
  for (char c : tn) {
    if (!std::isdigit(static_cast<unsigned char>(c)) &&
        std::string_view("*#+.-() ").find(c) == std::string_view::npos) {
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

// Fields reads the members of one request object, remembering the first error. A member that
// is null counts as absent.
class Fields {
 public:
  Fields(const Json& object, std::string prefix) : o_(object), prefix_(std::move(prefix)) {}

  bool Has(const char* key) const { return o_.contains(key) && !o_[key].is_null(); }
  std::string Name(const char* key) const { return prefix_.empty() ? key : prefix_ + "." + key; }

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
    if (v.is_number_integer() &&
        !(v.is_number_unsigned() &&
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
      Fail(InvalidValue(Name(key), "must be a string or an array of strings"));
      return out;
    }
    for (const Json& e : v) {
      if (!e.is_string()) {
        Fail(InvalidValue(Name(key), "must be a string or an array of strings"));
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

// ReadTns reads `key` (orig, dest, from, to): an object with `tn` (one number, or several when
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
    if (!f.error().has_value() && tns.empty()) {
      f.Fail(InvalidValue(f.Name("tn"), "needs at least one number"));
    }
  } else if (std::optional<std::string> tn = f.String("tn", true)) {
    tns.push_back(*std::move(tn));
  }
  if (f.error().has_value()) {
    parent.Fail(*f.error());
    return {};
  }
  for (const std::string& tn : tns) {
    if (tn.empty() || tn.size() > kMaxTnBytes || !TnChars(tn)) {
      parent.Fail(InvalidValue(f.Name("tn"), absl::StrCat("\"", tn.substr(0, kMaxTnBytes),
                                                          "\" is not a telephone number (digits "
                                                          "and * # + . - ( ) or space only)")));
      return {};
    }
  }
  return tns;
}

// Root parses `body` and finds its `top` member object; nullptr with `error` set otherwise.
const Json* Root(std::string_view body, const char* top, Json* doc, std::optional<RestError>* error) {
  absl::StatusOr<Json> parsed =
      stir::ParseStrictJson(body, {.max_bytes = body.size() + 1, .max_depth = 8});
  if (!parsed.ok()) {
    *error = Unparseable(std::string(ToStd(parsed.status().message())));
    return nullptr;
  }
  *doc = *std::move(parsed);
  Fields root(*doc, "");
  const Json* object = root.Object(top, true);
  if (object == nullptr) *error = *root.error();
  return object;
}

Json AtisVerdict(const VerdictText& v) {
  Json out;
  if (!v.passed) {
    out["reasoncode"] = v.sip_code;
    out["reasontext"] = v.sip_reason;
    out["reasondesc"] = v.detail;
  }
  out["verstat"] = v.verstat;
  return out;
}

Json MsResult(const VerdictText& v) {
  Json r{{"ppt", v.ppt.empty() ? std::string("shaken") : v.ppt},
         {"status", v.passed ? "pass" : "fail"}};
  if (!v.passed) {
    r["reasonCode"] = v.sip_code;
    r["reasonText"] = v.sip_reason;
    r["reasonDescription"] = v.detail;
  }
  return Json{{"verifyResult", r}};
}

}  // namespace

RestError MissingBody() { return {400, "SVC4000", "Missing request body", {}}; }
RestError MissingParameter(std::string name) {
  return {400, "SVC4001", "Missing mandatory parameter '%1'", {std::move(name)}};
}
RestError NotAcceptable(std::string accept) {
  return {406, "SVC4002", "Requested response body type '%1' is not supported",
          {std::move(accept)}};
}
RestError NotFound() { return {404, "SVC4003", "Requested resource was not found", {}}; }
RestError UnsupportedType() {
  return {415, "SVC4004", "Unsupported request body type, expected '%1'", {"application/json"}};
}
RestError InvalidValue(std::string name, std::string why, int status) {
  return {status, "SVC4005", "Invalid '%1' parameter value: %2", {std::move(name), std::move(why)}};
}
RestError Unparseable(std::string why) {
  return {400, "SVC4006", "Failed to parse received message body: %1", {std::move(why)}};
}
RestError NoLength() { return {411, "SVC4007", "Missing mandatory Content-Length header", {}}; }
RestError MethodNotAllowed() { return {405, "POL4050", "Method not allowed", {}}; }
RestError Forbidden(std::string why) {
  return {403, "POL4030", "Client not authorized: %1", {std::move(why)}};
}
RestError Internal(int status) {
  return {status, "POL5000", "Internal Server Error. Please try again later", {}};
}

RestError ErrorFromStatus(const absl::Status& s) {
  const std::string message(ToStd(s.message()));
  switch (s.code()) {
    case absl::StatusCode::kInvalidArgument: {
      // The core's messages start with the shaken.v1 field they are about.
      std::string field = message.substr(0, message.find(' '));
      if (message.rfind("unknown profile", 0) == 0 || field == "profile") field = "profileId";
      if (field == "request_id") field = "requestId";
      if (field.empty() ||
          field.find_first_not_of("abcdefghijklmnopqrstuvwxyzI._") != std::string::npos) {
        field = "request";
      }
      return InvalidValue(field, message);
    }
    case absl::StatusCode::kPermissionDenied:
      return Forbidden(message);
    case absl::StatusCode::kFailedPrecondition:
      // An orig outside the profile's delegate certificate: the request's number, which no
      // retry elsewhere makes signable.
      if (stir::IsOrigOutsideScope(s)) return InvalidValue("orig.tn", message);
      return Internal(503);
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kResourceExhausted:
    case absl::StatusCode::kDeadlineExceeded:
      return Internal(503);
    default:
      return Internal(500);
  }
}

std::string ErrorDocument(const RestError& e, Dialect dialect) {
  if (dialect == Dialect::k3gpp) {
    return Dump(Json{{"error", absl::StrCat(ToAbsl(e.message_id), ": ", Expand(e))}});
  }
  const bool policy = e.message_id.substr(0, 3) == "POL";
  return Dump(Json{{"requestError",
                    {{policy ? "policyException" : "serviceException",
                      {{"messageId", e.message_id}, {"text", e.text}, {"variables", e.variables}}}}}});
}

SigningInput ParseSigningRequest(std::string_view body) {
  SigningInput in;
  Json doc;
  const Json* sr = Root(body, "signingRequest", &doc, &in.error);
  if (sr == nullptr) return in;
  Fields f(*sr, "");
  for (const char* key : {"requestId", "profileId", "ppt", "rph", "sph", "div"}) {
    if (f.Has(key)) in.dialect = Dialect::k3gpp;
  }
  std::optional<std::string> attest = f.String("attest", !f.Has("rph"));
  if (attest.has_value() && !stir::IsAttestLevel(*attest)) {
    f.Fail(InvalidValue("attest", "must be A, B or C"));
  }
  std::vector<std::string> orig = ReadTns(f, "orig", /*many=*/false);
  std::vector<std::string> dest = ReadTns(f, "dest", /*many=*/true);
  in.iat = f.Integer("iat", false);
  std::optional<std::string> origid = f.String("origid", false);
  if (origid.has_value() && !IsUuid(*origid)) f.Fail(InvalidValue("origid", "must be a UUID"));
  // 3GPP ppt: empty (shaken) or "rph" (RFC 8443). A div needs the PASSporT it diverts, which the
  // Ms signingRequest does not carry: div is signed through the gRPC API (SignRequest.div).
  const std::string ppt = f.String("ppt", false).value_or("");
  if (!ppt.empty() && ppt != "shaken" && ppt != "rph") {
    f.Fail(InvalidValue("ppt", "shakend signs ppt shaken and rph here (div and rcd through the "
                               "gRPC API)"));
  }
  if (f.Has("div")) {
    f.Fail(InvalidValue("div", "a div PASSporT needs the PASSporT it diverts: sign it through the "
                               "gRPC API (SignRequest.div)"));
  }
  if ((ppt == "rph") != f.Has("rph") || (f.Has("sph") && ppt != "rph")) {
    f.Fail(InvalidValue(f.Has("rph") || f.Has("sph") ? "ppt" : "rph",
                        "rph (and sph) go with ppt \"rph\", and it with them"));
  }
  if (ppt == "rph" && !f.error().has_value()) {
    if (const Json* rph_object = f.Object("rph", true); rph_object != nullptr) {
      Fields rph(*rph_object, "rph.");
      in.rph_auth = rph.Strings("auth", true);
      if (rph.error().has_value()) f.Fail(*rph.error());
    }
    in.sph = f.String("sph", false).value_or("");
  }
  std::optional<std::string> profile = f.String("profileId", false);
  in.request_id = f.String("requestId", false);
  if (in.request_id.has_value() && !ValidRequestId(*in.request_id)) {
    f.Fail(InvalidValue("requestId", "must be 1 to 128 visible ASCII characters"));
  }
  if (f.error().has_value()) {
    in.error = f.error();
    return in;
  }
  in.attest = attest.value_or("");
  in.orig_tn = orig.front();
  in.dest_tns = std::move(dest);
  in.origid = origid.value_or("");
  in.profile = profile.value_or("");
  return in;
}

VerificationInput ParseVerificationRequest(std::string_view body) {
  VerificationInput in;
  Json doc;
  const Json* vr = Root(body, "verificationRequest", &doc, &in.error);
  if (vr == nullptr) return in;
  Fields f(*vr, "");
  for (const char* key : {"identityHeader", "identityHeaders", "requestId", "profileId",
                          "displayName", "protectedHeaders", "dest"}) {
    if (f.Has(key)) in.dialect = Dialect::k3gpp;
  }
  // ATIS `identity` (one, or an array: lenient); 3GPP `identityHeader` (the shaken one) then
  // `identityHeaders` (div, rph, ...).
  in.identities = f.Strings("identity", false);
  if (std::optional<std::string> h = f.String("identityHeader", false)) in.identities.push_back(*h);
  for (auto& h : f.Strings("identityHeaders", false)) in.identities.push_back(std::move(h));
  std::erase_if(in.identities, [](const std::string& s) { return s.empty(); });
  in.request_id = f.String("requestId", false);
  if (in.request_id.has_value() && !ValidRequestId(*in.request_id)) {
    f.Fail(InvalidValue("requestId", "must be 1 to 128 visible ASCII characters"));
  }
  // 3GPP protectedHeaders: "Name: value" strings; Resource-Priority is the one verified here.
  for (const std::string& h : f.Strings("protectedHeaders", false)) {
    const size_t colon = h.find(':');
    if (colon == std::string::npos) {
      f.Fail(InvalidValue("protectedHeaders", "entries are \"Name: value\" header fields"));
      break;
    }
    if (Lower(Trim(std::string_view(h).substr(0, colon))) == "resource-priority") {
      in.resource_priority.emplace_back(Trim(std::string_view(h).substr(colon + 1)));
    }
  }
  if (f.error().has_value()) {
    in.error = f.error();
    return in;
  }
  if (in.identities.empty()) {
    in.heartbeat = true;
    return in;
  }
  std::vector<std::string> from = ReadTns(f, "from", /*many=*/false);
  std::vector<std::string> to = ReadTns(f, "to", /*many=*/true);
  std::optional<int64_t> time = f.Integer("time", true);
  if (f.error().has_value()) {
    in.error = f.error();
    return in;
  }
  in.from_tn = from.front();
  in.to_tns = std::move(to);
  in.time = *time;
  return in;
}

std::string SigningAnswer(Dialect dialect, std::string_view identity,
                          const std::optional<std::string>& request_id) {
  Json answer;
  if (dialect == Dialect::k3gpp) {
    answer["identityHeader"] = identity;
    if (request_id.has_value()) answer["requestId"] = *request_id;
  } else {
    answer["identity"] = identity;
  }
  return Dump(Json{{"signingResponse", answer}});
}

std::string VerificationAnswer(Dialect dialect, const VerdictText& call,
                               const std::vector<VerdictText>& headers,
                               const std::optional<std::string>& request_id,
                               const CallExtras& extras) {
  Json answer;
  if (dialect == Dialect::k3gpp) {
    answer["verstatValue"] = call.verstat;
    if (!extras.verstat_priority.empty()) answer["verstatPriority"] = extras.verstat_priority;
    if (!extras.div_results.empty()) {
      Json divs = Json::array();
      for (const auto& [tn, verstat] : extras.div_results) {
        divs.push_back(Json{{"div", {{"tn", tn}}}, {"verstatValue", verstat}});
      }
      answer["divResult"] = std::move(divs);
    }
    if (!extras.display_name.empty()) answer["displayName"] = extras.display_name;
    Json results = Json::array();
    for (const VerdictText& h : headers) results.push_back(MsResult(h));
    answer["verifyResults"] = std::move(results);
    if (request_id.has_value()) answer["requestId"] = *request_id;
  } else {
    answer = AtisVerdict(call);
  }
  return Dump(Json{{"verificationResponse", answer}});
}

std::string HeartbeatAnswer(Dialect dialect, const std::optional<std::string>& request_id) {
  VerdictText v;
  v.verstat = "No-TN-Validation";
  v.sip_code = 428;
  v.sip_reason = kNoIdentityText;
  v.detail = kNoIdentityDesc;
  v.ppt = "shaken";
  return VerificationAnswer(dialect, v, {v}, request_id);
}

std::string MediaType(std::string_view value) {
  return Lower(Trim(value.substr(0, value.find(';'))));
}

bool AcceptsJson(std::string_view accept) {
  while (true) {
    const size_t comma = accept.find(',');
    const std::string type = MediaType(accept.substr(0, comma));
    // A q of 0 still counts: lenient.
    if (type == "application/json" || type == "application/*" || type == "*/*" || type.empty()) {
      return true;
    }
    if (comma == std::string_view::npos) return false;
    accept.remove_prefix(comma + 1);
  }
}

bool ValidRequestId(std::string_view id) {
  if (id.empty() || id.size() > kMaxRequestIdBytes) return false;
  for (char c : id) {
    if (c < 0x21 || c > 0x7e) return false;
  }
  return true;
}

}  // namespace shaken::daemon::rest
