#include "stir/cert_cache.h"

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"

namespace shaken::stir {

struct X5uCertificateSource::Entry {
  std::string url;
  std::string pem;           // the fetched chain; empty when the fetch itself failed
  CertificateResult result;  // positive or negative
  absl::Time expires;
  // When the revocation verdict runs out (the CRL's nextUpdate, or a soft failure's retry time):
  // from then on the chain is checked against its CRL again, without fetching it again.
  absl::Time recheck_at = absl::InfiniteFuture();
  uint64_t generation = 0;  // CertValidator::generation() at validation time
  size_t bytes = 0;
  mutable std::atomic<bool> referenced{false};  // set by readers (CLOCK eviction)
};

// Waiter is one lookup waiting on a flight; answered once, by the flight or by its deadline.
struct X5uCertificateSource::Waiter {
  std::atomic<bool> answered{false};
  LookupDone done;
  TimerQueue::Id timer = 0;
};

struct X5uCertificateSource::Flight {
  std::vector<std::shared_ptr<Waiter>> waiters;  // guarded by flights_mu_
};

namespace {

absl::string_view Key(std::string_view s) { return absl::string_view(s.data(), s.size()); }

}  // namespace

absl::StatusOr<std::unique_ptr<X5uCertificateSource>> X5uCertificateSource::New(
    std::shared_ptr<const CertificateFetcher> fetcher,
    std::shared_ptr<const CertValidator> validator, CertCacheOptions options,
    std::shared_ptr<CertificateStore> store, std::shared_ptr<CrlChecker> crl) {
  if (fetcher == nullptr || validator == nullptr) {
    return absl::InvalidArgumentError("the x5u certificate source needs a fetcher and a validator");
  }
  if (options.max_entries == 0 || options.max_bytes == 0 || options.max_x5u_bytes == 0) {
    return absl::InvalidArgumentError("x5u cache bounds must be positive");
  }
  if (options.default_ttl < absl::ZeroDuration() || options.max_ttl < absl::ZeroDuration() ||
      options.min_ttl < absl::ZeroDuration() || options.negative_ttl < absl::ZeroDuration() ||
      options.min_ttl > options.max_ttl) {
    return absl::InvalidArgumentError(
        "x5u cache lifetimes must be non-negative and min_ttl must not exceed max_ttl");
  }
  return std::unique_ptr<X5uCertificateSource>(new X5uCertificateSource(
      std::move(fetcher), std::move(validator), std::move(options), std::move(store),
      std::move(crl)));
}

X5uCertificateSource::X5uCertificateSource(std::shared_ptr<const CertificateFetcher> fetcher,
                                           std::shared_ptr<const CertValidator> validator,
                                           CertCacheOptions options,
                                           std::shared_ptr<CertificateStore> store,
                                           std::shared_ptr<CrlChecker> crl)
    : fetcher_(std::move(fetcher)),
      validator_(std::move(validator)),
      options_(std::move(options)),
      store_(std::move(store)),
      crl_(std::move(crl)) {}

X5uCertificateSource::~X5uCertificateSource() {
  // In-flight fetches call back into this object: wait for them (bounded by the fetch timeouts).
  Outstanding& o = *outstanding_;
  absl::MutexLock lock(&o.mu);
  o.mu.Await(absl::Condition(+[](int* n) { return *n == 0; }, &o.fetches));
}

CertificateResult X5uCertificateSource::Lookup(std::string_view x5u, absl::Time now) {
  CertificateResult out;
  absl::Notification landed;
  LookupAsync(x5u, now, absl::InfiniteFuture(), [&](CertificateResult r) {
    out = std::move(r);
    landed.Notify();
  });
  landed.WaitForNotification();  // bounded by the fetcher's total timeout
  return out;
}

std::optional<CertificateResult> X5uCertificateSource::Cached(
    std::string_view x5u, absl::Time now, std::shared_ptr<const Entry>* stale_out,
    bool* recheck_in_background) {
  const uint64_t generation = validator_->generation();
  std::shared_ptr<const Entry>& stale = *stale_out;
  {
    absl::ReaderMutexLock lock(&mu_);
    auto it = map_.find(Key(x5u));
    if (it != map_.end() && now < it->second->expires) {
      const Entry& e = *it->second;
      const bool current = e.generation == generation;
      if (e.result.ok()) {
        if (current && now >= e.result.cert->valid_from && now < e.result.cert->valid_until) {
          e.referenced.store(true, std::memory_order_relaxed);
          if (now < e.recheck_at) {
            counters_.hits.fetch_add(1, std::memory_order_relaxed);
            return e.result;  // the hot path: a shared_ptr copy
          }
          // The revocation verdict ran out: check the CRL again. Under soft-fail the answer
          // cannot get worse than "passed" for want of a CRL, so the call is answered now and
          // the check runs in the background; under hard-fail the call waits for it.
          stale = it->second;
          if (crl_ != nullptr && crl_->soft_fail()) {
            *recheck_in_background = true;
            counters_.hits.fetch_add(1, std::memory_order_relaxed);
            return e.result;
          }
          return std::nullopt;
        }
        if (current && now < e.result.cert->valid_from) {
          // A lookup "in the past" (e.g. verify --at): answer without disturbing the entry.
          counters_.hits.fetch_add(1, std::memory_order_relaxed);
          return CertificateResult::Failure(
              Reason::kCertNotYetValid,
              "the certificate chain is not yet valid at the verification time");
        }
        stale = it->second;
      } else if (current || e.pem.empty()) {
        // A remembered failure; validation failures are retried after a trust reload.
        e.referenced.store(true, std::memory_order_relaxed);
        counters_.negative_hits.fetch_add(1, std::memory_order_relaxed);
        return e.result;
      } else {
        stale = it->second;
      }
    }
  }
  return std::nullopt;
}

void X5uCertificateSource::LookupAsync(std::string_view x5u, absl::Time now, absl::Time deadline,
                                       LookupDone done) {
  if (x5u.empty() || x5u.size() > options_.max_x5u_bytes) {
    std::move(done)(CertificateResult::Failure(
        Reason::kX5uNotAllowed,
        absl::StrCat("the x5u URL is empty or longer than ", options_.max_x5u_bytes, " bytes")));
    return;
  }
  std::shared_ptr<const Entry> stale;
  bool recheck_in_background = false;
  if (std::optional<CertificateResult> hit = Cached(x5u, now, &stale, &recheck_in_background)) {
    if (recheck_in_background) {
      std::string url(x5u);
      // One recheck per URL at a time; the calls meanwhile are answered from the cache, with no
      // work beyond the lookup.
      if (!StartBackgroundFlight(url)) {
        std::move(done)(*std::move(hit));
        return;
      }
      counters_.rechecks.fetch_add(1, std::memory_order_relaxed);
      // The CRL checker usually holds the next CRL already (refreshed ahead of nextUpdate): then
      // the new verdict is local work, and this call gets it.
      if (std::optional<RevocationResult> revocation = crl_->CheckCached(stale->pem, now)) {
        CertificateResult result =
            WithRevocation(stale->generation, url, now, stale->result, stale->pem, std::nullopt,
                           stale->expires, *std::move(revocation));
        Land(url, result);  // ends the flight
        std::move(done)(std::move(result));
        return;
      }
      // Otherwise this call is answered from the cache and the CRL is fetched behind it (the
      // deadline only bounds the wait for a fetch slot).
      std::move(done)(*std::move(hit));
      Lead(url, now, now + kBackgroundDeadline, std::move(stale));
      return;
    }
    std::move(done)(*std::move(hit));
    return;
  }
  counters_.misses.fetch_add(1, std::memory_order_relaxed);

  // Single flight: one leader per URL; the others wait for its result, each until its deadline.
  std::string url(x5u);
  auto waiter = std::make_shared<Waiter>();
  waiter->done = std::move(done);
  bool leader = false;
  {
    absl::MutexLock lock(&flights_mu_);
    auto [it, inserted] = flights_.try_emplace(url);
    if (inserted) {
      it->second = std::make_shared<Flight>();
      leader = true;
    }
    it->second->waiters.push_back(waiter);
    if (deadline < absl::InfiniteFuture()) {
      waiter->timer = timers_.Schedule(deadline, [waiter] {
        if (waiter->answered.exchange(true)) return;
        std::move(waiter->done)(CertificateResult::Failure(
            Reason::kFetchTimeout,
            "the x5u certificate could not be fetched before the call's deadline"));
      });
    }
  }
  if (!leader) {
    counters_.coalesced.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  Lead(url, now, deadline, std::move(stale));
}

bool X5uCertificateSource::StartBackgroundFlight(const std::string& url) {
  absl::MutexLock lock(&flights_mu_);
  auto [it, inserted] = flights_.try_emplace(url);
  if (inserted) it->second = std::make_shared<Flight>();
  return inserted;
}

void X5uCertificateSource::Land(const std::string& url, const CertificateResult& result) {
  std::vector<std::shared_ptr<Waiter>> waiters;
  {
    absl::MutexLock lock(&flights_mu_);
    auto it = flights_.find(url);
    if (it == flights_.end()) return;
    waiters.swap(it->second->waiters);
    flights_.erase(it);
  }
  for (const auto& w : waiters) {
    if (w->answered.exchange(true)) continue;  // its deadline answered it
    if (w->timer != 0) timers_.Cancel(w->timer);
    std::move(w->done)(result);
  }
}

void X5uCertificateSource::Lead(const std::string& url, absl::Time now, absl::Time deadline,
                                std::shared_ptr<const Entry> stale) {
  // Read before validating: a reload racing with us makes the entry look stale, never current.
  const uint64_t gen = validator_->generation();
  // 1. A cached chain whose revocation verdict ran out: check its CRL again (the chain itself
  //    is still valid under the current trust).
  if (stale != nullptr && stale->result.ok() && stale->generation == gen &&
      now >= stale->result.cert->valid_from && now < stale->result.cert->valid_until &&
      now >= stale->recheck_at && now < stale->expires) {
    Conclude(gen, url, now, deadline, stale->result, stale->pem, std::nullopt, stale->expires);
    return;
  }
  // 2. A cached chain whose validation is out of date (trust reload): validate it again.
  if (stale != nullptr && !stale->pem.empty()) {
    counters_.revalidations.fetch_add(1, std::memory_order_relaxed);
    CertificateResult r = validator_->ValidatePem(stale->pem, now);
    if (!r.ok()) counters_.validation_failures.fetch_add(1, std::memory_order_relaxed);
    Conclude(gen, url, now, deadline, std::move(r), stale->pem, std::nullopt, stale->expires);
    return;
  }
  // 3. The operator's shared store.
  if (store_ != nullptr) {
    absl::StatusOr<std::optional<CertificateStore::Entry>> stored = store_->Get(url);
    if (!stored.ok()) {
      counters_.store_errors.fetch_add(1, std::memory_order_relaxed);
    } else if (stored->has_value() && now < (*stored)->expires) {
      counters_.store_hits.fetch_add(1, std::memory_order_relaxed);
      counters_.revalidations.fetch_add(1, std::memory_order_relaxed);
      CertificateResult r = validator_->ValidatePem((*stored)->pem, now);
      if (r.ok()) {
        Conclude(gen, url, now, deadline, std::move(r), std::move((*stored)->pem), std::nullopt,
                 (*stored)->expires);
        return;
      }
      // A store entry that no longer validates: fetch a fresh copy below.
    }
  }
  // 4. The network.
  counters_.fetches.fetch_add(1, std::memory_order_relaxed);
  {
    absl::MutexLock lock(&outstanding_->mu);
    ++outstanding_->fetches;
  }
  fetcher_->FetchAsync(url, deadline, [this, url, now, deadline, gen,
                                       outstanding = outstanding_](FetchResult fetched) {
    if (!fetched.ok()) {
      counters_.fetch_errors.fetch_add(1, std::memory_order_relaxed);
      CertificateResult result =
          CertificateResult::Failure(fetched.reason, std::move(fetched.detail));
      // Overload on our side says nothing about the server: never remembered.
      if (!fetched.shed) {
        result = Remember(gen, url, now, std::move(result), "", std::nullopt, std::nullopt);
      }
      Land(url, result);
    } else {
      CertificateResult r = validator_->ValidatePem(fetched.body, now);
      if (!r.ok()) counters_.validation_failures.fetch_add(1, std::memory_order_relaxed);
      // P14: Cache-Control / Expires, else the default (24 h).
      std::optional<absl::Duration> fresh = fetched.FreshnessLifetime(now);
      Conclude(gen, url, now, deadline, std::move(r), std::move(fetched.body),
               fresh.value_or(options_.default_ttl), std::nullopt);
    }
    absl::MutexLock lock(&outstanding->mu);  // the last use of this source
    --outstanding->fetches;
  });
}

void X5uCertificateSource::Conclude(uint64_t generation, const std::string& url, absl::Time now,
                                    absl::Time deadline, CertificateResult result, std::string pem,
                                    std::optional<absl::Duration> fresh_for,
                                    std::optional<absl::Time> store_expires) {
  if (crl_ == nullptr || !result.ok()) {
    Land(url, Remember(generation, url, now, std::move(result), std::move(pem), fresh_for,
                       store_expires));
    return;
  }
  {
    absl::MutexLock lock(&outstanding_->mu);
    ++outstanding_->fetches;
  }
  std::string checked = pem;
  crl_->CheckAsync(
      std::move(checked), now, deadline,
      [this, generation, url, now, result = std::move(result), pem = std::move(pem), fresh_for,
       store_expires, outstanding = outstanding_](RevocationResult revocation) mutable {
        Land(url, WithRevocation(generation, url, now, std::move(result), std::move(pem),
                                 fresh_for, store_expires, std::move(revocation)));
        absl::MutexLock lock(&outstanding->mu);  // the last use of this source
        --outstanding->fetches;
      });
}

CertificateResult X5uCertificateSource::WithRevocation(
    uint64_t generation, const std::string& url, absl::Time now, CertificateResult result,
    std::string pem, std::optional<absl::Duration> fresh_for,
    std::optional<absl::Time> store_expires, RevocationResult revocation) {
  if (revocation.reason != Reason::kPassed) {
    counters_.validation_failures.fetch_add(1, std::memory_order_relaxed);
    result = CertificateResult::Failure(revocation.reason, std::move(revocation.detail));
  }
  // A hit must not outlive the revocation verdict: past it, the next lookup checks the cached
  // chain's CRL again (the CRL checker refreshes a CRL in use before its nextUpdate).
  return Remember(generation, url, now, std::move(result), std::move(pem), fresh_for,
                  store_expires, revocation.check_until);
}

CertificateResult X5uCertificateSource::Remember(uint64_t generation, const std::string& url,
                                                 absl::Time now, CertificateResult result,
                                                 std::string pem,
                                                 std::optional<absl::Duration> fresh_for,
                                                 std::optional<absl::Time> store_expires,
                                                 absl::Time recheck_at) {
  absl::Time expires;
  if (result.ok()) {
    if (fresh_for.has_value()) {
      absl::Duration ttl = std::clamp(*fresh_for, options_.min_ttl, options_.max_ttl);
      expires = now + ttl;
    } else {
      expires = std::min(store_expires.value_or(now), now + options_.max_ttl);
    }
    // P14: never beyond the chain's validity (earliest notAfter).
    expires = std::min(expires, result.cert->valid_until);
  } else {
    expires = now + options_.negative_ttl;
  }
  if (expires <= now) return result;  // not cacheable (max-age=0, no-store, negative_ttl=0)

  // Publish to the operator's store what we fetched ourselves and validated.
  if (result.ok() && store_ != nullptr && fresh_for.has_value()) {
    if (!store_->Put(url, pem, expires).ok()) {
      counters_.store_errors.fetch_add(1, std::memory_order_relaxed);
    }
  }
  auto entry = std::make_shared<Entry>();
  entry->url = url;
  entry->pem = std::move(pem);
  entry->result = result;
  entry->expires = expires;
  entry->recheck_at = result.ok() ? recheck_at : absl::InfiniteFuture();
  entry->generation = generation;
  entry->bytes =
      entry->url.size() + entry->pem.size() + entry->result.detail.size() + kEntryOverheadBytes;
  Insert(std::move(entry));
  return result;
}

void X5uCertificateSource::Insert(std::shared_ptr<Entry> entry) {
  absl::MutexLock lock(&mu_);
  auto [it, inserted] = map_.try_emplace(entry->url, nullptr);
  if (inserted) {
    order_.push_back(entry->url);
  } else {
    bytes_ -= it->second->bytes;
  }
  bytes_ += entry->bytes;
  it->second = std::move(entry);
  EvictLocked();
}

void X5uCertificateSource::EvictLocked() {
  // CLOCK: the oldest entry goes unless it was used since its last chance. Each pass clears the
  // flags, so the loop ends.
  while ((map_.size() > options_.max_entries || bytes_ > options_.max_bytes) && !order_.empty()) {
    std::string url = std::move(order_.front());
    order_.pop_front();
    auto it = map_.find(url);
    if (it == map_.end()) continue;
    if (it->second->referenced.exchange(false, std::memory_order_relaxed) && map_.size() > 1) {
      order_.push_back(std::move(url));
      continue;
    }
    bytes_ -= it->second->bytes;
    map_.erase(it);
    counters_.evictions.fetch_add(1, std::memory_order_relaxed);
  }
}

void X5uCertificateSource::Clear() {
  absl::MutexLock lock(&mu_);
  map_.clear();
  order_.clear();
  bytes_ = 0;
}

CertCacheStats X5uCertificateSource::Stats() const {
  CertCacheStats s;
  s.hits = counters_.hits.load(std::memory_order_relaxed);
  s.negative_hits = counters_.negative_hits.load(std::memory_order_relaxed);
  s.misses = counters_.misses.load(std::memory_order_relaxed);
  s.coalesced = counters_.coalesced.load(std::memory_order_relaxed);
  s.fetches = counters_.fetches.load(std::memory_order_relaxed);
  s.fetch_errors = counters_.fetch_errors.load(std::memory_order_relaxed);
  s.validation_failures = counters_.validation_failures.load(std::memory_order_relaxed);
  s.revalidations = counters_.revalidations.load(std::memory_order_relaxed);
  s.rechecks = counters_.rechecks.load(std::memory_order_relaxed);
  s.store_hits = counters_.store_hits.load(std::memory_order_relaxed);
  s.store_errors = counters_.store_errors.load(std::memory_order_relaxed);
  s.evictions = counters_.evictions.load(std::memory_order_relaxed);
  absl::ReaderMutexLock lock(&mu_);
  s.entries = map_.size();
  s.bytes = bytes_;
  return s;
}

}  // namespace shaken::stir
