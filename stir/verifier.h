// verifier.h: the STI-VS. Takes the Identity header values of a call with its From/PAI and To
// numbers and returns a Verdict per header and one for the call.
//
// Checks, in this order (cheap and local first; the network only for a well-formed, fresh,
// matching PASSporT; docs/standards.md#verification-order, ATIS-1000082 cases E1-E19):
//   1. Identity grammar (438 identity_malformed) and full form (438 compact_form)
//   2. Identity ppt parameter is shaken, div, rph or rcd if present (438 ppt_unsupported; such a
//      header counts as absent for the call's verdict, see Verify)
//   3. info present (436 info_missing) and <absoluteURI> (436 info_invalid)
//   4. JWS: three segments, strict base64url, strict JSON (438 passport_malformed)
//   5. header ppt, typ, alg, x5u present (436 header_param_missing); ppt is shaken, div, rph or
//      rcd (438 ppt_unsupported) and equals the Identity ppt (438 ppt_mismatch; a div, rph or rcd
//      PASSporT needs its Identity ppt)
//   6. x5u == info (436 x5u_mismatch), https (436 x5u_not_allowed)
//   7. typ == passport (437 typ_invalid); alg == ES256, so none/HS256/RS256/ES384 are
//      never verified (437 alg_unsupported)
//      and the Identity alg parameter, if present, equals it (438 alg_mismatch, RFC 8224 §4.1)
//   8. claims present and typed (438 claim_missing / claim_invalid), attest A|B|C
//      (438 attest_invalid), origid a UUID (438 origid_invalid); for div, the div claim
//      (RFC 8946 §3); for rph, the rph claim (RFC 8443 §3); for rcd, the rcd claim; rcd, rcdi and
//      crn typed wherever they appear (RFC 9795)
//   9. Date within the window if given (403 date_stale); iat within +-window (403 iat_stale,
//      iat_future)
//  10. orig == From/PAI and dest == To after RFC 8224 §8.3 canonicalization (438); in a diverted
//      call (one with an Identity ppt=div) dest is checked at step 14 instead; for rph, every
//      Resource-Priority r-value of the call is among rph.auth (438 rph_mismatch, RFC 8443)
//  11. certificate: fetched and validated by the CertificateSource (436 fetch_*, 437 cert_*; a
//      delegate chain whose CA scope does not encompass its subordinate's: 437
//      cert_scope_exceeded, RFC 9060)
//  12. signature over the received header.payload bytes (438 signature_invalid)
//  13. orig.tn within the certificate's TNAuthList when it holds TNs or ranges (a delegate
//      certificate, RFC 9060; 438 orig_not_in_tnauthlist); an SPC-only list scopes nothing
//      (SH-13)
//  14. a diverted call's headers are linked (stir/div_chain.h, RFC 8946): each div diverts a
//      passing PASSporT of the call with its div.tn as dest (438 div_unlinked) and the same orig
//      (438 div_orig_mismatch); the To is the last div's dest, every passing PASSporT reaches it
//      by the chain (438 dest_mismatch)
//  15. rich call data (RFC 9795) of each header that passed: the content its rcdi digests cover
//      is fetched with the x5u fetcher (FetchContent) and compared; the texts reach the result
//      (VerifyResult::rcds) only from a passing header whose digests all match, else the reason
//      is reported instead (rcdi_missing, rcdi_mismatch, fetch_*). This never changes a verdict.
#ifndef SHAKEN_STIR_VERIFIER_H_
#define SHAKEN_STIR_VERIFIER_H_

#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "stir/cert_source.h"
#include "stir/clock.h"
#include "stir/rcd.h"
#include "stir/timer_queue.h"
#include "stir/verdict.h"
#include "stir/x5u_fetcher.h"

namespace shaken::stir {

// At most this many Identity header values per call (RFC 8224 allows several: shaken, div, rph).
inline constexpr size_t kMaxIdentityHeaders = 16;

struct VerifierOptions {
  // RFC 8224 §4.1: 60 s is RECOMMENDED; symmetric, so a future iat is rejected too (P7).
  absl::Duration iat_window = absl::Seconds(60);
  absl::Duration date_window = absl::Seconds(60);
  // The x5u policy (X5uPolicy; production by default). The verifier itself applies its scheme
  // rule at step 6 (https, or http with allow_http); the certificate source's fetcher applies the
  // rest. VerificationStack gives both the same value.
  X5uPolicy x5u_policy;
  // Policy: reject ECDSA signatures whose s is above n/2 (both (r,s) and (r,n-s) verify; a
  // low-S rule removes that malleability). Off by default: HSMs emit either.
  bool require_low_s = false;
};

// CallInfo is what the SIP request tells the verifier besides the Identity headers.
// An empty from_tn or to_tns leaves orig.tn or dest.tn unchecked: for tools that inspect a
// PASSporT without its call (shakenctl passport verify without --from/--to). A SIP verifier must
// pass both (shakend's Verify requires them).
struct CallInfo {
  std::string from_tn;               // P-Asserted-Identity or From user part (RFC 8224 §4.1)
  std::vector<std::string> to_tns;   // To user part(s)
  std::optional<absl::Time> date;    // the SIP Date header, when present
  // The Resource-Priority header field values (RFC 4412), each as received (one may hold several
  // comma-separated r-values); empty when the request has none. Checked against rph PASSporTs.
  std::vector<std::string> resource_priority;
};

// VerifyResult holds one verdict per Identity header value, in input order, and the call's;
// for a diverted call, one DivResult per div header (per diverting identity), in input order.
// verstat_priority is the call's Resource-Priority validation: passed when a ppt=rph header
// passed (its rph.auth covers every r-value of the call), failed when every rph header failed,
// none without one. rcds: one RcdResult per header carrying rich call data, in header order.
struct VerifyResult {
  Verdict overall;
  std::vector<Verdict> headers;
  std::vector<DivResult> divs;
  PriorityVerstat verstat_priority = PriorityVerstat::kNone;
  std::vector<RcdResult> rcds;
};

// Verifier verifies SHAKEN PASSporTs. Thread-safe; `certs` and `clock` must outlive it.
class Verifier {
 public:
  // `content`, when given, fetches rich call data content (step 15; VerificationStack passes its
  // x5u fetcher); without it rich call data by reference is never shown (fetch_failed).
  Verifier(CertificateSource* certs, const Clock* clock, VerifierOptions options = {},
           const CertificateFetcher* content = nullptr);

  // Verify verifies every Identity header value of one call. A failed verification is a
  // verdict, not an error; INVALID_ARGUMENT is only for a malformed request: a From or To
  // number that cannot be canonicalized, a Resource-Priority value that is not an RFC 4412
  // r-value, or more than kMaxIdentityHeaders values.
  //
  // The overall verdict is the first passing shaken header's (in a diverted call one passes only
  // when a linked div chain leads from it to the To, step 14; then the div headers' own verdicts
  // and `divs` say how each diverting identity fared), else the first passing div's, else the
  // first passing rph or rcd header's. Headers whose Identity ppt parameter names a type this
  // verifier does not handle (div-o, ...) count as absent (RFC 8224, 428 definition): they keep
  // their own 438 ppt_unsupported verdict but do not take part.
  // Otherwise (RFC 8224 §6.2.2, ID-7): 428 no_identity when no header is left, 436 only when
  // every header left failed with 436, else the first failure that is not a 436.
  absl::StatusOr<VerifyResult> Verify(const std::vector<std::string>& identity_headers,
                                      const CallInfo& call) const;
  // VerifyViews is Verify over views (e.g. of a request message's strings, not copied).
  absl::StatusOr<VerifyResult> VerifyViews(const std::vector<std::string_view>& identity_headers,
                                      const CallInfo& call) const;

  using VerifyDone = absl::AnyInvocable<void(absl::StatusOr<VerifyResult>) &&>;
  // VerifyAsync is Verify for a caller that must not wait (an RPC thread): the local checks run
  // on the calling thread; each certificate comes from CertificateSource::LookupAsync. `done`
  // runs exactly once: before VerifyAsync returns when no header needs a fetch (cached
  // certificates, local failures), otherwise on the certificate source's thread when the last
  // lookup lands. A lookup still waiting at `deadline` gives that header a 436 fetch_timeout
  // verdict. The views must stay valid until VerifyAsync returns.
  void VerifyAsync(const std::vector<std::string_view>& identity_headers, const CallInfo& call,
                   absl::Time deadline, VerifyDone done) const;

  // VerifyOne verifies a single Identity header value against canonical From/To numbers
  // (already canonicalized by the caller).
  Verdict VerifyOne(std::string_view identity, std::string_view from_tn,
                    const std::vector<std::string>& to_tns,
                    std::optional<absl::Time> date) const;

  const VerifierOptions& options() const { return options_; }

 private:
  struct Pending;
  struct AsyncCall;
  struct CanonicalCall {
    std::string from;
    std::vector<std::string> to;
    std::optional<absl::Time> date;
    std::vector<std::string> resource_priority;  // r-values
  };
  using RcdChecks = std::vector<std::optional<RcdCheck>>;

  template <typename Strings>
  absl::StatusOr<VerifyResult> VerifyAll(const Strings& identity_headers,
                                         const CallInfo& call) const;
  absl::StatusOr<CanonicalCall> Canonicalize(size_t headers, const CallInfo& call) const;
  // Prepare runs steps 1-10: a final verdict, or a header waiting for its certificate. The
  // header's rich call data, once its claims are read, goes to *rcd (may be null).
  std::variant<Verdict, Pending> Prepare(std::string_view identity, std::string_view from_tn,
                                         const std::vector<std::string>& to_tns,
                                         std::optional<absl::Time> date,
                                         const std::vector<std::string>& resource_priority,
                                         absl::Time now, std::optional<RcdCheck>* rcd) const;
  // Finish runs steps 11-13 with the certificate lookup's result.
  Verdict Finish(Pending& pending, CertificateResult cert) const;
  // Conclude links a diverted call's headers (step 14), judges their rich call data (step 15),
  // then chooses the call's verdict and its Resource-Priority validation.
  static void Conclude(VerifyResult& result, bool diverted, const std::vector<std::string>& to,
                       RcdChecks& rcd);
  static void ChooseOverall(VerifyResult& result);

  CertificateSource* certs_;
  const Clock* clock_;
  VerifierOptions options_;
  const CertificateFetcher* content_;
  mutable TimerQueue content_timers_;  // deadlines of rich call data content fetches
};

}  // namespace shaken::stir

#endif  // SHAKEN_STIR_VERIFIER_H_
