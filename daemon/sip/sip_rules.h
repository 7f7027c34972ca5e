// sip_rules.h: the SIP redirect server's decisions that need no SIP stack: the telephone number of
// a URI's user part, the answer to a refused request, the RFC 9410 Reason value. The stack-facing
// half is redirect_server.cc; docs/sip-redirect.md describes both.
#ifndef SHAKEN_DAEMON_SIP_SIP_RULES_H_
#define SHAKEN_DAEMON_SIP_SIP_RULES_H_

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "shaken/v1/shaken.pb.h"

namespace shaken::daemon::sip {

// TnFromUriUser returns the canonical telephone number of a SIP URI's user part or a tel URI's
// number: RFC 4904 parameters (";npdi", ";rn=...") and any other ';' parameter are cut, then
// stir::CanonicalizeTn drops visual separators and the leading '+'. "+1-215-555-0121;npdi" ->
// "12155550121". INVALID_ARGUMENT when what remains is not a telephone number ("alice").
absl::StatusOr<std::string> TnFromUriUser(std::string_view user);

// SipAnswer is a final response's status code and reason phrase.
struct SipAnswer {
  int code = 500;
  const char* phrase = "Server Internal Error";
  bool retry_after = false;  // carries Retry-After (overload, the token briefly unavailable)
};

// AnswerForRefusal maps a core refusal (a non-OK absl::Status of StartSign / StartVerify) to the
// SIP answer: PERMISSION_DENIED 403; INVALID_ARGUMENT 400; RESOURCE_EXHAUSTED, UNAVAILABLE and
// DEADLINE_EXCEEDED 503 with Retry-After (overload: the SBC tries its next route);
// FAILED_PRECONDITION 503 without (a profile certificate outside its validity, verification
// disabled: retrying soon does not help); anything else 500.
SipAnswer AnswerForRefusal(const absl::Status& status);

// QuotedText returns `text` as the inside of a SIP quoted-string: '"' and '\' escaped, control
// characters (CR, LF, ...) replaced by spaces, at most `max_bytes` bytes kept.
std::string QuotedText(std::string_view text, size_t max_bytes = 200);

// StirReason is the RFC 9410 Reason header value for a failed verification:
// STIR;cause=438;text="Invalid Identity Header".
std::string StirReason(int cause, std::string_view text);
// StirReasonOf is StirReason of a failed verdict's sip_code and sip_reason. (Its own function:
// sofia-sip's headers define a sip_reason() macro that the accessor's name collides with.)
std::string StirReasonOf(const shaken::v1::Verdict& verdict);

}  // namespace shaken::daemon::sip

#endif  // SHAKEN_DAEMON_SIP_SIP_RULES_H_
