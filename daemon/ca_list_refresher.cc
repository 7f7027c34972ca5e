#include "daemon/ca_list_refresher.h"

#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "daemon/log.h"
#include "stir/absl_compat.h"
#include "stir/openssl_util.h"

namespace shaken::daemon {

absl::StatusOr<std::unique_ptr<CaListRefresher>> CaListRefresher::Start(
    const VerifierConfig& verifier, Apply apply) {
  std::unique_ptr<CaListRefresher> r(new CaListRefresher());
  r->url_ = verifier.ca_list_url;
  r->refresh_ = verifier.ca_list_refresh;
  r->retry_ = verifier.ca_list_retry;
  r->cache_file_ = verifier.ca_list_cache_file;
  r->limits_.max_bytes = verifier.ca_list_max_bytes;
  r->apply_ = std::move(apply);
  // The x5u fetch settings and policy, with the list's own body cap.
  stir::X5uFetcherOptions fetch = VerifierSettingsFrom(verifier).fetcher;
  static_cast<stir::X5uPolicy&>(fetch) = verifier.x5u_policy;
  fetch.max_body_bytes = verifier.ca_list_max_bytes;
  absl::StatusOr<std::unique_ptr<stir::X5uFetcher>> fetcher = stir::X5uFetcher::New(fetch);
  if (!fetcher.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("verifier.ca_list_url: ", fetcher.status().message()));
  }
  r->fetcher_ = *std::move(fetcher);
  if (!r->cache_file_.empty()) {
    absl::StatusOr<std::string> cached = stir::ReadFile(r->cache_file_, r->limits_.max_bytes);
    absl::StatusOr<stir::CaList> list =
        cached.ok() ? stir::ParseCaList(*cached, absl::Now(), r->limits_) : cached.status();
    if (list.ok()) {
      // Not put in force: reported below like an unreadable file; the first fetch tries again.
      if (absl::Status applied = r->apply_(list->pem); !applied.ok()) list = applied;
    }
    if (list.ok()) {
      absl::MutexLock lock(&r->mu_);
      r->pem_ = list->pem;
      r->fingerprints_ = list->fingerprints;
      r->subjects_ = list->subjects;
      r->stats_.anchors = list->fingerprints.size();
      LogInfo("ca_list_loaded", {{"file", r->cache_file_},
                                 {"anchors", absl::StrCat(list->fingerprints.size())}});
    } else if (!absl::IsNotFound(list.status())) {
      LogWarn("ca_list_cache_unusable", {{"file", r->cache_file_},
                                         {"error", ToStd(list.status().message())},
                                         {"detail", "waiting for the first fetch"}});
    }
  }
  r->thread_ = std::thread([raw = r.get()] { raw->Run(); });
  return r;
}

CaListRefresher::~CaListRefresher() {
  stop_.Notify();
  if (thread_.joinable()) thread_.join();
}

std::string CaListRefresher::pem() const {
  absl::MutexLock lock(&mu_);
  return pem_;
}

absl::Status CaListRefresher::PutInForce(const Apply& apply) const {
  absl::MutexLock lock(&apply_mu_);
  const std::string list = pem();
  return list.empty() ? absl::OkStatus() : apply(list);
}

CaListStats CaListRefresher::Stats() const {
  absl::MutexLock lock(&mu_);
  return stats_;
}

void CaListRefresher::Run() {
  absl::Duration wait = absl::ZeroDuration();
  while (!stop_.WaitForNotificationWithTimeout(wait)) wait = RefreshOnce();
}

absl::Duration CaListRefresher::RefreshOnce() {
  const stir::FetchResult fetched = fetcher_->Fetch(url_);
  if (!fetched.ok()) {
    LogWarn("ca_list_fetch_failed",
            {{"url", url_},
             {"error", fetched.detail},
             {"detail", absl::StrCat("the list in force stays; next try in ",
                                     absl::FormatDuration(retry_))}});
    absl::MutexLock lock(&mu_);
    ++stats_.fetch_failed;
    return retry_;
  }
  absl::StatusOr<stir::CaList> list = stir::ParseCaList(fetched.body, absl::Now(), limits_);
  if (!list.ok()) {
    LogError("ca_list_refused", {{"url", url_},
                                 {"error", ToStd(list.status().message())},
                                 {"detail", "the list in force stays"}});
    absl::MutexLock lock(&mu_);
    ++stats_.refused;
    return retry_;
  }
  absl::MutexLock apply_lock(&apply_mu_);
  std::vector<std::string> old_fingerprints, old_subjects;
  {
    absl::MutexLock lock(&mu_);
    if (list->pem == pem_) {
      ++stats_.unchanged;
      stats_.last_success = absl::Now();
      return refresh_;
    }
    old_fingerprints = fingerprints_;
    old_subjects = subjects_;
  }
  if (absl::Status applied = apply_(list->pem); !applied.ok()) {
    LogError("ca_list_refused", {{"url", url_},
                                 {"error", ToStd(applied.message())},
                                 {"detail", "could not be put in force; the list in force stays"}});
    absl::MutexLock lock(&mu_);
    ++stats_.refused;
    return retry_;
  }
  // What changed, by fingerprint, named by subject.
  const std::set<std::string> before(old_fingerprints.begin(), old_fingerprints.end());
  const std::set<std::string> after(list->fingerprints.begin(), list->fingerprints.end());
  std::vector<std::string> added, removed;
  for (size_t i = 0; i < list->fingerprints.size(); ++i) {
    if (!before.count(list->fingerprints[i])) added.push_back(list->subjects[i]);
  }
  for (size_t i = 0; i < old_fingerprints.size(); ++i) {
    if (!after.count(old_fingerprints[i])) removed.push_back(old_subjects[i]);
  }
  {
    absl::MutexLock lock(&mu_);
    pem_ = list->pem;
    fingerprints_ = list->fingerprints;
    subjects_ = list->subjects;
    ++stats_.updated;
    stats_.anchors = list->fingerprints.size();
    stats_.last_success = absl::Now();
  }
  LogInfo("ca_list_updated", {{"url", url_},
                              {"anchors", absl::StrCat(list->fingerprints.size())},
                              {"added", added.empty() ? "none" : absl::StrJoin(added, "; ")},
                              {"removed", removed.empty() ? "none" : absl::StrJoin(removed, "; ")},
                              {"dropped", list->dropped.empty()
                                              ? "none"
                                              : absl::StrJoin(list->dropped, "; ")}});
  if (!cache_file_.empty()) {
    if (absl::Status w = stir::WriteFileAtomic(cache_file_, list->pem, 0644, true); !w.ok()) {
      LogWarn("ca_list_cache_unusable", {{"file", cache_file_},
                                         {"error", ToStd(w.message())},
                                         {"detail", "the list is in force; not kept for a restart"}});
    }
  }
  return refresh_;
}

}  // namespace shaken::daemon
