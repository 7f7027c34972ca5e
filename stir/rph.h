// rph.h: Resource-Priority values (RFC 4412) and the rph claim of an rph PASSporT (RFC 8443), for
// priority calls (emergency, government and national-security services).
#ifndef SHAKEN_STIR_RPH_H_
#define SHAKEN_STIR_RPH_H_

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "stir/json.h"

namespace shaken::stir {

// At most this many r-values in an rph claim or a Resource-Priority header.
inline constexpr size_t kMaxRphValues = 16;

// IsResourcePriorityValue tells whether `s` is an RFC 4412 §3.1 r-value: namespace "." r-priority,
// each a non-empty token without "." (e.g. "ets.0", "wps.4", "esnet.0"), at most 64 bytes.
bool IsResourcePriorityValue(std::string_view s);

// ParseResourcePriority splits Resource-Priority header field values into r-values: each entry of
// `values` may itself hold several, comma-separated (RFC 4412 §3.1), with optional whitespace.
// INVALID_ARGUMENT names the first entry that is not an r-value, or more than kMaxRphValues.
absl::StatusOr<std::vector<std::string>> ParseResourcePriority(
    const std::vector<std::string>& values);

// ReadRphClaim types the rph claim (RFC 8443 §3): an object whose only member "auth" (the one rph
// type IANA registers) is a non-empty array of r-value strings. Errors carry kClaimInvalid.
absl::StatusOr<std::vector<std::string>> ReadRphClaim(const Json& rph);

// RphCovers tells whether every received Resource-Priority r-value is among the signed rph.auth
// values (r-values compare case-insensitively, RFC 4412 §3.1); false when `received` is empty.
// On false, *missing names the first value not covered (empty when nothing was received).
bool RphCovers(const std::vector<std::string>& signed_auth,
               const std::vector<std::string>& received, std::string* missing);

}  // namespace shaken::stir

#endif  // SHAKEN_STIR_RPH_H_
