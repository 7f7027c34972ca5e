#include "cli/acme/jws.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>

#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "stir/absl_compat.h"
#include "stir/base64url.h"
#include "stir/fingerprint.h"
#include "stir/status_macros.h"

namespace shaken::acme {
namespace {

absl::Status Bad(std::string_view what) { return absl::InvalidArgumentError(ToAbsl(what)); }

absl::StatusOr<Json> DecodeJsonSegment(std::string_view segment, std::string_view what,
                                       size_t max_bytes) {
  absl::StatusOr<std::string> raw = stir::Base64UrlDecode(segment);
  if (!raw.ok()) return Bad(absl::StrCat(ToAbsl(what), ": ", raw.status().message()));
  stir::JsonLimits limits;
  limits.max_bytes = max_bytes;
  absl::StatusOr<Json> j = stir::ParseStrictJson(*raw, limits);
  if (!j.ok()) return Bad(absl::StrCat(ToAbsl(what), ": ", j.status().message()));
  return j;
}

}  // namespace

absl::StatusOr<Json> JwkOf(const EVP_PKEY* key) {
  if (key == nullptr || !stir::IsP256Key(key)) return Bad("the key is not an EC P-256 key");
  unsigned char* point = nullptr;
  size_t n = EVP_PKEY_get1_encoded_public_key(const_cast<EVP_PKEY*>(key), &point);
  stir::OpenSslMallocPtr<unsigned char> owned(point);
  if (n != 65 || point == nullptr || point[0] != 0x04) {
    return stir::OpenSslError(absl::StatusCode::kInternal, "encoding the P-256 public point");
  }
  std::string_view p(reinterpret_cast<const char*>(point), n);
  // RFC 7638 §3.2: only the required members, here in lexicographic order.
  return Json{{"crv", "P-256"},
              {"kty", "EC"},
              {"x", stir::Base64UrlEncode(p.substr(1, 32))},
              {"y", stir::Base64UrlEncode(p.substr(33, 32))}};
}

absl::StatusOr<stir::EvpPkeyPtr> KeyFromJwk(const Json& jwk) {
  if (!jwk.is_object()) return Bad("jwk is not a JSON object");
  if (jwk.contains("d")) return Bad("jwk holds a private key (\"d\")");
  auto str = [&](const char* name) { return StringMember(jwk, name); };
  if (str("kty") != "EC" || str("crv") != "P-256") {
    return Bad("jwk must be an EC P-256 key (kty \"EC\", crv \"P-256\")");
  }
  absl::StatusOr<std::string> x = stir::Base64UrlDecode(str("x"));
  absl::StatusOr<std::string> y = stir::Base64UrlDecode(str("y"));
  if (!x.ok() || !y.ok() || x->size() != 32 || y->size() != 32) {
    return Bad("jwk x and y must be 32-byte base64url coordinates");
  }
  absl::StatusOr<stir::EvpPkeyPtr> key = stir::PublicKeyFromP256Point(absl::StrCat("\x04", *x, *y));
  if (!key.ok()) return Bad(absl::StrCat("jwk: ", key.status().message()));
  return key;
}

absl::StatusOr<std::string> JwkThumbprint(const Json& jwk) {
  ASSIGN_OR_RETURN(stir::EvpPkeyPtr key, KeyFromJwk(jwk));
  ASSIGN_OR_RETURN(Json canonical, JwkOf(key.get()));
  std::string text;
  RETURN_IF_ERROR(stir::AppendCanonicalJson(canonical, &text));
  stir::Sha256Digest d = stir::Sha256(text);
  return stir::Base64UrlEncode(std::string_view(reinterpret_cast<const char*>(d.data()), d.size()));
}

absl::StatusOr<std::string> AccountKeyFingerprint(const EVP_PKEY* key) {
  if (key == nullptr || !stir::IsP256Key(key)) return Bad("the account key is not EC P-256");
  ASSIGN_OR_RETURN(std::string spki, stir::PublicKeyToDer(key));
  return absl::StrCat("SHA256 ", stir::Sha256Fingerprint(spki));
}

absl::StatusOr<std::string> SignEs256(const stir::Signer& signer, std::string_view signing_input,
                                      absl::Time deadline) {
  ASSIGN_OR_RETURN(stir::Es256Signature sig,
                   signer.SignDigest(stir::Sha256(signing_input), deadline));
  return stir::Base64UrlEncode(
      std::string_view(reinterpret_cast<const char*>(sig.data()), sig.size()));
}

absl::StatusOr<std::string> FlattenedJws(const stir::Signer& signer, const Json& protected_header,
                                         std::string_view payload) {
  std::string header;
  RETURN_IF_ERROR(stir::AppendCanonicalJson(protected_header, &header));
  std::string protected_b64 = stir::Base64UrlEncode(header);
  std::string payload_b64 = stir::Base64UrlEncode(payload);
  ASSIGN_OR_RETURN(std::string sig,
                   SignEs256(signer, absl::StrCat(protected_b64, ".", payload_b64)));
  Json out = {{"protected", protected_b64}, {"payload", payload_b64}, {"signature", sig}};
  return out.dump();
}

std::string HmacSha256(std::string_view key, std::string_view data) {
  unsigned char mac[EVP_MAX_MD_SIZE];
  unsigned int len = 0;
  HMAC(EVP_sha256(), key.data(), static_cast<int>(key.size()),
       reinterpret_cast<const unsigned char*>(data.data()), data.size(), mac, &len);
  return std::string(reinterpret_cast<const char*>(mac), len);
}

absl::StatusOr<Json> ExternalAccountBinding(std::string_view kid, std::string_view mac_key,
                                            std::string_view new_account_url,
                                            const Json& account_jwk) {
  if (mac_key.empty()) return Bad("the External Account Binding MAC key is empty");
  Json header = {
      {"alg", "HS256"}, {"kid", std::string(kid)}, {"url", std::string(new_account_url)}};
  std::string header_text, jwk_text;
  RETURN_IF_ERROR(stir::AppendCanonicalJson(header, &header_text));
  RETURN_IF_ERROR(stir::AppendCanonicalJson(account_jwk, &jwk_text));
  std::string p = stir::Base64UrlEncode(header_text);
  std::string b = stir::Base64UrlEncode(jwk_text);
  std::string mac = HmacSha256(mac_key, absl::StrCat(p, ".", b));
  return Json{{"protected", p}, {"payload", b}, {"signature", stir::Base64UrlEncode(mac)}};
}

absl::StatusOr<ParsedJws> ParseFlattenedJws(std::string_view body) {
  stir::JsonLimits limits;
  limits.max_bytes = 64 * 1024;
  absl::StatusOr<Json> j = stir::ParseStrictJson(body, limits);
  if (!j.ok())
    return Bad(
        absl::StrCat("the body is not a JWS in flattened JSON form: ", j.status().message()));
  for (auto it = j->begin(); it != j->end(); ++it) {
    if (it.key() != "protected" && it.key() != "payload" && it.key() != "signature") {
      return Bad(absl::StrCat("unexpected JWS member \"", it.key(),
                              "\" (RFC 8555 §6.2: flattened JSON, protected header only)"));
    }
    if (!it->is_string()) return Bad(absl::StrCat("JWS member \"", it.key(), "\" is not a string"));
  }
  if (!j->contains("protected") || !j->contains("payload") || !j->contains("signature")) {
    return Bad("the JWS lacks protected, payload or signature");
  }
  ParsedJws out;
  const std::string prot = (*j)["protected"].get<std::string>();
  const std::string payload = (*j)["payload"].get<std::string>();
  ASSIGN_OR_RETURN(out.header, DecodeJsonSegment(prot, "JWS protected header", 8192));
  absl::StatusOr<std::string> p = stir::Base64UrlDecode(payload);
  if (!p.ok()) return Bad(absl::StrCat("JWS payload: ", p.status().message()));
  out.payload = *std::move(p);
  absl::StatusOr<std::string> s = stir::Base64UrlDecode((*j)["signature"].get<std::string>());
  if (!s.ok()) return Bad(absl::StrCat("JWS signature: ", s.status().message()));
  out.signature = *std::move(s);
  out.signing_input = absl::StrCat(prot, ".", payload);
  return out;
}

absl::Status VerifyEs256Raw(std::string_view signing_input, std::string_view signature,
                            const EVP_PKEY* key) {
  if (signature.size() != 64) return Bad("the ES256 signature is not 64 bytes (r||s)");
  stir::Es256Signature sig;
  std::memcpy(sig.data(), signature.data(), 64);
  if (!stir::VerifyEs256(key, stir::Sha256(signing_input), sig).ok()) {
    return Bad("the JWS signature does not verify with the key");
  }
  return absl::OkStatus();
}

absl::Status VerifyEs256Jws(const ParsedJws& jws, const EVP_PKEY* key) {
  return VerifyEs256Raw(jws.signing_input, jws.signature, key);
}

absl::StatusOr<CompactJws> ParseCompactJws(std::string_view jws) {
  if (jws.size() > 16 * 1024) return Bad("the token is longer than 16 KiB");
  std::vector<std::string> parts = absl::StrSplit(ToAbsl(jws), '.');
  if (parts.size() != 3) return Bad("the token is not a compact JWS (three '.'-separated parts)");
  CompactJws out;
  ASSIGN_OR_RETURN(out.header, DecodeJsonSegment(parts[0], "token header", 4096));
  ASSIGN_OR_RETURN(out.payload, DecodeJsonSegment(parts[1], "token payload", 8192));
  absl::StatusOr<std::string> s = stir::Base64UrlDecode(parts[2]);
  if (!s.ok()) return Bad(absl::StrCat("token signature: ", s.status().message()));
  out.signature = *std::move(s);
  out.signing_input = absl::StrCat(parts[0], ".", parts[1]);
  return out;
}

std::string StringMember(const Json& j, std::string_view name) {
  if (!j.is_object()) return "";
  auto it = j.find(std::string(name));
  return it != j.end() && it->is_string() ? it->get<std::string>() : std::string();
}

Json ArrayMember(const Json& j, std::string_view name) {
  if (!j.is_object()) return Json::array();
  auto it = j.find(std::string(name));
  return it != j.end() && it->is_array() ? *it : Json::array();
}

std::string RandomToken(size_t bytes) {
  std::string raw(bytes, '\0');
  if (RAND_bytes(reinterpret_cast<unsigned char*>(raw.data()), static_cast<int>(bytes)) != 1) {
    abort();  // a CSPRNG that fails is a broken invariant: nonces must never repeat
  }
  return stir::Base64UrlEncode(raw);
}

}  // namespace shaken::acme
