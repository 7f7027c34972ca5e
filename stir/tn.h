// tn.h: telephone numbers and identifiers as SHAKEN claims carry them.
#ifndef SHAKEN_STIR_TN_H_
#define SHAKEN_STIR_TN_H_

#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace shaken::stir {

// The longest canonical TN accepted. E.164 allows 15 digits, but national routing and
// portability prefixes make longer numbers real (docs/standards.md#p4-long-national-numbers).
inline constexpr size_t kMaxTnLength = 32;

// CanonicalizeTn applies RFC 8224 §8.3: drop visual separators ('-', '.', '(', ')', space) and a
// leading '+'; what remains must be 1..kMaxTnLength characters of digits, '#' and '*'.
// "+1 (215) 555-0121" -> "12155550121". INVALID_ARGUMENT names the offending character.
absl::StatusOr<std::string> CanonicalizeTn(std::string_view tn);

// IsCanonicalTn tells whether `tn` is already canonical (what a signed claim must hold).
bool IsCanonicalTn(std::string_view tn);

// IsUuid tells whether `s` has the RFC 4122 text form: 8-4-4-4-12 hex digits, either case.
bool IsUuid(std::string_view s);

// NewUuidV4 returns a random (version 4) UUID in lower case, from OpenSSL's CSPRNG.
std::string NewUuidV4();

}  // namespace shaken::stir

#endif  // SHAKEN_STIR_TN_H_
