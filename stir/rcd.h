// rcd.h: rich call data (RFC 9795; ATIS-1000094 for rcd claims in a shaken PASSporT): the rcd,
// rcdi and crn claims on the signing side, and on the verifying side the check that decides
// whether a display name, icon or call reason may reach the called party
// (docs/standards.md#rich-call-data).
//
// Content by reference (rcd.icn, rcd.jcl, and URLs inside rcd.jcd named by rcdi) is fetched with
// the verifier's x5u fetcher (CertificateFetcher::FetchContent): one URL policy, one SSRF guard,
// the same limits. Its integrity is the rcdi claim: JSON pointers (RFC 6901) into the rcd claim
// object, each with "sha256-" and the base64 SHA-256 digest of the referenced bytes.
#ifndef SHAKEN_STIR_RCD_H_
#define SHAKEN_STIR_RCD_H_

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "stir/json.h"
#include "stir/passport.h"
#include "stir/verdict.h"
#include "stir/x5u_fetcher.h"

namespace shaken::stir {

// Longest nam, crn, apn accepted, in bytes (a display name or a call reason is a short text).
inline constexpr size_t kMaxRcdTextBytes = 256;
// At most this many rcdi digests, and so content fetches, per PASSporT.
inline constexpr size_t kMaxRcdiEntries = 8;

// RcdiDigest returns the rcdi form of `content`'s SHA-256: "sha256-" and its base64 (RFC 4648 §4,
// padded, the W3C Subresource Integrity form RFC 9795 borrows).
std::string RcdiDigest(std::string_view content);
// RcdiDigestMatches tells whether `digest` ("sha256-" then base64, padded or not; base64url
// tolerated) is the SHA-256 of `content`. Other algorithms never match.
bool RcdiDigestMatches(std::string_view digest, std::string_view content);

// AddRcdClaims checks `rcd` and adds its claims to `payload`: "rcd" (nam, apn, icn, jcl, jcd,
// those given), "rcdi" (when there are digests) and "crn". INVALID_ARGUMENT names the field: a
// text that is empty, too long or not UTF-8; an apn that is not a TN; an icn or jcl URL the x5u
// fetch policy `policy` would not fetch (verifiers would drop it); a jcd that is not a JSON array
// (a jCard, RFC 7095); an icn or jcl without its rcdi digest (ComputeRcdi adds them); an rcdi
// key that names no URL of the rcd.
absl::Status AddRcdClaims(const RcdSigning& rcd, const X5uPolicy& policy, Json* payload);

// ComputeRcdi fetches the content `rcd` references (icn, jcl) with `fetcher` and sets its rcdi
// digests. Blocking (for tools; a server uses ComputeRcdiAsync). INVALID_ARGUMENT when the URL
// policy refuses a URL or a jcl is not a jCard; UNAVAILABLE when a fetch fails (the message says
// which field and why).
absl::Status ComputeRcdi(const CertificateFetcher& fetcher, RcdSigning& rcd);
using RcdiDone = absl::AnyInvocable<void(absl::StatusOr<RcdSigning>) &&>;
// ComputeRcdiAsync is ComputeRcdi through FetchContentAsync: `done` runs once, inline when there
// is nothing to fetch or a URL is refused, else on the fetcher's thread when the last fetch lands.
void ComputeRcdiAsync(const CertificateFetcher& fetcher, RcdSigning rcd, absl::Time deadline,
                      RcdiDone done);

// CheckRcdClaims types received rcd, rcdi and crn claims (ExtractClaims calls it): rcd an object
// whose nam, apn, icn, jcl are strings and jcd an array; rcdi an object of strings keyed by JSON
// pointers; crn a string. Errors carry kClaimInvalid. What the rcdi digests cover is judged later
// (RcdCheck), so that a bad digest drops the rich call data but not the PASSporT's verdict.
absl::Status CheckRcdClaims(const PassportClaims& claims);

// RcdCheck is the rich call data of one verified header on its way through verification: what
// the claims say, what must be fetched to check the rcdi digests, and what the fetches gave.
struct RcdCheck {
  struct Reference {
    std::string pointer;  // into the rcd claim, e.g. "/icn"
    std::string url;
    std::string digest;   // as signed in rcdi
  };
  RcdResult content;                // the claims; `passed` and `reason` decided by JudgeRcd
  absl::Status references_status;   // why the references cannot be checked (kRcdiMissing, ...)
  std::vector<Reference> references;
  std::vector<FetchResult> fetched;  // by reference index, filled by the verifier
};

// StartRcdCheck reads the rich call data of `claims` (none: nullopt) for Identity header
// `header`, and lists the references to fetch: each icn and jcl must have an rcdi digest (else
// kRcdiMissing), and each rcdi pointer must name a URL string of the rcd (else kRcdiMismatch).
std::optional<RcdCheck> StartRcdCheck(const PassportClaims& claims, size_t header);

// JudgeRcd decides what of `check` reaches the called party, given the verdict of the header
// that carries it: everything when that verdict passed and every fetched digest matched, nothing
// otherwise (the result then holds the reason: the header's own, kRcdiMissing, kRcdiMismatch or
// the fetch's 436 reason, and a detail; its texts are cleared).
RcdResult JudgeRcd(RcdCheck& check, const Verdict& header);

}  // namespace shaken::stir

#endif  // SHAKEN_STIR_RCD_H_
