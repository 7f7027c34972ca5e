// crl_checker.h: revocation of the SHAKEN signing certificate through its CRL distribution point
// (ATIS-1000080 §6.4.1, CE-9: one DP with an HTTP URL and a cRLIssuer; RFC 5280 §4.2.1.13, §6.3;
// docs/standards.md#revocation). CRLs are fetched asynchronously by the x5u fetcher's event loop
// under CrlPolicy, cached until their nextUpdate, refreshed in the background before it while in
// use, and checked by the CertValidator (CheckCrl).
#ifndef SHAKEN_STIR_CRL_CHECKER_H_
#define SHAKEN_STIR_CRL_CHECKER_H_

#include <atomic>
#include <cstdint>
#include <functional>

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "stir/cert_validator.h"
#include "stir/openssl_util.h"
#include "stir/timer_queue.h"
#include "stir/verdict.h"
#include "stir/x5u_fetcher.h"

namespace shaken::stir {

// CrlFailureMode: what a CRL that cannot be used (unreachable, refused by the policy, too large,
// unparsable, wrongly signed, past its nextUpdate) means for the certificate it should cover.
enum class CrlFailureMode {
  // The verification goes on as if the certificate were not revoked; the check is counted
  // (CrlStats::soft_failed) and reported through CrlCheckerOptions::on_soft_fail.
  kSoftFail,
  // The certificate is refused: 437 cert_untrusted, "revocation status unknown: ...".
  kHardFail,
};

struct CrlCheckerOptions {
  CrlFailureMode on_unavailable = CrlFailureMode::kSoftFail;
  // How many CRLs are cached (one per distribution point URL); the one due soonest goes first.
  size_t max_entries = 1000;
  // How long a CRL that could not be obtained is remembered before it is fetched again, and so
  // how long a soft-failed verdict is reused (the certificate is checked again after it).
  absl::Duration retry_after = absl::Seconds(30);
  // Upper bound on a CRL's cache lifetime, whatever its nextUpdate says (or without one).
  absl::Duration max_ttl = absl::Hours(24);
  // A CRL that answered a check since it was fetched is fetched again in the background once
  // this share of its cache lifetime has passed, so that checks find the next one in the cache
  // (a failed refresh keeps the current CRL and is tried again after retry_after). 0 turns the
  // background refresh off; at most 0.95.
  double refresh_at_fraction = 0.8;
  // Called once per soft-failed check with a sentence naming the URL and what went wrong (a log
  // line). May be null. Runs on the thread that completed the check: must not block.
  std::function<void(std::string_view)> on_soft_fail;
};

// CrlStats is a snapshot of the counters (Prometheus: shaken_crl_*).
struct CrlStats {
  uint64_t fetch_ok = 0;       // CRL fetched and parsed
  uint64_t fetch_failed = 0;   // refused by the policy, network or HTTP failure
  uint64_t fetch_invalid = 0;  // fetched but not a CRL (or more than one)
  uint64_t soft_failed = 0;    // checks that went on without a usable CRL
  uint64_t hard_failed = 0;    // checks refused for want of a usable CRL
  uint64_t revoked = 0;        // certificates found revoked
  uint64_t refreshes = 0;      // background refreshes started (each also counts as a fetch)
  uint64_t cached = 0;         // CRLs in the cache now
};

// RevocationResult is the outcome of one check.
struct RevocationResult {
  Reason reason = Reason::kPassed;  // kCertRevoked, kCertUntrusted (hard fail) or kPassed
  std::string detail;
  // The verdict may be reused until then: the CRL's nextUpdate, retry_after for a soft failure,
  // InfiniteFuture when the certificate names no distribution point.
  absl::Time check_until = absl::InfiniteFuture();
  bool soft_failed = false;
};

// CrlDistributionPointUrl returns the first http(s) URI of the certificate's first CRL
// distribution point, or nullopt when it has none.
std::optional<std::string> CrlDistributionPointUrl(const X509* cert);

// CrlChecker answers "is the leaf of this validated chain revoked?" from the CRL at its
// distribution point. A cached CRL (before its nextUpdate) answers inline with local work only;
// otherwise one fetch per URL is in flight at a time (single flight) and the check completes on
// the fetcher's thread. A certificate without a distribution point is not checked (the SHAKEN
// profile reports the missing CRLDP). Thread-safe. The destructor waits for fetches in progress.
class CrlChecker {
 public:
  // New fails (INVALID_ARGUMENT) without a fetcher or validator, or on bad bounds.
  static absl::StatusOr<std::unique_ptr<CrlChecker>> New(
      std::shared_ptr<const CertificateFetcher> fetcher,
      std::shared_ptr<const CertValidator> validator, CrlCheckerOptions options = {});
  ~CrlChecker();
  CrlChecker(const CrlChecker&) = delete;
  CrlChecker& operator=(const CrlChecker&) = delete;

  using CheckDone = absl::AnyInvocable<void(RevocationResult) &&>;
  // CheckAsync checks the leaf of `pem` (a chain the validator accepted at `now`). `done` runs
  // exactly once: before CheckAsync returns when the CRL is cached (or known unavailable), else
  // on the fetcher's thread. `deadline` bounds only the wait for a fetch slot.
  void CheckAsync(std::string pem, absl::Time now, absl::Time deadline, CheckDone done);
  // CheckCached answers from the cache alone (local work: no fetch is started), or nullopt when
  // the CRL is not cached or past its nextUpdate.
  std::optional<RevocationResult> CheckCached(const std::string& pem, absl::Time now);

  CrlStats Stats() const;
  // soft_fail says whether an unusable CRL lets the check pass (CrlFailureMode::kSoftFail).
  bool soft_fail() const { return options_.on_unavailable == CrlFailureMode::kSoftFail; }

 private:
  struct Entry;
  struct Waiter;
  CrlChecker(std::shared_ptr<const CertificateFetcher> fetcher,
             std::shared_ptr<const CertValidator> validator, CrlCheckerOptions options);
  // Judge checks `pem` against a cache entry (a CRL, or a remembered failure).
  RevocationResult Judge(const std::string& pem, const Entry& entry, absl::Time now);
  RevocationResult Unusable(const std::string& url, std::string why, absl::Time now);
  // LeafUrl is the distribution point URL of the chain's leaf (nullopt: none).
  static absl::StatusOr<std::optional<std::string>> LeafUrl(const std::string& pem);
  void Landed(const std::string& url, absl::Time now, FetchResult fetched);
  void StoreLocked(std::shared_ptr<const Entry> entry) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  // ScheduleRefresh arranges the background refresh of a CRL just stored.
  void ScheduleRefresh(const std::shared_ptr<const Entry>& entry, absl::Time at);
  // Refresh runs on the timer thread: fetches `entry`'s URL again when it is still the cached
  // CRL, was used since its fetch, and no fetch of it is in flight.
  void Refresh(const std::shared_ptr<const Entry>& entry);

  const std::shared_ptr<const CertificateFetcher> fetcher_;
  const std::shared_ptr<const CertValidator> validator_;
  const CrlCheckerOptions options_;

  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::shared_ptr<const Entry>> cache_ ABSL_GUARDED_BY(mu_);
  absl::flat_hash_map<std::string, std::vector<Waiter>> flights_ ABSL_GUARDED_BY(mu_);
  int outstanding_ ABSL_GUARDED_BY(mu_) = 0;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;

  struct Counters {
    std::atomic<uint64_t> fetch_ok{0}, fetch_failed{0}, fetch_invalid{0}, soft_failed{0},
        hard_failed{0}, revoked{0}, refreshes{0};
  };
  Counters counters_;
  // Background refreshes. Last: destroyed (its thread joined) before anything its callbacks use.
  TimerQueue timers_;
};

}  // namespace shaken::stir

#endif  // SHAKEN_STIR_CRL_CHECKER_H_
