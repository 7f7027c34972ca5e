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

// TnAuthScopeText writes `entries` as an operator reads a scope: a TN as itself, a range as its
// first and last numbers ("12155550100-12155550149"), an SPC as "SPC 709J"; comma-separated.
std::string TnAuthScopeText(const std::vector<TnAuthEntry>& entries);

// EntriesOutsideScope returns the entries of `subordinate` that `scope` (the TNAuthList of the
// CA that issued it) does not encompass, in their order; empty when `scope` encompasses them all
// (RFC 9060 §4, DL-3 in docs/standards.md):
//   - an SPC entry is encompassed by an equal SPC entry of `scope`;
//   - a TN or range entry is encompassed by any SPC entry of `scope` (the certificate does not
//     list the numbers an SPC holds: the issuing CA vouches for them, as an SPC-only end-entity
//     certificate may sign any orig, SH-13), or else when every number it covers lies in the
//     union of the TN and range entries of `scope`. Numbers are compared exactly as digit strings
//     of one length: a range covers the numbers of its start's length from start to
//     start + count - 1 (none past 99...9). A TN or range with '#' or '*' is encompassed only by
//     an equal TN, or by a range with the same start and at least its count.
std::vector<TnAuthEntry> EntriesOutsideScope(const std::vector<TnAuthEntry>& scope,
                                             const std::vector<TnAuthEntry>& subordinate);

// CheckOrigInScope is the signer's side of DL-2: a certificate whose TNAuthList holds TNs or
// ranges (a delegate certificate) may sign only for those numbers. OK when `entries` hold no TN
// or range (an SPC-only list scopes nothing, SH-13) or when they cover the canonical form of
// `orig_tn` (RFC 8224 §8.3). INVALID_ARGUMENT when `orig_tn` is not a TN; FAILED_PRECONDITION
// otherwise, naming the number, the scope and `whose` certificate it is: "orig 12155550199 is
// outside the delegate certificate's TNAuthList (12155550100-12155550149, 12155551000) of
// profile X"; IsOrigOutsideScope recognizes it.
absl::Status CheckOrigInScope(const std::vector<TnAuthEntry>& entries, std::string_view orig_tn,
                              std::string_view whose);
// IsOrigOutsideScope tells whether `status` is CheckOrigInScope's FAILED_PRECONDITION: the
// request's own number, which no retry elsewhere makes signable (front ends answer it as a bad
// request, not as "service unavailable").
bool IsOrigOutsideScope(const absl::Status& status);

}  // namespace shaken::stir

#endif  // SHAKEN_STIR_TN_AUTH_LIST_H_
