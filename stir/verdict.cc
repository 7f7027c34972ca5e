#include "stir/verdict.h"

#include <array>

#include "absl/strings/cord.h"
#include "stir/absl_compat.h"

namespace shaken::stir {
namespace {

struct ReasonRow {
  Reason reason;
  std::string_view name;
  int sip_code;
  Verstat verstat;
};

constexpr std::string_view kPhrase403 = "Stale Date";
constexpr std::string_view kPhrase428 = "Use Identity Header";
constexpr std::string_view kPhrase436 = "Bad Identity Info";
constexpr std::string_view kPhrase437 = "Unsupported Credential";
constexpr std::string_view kPhrase438 = "Invalid Identity Header";

constexpr Verstat kNo = Verstat::kNoValidation;
constexpr Verstat kFail = Verstat::kFailed;

// One row per Reason, in enum order (checked by a static_assert below).
constexpr std::array<ReasonRow, static_cast<size_t>(Reason::kCount_)> kReasonTable = {{
    {Reason::kPassed, "passed", 0, Verstat::kPassed},
    {Reason::kNoIdentity, "no_identity", 428, kNo},
    {Reason::kIdentityMalformed, "identity_malformed", 438, kNo},
    {Reason::kCompactForm, "compact_form", 438, kNo},
    {Reason::kPptUnsupported, "ppt_unsupported", 438, kNo},
    {Reason::kPptMismatch, "ppt_mismatch", 438, kNo},
    {Reason::kAlgMismatch, "alg_mismatch", 438, kNo},
    {Reason::kPassportMalformed, "passport_malformed", 438, kNo},
    {Reason::kCritUnsupported, "crit_unsupported", 438, kNo},
    {Reason::kClaimMissing, "claim_missing", 438, kNo},
    {Reason::kClaimInvalid, "claim_invalid", 438, kNo},
    {Reason::kAttestInvalid, "attest_invalid", 438, kNo},
    {Reason::kOrigidInvalid, "origid_invalid", 438, kNo},
    {Reason::kOrigMismatch, "orig_mismatch", 438, kNo},
    {Reason::kDestMismatch, "dest_mismatch", 438, kNo},
    {Reason::kDivUnlinked, "div_unlinked", 438, kNo},
    {Reason::kDivOrigMismatch, "div_orig_mismatch", 438, kNo},
    {Reason::kRphMismatch, "rph_mismatch", 438, kNo},
    {Reason::kRcdiMissing, "rcdi_missing", 438, kNo},
    {Reason::kRcdiMismatch, "rcdi_mismatch", 438, kNo},
    // Failed, as for a bad signature: the PASSporT was checked and its orig is not vouched for.
    {Reason::kOrigNotInTnAuthList, "orig_not_in_tnauthlist", 438, kFail},
    {Reason::kSignatureInvalid, "signature_invalid", 438, kFail},
    {Reason::kInfoMissing, "info_missing", 436, kNo},
    {Reason::kInfoInvalid, "info_invalid", 436, kNo},
    {Reason::kHeaderParamMissing, "header_param_missing", 436, kNo},
    {Reason::kX5uMismatch, "x5u_mismatch", 436, kNo},
    {Reason::kX5uNotAllowed, "x5u_not_allowed", 436, kNo},
    {Reason::kFetchDns, "fetch_dns", 436, kNo},
    {Reason::kFetchConnect, "fetch_connect", 436, kNo},
    {Reason::kFetchTimeout, "fetch_timeout", 436, kNo},
    {Reason::kFetchTls, "fetch_tls", 436, kNo},
    {Reason::kFetchHttpStatus, "fetch_http_status", 436, kNo},
    {Reason::kFetchRedirect, "fetch_redirect", 436, kNo},
    {Reason::kFetchTooLarge, "fetch_too_large", 436, kNo},
    {Reason::kFetchNotPem, "fetch_not_pem", 436, kNo},
    {Reason::kFetchAddressBlocked, "fetch_address_blocked", 436, kNo},
    {Reason::kFetchFailed, "fetch_failed", 436, kNo},
    {Reason::kTypInvalid, "typ_invalid", 437, kNo},
    {Reason::kAlgUnsupported, "alg_unsupported", 437, kNo},
    {Reason::kCertUntrusted, "cert_untrusted", 437, kFail},
    {Reason::kCertExpired, "cert_expired", 437, kFail},
    {Reason::kCertNotYetValid, "cert_not_yet_valid", 437, kFail},
    {Reason::kCertRevoked, "cert_revoked", 437, kFail},
    {Reason::kCertNoTnAuthList, "cert_no_tnauthlist", 437, kFail},
    {Reason::kCertPolicy, "cert_policy", 437, kFail},
    {Reason::kCertKeyUsage, "cert_key_usage", 437, kFail},
    {Reason::kCertKeyType, "cert_key_type", 437, kFail},
    // 437 like the other chain faults: the credential itself is unacceptable (RFC 9060: a CA
    // vouched for numbers outside its own scope), whatever the PASSporT claims.
    {Reason::kCertScopeExceeded, "cert_scope_exceeded", 437, kFail},
    {Reason::kCertInvalid, "cert_invalid", 437, kFail},
    {Reason::kDateStale, "date_stale", 403, kNo},
    {Reason::kIatStale, "iat_stale", 403, kNo},
    {Reason::kIatFuture, "iat_future", 403, kNo},
}};

constexpr bool TableInOrder() {
  for (size_t i = 0; i < kReasonTable.size(); ++i) {
    if (static_cast<size_t>(kReasonTable[i].reason) != i) return false;
  }
  return true;
}
static_assert(TableInOrder(), "kReasonTable must list every Reason in enum order");

const ReasonRow& Row(Reason r) {
  size_t i = static_cast<size_t>(r);
  return kReasonTable[i < kReasonTable.size() ? i : 0];
}

}  // namespace

std::string_view VerstatName(Verstat v) {
  switch (v) {
    case Verstat::kPassed:
      return "TN-Validation-Passed";
    case Verstat::kFailed:
      return "TN-Validation-Failed";
    case Verstat::kNoValidation:
      break;
  }
  return "No-TN-Validation";
}

std::string_view PriorityVerstatName(PriorityVerstat v) {
  switch (v) {
    case PriorityVerstat::kPassed:
      return "RPH-Validation-Passed";
    case PriorityVerstat::kFailed:
      return "RPH-Validation-Failed";
    case PriorityVerstat::kNone:
      break;
  }
  return "";
}

std::string_view ReasonName(Reason r) { return Row(r).name; }
int ReasonSipCode(Reason r) { return Row(r).sip_code; }
Verstat ReasonVerstat(Reason r) { return Row(r).verstat; }

std::string_view ReasonPhrase(Reason r) {
  switch (Row(r).sip_code) {
    case 403:
      return kPhrase403;
    case 428:
      return kPhrase428;
    case 436:
      return kPhrase436;
    case 437:
      return kPhrase437;
    case 438:
      return kPhrase438;
  }
  return "OK";
}

std::optional<Reason> ReasonFromName(std::string_view name) {
  for (const ReasonRow& row : kReasonTable) {
    if (row.name == name) return row.reason;
  }
  return std::nullopt;
}

namespace {
constexpr std::string_view kReasonPayload = "type.shaken/stir.Reason";
}  // namespace

absl::Status ReasonError(Reason r, std::string_view detail) {
  absl::Status s = absl::InvalidArgumentError(ToAbsl(detail));
  s.SetPayload(ToAbsl(kReasonPayload), absl::Cord(ToAbsl(ReasonName(r))));
  return s;
}

Reason ReasonOf(const absl::Status& status, Reason fallback) {
  absl::optional<absl::Cord> payload = status.GetPayload(ToAbsl(kReasonPayload));
  if (!payload.has_value()) return fallback;
  std::optional<Reason> r = ReasonFromName(std::string(*payload));
  return r.value_or(fallback);
}

void Verdict::SetReason(Reason r, std::string detail_text) {
  reason = r;
  passed = r == Reason::kPassed;
  verstat = ReasonVerstat(r);
  sip_code = ReasonSipCode(r);
  sip_reason = ReasonPhrase(r);
  detail = std::move(detail_text);
}

}  // namespace shaken::stir
