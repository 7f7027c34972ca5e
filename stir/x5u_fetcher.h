// x5u_fetcher.h: dereferencing an x5u / info URL (RFC 8224 §6.2 step 3, ATIS-1000080) with
// libcurl, under a URL policy checked before any network I/O and with bounded time and size.
#ifndef SHAKEN_STIR_X5U_FETCHER_H_
#define SHAKEN_STIR_X5U_FETCHER_H_

#include <atomic>
#include <array>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "stir/verdict.h"

struct sockaddr;

namespace shaken::stir {

// IpCidr is an IPv4 or IPv6 prefix: `family` AF_INET (the first 4 bytes of `address` used) or
// AF_INET6, network byte order.
struct IpCidr {
  int family = 0;
  std::array<uint8_t, 16> address = {};
  int prefix_length = 0;
  friend bool operator==(const IpCidr&, const IpCidr&) = default;
};

// ParseCidr parses "a.b.c.d/n" (n <= 32) or "v6::/n" (n <= 128); a bare address is a /32 or /128.
// Host bits must be zero ("10.0.0.1/8" is refused as ambiguous). INVALID_ARGUMENT says why.
absl::StatusOr<IpCidr> ParseCidr(std::string_view text);

// X5uPolicy is the one x5u URL policy (ATIS-1000080 CE-12, SH-10): which x5u URLs are
// dereferenced, and so which x5u a signer may publish. The defaults are the production policy:
// https only, port 443 or 8443, no userinfo / query / fragment, the SSRF guard (IsAddressAllowed)
// on every address connected to. Every relaxation is a lab allowance. The same value is applied by
// signing-profile validation (ValidateX5uForSigning), by the fetcher (CheckX5uUrl before any I/O,
// IsAddressAllowed while connecting) and by the verifier (VerifierOptions::x5u_policy);
// VerificationStack hands one value to all of them.
struct X5uPolicy {
  // Lab: http:// URLs too (port 80 then counts as a standard port).
  bool allow_http = false;
  // Lab: any port, not only 443 / 8443.
  bool allow_any_port = false;
  // SSRF guard relaxations (see IsAddressAllowed). allow_private_addresses, despite its name
  // (kept for configuration compatibility), allows loopback only; anything wider is named by
  // allow_cidrs. Unspecified, link-local, multicast and cloud-metadata addresses stay blocked
  // whatever these say. For tests and labs only.
  bool allow_private_addresses = false;
  std::vector<IpCidr> allow_cidrs;
  // Longest URL accepted.
  size_t max_url_bytes = 2048;

  friend bool operator==(const X5uPolicy&, const X5uPolicy&) = default;
};

// CrlPolicy is the URL policy for a certificate's CRL distribution point, derived from the x5u
// policy so that the two cannot drift: the same SSRF guard, port rule, URL length and "no
// userinfo / query / fragment", but http:// is always allowed (RFC 5280 §4.2.1.13: CRLs are
// signed objects and are normally published over http; ATIS-1000080's CRLDP is an HTTP URL).
// Port 80 then counts as a standard port, as for lab http x5u.
X5uPolicy CrlPolicy(const X5uPolicy& x5u);

// X5uFetcherOptions: the fetcher's x5u policy (the X5uPolicy it is) and its transfer limits.
struct X5uFetcherOptions : X5uPolicy {
  // P12 (Asterisk curl_timeout 2 s): connect (TCP + TLS handshake start) and whole-transfer limits.
  absl::Duration connect_timeout = absl::Seconds(2);
  absl::Duration total_timeout = absl::Seconds(4);
  // Body cap; the transfer is aborted as soon as it is exceeded (a declared Content-Length over
  // the cap aborts before the body is read).
  size_t max_body_bytes = 16 * 1024;
  // TLS trust for the fetch: the system store when empty, otherwise only this PEM CA bundle.
  std::string tls_ca_file;
  std::string user_agent = "shakend-x5u/1";
  // Asynchronous fetches (FetchAsync): how many run at once in all and to one host (host:port),
  // and how many may wait for a slot; one more is answered at once (shed).
  int max_in_flight = 64;
  int max_per_host = 4;
  int max_queued = 4096;
  // Body cap for CRL fetches (FetchCrlAsync): a CRL lists every revoked serial of its issuer, so
  // it is allowed to be much larger than a certificate chain.
  size_t max_crl_bytes = 1 << 20;
};

// FetchLoopStats is a snapshot of the asynchronous fetcher (metrics).
struct FetchLoopStats {
  int in_flight = 0;  // transfers running
  int waiting = 0;    // fetches waiting for a slot
  uint64_t host_limit_waits = 0;    // fetches that had to wait because their host was at its limit
  uint64_t global_limit_waits = 0;  // fetches that had to wait for a slot in all
  uint64_t shed = 0;  // answered without a fetch: queue full, or the deadline passed first
};

// FetchResult is the outcome of one fetch. On failure `reason` is one of the 436 reasons
// (kX5uNotAllowed, kFetchDns, kFetchConnect, kFetchTimeout, kFetchTls, kFetchHttpStatus,
// kFetchRedirect, kFetchTooLarge, kFetchNotPem, kFetchAddressBlocked, kFetchFailed) and `detail`
// says what happened; body is empty.
struct FetchResult {
  Reason reason = Reason::kPassed;
  std::string detail;
  long http_status = 0;
  std::string body;
  std::string content_type;
  // Caching information (RFC 9111 §5.2, §5.3): max-age (s-maxage preferred: we are a shared
  // cache), Expires and Date. no_store / no_cache mean "do not reuse without asking again".
  std::optional<absl::Duration> max_age;
  std::optional<absl::Time> expires;
  std::optional<absl::Time> date;
  bool no_store = false;
  // shed: not attempted because this verifier was overloaded (no slot before the deadline, queue
  // full). Says nothing about the x5u server, so it is never cached.
  bool shed = false;

  bool ok() const { return reason == Reason::kPassed; }
  // FreshnessLifetime is how long the response may be reused (RFC 9111 §4.2.1): s-maxage /
  // max-age, else Expires - Date (Date absent: Expires - `now`), else nullopt (no information).
  // Zero when no-store / no-cache; never negative.
  std::optional<absl::Duration> FreshnessLifetime(absl::Time now) const;
  static FetchResult Failure(Reason r, std::string d) {
    FetchResult out;
    out.reason = r;
    out.detail = std::move(d);
    return out;
  }
};

// CertificateFetcher obtains the body at an x5u URL. Implementations are thread-safe. A test may
// substitute its own.
class CertificateFetcher {
 public:
  virtual ~CertificateFetcher() = default;
  virtual FetchResult Fetch(std::string_view url) const = 0;

  using FetchDone = absl::AnyInvocable<void(FetchResult) &&>;
  // FetchAsync calls `done` exactly once with what Fetch would return: inline when refused before
  // any I/O, otherwise on a thread of the fetcher's own. `deadline` bounds only the wait for a
  // fetch slot (the transfer keeps its own timeouts, and its result serves later calls too). The
  // default runs Fetch inline (test fetchers).
  virtual void FetchAsync(std::string_view url, absl::Time deadline, FetchDone done) const {
    (void)deadline;
    std::move(done)(Fetch(url));
  }
  // FetchCrlAsync fetches a CRL (DER or PEM) from a CRL distribution point, with the same
  // contract as FetchAsync but under CrlPolicy and the CRL body cap, and without the PEM
  // certificate check. The default answers kFetchFailed at once: a fetcher that does not fetch
  // CRLs (test fetchers) makes every CRL "unavailable".
  virtual void FetchCrlAsync(std::string_view url, absl::Time deadline, FetchDone done) const {
    (void)url;
    (void)deadline;
    std::move(done)(FetchResult::Failure(Reason::kFetchFailed, "this fetcher does not fetch CRLs"));
  }

  // FetchContent and FetchContentAsync are Fetch and FetchAsync for content that is not a
  // certificate chain: the rich call data a PASSporT references (RFC 9795 icn, jcl). Same URL
  // policy, limits and transfer; only the PEM check is left out. The defaults call Fetch and
  // FetchAsync (test fetchers answer any body); a fetcher that wraps another forwards them.
  virtual FetchResult FetchContent(std::string_view url) const { return Fetch(url); }
  virtual void FetchContentAsync(std::string_view url, absl::Time deadline,
                                 FetchDone done) const {
    FetchAsync(url, deadline, std::move(done));
  }
};

// X5uFetcher is the libcurl CertificateFetcher. Every Fetch uses its own easy handle (no shared
// connection state between requests); Fetch may be called from any number of threads at once.
// Blocks for at most about total_timeout.
//
// Policy, applied before any network I/O: the URL is at most max_url_bytes of printable ASCII,
// parsed by libcurl's own URL parser (the same one that then connects, so no parser
// differential); scheme https (http with allow_http); no userinfo, query or fragment; port 443 or
// 8443 (80 for lab http) unless allow_any_port. While connecting: every address libcurl is about to
// connect to is checked by the SSRF guard (CURLOPT_OPENSOCKETFUNCTION), so DNS rebinding cannot
// bypass it; proxies from the environment are ignored. During the transfer: no redirects (a 3xx is
// kFetchRedirect), no content decoding, body cap, only HTTP 200 accepted, the body must contain a
// PEM certificate.
//
// FetchAsync runs the same transfer on one event-loop thread (libcurl multi, started on first
// use) under max_in_flight / max_per_host / max_queued; Fetch blocks its caller (tools).
class X5uFetcher final : public CertificateFetcher {
 public:
  // New fails (INVALID_ARGUMENT) on non-positive timeouts, cap or limits, or an unreadable
  // tls_ca_file.
  static absl::StatusOr<std::unique_ptr<X5uFetcher>> New(X5uFetcherOptions options);
  ~X5uFetcher() override;

  FetchResult Fetch(std::string_view url) const override;
  void FetchAsync(std::string_view url, absl::Time deadline, FetchDone done) const override;
  // FetchCrlAsync runs on the same event loop, under the same limits, as FetchAsync.
  void FetchCrlAsync(std::string_view url, absl::Time deadline, FetchDone done) const override;
  FetchResult FetchContent(std::string_view url) const override;
  void FetchContentAsync(std::string_view url, absl::Time deadline,
                         FetchDone done) const override;
  const X5uFetcherOptions& options() const { return options_; }
  FetchLoopStats LoopStats() const;

 private:
  struct Request;
  class Loop;
  explicit X5uFetcher(X5uFetcherOptions options);
  // What a fetch expects: a PEM certificate chain (x5u), a CRL (CrlPolicy, the CRL body cap, no
  // PEM check) or other content (rich call data: no PEM check).
  enum class BodyKind { kCertificates, kCrl, kContent };
  // Prepare applies the URL policy (CrlPolicy for a CRL) and sets up the transfer; on refusal
  // *refusal says why.
  absl::StatusOr<std::unique_ptr<Request>> Prepare(std::string_view url, BodyKind kind,
                                                   FetchResult* refusal) const;
  FetchResult FetchBody(std::string_view url, BodyKind kind) const;
  void Submit(std::string_view url, BodyKind kind, absl::Time deadline, FetchDone done) const;
  // Complete turns a finished transfer into its result.
  FetchResult Complete(int curl_code, Request& req) const;

  X5uFetcherOptions options_;
  mutable std::once_flag loop_once_;
  mutable std::unique_ptr<Loop> loop_;
  mutable std::atomic<const Loop*> loop_started_{nullptr};
};

// CheckX5uUrl applies the URL policy of X5uFetcher without any network I/O. kPassed when
// allowed, otherwise kX5uNotAllowed with a detail.
FetchResult CheckX5uUrl(std::string_view url, const X5uPolicy& policy);

// IsBlockedAddress tells whether the SSRF guard refuses `addr` (AF_INET or AF_INET6): loopback,
// RFC 1918, CGNAT 100.64/10, link-local, unspecified, multicast, reserved/broadcast, benchmarking
// 198.18/15, IETF 192.0.0/24, documentation ranges, ULA fc00::/7, site-local fec0::/10, and IPv4
// addresses embedded in IPv4-mapped, IPv4-compatible or NAT64 64:ff9b::/96 IPv6 addresses. Unknown
// families are blocked.
bool IsBlockedAddress(const struct sockaddr* addr);
// IsBlockedIp is IsBlockedAddress for a textual IPv4/IPv6 address (true when unparsable).
bool IsBlockedIp(std::string_view ip);

// IsAddressAllowed is the SSRF policy the fetcher applies to every address it is about to connect
// to (AF_INET or AF_INET6; IPv4 embedded in IPv4-mapped, IPv4-compatible or NAT64 IPv6 addresses
// is judged as IPv4):
//   - never allowed, whatever the options: unspecified (0.0.0.0/8, ::), link-local
//     (169.254/16, fe80::/10, which hold the cloud metadata services 169.254.169.254 and
//     fd00:ec2::254 / 100.100.100.200 too), multicast, limited broadcast;
//   - loopback (127/8, ::1): only with allow_private_addresses or a matching allow_cidrs entry;
//   - any other address IsBlockedAddress refuses (RFC 1918, CGNAT, ULA, ...): only when it lies
//     in an allow_cidrs entry;
//   - everything else (public unicast): allowed.
// Unknown families are refused.
bool IsAddressAllowed(const struct sockaddr* addr, const X5uPolicy& policy);
// IsIpAllowed is IsAddressAllowed for a textual address (false when unparsable).
bool IsIpAllowed(std::string_view ip, const X5uPolicy& policy);

}  // namespace shaken::stir

#endif  // SHAKEN_STIR_X5U_FETCHER_H_
