// cert_source.h: how the verifier obtains a signing certificate. The verifier knows only this
// interface; x5u_fetcher.h, cert_cache.h and cert_validator.h provide the real one
// (X5uCertificateSource: fetch over HTTPS, validate the chain and the SHAKEN profile, cache).
#ifndef SHAKEN_STIR_CERT_SOURCE_H_
#define SHAKEN_STIR_CERT_SOURCE_H_

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/time/time.h"
#include "stir/openssl_util.h"
#include "stir/verdict.h"

namespace shaken::stir {

// TnAuthEntry is one TNEntry of an RFC 8226 TNAuthorizationList.
struct TnAuthEntry {
  enum class Kind { kSpc, kRange, kOne };
  Kind kind = Kind::kSpc;
  std::string value;   // SPC, range start TN, or the single TN
  uint64_t count = 0;  // for kRange only
};

// CertificateInfo is what a verdict and an operator need to know of a certificate.
struct CertificateInfo {
  std::string subject;             // RFC 2253 one-line form
  std::string issuer;
  std::string serial_hex;          // upper-case hex, no separators
  absl::Time not_before;
  absl::Time not_after;
  std::vector<TnAuthEntry> tn_auth_list;  // empty if the extension is absent
  std::string spc;                 // the first SPC entry, if any
  std::vector<std::string> policy_oids;
  // Deviations from the ATIS-1000080 profile tolerated by a lenient validator (P16, P17), one
  // short sentence each, for logs and lint reports. Empty for a strict validation.
  std::vector<std::string> profile_warnings;
};

// VerifiedCertificate is a signing certificate whose chain and SHAKEN profile were checked.
// Immutable and shared between threads.
struct VerifiedCertificate {
  EvpPkeyPtr public_key;           // the leaf's P-256 key
  CertificateInfo info;            // the leaf
  // The validity window of the whole validated chain (the intersection of every certificate's):
  // a cached validation is only reused while `now` lies inside it.
  absl::Time valid_from;
  absl::Time valid_until;
};

// CertificateResult is the outcome of a lookup: a certificate, or a reason (436/437) and detail.
struct CertificateResult {
  std::shared_ptr<const VerifiedCertificate> cert;
  Reason reason = Reason::kPassed;
  std::string detail;

  bool ok() const { return cert != nullptr; }
  static CertificateResult Failure(Reason r, std::string d) {
    CertificateResult out;
    out.reason = r;
    out.detail = std::move(d);
    return out;
  }
};

// CertificateSource returns the signing certificate named by an x5u URL, validated for use at
// `now`. Implementations are thread-safe.
class CertificateSource {
 public:
  virtual ~CertificateSource() = default;
  // Lookup blocks until the certificate is known (for tools; an RPC thread uses LookupAsync).
  virtual CertificateResult Lookup(std::string_view x5u, absl::Time now) = 0;

  using LookupDone = absl::AnyInvocable<void(CertificateResult) &&>;
  // LookupAsync calls `done` exactly once: before returning when the answer is at hand (a cached
  // certificate, a remembered failure), otherwise on a thread of the source's own when a fetch
  // completes, or when `deadline` passes first (a 436 fetch_timeout result; the fetch goes on and
  // its result is cached for later calls). The default implementation answers inline with Lookup.
  virtual void LookupAsync(std::string_view x5u, absl::Time now, absl::Time deadline,
                           LookupDone done) {
    (void)deadline;
    std::move(done)(Lookup(x5u, now));
  }
};

}  // namespace shaken::stir

#endif  // SHAKEN_STIR_CERT_SOURCE_H_
