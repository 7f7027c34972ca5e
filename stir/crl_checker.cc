#include "stir/crl_checker.h"

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include <algorithm>
#include <utility>

#include "absl/strings/str_cat.h"
#include "stir/pem_chain.h"

namespace shaken::stir {

struct CrlChecker::Entry {
  std::string url;
  std::shared_ptr<X509_CRL> crl;  // null: the CRL could not be obtained (`failure` says why)
  std::string failure;
  absl::Time expires;  // the CRL's nextUpdate (capped), or when to try again after a failure
  mutable std::atomic<bool> used{false};  // answered a check since it was fetched
};

// Waiter is one check waiting for its URL's fetch.
struct CrlChecker::Waiter {
  std::string pem;
  absl::Time now;
  CheckDone done;
};

std::optional<std::string> CrlDistributionPointUrl(const X509* cert) {
  CrlDistPointsPtr dps(static_cast<CRL_DIST_POINTS*>(
      X509_get_ext_d2i(cert, NID_crl_distribution_points, nullptr, nullptr)));
  ERR_clear_error();
  if (!dps || sk_DIST_POINT_num(dps.get()) < 1) return std::nullopt;
  for (std::string& url : DistributionPointUris(sk_DIST_POINT_value(dps.get(), 0))) {
    if (url.starts_with("http://") || url.starts_with("https://")) return std::move(url);
  }
  return std::nullopt;
}

absl::StatusOr<std::unique_ptr<CrlChecker>> CrlChecker::New(
    std::shared_ptr<const CertificateFetcher> fetcher,
    std::shared_ptr<const CertValidator> validator, CrlCheckerOptions options) {
  if (fetcher == nullptr || validator == nullptr) {
    return absl::InvalidArgumentError("the CRL checker needs a fetcher and a validator");
  }
  if (options.max_entries == 0 || options.retry_after <= absl::ZeroDuration() ||
      options.max_ttl <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError(
        "CRL cache bounds: max_entries, retry_after and max_ttl must be positive");
  }
  if (!(options.refresh_at_fraction >= 0.0 && options.refresh_at_fraction <= 0.95)) {
    return absl::InvalidArgumentError("CRL refresh_at_fraction must be within [0, 0.95]");
  }
  return std::unique_ptr<CrlChecker>(
      new CrlChecker(std::move(fetcher), std::move(validator), std::move(options)));
}

CrlChecker::CrlChecker(std::shared_ptr<const CertificateFetcher> fetcher,
                       std::shared_ptr<const CertValidator> validator, CrlCheckerOptions options)
    : fetcher_(std::move(fetcher)), validator_(std::move(validator)), options_(std::move(options)) {}

CrlChecker::~CrlChecker() {
  // Fetches in progress call back into this object (bounded by the fetcher's timeouts); no
  // refresh starts once stopping_ is set.
  absl::MutexLock lock(&mu_);
  stopping_ = true;
  mu_.Await(absl::Condition(+[](int* n) { return *n == 0; }, &outstanding_));
}

absl::StatusOr<std::optional<std::string>> CrlChecker::LeafUrl(const std::string& pem) {
  absl::StatusOr<std::vector<X509Ptr>> chain = ParsePemChain(pem);
  if (!chain.ok()) return chain.status();
  return CrlDistributionPointUrl((*chain)[0].get());
}

std::optional<RevocationResult> CrlChecker::CheckCached(const std::string& pem, absl::Time now) {
  absl::StatusOr<std::optional<std::string>> url = LeafUrl(pem);
  if (!url.ok()) return Unusable("(none)", std::string(url.status().message()), now);
  if (!url->has_value()) return RevocationResult{};
  std::shared_ptr<const Entry> entry;
  {
    absl::MutexLock lock(&mu_);
    auto it = cache_.find(**url);
    if (it == cache_.end() || now >= it->second->expires) return std::nullopt;
    entry = it->second;
  }
  // The hot path: local work only.
  if (!entry->used.load(std::memory_order_relaxed)) {
    entry->used.store(true, std::memory_order_relaxed);
  }
  return Judge(pem, *entry, now);
}

void CrlChecker::CheckAsync(std::string pem, absl::Time now, absl::Time deadline,
                            CheckDone done) {
  if (std::optional<RevocationResult> cached = CheckCached(pem, now)) {
    std::move(done)(*std::move(cached));
    return;
  }
  absl::StatusOr<std::optional<std::string>> url = LeafUrl(pem);
  if (!url.ok() || !url->has_value()) {  // answered by CheckCached: not expected here
    std::move(done)(Unusable("(none)", "the certificate lost its distribution point", now));
    return;
  }
  bool leader = false;
  {
    absl::MutexLock lock(&mu_);
    auto [flight, inserted] = flights_.try_emplace(**url);
    flight->second.push_back(Waiter{std::move(pem), now, std::move(done)});
    leader = inserted;
    if (leader) ++outstanding_;
  }
  if (!leader) return;
  // A CRL that landed since CheckCached looked is fetched once more: harmless, and rare.
  fetcher_->FetchCrlAsync(**url, deadline, [this, url = **url, now](FetchResult fetched) {
    Landed(url, now, std::move(fetched));
  });
}

void CrlChecker::Landed(const std::string& url, absl::Time now, FetchResult fetched) {
  auto entry = std::make_shared<Entry>();
  entry->url = url;
  entry->expires = now + options_.retry_after;
  if (!fetched.ok()) {
    counters_.fetch_failed.fetch_add(1, std::memory_order_relaxed);
    entry->failure = absl::StrCat("the CRL could not be fetched (", std::string(ReasonName(fetched.reason)),
                                  "): ", fetched.detail);
  } else {
    absl::StatusOr<std::vector<X509CrlPtr>> crls = ParseCrls(fetched.body);
    if (!crls.ok() || crls->size() != 1) {
      counters_.fetch_invalid.fetch_add(1, std::memory_order_relaxed);
      entry->failure = crls.ok() ? "the response holds more than one CRL"
                                 : "the response is not a DER or PEM CRL";
    } else {
      counters_.fetch_ok.fetch_add(1, std::memory_order_relaxed);
      entry->crl = std::shared_ptr<X509_CRL>((*crls)[0].release(), X509_CRL_free);
      const ASN1_TIME* next = X509_CRL_get0_nextUpdate(entry->crl.get());
      const absl::Time next_update =
          next != nullptr ? Asn1TimeToTime(next) : absl::InfiniteFuture();
      // A CRL already past its nextUpdate is kept only until the next retry (the validator
      // reports it stale meanwhile).
      if (next_update > now) entry->expires = std::min(next_update, now + options_.max_ttl);
    }
  }
  std::vector<Waiter> waiters;
  std::shared_ptr<const Entry> kept;  // a CRL still in force that a failed refresh leaves in place
  {
    // One critical section: a check never finds the flight gone and the new entry not yet stored.
    absl::MutexLock lock(&mu_);
    auto it = flights_.find(url);
    if (it != flights_.end()) {
      waiters.swap(it->second);
      flights_.erase(it);
    }
    if (entry->crl == nullptr) {
      auto cached = cache_.find(url);
      if (cached != cache_.end() && cached->second->crl != nullptr &&
          now < cached->second->expires) {
        kept = cached->second;
      }
    }
    if (kept == nullptr) {
      if (!waiters.empty()) entry->used.store(true, std::memory_order_relaxed);
      StoreLocked(entry);
    }
  }
  if (kept != nullptr) {
    // Only a background refresh fails while the cached CRL is in force (a check waits only for a
    // missing or expired one): keep it, and try again after retry_after.
    ScheduleRefresh(kept, now + options_.retry_after);
  } else if (entry->crl != nullptr && options_.refresh_at_fraction > 0 &&
             entry->expires < absl::InfiniteFuture()) {
    ScheduleRefresh(entry, now + (entry->expires - now) * options_.refresh_at_fraction);
  }
  const Entry& answer = kept != nullptr ? *kept : *entry;
  for (Waiter& w : waiters) std::move(w.done)(Judge(w.pem, answer, w.now));
  absl::MutexLock lock(&mu_);  // the last use of this object
  --outstanding_;
}

void CrlChecker::ScheduleRefresh(const std::shared_ptr<const Entry>& entry, absl::Time at) {
  if (at >= entry->expires) return;  // past it a check fetches the CRL itself
  timers_.Schedule(at, [this, weak = std::weak_ptr<const Entry>(entry)] {
    if (std::shared_ptr<const Entry> e = weak.lock()) Refresh(e);
  });
}

void CrlChecker::Refresh(const std::shared_ptr<const Entry>& entry) {
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    auto it = cache_.find(entry->url);
    // Replaced, evicted or unused since its fetch: nothing to do (a check fetches it when due).
    if (it == cache_.end() || it->second != entry ||
        !entry->used.load(std::memory_order_relaxed)) {
      return;
    }
    auto [flight, inserted] = flights_.try_emplace(entry->url);
    if (!inserted) return;  // a check is already fetching it
    ++outstanding_;
  }
  counters_.refreshes.fetch_add(1, std::memory_order_relaxed);
  const absl::Time now = absl::Now();
  fetcher_->FetchCrlAsync(entry->url, now + options_.retry_after,
                          [this, url = entry->url, now](FetchResult fetched) {
                            Landed(url, now, std::move(fetched));
                          });
}

RevocationResult CrlChecker::Judge(const std::string& pem, const Entry& entry, absl::Time now) {
  if (entry.crl == nullptr) return Unusable(entry.url, entry.failure, now);
  CrlCheck check = validator_->CheckCrl(pem, entry.crl.get(), now);
  RevocationResult out;
  out.check_until = entry.expires;
  switch (check.outcome) {
    case CrlCheck::kGood:
      return out;
    case CrlCheck::kRevoked:
      counters_.revoked.fetch_add(1, std::memory_order_relaxed);
      out.reason = Reason::kCertRevoked;
      out.detail = std::move(check.detail);
      return out;
    case CrlCheck::kUnusable:
      break;
  }
  return Unusable(entry.url, std::move(check.detail), now);
}

RevocationResult CrlChecker::Unusable(const std::string& url, std::string why, absl::Time now) {
  RevocationResult out;
  out.check_until = now + options_.retry_after;
  std::string sentence = absl::StrCat("CRL ", url, ": ", why);
  if (options_.on_unavailable == CrlFailureMode::kHardFail) {
    counters_.hard_failed.fetch_add(1, std::memory_order_relaxed);
    out.reason = Reason::kCertUntrusted;
    out.detail = absl::StrCat("revocation status unknown: ", sentence);
    return out;
  }
  counters_.soft_failed.fetch_add(1, std::memory_order_relaxed);
  out.soft_failed = true;
  out.detail = absl::StrCat("revocation not checked (soft-fail): ", sentence);
  if (options_.on_soft_fail) options_.on_soft_fail(out.detail);
  return out;
}

void CrlChecker::StoreLocked(std::shared_ptr<const Entry> entry) {
  if (!cache_.contains(entry->url) && cache_.size() >= options_.max_entries) {
    // Bounded: the entry due soonest goes (linear, but only when a fetch lands).
    auto victim = std::min_element(cache_.begin(), cache_.end(), [](const auto& a, const auto& b) {
      return a.second->expires < b.second->expires;
    });
    cache_.erase(victim);
  }
  cache_[entry->url] = std::move(entry);
}

CrlStats CrlChecker::Stats() const {
  CrlStats s;
  s.fetch_ok = counters_.fetch_ok.load(std::memory_order_relaxed);
  s.fetch_failed = counters_.fetch_failed.load(std::memory_order_relaxed);
  s.fetch_invalid = counters_.fetch_invalid.load(std::memory_order_relaxed);
  s.soft_failed = counters_.soft_failed.load(std::memory_order_relaxed);
  s.hard_failed = counters_.hard_failed.load(std::memory_order_relaxed);
  s.revoked = counters_.revoked.load(std::memory_order_relaxed);
  s.refreshes = counters_.refreshes.load(std::memory_order_relaxed);
  absl::MutexLock lock(&mu_);
  s.cached = cache_.size();
  return s;
}

}  // namespace shaken::stir
