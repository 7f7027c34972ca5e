// rest_json.h: the documents of the REST API (docs/rest-api.md), without HTTP or the service
// core: reading a signingRequest / verificationRequest (ATIS-1000082 or 3GPP Ms names) into plain
// values, and writing the answers and the error documents of the ATIS-1000082 catalogue. Pure
// functions on untrusted input: every input gives a value or a RestError, never a crash
// (tests/fuzz/fuzz_rest.cc).
#ifndef SHAKEN_DAEMON_REST_REST_JSON_H_
#define SHAKEN_DAEMON_REST_REST_JSON_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/status.h"

namespace shaken::daemon::rest {

// Dialect is the vocabulary of a request, and so of its answer: ATIS-1000082, or the 3GPP
// TS 24.229 "Ms" API (identityHeader, verstatValue, verifyResults, {"error": ...} documents).
enum class Dialect { kAtis, k3gpp };

// RestError is one entry of the error catalogue, filled in.
struct RestError {
  int status = 400;                // HTTP status
  std::string_view message_id;     // "SVC4001", "POL5000", ...
  std::string_view text;           // with %1, %2 for the variables
  std::vector<std::string> variables;
};

// The catalogue (docs/rest-api.md#errors).
RestError MissingBody();                              // 400 SVC4000
RestError MissingParameter(std::string name);         // 400 SVC4001
RestError NotAcceptable(std::string accept);          // 406 SVC4002
RestError NotFound();                                 // 404 SVC4003
RestError UnsupportedType();                          // 415 SVC4004
RestError InvalidValue(std::string name, std::string why, int status = 400);  // SVC4005
RestError Unparseable(std::string why);               // 400 SVC4006
RestError NoLength();                                 // 411 SVC4007
RestError MethodNotAllowed();                         // 405 POL4050
RestError Forbidden(std::string why);                 // 403 POL4030 (shakend's addition)
RestError Internal(int status);                       // 500 or 503 POL5000
// ErrorFromStatus maps a refusal of the service core (daemon/core.h) to the catalogue.
RestError ErrorFromStatus(const absl::Status& status);

// ErrorDocument is the body of an error answer in `dialect`.
std::string ErrorDocument(const RestError& error, Dialect dialect);

// SigningInput is a signingRequest as read; `error` says why it cannot be signed as it is.
struct SigningInput {
  Dialect dialect = Dialect::kAtis;
  std::optional<RestError> error;
  std::string attest;
  std::string orig_tn;
  std::vector<std::string> dest_tns;
  std::optional<int64_t> iat;
  std::string origid;
  std::string profile;                    // 3GPP profileId
  std::optional<std::string> request_id;  // 3GPP requestId
  // 3GPP ppt "rph": rph.auth (RFC 8443) and sph; attest then absent.
  std::vector<std::string> rph_auth;
  std::string sph;
};
SigningInput ParseSigningRequest(std::string_view body);

// VerificationInput is a verificationRequest as read. `heartbeat`: it carries no Identity value
// (Oracle's probe): answered with HeartbeatAnswer, whatever else it holds or lacks.
struct VerificationInput {
  Dialect dialect = Dialect::kAtis;
  std::optional<RestError> error;
  bool heartbeat = false;
  std::vector<std::string> identities;  // identity / identityHeader, then identityHeaders
  std::string from_tn;
  std::vector<std::string> to_tns;
  int64_t time = 0;
  std::optional<std::string> request_id;  // 3GPP requestId
  // 3GPP protectedHeaders "Resource-Priority: ..." values (RFC 8443: checked against rph).
  std::vector<std::string> resource_priority;
};
VerificationInput ParseVerificationRequest(std::string_view body);

// VerdictText is what an answer says of one verdict (shaken.v1.Verdict's fields).
struct VerdictText {
  bool passed = false;
  std::string verstat;
  int sip_code = 0;
  std::string sip_reason;
  std::string detail;
  std::string ppt;
};

// SigningAnswer: {"signingResponse":{"identity"}} (ATIS) or {"identityHeader", "requestId"}.
std::string SigningAnswer(Dialect dialect, std::string_view identity,
                          const std::optional<std::string>& request_id);
// VerificationAnswer: the call's verdict (ATIS: verstat, and reasoncode, reasontext, reasondesc
// when it failed) or, in 3GPP, verstatValue and one verifyResults entry per header.
// CallExtras is what a 3GPP answer adds for rph, div and rcd: verstatPriority, divResult
// ({div, verstatValue} per diverting identity) and displayName (only from verified rich call
// data). Empty members are left out; the ATIS dialect has none of them.
struct CallExtras {
  std::string verstat_priority;
  std::vector<std::pair<std::string, std::string>> div_results;  // div tn, verstat
  std::string display_name;
};
std::string VerificationAnswer(Dialect dialect, const VerdictText& call,
                               const std::vector<VerdictText>& headers,
                               const std::optional<std::string>& request_id,
                               const CallExtras& extras = {});
// HeartbeatAnswer: the 428 No-TN-Validation answer to a request without Identity.
std::string HeartbeatAnswer(Dialect dialect, const std::optional<std::string>& request_id);

// AcceptsJson: whether an Accept header value admits application/json (RFC 9110 §12.5.1; media
// ranges only). MediaType: a Content-Type's type/subtype, lower-case, without parameters.
bool AcceptsJson(std::string_view accept);
std::string MediaType(std::string_view value);
// ValidRequestId: a request id that may be echoed (1 to 128 visible ASCII characters).
bool ValidRequestId(std::string_view id);

}  // namespace shaken::daemon::rest

#endif  // SHAKEN_DAEMON_REST_REST_JSON_H_
