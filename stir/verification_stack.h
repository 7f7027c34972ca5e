// verification_stack.h: the verification stack, built in one call: x5u fetcher -> certificate
// validator -> certificate cache (X5uCertificateSource) -> Verifier, under one x5u policy. Every
// verifier of the project (shakend, shakenctl passport verify, the conformance runner, the
// benchmarks) is one of these, so they verify alike.
#ifndef SHAKEN_STIR_VERIFICATION_STACK_H_
#define SHAKEN_STIR_VERIFICATION_STACK_H_

#include <functional>
#include <memory>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "stir/cert_cache.h"
#include "stir/cert_source.h"
#include "stir/cert_validator.h"
#include "stir/clock.h"
#include "stir/crl_checker.h"
#include "stir/verifier.h"
#include "stir/x5u_fetcher.h"

namespace shaken::stir {

// VerifierSettings is everything a verifier is configured with (shakend: its `verifier:`
// section, mapped by daemon::VerifierSettingsFrom).
struct VerifierSettings {
  // The one x5u policy of the stack. VerificationStack::New applies it to the fetcher it builds
  // (it replaces the X5uPolicy part of `fetcher`) and to the verifier (it replaces
  // verifier.x5u_policy), so the two cannot disagree.
  X5uPolicy x5u_policy;
  CertValidatorOptions validator;  // trust anchors, CRLs, SHAKEN profile strictness
  X5uFetcherOptions fetcher;       // timeouts, body cap, TLS trust, asynchronous fetch limits
  CertCacheOptions cache;
  VerifierOptions verifier;        // iat / Date windows, low-S
  // Revocation through the signing certificate's CRL distribution point (crl_checker.h), fetched
  // by the stack's fetcher under CrlPolicy(x5u_policy). On by default; it needs the stack's own
  // certificate cache (not with parts.make_source).
  bool follow_crl_distribution_points = true;
  CrlCheckerOptions crl;
};

// VerificationStackParts replaces parts of the stack with the caller's own. Every member is
// optional; the default builds everything from the settings.
struct VerificationStackParts {
  // A fetcher to use instead of the X5uFetcher built from settings.fetcher (a test's fetcher, or
  // one shared by several stacks). It brings its own x5u policy; x5u_fetcher() is then null.
  std::shared_ptr<const CertificateFetcher> fetcher;
  // Wraps the fetcher (built or given) before the certificate source uses it: metrics, a test's
  // URL rewriting. Must return a fetcher.
  std::function<std::shared_ptr<const CertificateFetcher>(
      std::shared_ptr<const CertificateFetcher>)>
      wrap_fetcher;
  // A validator to use instead of the one built from settings.validator (one shared by several
  // stacks). ReloadTrust() then fails: the owner of the validator reloads it.
  std::shared_ptr<const CertValidator> validator;
  // No validator at all: only with make_source (a tool that checks the signature alone).
  bool without_validator = false;
  // The certificate source to use instead of X5uCertificateSource (a tool that reads the chain
  // from a file). Called once with the (wrapped) fetcher and the validator (null with
  // without_validator); certificate_cache() is then null.
  std::function<absl::StatusOr<std::unique_ptr<CertificateSource>>(
      std::shared_ptr<const CertificateFetcher>, std::shared_ptr<const CertValidator>)>
      make_source;
  // Second-level store for X5uCertificateSource (may be null).
  std::shared_ptr<CertificateStore> store;
};

// VerificationStack owns a Verifier and everything it uses. Thread-safe as its Verifier is. The
// destructor first destroys the certificate source (which waits for fetches in progress: their
// completions run through the verifier), then the verifier, the fetcher and the validator.
class VerificationStack {
 public:
  // New builds the stack. `clock` must outlive it (the system clock when null). Errors name the
  // part: "verifier trust anchors: ..." (the validator's files), "x5u fetcher: ..." (bad limits,
  // unreadable tls_ca_file), "certificate cache: ..." (bad bounds), each INVALID_ARGUMENT or the
  // underlying code.
  static absl::StatusOr<std::unique_ptr<VerificationStack>> New(
      VerifierSettings settings, const Clock* clock = nullptr, VerificationStackParts parts = {});
  ~VerificationStack();

  VerificationStack(const VerificationStack&) = delete;
  VerificationStack& operator=(const VerificationStack&) = delete;

  const Verifier& verifier() const { return *verifier_; }
  // The certificate source the verifier uses.
  CertificateSource& certificates() const { return *source_; }
  // The caching source (its Stats for metrics); null when parts.make_source replaced it.
  X5uCertificateSource* certificate_cache() const { return cache_; }
  // The libcurl fetcher the stack built (its LoopStats for metrics); null when parts.fetcher
  // replaced it.
  const X5uFetcher* x5u_fetcher() const { return x5u_fetcher_; }
  // The CRL distribution point checker (its Stats for metrics); null when not following CRLDPs.
  const CrlChecker* crl_checker() const { return crl_checker_.get(); }
  // The fetcher the stack fetches with (wrapped, as the certificate source uses it): also what
  // fetches rich call data content (CertificateFetcher::FetchContent).
  const CertificateFetcher& fetcher() const { return *fetcher_; }
  // The validator; null with parts.without_validator.
  const CertValidator* validator() const { return validator_.get(); }
  // ReloadTrust re-reads the trust anchors and CRLs (SIGHUP); on error the previous ones stay.
  // FAILED_PRECONDITION when the validator was given (parts.validator) or there is none.
  absl::Status ReloadTrust();
  // SetListedAnchors puts `pem` (an accepted STI-PA CA list, stir/ca_list.h) in force as trust
  // anchors next to ca_file / ca_dir, replacing the previous list, atomically (like ReloadTrust;
  // cached validations made under the old anchors are redone). On error the old ones stay.
  absl::Status SetListedAnchors(std::string pem);

 private:
  VerificationStack() = default;

  std::shared_ptr<CertValidator> owned_validator_;  // null when given or absent
  std::shared_ptr<const CertValidator> validator_;
  std::shared_ptr<const CertificateFetcher> fetcher_;  // as the source uses it (wrapped)
  const X5uFetcher* x5u_fetcher_ = nullptr;             // owned through fetcher_
  std::shared_ptr<CrlChecker> crl_checker_;  // also held by the source
  std::unique_ptr<Verifier> verifier_;       // declared before source_: destroyed after it
  std::unique_ptr<CertificateSource> source_;
  X5uCertificateSource* cache_ = nullptr;  // source_, when it is one
};

}  // namespace shaken::stir

#endif  // SHAKEN_STIR_VERIFICATION_STACK_H_
