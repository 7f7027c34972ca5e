// cert_validator.h: validation of a SHAKEN signing-certificate chain: PEM parsing, chain building
// to configured trust anchors with OpenSSL at the verification time, CRLs, and the SHAKEN profile
// (ATIS-1000080 §6.4.1; docs/standards.md#ce-certificates) with strictness as a policy.
#ifndef SHAKEN_STIR_CERT_VALIDATOR_H_
#define SHAKEN_STIR_CERT_VALIDATOR_H_

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "stir/cert_source.h"
#include "stir/openssl_util.h"

namespace shaken::stir {

// ProfileStrictness selects how closely the SHAKEN certificate profile is enforced.
//   kLenient: what real traffic needs (P16, P17): a TNAuthList with at least one well-formed
//     entry; any policy OID in the SHAKEN arc 2.16.840.1.114569.1.1.*; KeyUsage, if present,
//     allows digitalSignature; deviations from ATIS-1000080 are reported as profile_warnings.
//   kStrict: ATIS-1000080 v005 as the zlint SHAKEN lints read it: exactly one TNAuthList entry, an
//     SPC of digits and upper-case letters, or else a delegate certificate's TNAuthList (RFC 9060,
//     ATIS-1000092): TN and range entries only, no SPC (CA certificates of a delegate chain may
//     then carry a TNAuthList too); exactly one SHAKEN policy OID, .3 or .4 (.1 rejected);
//     KeyUsage present, critical, digitalSignature only; BasicConstraints critical; X.509 v3;
//     ecdsa-with-SHA256; OpenSSL's X509_V_FLAG_X509_STRICT chain checks.
// Both: EC P-256 leaf key, leaf not a CA, chain to a configured trust anchor, validity at `now`.
enum class ProfileStrictness { kLenient, kStrict };

// CertValidatorOptions: where trust anchors and CRLs come from, and the profile policy.
struct CertValidatorOptions {
  // Trust anchors (STI-PA approved roots, CE-15): a PEM bundle and/or a directory of hashed names
  // (c_rehash layout, read lazily by X509_LOOKUP_hash_dir; <hash>.rN CRL files there are used too).
  // At least one is required.
  std::string ca_file;
  std::string ca_dir;
  // CRL files (PEM or DER; a PEM file may hold several CRLs). When any CRL is configured, chain
  // validation checks revocation.
  std::vector<std::string> crl_files;
  // crl_check_all: check every certificate of the chain (the STI-PA CRL revokes STI-CA
  // intermediates), not only the leaf.
  bool crl_check_all = true;
  // require_crl: a certificate whose issuer has no configured CRL fails (kCertUntrusted). When
  // false, revocation is checked only where a CRL for the issuer is configured.
  bool require_crl = false;
  ProfileStrictness strictness = ProfileStrictness::kLenient;
  // Limits on untrusted input.
  size_t max_chain_certs = 8;
  size_t max_pem_bytes = 64 * 1024;
};

// ParsePemChain parses a PEM certificate chain (leaf first). Fails (INVALID_ARGUMENT) on empty
// input, a body over max_bytes, text outside BEGIN/END CERTIFICATE blocks other than whitespace,
// a block that does not decode to exactly one DER certificate, or more than max_certs
// certificates.
absl::StatusOr<std::vector<X509Ptr>> ParsePemChain(std::string_view pem, size_t max_certs = 8,
                                                   size_t max_bytes = 64 * 1024);

// ParseTnAuthList decodes the DER value of a TNAuthList extension (RFC 8226 §9):
//   TNAuthorizationList ::= SEQUENCE SIZE (1..MAX) OF TNEntry
//   TNEntry ::= CHOICE { spc [0] ServiceProviderCode, range [1] TelephoneNumberRange,
//                        one [2] TelephoneNumber }
// with a bounds-checked DER reader. Accepts explicit tagging (the RFC 8226 module) and, for
// range/one, the implicit form some issuers produce. Fails (INVALID_ARGUMENT, never crashes) on
// truncation, wrong tags, indefinite or oversized lengths, trailing bytes, an empty list, more than
// 1024 entries, a TN outside "0123456789#*" or 1..15 characters, an SPC that is empty, longer than
// 64 bytes or not printable ASCII, or a range count outside 2..2^63.
absl::StatusOr<std::vector<TnAuthEntry>> ParseTnAuthList(std::string_view der);

// TnAuthListHasTns tells whether `entries` hold a TelephoneNumber (`one`) or a
// TelephoneNumberRange entry. Such a list scopes the certificate to those numbers: a delegate
// certificate (RFC 9060, ATIS-1000092; DL-1, DL-2 in docs/standards.md).
bool TnAuthListHasTns(const std::vector<TnAuthEntry>& entries);

// TnAuthListCovers tells whether the canonical TN `tn` (RFC 8224 §8.3: digits, '#', '*') is a
// `one` entry of `entries`, or lies in a `range` entry: a range is `count` consecutive numbers
// from `start` with the same number of digits (RFC 8226 §9), so it covers `tn` when both are
// digits only, have the same length and start <= tn < start + count. SPC entries cover nothing
// here (an SPC names the signer, not numbers: SH-13).
bool TnAuthListCovers(const std::vector<TnAuthEntry>& entries, std::string_view tn);

// DescribeCertificate reads what CertificateInfo holds from one certificate (names, serial,
// validity, TNAuthList, policy OIDs) without judging it. INVALID_ARGUMENT when its TNAuthList is
// malformed. For a profile's own certificate, `cert show` and the like.
absl::StatusOr<CertificateInfo> DescribeCertificate(const X509* cert);

// CertValidator validates x5u chains against a trust configuration. Build with New; Reload swaps
// in new trust anchors and CRLs (SIGHUP) atomically: a validation in progress finishes with the
// configuration it started with. Thread-safe; ValidatePem may be called from any thread.
class CertValidator {
 public:
  static absl::StatusOr<std::unique_ptr<CertValidator>> New(CertValidatorOptions options);

  // ValidatePem parses `pem` (leaf first, then intermediates), builds and verifies the chain at
  // time `now` and checks the SHAKEN profile of the leaf. On failure: kFetchNotPem (not a PEM
  // chain), kCertUntrusted, kCertExpired, kCertNotYetValid, kCertRevoked, kCertNoTnAuthList,
  // kCertPolicy, kCertKeyUsage, kCertKeyType or kCertInvalid, with a detail sentence. Use this for
  // `--cert FILE` verification as well as for fetched bodies.
  CertificateResult ValidatePem(std::string_view pem, absl::Time now) const;

  // Reload re-reads the trust anchors and CRLs named by the current options (or by
  // `new_options`). On error the previous configuration stays in force.
  absl::Status Reload();
  absl::Status Reload(CertValidatorOptions new_options);

  // generation increases with every successful Reload; caches compare it to know when a cached
  // validation was made under an older trust configuration.
  uint64_t generation() const { return generation_.load(std::memory_order_acquire); }

  ProfileStrictness strictness() const;

  ~CertValidator();

  struct Trust;  // implementation detail: one immutable trust configuration

 private:
  explicit CertValidator(std::shared_ptr<const Trust> trust);
  std::shared_ptr<const Trust> CurrentTrust() const;

  mutable absl::Mutex mu_;
  std::shared_ptr<const Trust> trust_ ABSL_GUARDED_BY(mu_);
  std::atomic<uint64_t> generation_{1};
};

// Object identifiers used by the profile checks.
inline constexpr char kTnAuthListOid[] = "1.3.6.1.5.5.7.1.26";       // RFC 8226 §9
inline constexpr char kShakenPolicyArc[] = "2.16.840.1.114569.1.1";  // SHAKEN CP

}  // namespace shaken::stir

#endif  // SHAKEN_STIR_CERT_VALIDATOR_H_
