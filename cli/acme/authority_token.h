// authority_token.h: the TNAuthList Authority Token (RFC 9447 "atc", profiled by RFC 9448) that
// an STI-PA issues and an STI-CA checks in the tkauth-01 challenge. Signing (the lab PA of
// `shakenctl pa token`) and verification (`shakenctl ca serve`) share this one codec.
//
//   header  {"alg":"ES256","typ":"JWT","x5u":<PA certificate URL>}
//   payload {"atc":{"ca":false,"fingerprint":"SHA256 AB:..","tktype":"TNAuthList",
//            "tkvalue":<standard base64 of the TNAuthList DER>},"exp":..,"iat":..,"iss":..,
//            "jti":..}
#ifndef SHAKEN_CLI_ACME_AUTHORITY_TOKEN_H_
#define SHAKEN_CLI_ACME_AUTHORITY_TOKEN_H_

#include <openssl/x509_vfy.h>

#include <cstdint>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "stir/signer.h"
#include "stir/x5u_fetcher.h"

namespace shaken::acme {

struct AuthorityTokenClaims {
  std::string tnauthlist_der;  // the DER TNAuthList the token authorizes
  std::string fingerprint;     // AccountKeyFingerprint of the ACME account key
  bool ca = false;             // RFC 9448 §3: may the holder get a CA certificate
  std::string iss;             // the issuing STI-PA (optional in RFC 9448; always set here)
  std::string jti;             // empty: a fresh random id
  absl::Time iat;
  absl::Time exp;
};

// SignAuthorityToken builds and signs a token with `signer` (the PA key) naming the PA
// certificate at `x5u`. INVALID_ARGUMENT for an empty TNAuthList or fingerprint, an x5u that is
// not an http(s) URL, or exp not after iat.
absl::StatusOr<std::string> SignAuthorityToken(const stir::Signer& signer, std::string_view x5u,
                                               const AuthorityTokenClaims& claims);

// TnAuthListValue is the ACME identifier value and token tkvalue of a TNAuthList: standard
// base64 with padding (RFC 9448 §3 example). DecodeTnAuthListValue also accepts the base64url
// alphabet some STI-PA tools write (docs/acme.md), and returns the DER.
std::string TnAuthListValue(std::string_view der);
absl::StatusOr<std::string> DecodeTnAuthListValue(std::string_view value);

// TokenExpectations are what the token must say for one tkauth-01 challenge.
struct TokenExpectations {
  std::string tnauthlist_der;  // the order's identifier
  std::string fingerprint;     // of the account answering the challenge
  absl::Time now;
  X509_STORE* pa_anchors = nullptr;                   // trust anchors of the STI-PA certificates
  const stir::CertificateFetcher* fetcher = nullptr;  // dereferences x5u
};

struct VerifiedToken {
  std::string jti;
  std::string iss;
  absl::Time exp;
  std::string pa_subject;  // the PA certificate's subject
  bool ca = false;         // atc.ca: the holder may get a CA (SP-CA) certificate (RFC 9448 §3)
};

// VerifyAuthorityToken checks, in order: compact JWS syntax; alg ES256 and an x5u; the PA chain
// fetched from x5u verifies to pa_anchors (at `now`); the signature with its leaf key; exp
// present and after now; jti present; atc present with tktype "TNAuthList"; tkvalue equal to the
// expected TNAuthList; fingerprint equal to the account's. Every failure is PERMISSION_DENIED
// (the token does not authorize this account for this identifier) with a message naming the
// check; the caller still has to record the jti against replay.
absl::StatusOr<VerifiedToken> VerifyAuthorityToken(std::string_view token,
                                                   const TokenExpectations& expect);

}  // namespace shaken::acme

#endif  // SHAKEN_CLI_ACME_AUTHORITY_TOKEN_H_
