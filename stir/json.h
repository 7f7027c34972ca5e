// json.h: the two JSON jobs of a PASSporT. Writing: canonical JSON (RFC 8225 §9) written by our
// own code, so the signed bytes never depend on a library's key order or escaping. Reading:
// nlohmann::json under strict limits (size, depth, duplicate keys rejected).
#ifndef SHAKEN_STIR_JSON_H_
#define SHAKEN_STIR_JSON_H_

#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"

namespace shaken::stir {

using Json = nlohmann::json;

// AppendJsonString appends `s` as a JSON string literal with minimal escaping: '"', '\\' and the
// control characters below U+0020 are escaped (as \b \f \n \r \t or \u00XX); '/' and non-ASCII
// UTF-8 are written as they are (docs/standards.md#p23-json-escaping). `s` must be valid UTF-8.
void AppendJsonString(std::string_view s, std::string* out);

// IsValidUtf8 tells whether `s` is well-formed UTF-8 (no overlongs, no surrogates, <= U+10FFFF).
bool IsValidUtf8(std::string_view s);

// AppendCanonicalJson appends the canonical serialization of `value` (RFC 8225 §9): no
// whitespace, object members sorted by the code points of their names (byte order of UTF-8),
// integers only. Floating-point numbers and invalid UTF-8 are INVALID_ARGUMENT.
absl::Status AppendCanonicalJson(const Json& value, std::string* out);

// JsonLimits bounds what ParseStrictJson accepts from untrusted input.
struct JsonLimits {
  size_t max_bytes = 4096;
  int max_depth = 16;
};

// ParseStrictJson parses `text` as one JSON object. It rejects anything that is not an object at
// the top, input over limits.max_bytes, nesting deeper than limits.max_depth, duplicate member
// names at any level, invalid UTF-8, comments and trailing data. Errors are INVALID_ARGUMENT.
absl::StatusOr<Json> ParseStrictJson(std::string_view text, const JsonLimits& limits = {});

}  // namespace shaken::stir

#endif  // SHAKEN_STIR_JSON_H_
