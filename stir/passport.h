// passport.h: PASSporT (RFC 8225) with the SHAKEN extension (RFC 8588): canonical building and
// signing on one side, strict decoding on the other.
//
// Decoding is split in the order the verifier checks (stir/verifier.h): DecodePassport
// takes a JWS apart and reads the JOSE header; ExtractClaims types the payload claims later, so
// that a bad header is reported as such even when the claims are bad too.
#ifndef SHAKEN_STIR_PASSPORT_H_
#define SHAKEN_STIR_PASSPORT_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "stir/clock.h"
#include "stir/json.h"
#include "stir/signer.h"
#include "stir/x5u_fetcher.h"

namespace shaken::stir {

inline constexpr std::string_view kAlgEs256 = "ES256";
inline constexpr std::string_view kTypPassport = "passport";
inline constexpr std::string_view kPptShaken = "shaken";

// Limits on untrusted PASSporTs. A SHAKEN PASSporT is ~400 bytes; rich call data can be larger.
inline constexpr size_t kMaxPassportBytes = 6144;
inline constexpr size_t kMaxDestTns = 32;

// PassportHeader is the JOSE header (RFC 8225 §4). Absent members are nullopt.
struct PassportHeader {
  std::optional<std::string> alg;
  std::optional<std::string> typ;
  std::optional<std::string> ppt;
  std::optional<std::string> x5u;
};

// DecodedPassport is a JWS taken apart, nothing checked but its syntax.
struct DecodedPassport {
  PassportHeader header;
  Json payload;                 // the claims object, untyped (see ExtractClaims)
  std::string signing_input;    // the received "header.payload" bytes: what was signed (PP-5)
  std::string signature;        // the decoded third segment, any length
};

// DecodePassport decodes a full-form JWS compact serialization strictly: exactly three
// segments, strict base64url (no padding, canonical trailing bits), at most kMaxPassportBytes,
// header and payload JSON objects under JsonLimits with no duplicate names, header members that
// are present being strings, and a "crit" member (RFC 7515 §4.1.11) that is a non-empty array of
// strings naming members present in the header. Errors carry Reason kCompactForm (empty header
// and payload segments), kCritUnsupported (crit names a parameter other than "ppt", the one
// extension understood here) or kPassportMalformed (see ReasonOf).
absl::StatusOr<DecodedPassport> DecodePassport(std::string_view jws);

// PassportClaims are the typed claims. SHAKEN (RFC 8588) uses orig.tn, dest.tn, attest and
// origid; other ppt values (div, rph, rcd) add their claims, kept in `other` until typed.
struct PassportClaims {
  std::optional<int64_t> iat;
  std::optional<std::string> orig_tn;
  std::optional<std::string> orig_uri;
  std::vector<std::string> dest_tns;
  std::vector<std::string> dest_uris;
  std::optional<std::string> attest;
  std::optional<std::string> origid;
  Json other = Json::object();  // every claim not named above, e.g. "div", "rph", "rcd"
};

// ExtractClaims types the claims of `payload` for the PASSporT type `ppt`, in this order:
// base claims present (iat, orig, dest: RFC 8225 §5), their types (iat a non-negative JSON
// integer: errata 5985; orig an object with one string tn or uri; dest an object of string
// arrays: errata 5715), then the rules of the ppt (for "shaken": attest in A|B|C, origid a UUID,
// orig.tn and dest.tn present and canonical TNs). Errors carry kClaimMissing, kClaimInvalid,
// kAttestInvalid, kOrigidInvalid or kPptUnsupported.
absl::StatusOr<PassportClaims> ExtractClaims(const Json& payload, std::string_view ppt);

// ShakenClaims are what an authentication service (STI-AS) is asked to sign.
struct ShakenClaims {
  std::string attest;                  // "A", "B" or "C" (RFC 8588 §4)
  std::string orig_tn;                 // any form CanonicalizeTn accepts
  std::vector<std::string> dest_tns;   // one or more, any form CanonicalizeTn accepts
  std::optional<int64_t> iat;          // default: the signer's clock
  std::optional<std::string> origid;   // default: a fresh UUIDv4
};

// SignedPassport is the result of signing.
struct SignedPassport {
  std::string jws;        // header.payload.signature
  std::string identity;   // the SIP Identity header value, full form (RFC 8224 §4)
  std::string origid;     // as signed
  int64_t iat = 0;        // as signed
};

// PassportSigner builds, signs and serializes SHAKEN PASSporTs for one key and one x5u.
// Thread-safe; the header is serialized once, at creation.
class PassportSigner {
 public:
  struct Options {
    // ID-4 (RFC 8224 §4.1): refuse to sign an iat further than this from the clock's now.
    // Zero disables the check (for tools that mint test vectors).
    absl::Duration max_iat_skew = absl::Seconds(60);
    // The x5u URL policy the signing x5u must pass (ValidateX5uForSigning): the production
    // fetch policy unless a lab relaxes it as its own verifier does (shakend: verifier.lab).
    X5uPolicy x5u_policy;
  };

  // Create checks `x5u` with ValidateX5uForSigning under options.x5u_policy and keeps `signer`
  // and `clock`, which must outlive the PassportSigner.
  static absl::StatusOr<std::unique_ptr<PassportSigner>> Create(const Signer* signer,
                                                                 std::string x5u,
                                                                 const Clock* clock,
                                                                 Options options);
  static absl::StatusOr<std::unique_ptr<PassportSigner>> Create(const Signer* signer,
                                                                 std::string x5u,
                                                                 const Clock* clock) {
    return Create(signer, std::move(x5u), clock, Options());
  }

  // Sign validates `claims` (INVALID_ARGUMENT says which field and why), canonicalizes the TNs,
  // serializes canonical JSON, and signs through the Signer with `deadline`; the Signer's errors
  // (UNAVAILABLE, DEADLINE_EXCEEDED, ...) pass through.
  absl::StatusOr<SignedPassport> Sign(const ShakenClaims& claims,
                                      absl::Time deadline = absl::InfiniteFuture()) const;

  // SignAsync is Sign through Signer::SignDigestAsync: the claims are checked and serialized on
  // the calling thread (a bad claim calls `done` before SignAsync returns); `done` then runs where
  // the Signer completes (inline for an in-memory key, a pool worker for a token key).
  using SignDone = absl::AnyInvocable<void(absl::StatusOr<SignedPassport>) &&>;
  void SignAsync(const ShakenClaims& claims, absl::Time deadline, SignDone done) const;

  const std::string& x5u() const { return x5u_; }

 private:
  PassportSigner(const Signer* signer, std::string x5u, const Clock* clock, Options options);
  // Prepare checks and serializes `claims`: out.jws holds the signing input (header.payload).
  absl::StatusOr<SignedPassport> Prepare(const ShakenClaims& claims) const;
  // Complete appends the signature to out.jws and builds the Identity header.
  void Complete(const Es256Signature& sig, SignedPassport& out) const;

  const Signer* signer_;
  const std::string x5u_;
  const Clock* clock_;
  const Options options_;
  std::string header_b64_;  // base64url of the canonical header, computed once
};

// CanonicalShakenHeader returns {"alg":"ES256","ppt":"shaken","typ":"passport","x5u":...}.
std::string CanonicalShakenHeader(std::string_view x5u);

// CanonicalShakenPayload returns the canonical claims JSON in RFC 8588 §8 order (attest, dest,
// iat, orig, origid). The TNs must already be canonical and origid a UUID.
std::string CanonicalShakenPayload(std::string_view attest, const std::vector<std::string>& dest,
                                   int64_t iat, std::string_view orig, std::string_view origid);

// ValidateX5uForSigning checks that verifiers will dereference an x5u we publish: it applies the
// fetcher's own URL policy (CheckX5uUrl under `policy`, production by default: https, port 443 or
// 8443, no userinfo, query or fragment; ATIS-1000080 CE-12, SH-10), so signer and verifier share
// one x5u policy and cannot disagree. Signing adds what the Identity header needs: at most 1024
// bytes, no '<', '>' or '"' (they would break info=<...>). INVALID_ARGUMENT says what to fix.
absl::Status ValidateX5uForSigning(std::string_view x5u,
                                   const X5uPolicy& policy = X5uPolicy());

}  // namespace shaken::stir

#endif  // SHAKEN_STIR_PASSPORT_H_
