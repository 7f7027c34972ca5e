// identity_header.h: the SIP Identity header field value (RFC 8224 §4).
//
//   Identity = signed-identity-digest SEMI ident-info *( SEMI ident-info-params )
//   ident-info = "info" EQUAL LAQUOT absoluteURI RAQUOT
//
// Built in the canonical SHAKEN full form; parsed leniently where deployed peers differ
// (parameter order, whitespace, case of names, quoted ppt: docs/standards.md#p1-quoted-ppt) and
// strictly where safety is at stake (size, characters, info form).
#ifndef SHAKEN_STIR_IDENTITY_HEADER_H_
#define SHAKEN_STIR_IDENTITY_HEADER_H_

#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"

namespace shaken::stir {

// The longest Identity header value accepted (a SHAKEN one is ~600 bytes).
inline constexpr size_t kMaxIdentityHeaderBytes = 8192;

// IdentityHeader is a parsed Identity header value.
struct IdentityHeader {
  std::string digest;                // the signed-identity-digest: a JWS, or "..sig" compact
  std::optional<std::string> info;   // the URI between '<' and '>'
  std::optional<std::string> alg;
  std::optional<std::string> ppt;    // unquoted
};

// BuildIdentityHeader returns the full form `<jws>;info=<x5u>;alg=ES256;ppt=<ppt>` (ppt=shaken
// by default; ppt=div for a div PASSporT, RFC 8946 §4). `ppt` must be a token (a PASSporT type).
std::string BuildIdentityHeader(std::string_view jws, std::string_view x5u,
                                std::string_view ppt = "shaken");

// ParseIdentityHeader parses one Identity header value. It accepts parameters in any order,
// whitespace around ';' and '=', parameter names in any case, ppt quoted or not, and ignores
// unknown parameters (generic-param). Errors carry Reason kIdentityMalformed (grammar, size,
// duplicate parameter) or kInfoInvalid (info not of the form <absoluteURI>); a missing info is
// not an error here (the verifier answers it with 436 kInfoMissing).
absl::StatusOr<IdentityHeader> ParseIdentityHeader(std::string_view value);

}  // namespace shaken::stir

#endif  // SHAKEN_STIR_IDENTITY_HEADER_H_
