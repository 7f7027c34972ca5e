// cert_validator.h: validation of a SHAKEN signing-certificate chain: PEM parsing (pem_chain.h),
// chain building to configured trust anchors with OpenSSL at the verification time, CRLs, and the
// SHAKEN profile (cert_profile.h: ATIS-1000080 §6.4.1; docs/standards.md#ce-certificates) with
// strictness as a policy.
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
#include "stir/cert_profile.h"
#include "stir/cert_source.h"
#include "stir/openssl_util.h"
#include "stir/pem_chain.h"
#include "stir/tn_auth_list.h"

namespace shaken::stir {

// CertValidatorOptions: where trust anchors and CRLs come from, and the profile policy.
struct CertValidatorOptions {
  // Trust anchors (STI-PA approved roots, CE-15): a PEM bundle and/or a directory of hashed names
  // (c_rehash layout, read lazily by X509_LOOKUP_hash_dir; <hash>.rN CRL files there are used too).
  // At least one is required.
  std::string ca_file;
  std::string ca_dir;
  // More trust anchors, PEM text: the last good STI-PA CA list (stir/ca_list.h), which the daemon
  // fetches and hands over (VerificationStack::SetListedAnchors).
  std::string listed_anchors_pem;
  // The anchors come from a CA list not fetched yet: no ca_file / ca_dir / listed anchors is not
  // an error (every chain is untrusted until the list arrives).
  bool anchors_may_be_empty = false;
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

// CrlCheck is the outcome of CertValidator::CheckCrl.
struct CrlCheck {
  enum Outcome { kGood, kRevoked, kUnusable };
  Outcome outcome = kUnusable;
  std::string detail;  // why, for kRevoked and kUnusable
};

// CertValidator validates x5u chains against a trust configuration. Build with New; Reload swaps
// in new trust anchors and CRLs (SIGHUP) atomically: a validation in progress finishes with the
// configuration it started with. Thread-safe; ValidatePem may be called from any thread.
class CertValidator {
 public:
  static absl::StatusOr<std::unique_ptr<CertValidator>> New(CertValidatorOptions options);

  // ValidatePem parses `pem` (leaf first, then intermediates), builds and verifies the chain at
  // time `now` and checks the SHAKEN profile of the leaf. On failure: kFetchNotPem (not a PEM
  // chain), kCertUntrusted, kCertExpired, kCertNotYetValid, kCertRevoked, kCertNoTnAuthList,
  // kCertPolicy, kCertKeyUsage, kCertKeyType, kCertScopeExceeded (DL-3: a CA's TNAuthList does
  // not encompass its subordinate's) or kCertInvalid, with a detail sentence. Use this for
  // `--cert FILE` verification as well as for fetched bodies.
  CertificateResult ValidatePem(std::string_view pem, absl::Time now) const;

  // CheckCrl checks the leaf of `pem` (a chain ValidatePem accepted) against `crl`, fetched from
  // its CRL distribution point: OpenSSL builds the chain again under the current trust, finds the
  // CRL's issuer (the leaf's issuer, or the DP's cRLIssuer for an indirect CRL), verifies the CRL's
  // signature, its validity at `now` (thisUpdate / nextUpdate) and its scope, then looks the leaf
  // up. kUnusable (with what is wrong) when any of that fails; kRevoked when listed.
  CrlCheck CheckCrl(std::string_view pem, X509_CRL* crl, absl::Time now) const;

  // Reload re-reads the trust anchors and CRLs named by the current options (or by
  // `new_options`). On error the previous configuration stays in force.
  absl::Status Reload();
  absl::Status Reload(CertValidatorOptions new_options);

  // generation increases with every successful Reload; caches compare it to know when a cached
  // validation was made under an older trust configuration.
  uint64_t generation() const { return generation_.load(std::memory_order_acquire); }

  ProfileStrictness strictness() const;
  // options is the configuration in force (for a Reload that changes one part of it).
  CertValidatorOptions options() const;

  ~CertValidator();

  struct Trust;  // implementation detail: one immutable trust configuration

 private:
  explicit CertValidator(std::shared_ptr<const Trust> trust);
  std::shared_ptr<const Trust> CurrentTrust() const;

  mutable absl::Mutex mu_;
  std::shared_ptr<const Trust> trust_ ABSL_GUARDED_BY(mu_);
  std::atomic<uint64_t> generation_{1};
};

}  // namespace shaken::stir

#endif  // SHAKEN_STIR_CERT_VALIDATOR_H_
