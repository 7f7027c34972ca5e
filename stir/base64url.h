// base64url.h: the base64url alphabet without padding (RFC 7515 §2, RFC 4648 §5), strictly.
#ifndef SHAKEN_STIR_BASE64URL_H_
#define SHAKEN_STIR_BASE64URL_H_

#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace shaken::stir {

// Base64UrlEncode encodes `data` without '=' padding.
std::string Base64UrlEncode(std::string_view data);
void Base64UrlEncodeAppend(std::string_view data, std::string* out);

// Base64UrlDecode decodes strictly: only [A-Za-z0-9_-], no padding, no whitespace, a length that
// a canonical encoding can have (never 1 mod 4), and zero bits after the last full byte (so each
// byte string has exactly one accepted encoding). INVALID_ARGUMENT says which rule was broken.
absl::StatusOr<std::string> Base64UrlDecode(std::string_view text);

}  // namespace shaken::stir

#endif  // SHAKEN_STIR_BASE64URL_H_
