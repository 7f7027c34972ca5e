#include "daemon/sip/sip_rules.h"

#include "absl/strings/str_cat.h"
#include "stir/absl_compat.h"
#include "stir/tn.h"
#include "stir/tn_auth_list.h"

namespace shaken::daemon::sip {

absl::StatusOr<std::string> TnFromUriUser(std::string_view user) {
  // RFC 4904 §4: number portability parameters follow the number in the user part
  // (+12155550121;npdi;rn=+12155550000); RFC 3966 puts tel parameters there too.
  const std::string_view number = user.substr(0, user.find(';'));
  if (number.empty()) return absl::InvalidArgumentError("the URI has no user part (no number)");
  return stir::CanonicalizeTn(number);
}

SipAnswer AnswerForRefusal(const absl::Status& status) {
  // An orig outside the profile's delegate certificate: the request's number, as a calling
  // number that is not a TN (400), not "try the next route" (503).
  if (stir::IsOrigOutsideScope(status)) return {400, "Bad Request", false};
  switch (status.code()) {
    case absl::StatusCode::kPermissionDenied:
      return {403, "Forbidden", false};
    case absl::StatusCode::kInvalidArgument:
      return {400, "Bad Request", false};
    case absl::StatusCode::kResourceExhausted:
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
      return {503, "Service Unavailable", true};
    case absl::StatusCode::kFailedPrecondition:
      return {503, "Service Unavailable", false};
    default:
      return {500, "Server Internal Error", false};
  }
}

std::string QuotedText(std::string_view text, size_t max_bytes) {
  std::string out;
  out.reserve(std::min(text.size(), max_bytes) + 8);
  for (char c : text) {
    if (out.size() >= max_bytes) break;
    const auto u = static_cast<unsigned char>(c);
    if (c == '"' || c == '\\') {
      out.push_back('\\');
      out.push_back(c);
    } else if (u < 0x20 || u == 0x7F) {
      out.push_back(' ');
    } else {
      out.push_back(c);
    }
  }
  return out;
}

std::string StirReason(int cause, std::string_view text) {
  // RFC 9410 §3: the STIR protocol value carries the STIR response code of RFC 8224 §6.2.2.
  return absl::StrCat("STIR;cause=", cause, ";text=\"", QuotedText(text), "\"");
}

std::string StirReasonOf(const shaken::v1::Verdict& verdict) {
  return StirReason(verdict.sip_code(), verdict.sip_reason());
}

}  // namespace shaken::daemon::sip
