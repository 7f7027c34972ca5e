// tn_auth_list.h: the one codec of the RFC 8226 §9 TNAuthList certificate extension (OID
// 1.3.6.1.5.5.7.1.26): the bounds-checked decoder the verifier runs on certificates from the
// network, the encoder shakenctl and the test PKI write CSRs and certificates with, and what a
// list covers.
//   TNAuthorizationList ::= SEQUENCE SIZE (1..MAX) OF TNEntry
//   TNEntry ::= CHOICE { spc [0] ServiceProviderCode, range [1] TelephoneNumberRange,
//                        one [2] TelephoneNumber }
#ifndef SHAKEN_STIR_TN_AUTH_LIST_H_
#define SHAKEN_STIR_TN_AUTH_LIST_H_

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "stir/cert_source.h"

namespace shaken::stir {

inline constexpr char kTnAuthListOid[] = "1.3.6.1.5.5.7.1.26";  // RFC 8226 §9

// ParseTnAuthList decodes the DER value of a TNAuthList extension with a bounds-checked DER reader
// (stir/der.h). Accepts explicit tagging (the RFC 8226 module) and, for range/one, the implicit
// form some issuers produce. Fails (INVALID_ARGUMENT, never crashes) on truncation, wrong tags,
// indefinite or oversized lengths, trailing bytes, an empty list, more than 1024 entries, a TN
// outside "0123456789#*" or 1..15 characters, an SPC that is empty, longer than 64 bytes or not
// printable ASCII, or a range count outside 2..2^63.
absl::StatusOr<std::vector<TnAuthEntry>> ParseTnAuthList(std::string_view der);

// EncodeTnAuthList encodes `entries` with EXPLICIT tags (the RFC 8226 module is EXPLICIT TAGS):
// spc [0] IA5String, range [1] SEQUENCE {start, count}, one [2] IA5String. One SPC "709J" gives
// 30 08 A0 06 16 04 37 30 39 4A. Checks what a SHAKEN certificate may hold first: SPCs
// (ValidateSpc), TNs (1..15 of "0123456789#*") and range counts (>= 2); INVALID_ARGUMENT says
// which entry. ParseTnAuthList reads back every list it writes.
absl::StatusOr<std::string> EncodeTnAuthList(const std::vector<TnAuthEntry>& entries);

// EncodeTnAuthListUnchecked is the same encoding without any check (an empty list, a lower-case
// SPC, a count of 1): for tests that build what a verifier must refuse.
std::string EncodeTnAuthListUnchecked(const std::vector<TnAuthEntry>& entries);

// ValidateSpc checks a Service Provider Code for a SHAKEN certificate: ATIS-1000080 v005 allows
// digits and upper-case letters only; OCNs are 4 characters (1..16 accepted).
absl::Status ValidateSpc(std::string_view spc);

// TnAuthListHasTns tells whether `entries` hold a TelephoneNumber (`one`) or a
// TelephoneNumberRange entry. Such a list scopes the certificate to those numbers: a delegate
// certificate (RFC 9060, ATIS-1000092; DL-1, DL-2 in docs/standards.md).
bool TnAuthListHasTns(const std::vector<TnAuthEntry>& entries);

// TnAuthListCovers tells whether the canonical TN `tn` (RFC 8224 §8.3: digits, '#', '*') is a
// `one` entry of `entries`, or lies in a `range` entry: a range is `count` consecutive numbers
// from `start` with the same number of digits (RFC 8226 §9), so it covers `tn` when both are
// digits only, have the same length and start <= tn < start + count. SPC entries cover nothing
// here (an SPC names the signer, not numbers: SH-13).
bool TnAuthListCovers(const std::vector<TnAuthEntry>& entries, std::string_view tn);

// FirstSpc is the value of the first SPC entry of `entries`, or "" (a delegate list).
std::string FirstSpc(const std::vector<TnAuthEntry>& entries);

}  // namespace shaken::stir

#endif  // SHAKEN_STIR_TN_AUTH_LIST_H_
