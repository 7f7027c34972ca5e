// metrics.h: every Prometheus metric of shakend, declared in one place (style.md: shaken_ prefix,
// base units, _total on counters, bounded labels: never a TN, an origid or a client identity).
//
//   shaken_rpc_requests_total{method,code}            RPCs by method and gRPC code
//   shaken_rpc_duration_seconds{method}               RPC latency
//   shaken_sign_duration_seconds{profile}             time spent in the key's SignDigest
//   shaken_verify_verdicts_total{reason}              verdicts by machine-readable reason
//   shaken_sip_requests_total{role,code}              SIP redirect server answers: role sign |
//                                                     verify | options | other, final status
//                                                     code (one of kSipCodes, else "other")
//   shaken_sip_duration_seconds{role}                 SIP request to final answer
//   shaken_hsm_sessions{profile,state}                pool size / live / idle sessions
//   shaken_hsm_health{profile}                        0 serving, 1 degraded, 2 down
//   shaken_hsm_signatures_total{profile}, shaken_hsm_sign_failures_total{profile},
//   shaken_hsm_sessions_opened_total{profile}, shaken_hsm_sessions_dropped_total{profile},
//   shaken_hsm_open_failures_total{profile}           pool counters (reconnects)
//   shaken_hsm_waits_total{profile}                   signatures that waited for a free session
//   shaken_hsm_signatures_in_flight{profile}          signatures the token is making now
//   shaken_sign_queue_depth{profile}, shaken_sign_queue_limit{profile}
//                                                     signatures waiting for a pool worker
//   shaken_sign_queue_wait_seconds{profile}           time waited for a pool worker
//   shaken_sign_queue_rejected_total{profile}         refused at once (full, no start in time)
//   shaken_sign_queue_expired_total{profile}          deadline / max_wait passed while queued
//   shaken_verify_in_flight                           Verify calls in progress
//   shaken_x5u_fetches_in_flight, shaken_x5u_fetches_waiting
//   shaken_x5u_fetch_limit_waits_total{limit}         fetches that waited (per_host | total)
//   shaken_x5u_fetches_shed_total                     fetches not attempted (overload)
//   shaken_x5u_fetch_duration_seconds{result}        x5u fetch latency (result: ok | error)
//   shaken_x5u_cache_{hits,misses,negative_hits}_total
//   shaken_x5u_cache_entries, shaken_x5u_cache_bytes
//   shaken_certificate_not_after_seconds{profile}     the profile certificate's notAfter
//   shaken_draining                                   1 while shutting down
//   shaken_audit_write_failures_total                 audit records not written whole
//   shaken_audit_available                            0 after a failed audit write, until one lands
//   shaken_build_info{version}                        always 1: the release that runs
#ifndef SHAKEN_DAEMON_METRICS_H_
#define SHAKEN_DAEMON_METRICS_H_

#include <prometheus/collectable.h>
#include <prometheus/counter.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <array>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <grpcpp/support/status.h>

#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "stir/verdict.h"

namespace shaken::daemon {

enum class Method { kSign, kSignStream, kVerify, kListProfiles, kCount_ };

// SipRequestRole is the `role` label of the SIP metrics.
enum class SipRequestRole { kSign, kVerify, kOptions, kOther, kCount_ };
// The final status codes the SIP redirect server answers; others are counted as "other".
inline constexpr int kSipCodes[] = {200, 302, 400, 403, 405, 413, 416, 420,
                                    480, 481, 483, 487, 500, 503, 603};
std::string_view MethodName(Method m);

// GrpcCodeName is the gRPC name of a status code ("OK", "UNAVAILABLE", ...): the one vocabulary of
// the `code` label and of audit records' `result`. "UNKNOWN" for a value out of range.
std::string_view GrpcCodeName(int code);

// Metrics holds the counters and histograms that the request path updates. Every series the hot
// path touches is created up front, so recording is a pointer dereference and an atomic add.
// Thread-safe.
class Metrics {
 public:
  explicit Metrics(const std::vector<std::string>& profiles);

  void RecordRpc(Method method, grpc::StatusCode code, absl::Duration latency);
  // ProfileSeries is the index of profile `profile`'s series for RecordSign / RecordQueueWait,
  // created on first use (a reload may add profiles). Series are never removed; past
  // kMaxProfileSeries names the index records nothing.
  size_t ProfileSeries(const std::string& profile);
  static constexpr size_t kMaxProfileSeries = 1024;

  void RecordSign(size_t profile_index, absl::Duration latency);
  void RecordQueueWait(size_t profile_index, absl::Duration waited);
  void RecordVerdict(stir::Reason reason);
  void RecordFetch(bool ok, absl::Duration latency);
  void RecordSip(SipRequestRole role, int code, absl::Duration latency);

  // AddCollector registers a function called at every scrape that returns gauge/counter
  // families computed from live state (pool stats, cache counters, certificate expiry).
  void AddCollector(std::function<std::vector<prometheus::MetricFamily>()> collect);

  const std::shared_ptr<prometheus::Registry>& registry() const { return registry_; }
  std::vector<std::shared_ptr<prometheus::Collectable>> collectables() const;

 private:
  static constexpr int kCodes = 17;
  std::shared_ptr<prometheus::Registry> registry_;
  std::array<std::array<prometheus::Counter*, kCodes>, static_cast<size_t>(Method::kCount_)> rpcs_;
  std::array<prometheus::Histogram*, static_cast<size_t>(Method::kCount_)> rpc_latency_;
  prometheus::Family<prometheus::Histogram>* sign_family_ = nullptr;
  prometheus::Family<prometheus::Histogram>* queue_wait_family_ = nullptr;
  absl::Mutex profiles_mu_;
  std::map<std::string, size_t> profile_series_ ABSL_GUARDED_BY(profiles_mu_);
  // Written once per index under profiles_mu_, before the index is handed out.
  std::array<prometheus::Histogram*, kMaxProfileSeries> sign_latency_{};
  std::array<prometheus::Histogram*, kMaxProfileSeries> queue_wait_{};
  std::array<prometheus::Counter*, static_cast<size_t>(stir::Reason::kCount_)> verdicts_;
  prometheus::Histogram* fetch_ok_ = nullptr;
  prometheus::Histogram* fetch_error_ = nullptr;
  static constexpr size_t kSipRoles = static_cast<size_t>(SipRequestRole::kCount_);
  // [role][index in kSipCodes, or its size for "other"]
  std::array<std::array<prometheus::Counter*, std::size(kSipCodes) + 1>, kSipRoles> sip_;
  std::array<prometheus::Histogram*, kSipRoles> sip_latency_;
  std::shared_ptr<prometheus::Collectable> live_;
};

// Helpers for collectors.
prometheus::MetricFamily GaugeFamily(std::string name, std::string help);
prometheus::MetricFamily CounterFamily(std::string name, std::string help);
void AddSample(prometheus::MetricFamily* family, double value,
               std::vector<prometheus::ClientMetric::Label> labels = {});

}  // namespace shaken::daemon

#endif  // SHAKEN_DAEMON_METRICS_H_
