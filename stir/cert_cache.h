// cert_cache.h: X5uCertificateSource, the verifier's CertificateSource: fetch the x5u chain,
// validate it, and cache the validated result (docs/standards.md#caching; P13, P14, SH-11).
#ifndef SHAKEN_STIR_CERT_CACHE_H_
#define SHAKEN_STIR_CERT_CACHE_H_

#include <atomic>
#include <cstdint>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "stir/cert_source.h"
#include "stir/cert_validator.h"
#include "stir/crl_checker.h"
#include "stir/timer_queue.h"
#include "stir/x5u_fetcher.h"

namespace shaken::stir {

// CertificateStore is an optional second-level store that operators back with their own shared
// storage (Redis, a file tree, ...), so a fleet of verifiers fetches each x5u once. It holds the
// raw PEM chain only: what comes out of it is validated again before use, so a store does not
// have to be trusted with validation results. Implementations are thread-safe; their state
// (connections, context) lives in the object. Errors are counted and otherwise treated as a miss.
class CertificateStore {
 public:
  struct Entry {
    std::string pem;
    absl::Time expires;  // do not use after this time
  };
  virtual ~CertificateStore() = default;
  // Get returns the entry for `url`, nullopt when there is none.
  virtual absl::StatusOr<std::optional<Entry>> Get(std::string_view url) = 0;
  // Put stores `pem` for `url` until `expires`.
  virtual absl::Status Put(std::string_view url, std::string_view pem, absl::Time expires) = 0;
};

// CertCacheOptions: bounds and lifetimes.
struct CertCacheOptions {
  size_t max_entries = 10000;
  // Approximate: each entry counts its URL, its PEM and a fixed overhead for the parsed
  // certificate (kEntryOverheadBytes).
  size_t max_bytes = 64 << 20;
  // Lifetime when the response has no Cache-Control max-age / Expires: 24 h (SH-11, P14).
  absl::Duration default_ttl = absl::Hours(24);
  // Upper bound on any lifetime, whatever the server says. Lifetimes are also capped by the
  // validated chain's earliest notAfter (and the CRLs' nextUpdate).
  absl::Duration max_ttl = absl::Hours(24 * 7);
  // Lower bound on a positive lifetime, so `max-age=0` cannot force a fetch per call; 0 honours
  // the server exactly.
  absl::Duration min_ttl = absl::ZeroDuration();
  // How long a failure (fetch error or validation failure) is remembered (P12).
  absl::Duration negative_ttl = absl::Seconds(30);
  size_t max_x5u_bytes = 2048;
};

// CertCacheStats is a snapshot of the counters (Prometheus: shaken_x5u_cache_*_total).
struct CertCacheStats {
  uint64_t hits = 0;           // answered from a valid positive entry
  uint64_t negative_hits = 0;  // answered from a remembered failure
  uint64_t misses = 0;         // needed a fetch (or a store lookup / revalidation)
  uint64_t coalesced = 0;      // waited on another thread's in-flight lookup (single-flight)
  uint64_t fetches = 0;        // network fetches started
  uint64_t fetch_errors = 0;   // network fetches that failed
  uint64_t validation_failures = 0;
  uint64_t revalidations = 0;  // cached PEM validated again (trust reload, store hit)
  uint64_t rechecks = 0;       // cached chains checked against their CRL again in the background
  uint64_t store_hits = 0;
  uint64_t store_errors = 0;
  uint64_t evictions = 0;
  uint64_t entries = 0;  // current
  uint64_t bytes = 0;    // current
};

// X5uCertificateSource implements CertificateSource as fetch + validate + cache.
//
// Lookup(x5u, now): a warm hit takes a reader lock for a map lookup and compares `now` with the
// cached entry's lifetime and the chain's validity window; no OpenSSL work, no allocation. A miss
// is single-flight: concurrent lookups of one x5u wait for one leader, which consults the backing
// store, else fetches, validates (at `now`) and caches; failures are cached for negative_ttl.
//
// LookupAsync is the same without waiting: a hit answers inline; a miss joins the URL's flight
// and is answered when the fetcher's FetchAsync completes (validation and caching run there, on
// the fetcher's thread) or when its own deadline passes first (436 fetch_timeout; the flight goes
// on for the others and for the cache). A fetch the fetcher shed (overload) is not cached. The
// backing store, when there is one, is consulted by the leader inline: it must answer from local
// state (a networked store belongs behind its own asynchronous layer).
// When the validator's trust configuration is reloaded, cached results are revalidated from their
// PEM (no refetch) on next use. Thread-safe. Time comes only from `now`.
class X5uCertificateSource final : public CertificateSource {
 public:
  static constexpr size_t kEntryOverheadBytes = 2048;

  // New fails (INVALID_ARGUMENT) on missing collaborators or bad bounds. `store` may be null.
  // `crl`, when given, checks every chain that validates against its leaf's CRL distribution
  // point before the result is cached or answered. Past that check's verdict (the CRL's
  // nextUpdate, kept in the checker's cache and refreshed ahead of it) the cached chain is checked
  // again without being fetched again: in the background under soft-fail (the call is answered
  // from the cache at once), before answering under hard-fail.
  static absl::StatusOr<std::unique_ptr<X5uCertificateSource>> New(
      std::shared_ptr<const CertificateFetcher> fetcher,
      std::shared_ptr<const CertValidator> validator, CertCacheOptions options = {},
      std::shared_ptr<CertificateStore> store = nullptr, std::shared_ptr<CrlChecker> crl = nullptr);

  CertificateResult Lookup(std::string_view x5u, absl::Time now) override;
  void LookupAsync(std::string_view x5u, absl::Time now, absl::Time deadline,
                   LookupDone done) override;

  CertCacheStats Stats() const;
  // Clear drops every cached entry (not the backing store).
  void Clear();

  ~X5uCertificateSource() override;

 private:
  struct Entry;
  struct Flight;
  struct Waiter;
  X5uCertificateSource(std::shared_ptr<const CertificateFetcher> fetcher,
                       std::shared_ptr<const CertValidator> validator, CertCacheOptions options,
                       std::shared_ptr<CertificateStore> store, std::shared_ptr<CrlChecker> crl);
  // Conclude finishes a validation of `pem` for `url`: the CRL check when there is a checker and
  // the chain validated, then Remember and Land.
  void Conclude(uint64_t generation, const std::string& url, absl::Time now, absl::Time deadline,
                CertificateResult result, std::string pem, std::optional<absl::Duration> fresh_for,
                std::optional<absl::Time> store_expires);

  // Cached answers `x5u` from the map, or returns nullopt (and the stale entry to refresh).
  // `recheck_in_background` is set when the answer is a hit whose revocation check is due
  // (LookupAsync then runs it).
  std::optional<CertificateResult> Cached(std::string_view x5u, absl::Time now,
                                          std::shared_ptr<const Entry>* stale,
                                          bool* recheck_in_background);
  // StartBackgroundFlight opens a flight for `url` that no caller waits on (a revocation
  // recheck); false when a lookup or recheck of `url` is already in flight.
  bool StartBackgroundFlight(const std::string& url) ABSL_LOCKS_EXCLUDED(flights_mu_);
  static constexpr absl::Duration kBackgroundDeadline = absl::Seconds(30);
  // Lead runs a miss for `url` (the single-flight leader) and lands its flight.
  void Lead(const std::string& url, absl::Time now, absl::Time deadline,
            std::shared_ptr<const Entry> stale);
  // WithRevocation applies a CRL check's verdict to a validated chain's result and remembers it.
  CertificateResult WithRevocation(uint64_t generation, const std::string& url, absl::Time now,
                                   CertificateResult result, std::string pem,
                                   std::optional<absl::Duration> fresh_for,
                                   std::optional<absl::Time> store_expires,
                                   RevocationResult revocation);
  // Land answers every waiter of `url`'s flight with `result`.
  void Land(const std::string& url, const CertificateResult& result);
  CertificateResult Remember(uint64_t generation, const std::string& url, absl::Time now,
                             CertificateResult result, std::string pem,
                             std::optional<absl::Duration> fresh_for,
                             std::optional<absl::Time> store_expires,
                             absl::Time recheck_at = absl::InfiniteFuture());
  void Insert(std::shared_ptr<Entry> entry) ABSL_LOCKS_EXCLUDED(mu_);
  void EvictLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const std::shared_ptr<const CertificateFetcher> fetcher_;
  const std::shared_ptr<const CertValidator> validator_;
  const CertCacheOptions options_;
  const std::shared_ptr<CertificateStore> store_;
  const std::shared_ptr<CrlChecker> crl_;  // may be null

  mutable absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::shared_ptr<Entry>> map_ ABSL_GUARDED_BY(mu_);
  // Eviction order: insertion order with a second chance for entries used since (CLOCK).
  std::list<std::string> order_ ABSL_GUARDED_BY(mu_);
  size_t bytes_ ABSL_GUARDED_BY(mu_) = 0;

  absl::Mutex flights_mu_;
  absl::flat_hash_map<std::string, std::shared_ptr<Flight>> flights_ ABSL_GUARDED_BY(flights_mu_);
  // Fetches started and not yet landed: the destructor waits for them (their callbacks use this).
  // Shared with the callbacks, so that the last one can still unlock it while this is destroyed.
  struct Outstanding {
    absl::Mutex mu;
    int fetches ABSL_GUARDED_BY(mu) = 0;
  };
  const std::shared_ptr<Outstanding> outstanding_ = std::make_shared<Outstanding>();
  TimerQueue timers_;  // waiters' deadlines

  struct Counters {
    std::atomic<uint64_t> hits{0}, negative_hits{0}, misses{0}, coalesced{0}, fetches{0},
        fetch_errors{0}, validation_failures{0}, revalidations{0}, rechecks{0}, store_hits{0},
        store_errors{0}, evictions{0};
  };
  mutable Counters counters_;
};

}  // namespace shaken::stir

#endif  // SHAKEN_STIR_CERT_CACHE_H_
