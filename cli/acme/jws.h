// jws.h: the JOSE pieces ACME needs (RFC 7515 flattened JSON, RFC 7517 JWK, RFC 7638 thumbprint,
// RFC 8555 §6.2 request signing and §7.3.4 External Account Binding), built on stir's base64url,
// strict JSON reader, canonical JSON writer and Signer. ES256 only (P-256), as every key here is
// a P-256 key (token keys included); HS256 only for the EAB MAC.
#ifndef SHAKEN_CLI_ACME_JWS_H_
#define SHAKEN_CLI_ACME_JWS_H_

#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "stir/json.h"
#include "stir/openssl_util.h"
#include "stir/signer.h"

namespace shaken::acme {

using stir::Json;

// JwkOf is the public JWK of a P-256 key: {"crv":"P-256","kty":"EC","x":...,"y":...}.
// INVALID_ARGUMENT unless `key` is EC P-256.
absl::StatusOr<Json> JwkOf(const EVP_PKEY* key);
// KeyFromJwk reads a public EC P-256 JWK; INVALID_ARGUMENT for any other kty/crv, missing or
// mis-sized coordinates, or a point not on the curve. Private members ("d") are refused.
absl::StatusOr<stir::EvpPkeyPtr> KeyFromJwk(const Json& jwk);
// JwkThumbprint is the RFC 7638 SHA-256 thumbprint of a P-256 JWK, base64url.
absl::StatusOr<std::string> JwkThumbprint(const Json& jwk);

// AccountKeyFingerprint is the Authority Token "fingerprint" of an ACME account key (RFC 9447
// §4, RFC 9448 §3): "SHA256 " then the SHA-256 of the key's DER SubjectPublicKeyInfo as
// colon-separated upper-case hex pairs. (The RFCs do not pin the hashed input; the SPKI is what
// deployed STI-PA tooling hashes. docs/acme.md says so.)
absl::StatusOr<std::string> AccountKeyFingerprint(const EVP_PKEY* key);

// SignEs256 signs the JWS signing input "protected.payload" (already base64url) with `signer`.
absl::StatusOr<std::string> SignEs256(const stir::Signer& signer, std::string_view signing_input,
                                      absl::Time deadline = absl::InfiniteFuture());

// FlattenedJws builds an RFC 7515 §7.2.2 flattened JSON JWS: protected = canonical JSON of
// `protected_header`, payload = `payload` bytes (empty for an ACME POST-as-GET), ES256.
absl::StatusOr<std::string> FlattenedJws(const stir::Signer& signer, const Json& protected_header,
                                         std::string_view payload);

// ExternalAccountBinding is the RFC 8555 §7.3.4 object: a flattened JWS with protected
// {"alg":"HS256","kid":kid,"url":new_account_url}, payload the account JWK, MAC'd with `mac_key`.
absl::StatusOr<Json> ExternalAccountBinding(std::string_view kid, std::string_view mac_key,
                                            std::string_view new_account_url,
                                            const Json& account_jwk);
// HmacSha256 is HMAC-SHA-256 of `data` under `key`.
std::string HmacSha256(std::string_view key, std::string_view data);

// ParsedJws is a flattened JWS taken apart: protected header decoded, payload decoded (bytes),
// signing input kept as received, signature decoded. Nothing is verified.
struct ParsedJws {
  Json header;
  std::string payload;        // decoded; empty for POST-as-GET
  std::string signing_input;  // "protected.payload" as received
  std::string signature;      // decoded
};
// ParseFlattenedJws reads a flattened JSON JWS strictly (members protected, payload, signature
// only, all strings, strict base64url, header a JSON object; no unprotected "header").
// INVALID_ARGUMENT says what is wrong.
absl::StatusOr<ParsedJws> ParseFlattenedJws(std::string_view body);
// VerifyEs256Jws checks the ES256 signature of `jws` with `key`: INVALID_ARGUMENT when the
// signature is not 64 bytes or does not verify.
absl::Status VerifyEs256Jws(const ParsedJws& jws, const EVP_PKEY* key);
// VerifyEs256Raw is the same check for any signing input and decoded r||s signature.
absl::Status VerifyEs256Raw(std::string_view signing_input, std::string_view signature,
                            const EVP_PKEY* key);

// SplitCompactJws splits "h.p.s" into its three base64url segments and decodes header and
// payload as strict JSON objects (for Authority Tokens). INVALID_ARGUMENT otherwise.
struct CompactJws {
  Json header;
  Json payload;
  std::string signing_input;
  std::string signature;
};
absl::StatusOr<CompactJws> ParseCompactJws(std::string_view jws);

// StringMember is the string member `name` of `j`, or "" when `j` is not an object or the member
// is absent or not a string. ArrayMember is the array member, or an empty array. Neither throws:
// they read JSON from the network (a client's payload, a server's answer).
std::string StringMember(const Json& j, std::string_view name);
Json ArrayMember(const Json& j, std::string_view name);

// RandomToken is `bytes` random bytes from OpenSSL's CSPRNG, base64url (nonces, ids, tokens).
std::string RandomToken(size_t bytes = 16);

}  // namespace shaken::acme

#endif  // SHAKEN_CLI_ACME_JWS_H_
