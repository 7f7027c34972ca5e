// ca_list_refresher.h: verifier.ca_list_url kept fresh. A thread of its own fetches the STI-PA CA
// list (stir/ca_list.h) with the x5u fetch policy every ca_list_refresh (ca_list_retry after a
// failure), and when an accepted list differs from the one in force hands it to `apply` (the
// daemon puts it into the verification stack in force: VerificationStack::SetListedAnchors) and
// writes it to ca_list_cache_file, atomically, for the next start. A failed fetch, a refused list
// or a failed apply keeps the last good list. Nothing here runs on a request thread.
#ifndef SHAKEN_DAEMON_CA_LIST_REFRESHER_H_
#define SHAKEN_DAEMON_CA_LIST_REFRESHER_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "absl/time/time.h"
#include "daemon/config.h"
#include "stir/ca_list.h"
#include "stir/x5u_fetcher.h"

namespace shaken::daemon {

struct CaListStats {
  uint64_t updated = 0;       // lists that changed the anchors
  uint64_t unchanged = 0;     // fetched, accepted, the same as in force
  uint64_t fetch_failed = 0;  // policy, network, HTTP
  uint64_t refused = 0;       // fetched but not an acceptable list (or not applied)
  size_t anchors = 0;         // anchors of the list in force
  absl::Time last_success = absl::InfinitePast();  // last fetch that ended updated or unchanged
};

class CaListRefresher {
 public:
  using Apply = std::function<absl::Status(const std::string& pem)>;

  // Start reads ca_list_cache_file and, when it holds an acceptable list, puts it in force with
  // `apply` at once (so a restart during an STI-PA outage keeps the last list; a file that cannot
  // be used is logged and left for the first fetch); then starts the thread, whose first fetch is
  // immediate. `verifier` must have
  // ca_list_url. INVALID_ARGUMENT when the fetcher cannot be built.
  static absl::StatusOr<std::unique_ptr<CaListRefresher>> Start(const VerifierConfig& verifier,
                                                                Apply apply);
  ~CaListRefresher();  // stops the thread (waiting for a fetch in progress, fetch_timeout at most)

  // pem is the list in force ("" before the first one).
  std::string pem() const;
  // PutInForce calls `apply` with the list in force (when there is one), serialized with the
  // refresher's own updates: a verification stack built while a new list was being put in force
  // ends up with the newest list either way.
  absl::Status PutInForce(const Apply& apply) const;
  CaListStats Stats() const;

 private:
  CaListRefresher() = default;
  void Run();
  // Once: fetch, judge, apply, persist. Returns how long to wait before the next time.
  absl::Duration RefreshOnce();

  std::string url_;
  absl::Duration refresh_, retry_;
  std::string cache_file_;
  stir::CaListLimits limits_;
  std::unique_ptr<stir::X5uFetcher> fetcher_;
  Apply apply_;
  mutable absl::Mutex apply_mu_;  // held across apply_ and the update of pem_
  mutable absl::Mutex mu_;
  std::string pem_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> fingerprints_ ABSL_GUARDED_BY(mu_);
  std::vector<std::string> subjects_ ABSL_GUARDED_BY(mu_);
  CaListStats stats_ ABSL_GUARDED_BY(mu_);
  absl::Notification stop_;
  std::thread thread_;
};

}  // namespace shaken::daemon

#endif  // SHAKEN_DAEMON_CA_LIST_REFRESHER_H_
