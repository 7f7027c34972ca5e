// passport.h: PASSporT (RFC 8225) with the SHAKEN (RFC 8588), div (RFC 8946), rph (RFC 8443)
// and rcd (RFC 9795) extensions:
// canonical building and signing on one side, strict decoding on the other.
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
inline constexpr std::string_view kPptDiv = "div";
inline constexpr std::string_view kPptRph = "rph";
inline constexpr std::string_view kPptRcd = "rcd";

// IsSupportedPpt tells whether this code signs and verifies PASSporTs of type `ppt` (shaken,
// div, rph, rcd). Other types (div-o, ...) are ignored by the verifier (RFC 8224, 428).
bool IsSupportedPpt(std::string_view ppt);

// IsAttestLevel tells whether `attest` is a SHAKEN attestation level: "A", "B" or "C" (RFC 8588
// §4), exactly. The one definition every reader of a level (API, REST, SIP, configuration)
// applies.
bool IsAttestLevel(std::string_view attest);

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
// origid; div (RFC 8946) uses orig.tn, dest.tn and div; rph (RFC 8443) orig.tn, dest.tn, rph and
// sph; rcd (RFC 9795) orig.tn, dest.tn, rcd, rcdi and crn, which a shaken PASSporT may carry too
// (ATIS-1000094). Claims of no type handled here are kept in `other`.
struct PassportClaims {
  std::optional<int64_t> iat;
  std::optional<std::string> orig_tn;
  std::optional<std::string> orig_uri;
  std::vector<std::string> dest_tns;
  std::vector<std::string> dest_uris;
  std::optional<std::string> attest;
  std::optional<std::string> origid;
  // ppt=div (RFC 8946 §3): the diverted-from identity, div.tn or div.uri, and the optional
  // History-Info index div.hi.
  std::optional<std::string> div_tn;
  std::optional<std::string> div_uri;
  std::optional<std::string> div_hi;
  // ppt=rph (RFC 8443 §3): the rph.auth r-values, and the sph claim (RFC 9027) when present.
  std::vector<std::string> rph_auth;
  std::optional<std::string> sph;
  // Rich call data (RFC 9795): the rcd claim object, the rcdi digests and the call reason crn,
  // typed by ReadRcdClaims (stir/rcd.h); rcd absent when the PASSporT carries none.
  std::optional<Json> rcd;
  std::optional<Json> rcdi;
  std::optional<std::string> crn;
  Json other = Json::object();  // every claim not named above
};

// ExtractClaims types the claims of `payload` for the PASSporT type `ppt`, in this order:
// base claims present (iat, orig, dest: RFC 8225 §5), their types (iat a non-negative JSON
// integer: errata 5985; orig an object with one string tn or uri; dest an object of string
// arrays: errata 5715), then the rules of the ppt (for "shaken": attest in A|B|C, origid a UUID,
// orig.tn and dest.tn present and canonical TNs; for "div": orig.tn and dest.tn canonical TNs, div
// an object with one canonical tn or one uri string and an optional History-Info index hi, attest
// and origid ignored when present). Errors carry kClaimMissing, kClaimInvalid, kAttestInvalid,
// kOrigidInvalid or kPptUnsupported.
absl::StatusOr<PassportClaims> ExtractClaims(const Json& payload, std::string_view ppt);

// RcdSigning is rich call data to sign (RFC 9795): the rcd claim members, the call reason, and the
// rcdi digests of the content they reference (ComputeRcdi in stir/rcd.h fetches it).
struct RcdSigning {
  std::optional<std::string> nam;   // display name
  std::optional<std::string> apn;   // alternate presentation number
  std::optional<std::string> icn;   // icon URL (content by reference)
  std::optional<std::string> jcl;   // jCard URL (content by reference)
  std::optional<std::string> jcd;   // inline jCard, JSON text of a jCard array
  std::optional<std::string> crn;   // call reason
  // JSON pointer -> "sha256-<base64>", for every URL above ("/icn", "/jcl"); ComputeRcdi fills it.
  std::vector<std::pair<std::string, std::string>> rcdi;
  bool empty() const { return !nam && !apn && !icn && !jcl && !jcd && !crn; }
};

// ShakenClaims are what an authentication service (STI-AS) is asked to sign.
struct ShakenClaims {
  std::string attest;                  // "A", "B" or "C" (RFC 8588 §4)
  std::string orig_tn;                 // any form CanonicalizeTn accepts
  std::vector<std::string> dest_tns;   // one or more, any form CanonicalizeTn accepts
  std::optional<int64_t> iat;          // default: the signer's clock
  std::optional<std::string> origid;   // default: a fresh UUIDv4
  // Rich call data carried in the shaken PASSporT (ATIS-1000094); none when empty.
  RcdSigning rcd;
};

// RphClaims are what an authority for priority calls asks to sign: an rph PASSporT (RFC 8443)
// asserting the Resource-Priority values of the call. No attest or origid.
struct RphClaims {
  std::string orig_tn;                 // any form CanonicalizeTn accepts
  std::vector<std::string> dest_tns;   // one or more
  // The Resource-Priority r-values (RFC 4412 §3.1: namespace "." priority, e.g. "ets.0"), one
  // or more; the header's comma-separated text may be given as one entry.
  std::vector<std::string> auth;
  std::optional<std::string> sph;      // the sph claim (e.g. "psap-callback"), when given
  std::optional<int64_t> iat;          // default: the signer's clock
};

// RcdClaims are what a ppt=rcd PASSporT (RFC 9795) is signed from: the call's numbers and its
// rich call data. No attest or origid.
struct RcdClaims {
  std::string orig_tn;
  std::vector<std::string> dest_tns;
  RcdSigning rcd;                      // at least one of nam, apn, icn, jcl, jcd
  std::optional<int64_t> iat;
};

// DivClaims are what a retargeting entity asks to sign: a div PASSporT (RFC 8946 §3-4) for a
// call it diverts. orig is copied from the original PASSporT, div is the original's dest, dest is
// the new target; there is no attest or origid (ATIS-1000085; docs/standards.md#div-passports).
struct DivClaims {
  // The PASSporT being diverted, as received: an Identity header value or its bare JWS (full
  // form), ppt shaken or div. It is decoded and its claims typed, not verified: the retargeting
  // entity verifies the call before it diverts it.
  std::string original;
  std::vector<std::string> dest_tns;   // the new target(s), any form CanonicalizeTn accepts
  // Which of the original's dest TNs is diverted; needed only when it has several.
  std::optional<std::string> div_tn;
  std::optional<std::string> hi;       // History-Info index, e.g. "1.2" (RFC 7044 §10.3)
  std::optional<int64_t> iat;          // default: the signer's clock
};

// IsHistoryInfoIndex tells whether `s` is an RFC 7044 index: 1*DIGIT *( "." 1*DIGIT ), at most
// 64 bytes.
bool IsHistoryInfoIndex(std::string_view s);

// SignedPassport is the result of signing.
struct SignedPassport {
  std::string jws;        // header.payload.signature
  std::string identity;   // the SIP Identity header value, full form (RFC 8224 §4)
  std::string origid;     // as signed (empty for div)
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
    // DIV-5 (ATIS-1000085): no div PASSporT for a call whose original PASSporT's iat is further
    // than this from now, either way (the verifier's iat window, RFC 8224 §4.1).
    absl::Duration div_original_window = absl::Seconds(60);
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

  // SignDiv signs a div PASSporT (ppt=div) for `claims` with this signer's key and x5u; the
  // Identity header carries ppt=div. INVALID_ARGUMENT names the field: an original that does not
  // decode, whose claims are not those of a shaken or div PASSporT, or whose orig is not a TN;
  // a dest, div_tn (not among the original's dest TNs, or missing when it has several) or hi
  // that is not valid. FAILED_PRECONDITION when the original is stale (DIV-5): its iat is
  // further than Options::div_original_window from now. The Signer's errors pass through.
  absl::StatusOr<SignedPassport> SignDiv(const DivClaims& claims,
                                         absl::Time deadline = absl::InfiniteFuture()) const;
  // SignDivAsync is SignDiv as SignAsync is Sign.
  void SignDivAsync(const DivClaims& claims, absl::Time deadline, SignDone done) const;

  // SignRph signs an rph PASSporT (ppt=rph, RFC 8443); the Identity header carries ppt=rph.
  // INVALID_ARGUMENT names the field: orig, a dest, an auth value that is not an RFC 4412
  // r-value, an sph that is not a token. SignRphAsync is SignRph as SignAsync is Sign.
  absl::StatusOr<SignedPassport> SignRph(const RphClaims& claims,
                                         absl::Time deadline = absl::InfiniteFuture()) const;
  void SignRphAsync(const RphClaims& claims, absl::Time deadline, SignDone done) const;
  // SignRcd signs an rcd PASSporT (ppt=rcd, RFC 9795); INVALID_ARGUMENT names the rcd field at
  // fault (see CheckRcdSigning in stir/rcd.h). SignRcdAsync is SignRcd as SignAsync is Sign.
  absl::StatusOr<SignedPassport> SignRcd(const RcdClaims& claims,
                                         absl::Time deadline = absl::InfiniteFuture()) const;
  void SignRcdAsync(const RcdClaims& claims, absl::Time deadline, SignDone done) const;

  const std::string& x5u() const { return x5u_; }

 private:
  PassportSigner(const Signer* signer, std::string x5u, const Clock* clock, Options options);
  // Prepare checks and serializes `claims`: out.jws holds the signing input (header.payload).
  absl::StatusOr<SignedPassport> Prepare(const ShakenClaims& claims) const;
  absl::StatusOr<SignedPassport> PrepareDiv(const DivClaims& claims) const;
  absl::StatusOr<SignedPassport> PrepareRph(const RphClaims& claims) const;
  absl::StatusOr<SignedPassport> PrepareRcd(const RcdClaims& claims) const;
  // PrepareOrigDest canonicalizes an orig and dest TNs (INVALID_ARGUMENT naming them).
  absl::StatusOr<std::pair<std::string, std::vector<std::string>>> PrepareOrigDest(
      std::string_view orig, const std::vector<std::string>& dest) const;
  // Assemble is the signing input of a PASSporT of type `ppt` with canonical `payload`.
  void Assemble(std::string_view ppt, const std::string& payload, SignedPassport& out) const;
  // CheckIat resolves the iat to sign (given or now) under the ID-4 skew policy.
  absl::StatusOr<int64_t> CheckIat(std::optional<int64_t> iat) const;
  // Finish signs a prepared PASSporT through the Signer, synchronously or not.
  absl::StatusOr<SignedPassport> SignPrepared(absl::StatusOr<SignedPassport> prepared,
                                              std::string_view ppt, absl::Time deadline) const;
  void SignPreparedAsync(absl::StatusOr<SignedPassport> prepared, std::string_view ppt,
                         absl::Time deadline, SignDone done) const;
  // Complete appends the signature to out.jws and builds the Identity header for `ppt`.
  void Complete(const Es256Signature& sig, std::string_view ppt, SignedPassport& out) const;

  const Signer* signer_;
  const std::string x5u_;
  const Clock* clock_;
  const Options options_;
  std::string header_b64_;      // base64url of the canonical shaken header, computed once
  std::string div_header_b64_;  // and of the div, rph and rcd headers
  std::string rph_header_b64_;
  std::string rcd_header_b64_;
};

// CanonicalShakenHeader returns {"alg":"ES256","ppt":"shaken","typ":"passport","x5u":...};
// CanonicalHeader is the same for another ppt (a token: "div").
std::string CanonicalShakenHeader(std::string_view x5u);
std::string CanonicalHeader(std::string_view ppt, std::string_view x5u);

// CanonicalShakenPayload returns the canonical claims JSON in RFC 8588 §8 order (attest, dest,
// iat, orig, origid). The TNs must already be canonical and origid a UUID.
std::string CanonicalShakenPayload(std::string_view attest, const std::vector<std::string>& dest,
                                   int64_t iat, std::string_view orig, std::string_view origid);

// CanonicalDivPayload returns the canonical claims JSON of a div PASSporT, members in
// lexicographic order as for shaken: {"dest":{"tn":[...]},"div":{"hi":...,"tn":...},"iat":...,
// "orig":{"tn":...}} ("hi" only when given). The TNs must already be canonical.
std::string CanonicalDivPayload(const std::vector<std::string>& dest, std::string_view div_tn,
                                std::optional<std::string_view> hi, int64_t iat,
                                std::string_view orig);

// ValidateX5uForSigning checks that verifiers will dereference an x5u we publish: it applies the
// fetcher's own URL policy (CheckX5uUrl under `policy`, production by default: https, port 443 or
// 8443, no userinfo, query or fragment; ATIS-1000080 CE-12, SH-10), so signer and verifier share
// one x5u policy and cannot disagree. Signing adds what the Identity header needs: at most 1024
// bytes, no '<', '>' or '"' (they would break info=<...>). INVALID_ARGUMENT says what to fix.
absl::Status ValidateX5uForSigning(std::string_view x5u,
                                   const X5uPolicy& policy = X5uPolicy());

}  // namespace shaken::stir

#endif  // SHAKEN_STIR_PASSPORT_H_
