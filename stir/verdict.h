// verdict.h: what a verification concludes, in the terms a SIP stack needs: pass/fail, verstat
// (3GPP TS 24.229), the SIP response code and reason phrase (RFC 8224 §6.2.2, ATIS-1000074
// §5.3.2), and a machine-readable reason.
#ifndef SHAKEN_STIR_VERDICT_H_
#define SHAKEN_STIR_VERDICT_H_

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/time/time.h"

namespace shaken::stir {

// Verstat values set on the verified identity (3GPP TS 24.229 §7.2A.20).
enum class Verstat { kPassed, kFailed, kNoValidation };
std::string_view VerstatName(Verstat v);  // "TN-Validation-Passed", ...

// PriorityVerstat is the outcome of validating a call's Resource-Priority against its rph
// PASSporTs (RFC 8443; the 3GPP Ms API's verstatPriority): none when the call carries no ppt=rph
// Identity header.
enum class PriorityVerstat { kNone, kPassed, kFailed };
std::string_view PriorityVerstatName(PriorityVerstat v);  // "", "RPH-Validation-Passed", ...

// Reason is why a verification ended as it did. Each has a stable name (the machine-readable
// reason in logs, metrics and the gRPC API), a SIP code and a verstat; see kReasonTable in
// verdict.cc. The codes follow the ATIS-1000082 error cases E1-E19 (docs/standards.md#reasons).
enum class Reason : uint8_t {
  kPassed = 0,
  // 428: nothing to verify: no Identity header, or none whose ppt is supported (RFC 8224's 428
  // definition counts a header with an unsupported ppt as absent).
  kNoIdentity,
  // 438: the Identity header or the PASSporT cannot be used.
  kIdentityMalformed,       // RFC 8224 §4 grammar violated
  kCompactForm,             // E4: SHAKEN requires the full form (ATIS-1000074 §5.3.3)
  kPptUnsupported,          // E5/E13: ppt is neither "shaken" nor "div"
  kPptMismatch,             // PP-6: header ppt differs from the Identity ppt parameter
  kAlgMismatch,             // RFC 8224 §4.1: Identity alg parameter differs from the header alg
  kPassportMalformed,       // segments, base64url, JSON, size
  kCritUnsupported,         // RFC 7515 §4.1.11: crit names an extension not understood here
  kClaimMissing,            // E14
  kClaimInvalid,            // a claim of the wrong type or form
  kAttestInvalid,           // E19
  kOrigidInvalid,           // origid is not a UUID (RFC 8588 §5)
  kOrigMismatch,            // E16
  kDestMismatch,            // E16
  kDivUnlinked,             // DIV-4: a div's div.tn is the dest of no verified PASSporT of the call
  kDivOrigMismatch,         // DIV-4: a div's orig differs from the orig of the PASSporT it diverts
  kRphMismatch,             // RPH-3: a Resource-Priority value of the call is not in rph.auth
  kRcdiMissing,             // RCD-3: rich call data by reference without its rcdi digest
  kRcdiMismatch,            // RCD-3: fetched content does not match its rcdi digest
  kOrigNotInTnAuthList,     // DL-2: orig.tn outside a delegate certificate's TNs and ranges
  kSignatureInvalid,        // E18 (TN-Validation-Failed)
  // 436: the credential cannot be obtained.
  kInfoMissing,             // E6
  kInfoInvalid,             // E7
  kHeaderParamMissing,      // E9: typ, alg, x5u or ppt missing from the PASSporT header
  kX5uMismatch,             // E10
  kX5uNotAllowed,           // SH-10, CE-12: not https, port, userinfo, query, fragment
  kFetchDns,
  kFetchConnect,
  kFetchTimeout,
  kFetchTls,
  kFetchHttpStatus,
  kFetchRedirect,
  kFetchTooLarge,
  kFetchNotPem,
  kFetchAddressBlocked,     // SSRF guard: loopback, private or link-local address
  kFetchFailed,
  // 437: the credential was obtained but is not acceptable.
  kTypInvalid,              // E11
  kAlgUnsupported,          // E12
  kCertUntrusted,           // E17
  kCertExpired,
  kCertNotYetValid,
  kCertRevoked,
  kCertNoTnAuthList,
  kCertPolicy,
  kCertKeyUsage,
  kCertKeyType,
  kCertScopeExceeded,       // DL-3: a CA's TNAuthList does not encompass its subordinate's
  kCertInvalid,
  // 403: outside the freshness window.
  kDateStale,               // E3
  kIatStale,                // E15
  kIatFuture,               // E15, symmetric window
  kCount_,
};

std::string_view ReasonName(Reason r);      // "signature_invalid", ...
int ReasonSipCode(Reason r);                // 0 for kPassed
std::string_view ReasonPhrase(Reason r);    // "Invalid Identity Header", ...
Verstat ReasonVerstat(Reason r);
// ReasonFromName is the inverse of ReasonName; nullopt for an unknown name.
std::optional<Reason> ReasonFromName(std::string_view name);

// ReasonError makes an INVALID_ARGUMENT status that carries `r`, for the parse and check
// functions whose failures map to a specific SIP code. ReasonOf reads it back (`fallback` when the
// status carries none).
absl::Status ReasonError(Reason r, std::string_view detail);
Reason ReasonOf(const absl::Status& status, Reason fallback);

// Verdict is the outcome of verifying one Identity header value (or of a whole request: see
// Verifier::VerifyAll). Fields after `detail` are filled as far as verification got.
struct Verdict {
  bool passed = false;
  Reason reason = Reason::kNoIdentity;
  Verstat verstat = Verstat::kNoValidation;
  int sip_code = 428;
  std::string_view sip_reason;   // reason phrase, static storage
  std::string detail;            // a human sentence: what exactly was wrong

  // ppt_not_supported: the Identity header's ppt parameter names a PASSporT type this verifier
  // does not handle (rph, rcd, ...). Such a header keeps its own verdict (438 ppt_unsupported) but
  // counts as absent for the call's verdict (RFC 8224, 428 definition; ID-7).
  bool ppt_not_supported = false;
  std::string ppt;
  std::string attest;
  std::string origid;
  std::string orig_tn;
  std::vector<std::string> dest_tns;
  std::optional<int64_t> iat;
  std::string x5u;
  // ppt=div (RFC 8946): the diverted-from number (div.tn) and History-Info index (div.hi), and
  // the index of the call's Identity header whose PASSporT this one diverts, once linked.
  std::string div_tn;
  std::string div_hi;
  std::optional<size_t> diverts;
  // ppt=rph (RFC 8443): the rph.auth r-values and the sph claim, as signed.
  std::vector<std::string> rph_auth;
  std::string sph;

  // From the signing certificate, when it was obtained.
  std::string cert_subject;
  std::string cert_spc;
  std::string cert_serial;       // hex
  std::optional<absl::Time> cert_not_after;

  // SetReason fills passed, reason, verstat, sip_code and sip_reason from `r`.
  void SetReason(Reason r, std::string detail_text = {});
};

// DivResult is the verification of one diverting identity of a call (a ppt=div Identity header;
// the 3GPP Ms API's divResult): passed when the div PASSporT verified and links to the PASSporT
// it diverts (stir/div_chain.h), else the reason, as in that header's Verdict.
struct DivResult {
  size_t header = 0;                // index of the div Identity header in the call
  std::string div_tn;               // the diverting (diverted-from) number
  std::optional<size_t> diverts;    // the header it diverts, when linked
  bool passed = false;
  Reason reason = Reason::kNoIdentity;
  Verstat verstat = Verstat::kNoValidation;
  std::string detail;
};

// RcdResult is the rich call data (RFC 9795) of one Identity header that carries it (a ppt=rcd
// PASSporT, or rcd claims in a shaken one): passed when that header verified and every rcdi
// digest matched the content fetched; only then are the texts set. Otherwise `reason` says why
// they were dropped: the header's own failure, kRcdiMissing, kRcdiMismatch or a fetch reason.
struct RcdResult {
  size_t header = 0;                // index of the Identity header in the call
  bool passed = false;
  Reason reason = Reason::kNoIdentity;
  std::string detail;
  std::string nam;                  // display name
  std::string apn;                  // alternate presentation number
  std::string icn;                  // icon URL, its content checked against rcdi
  std::string jcl;                  // jCard URL, its content checked against rcdi
  std::string jcd;                  // inline jCard, JSON text as signed
  std::string crn;                  // call reason
};

}  // namespace shaken::stir

#endif  // SHAKEN_STIR_VERDICT_H_
