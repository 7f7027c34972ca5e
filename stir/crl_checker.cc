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
  return std::unique_ptr<CrlChecker>(
      new CrlChecker(std::move(fetcher), std::move(validator), std::move(options)));
}

CrlChecker::CrlChecker(std::shared_ptr<const CertificateFetcher> fetcher,
                       std::shared_ptr<const CertValidator> validator, CrlCheckerOptions options)
    : fetcher_(std::move(fetcher)), validator_(std::move(validator)), options_(std::move(options)) {}

CrlChecker::~CrlChecker() {
  // Fetches in progress call back into this object (bounded by the fetcher's timeouts).
  absl::MutexLock lock(&mu_);
  mu_.Await(absl::Condition(+[](int* n) { return *n == 0; }, &outstanding_));
}

void CrlChecker::CheckAsync(std::string pem, absl::Time now, absl::Time deadline,
                            CheckDone done) {
  absl::StatusOr<std::vector<X509Ptr>> chain = ParsePemChain(pem);
  if (!chain.ok()) {  // the validator accepted this chain: not expected
    std::move(done)(Unusable("(none)", std::string(chain.status().message()), now));
    return;
  }
  std::optional<std::string> url = CrlDistributionPointUrl((*chain)[0].get());
  if (!url.has_value()) {
    std::move(done)(RevocationResult{});
    return;
  }
  std::shared_ptr<const Entry> entry;
  bool leader = false;
  {
    absl::MutexLock lock(&mu_);
    auto it = cache_.find(*url);
    if (it != cache_.end() && now < it->second->expires) {
      entry = it->second;
    } else {
      auto [flight, inserted] = flights_.try_emplace(*url);
      flight->second.push_back(Waiter{std::move(pem), now, std::move(done)});
      leader = inserted;
      if (leader) ++outstanding_;
    }
  }
  if (entry != nullptr) {  // the hot path: local work only
    std::move(done)(Judge(pem, *entry, now));
    return;
  }
  if (!leader) return;
  fetcher_->FetchCrlAsync(*url, deadline, [this, url = *url, now](FetchResult fetched) {
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
  Store(entry);
  std::vector<Waiter> waiters;
  {
    absl::MutexLock lock(&mu_);
    auto it = flights_.find(url);
    if (it != flights_.end()) {
      waiters.swap(it->second);
      flights_.erase(it);
    }
  }
  for (Waiter& w : waiters) std::move(w.done)(Judge(w.pem, *entry, w.now));
  absl::MutexLock lock(&mu_);  // the last use of this object
  --outstanding_;
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

void CrlChecker::Store(std::shared_ptr<const Entry> entry) {
  absl::MutexLock lock(&mu_);
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
  absl::MutexLock lock(&mu_);
  s.cached = cache_.size();
  return s;
}

}  // namespace shaken::stir
