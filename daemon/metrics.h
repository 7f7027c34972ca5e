// metrics.h: every Prometheus metric of shakend, declared once, in MetricTable() (metrics.cc): name,
// type, help and label names (style.md: shaken_ prefix, base units, _total on counters, bounded
// labels: never a TN, an origid or a client identity). The request path records through Metrics;
// collectors (daemon/server.cc) build their families with Family(name), which takes the type and
// help from the table. docs/operations.md#metrics lists the table for operators; metrics_test
// checks that list against the table and every registered series against both.
#ifndef SHAKEN_DAEMON_METRICS_H_
#define SHAKEN_DAEMON_METRICS_H_

#include <prometheus/collectable.h>
#include <prometheus/counter.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include <array>
#include <functional>
#include <span>
#include <string_view>
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

// RestEndpoint is the `endpoint` label of the REST series.
enum class RestEndpoint { kSigning, kVerification, kOther, kCount_ };

// GrpcCodeName is the gRPC name of a status code ("OK", "UNAVAILABLE", ...): the one vocabulary of
// the `code` label and of audit records' `result`, abseil's (absl::StatusCodeToString: gRPC and
// absl codes are the same numbers). "UNKNOWN" for a value out of range.
std::string_view GrpcCodeName(int code);
inline constexpr int kGrpcCodes = 17;  // OK (0) .. UNAUTHENTICATED (16)

enum class MetricType { kCounter, kGauge, kHistogram };
std::string_view MetricTypeName(MetricType type);  // "counter", "gauge", "histogram"

// MetricSpec declares one metric: what a scrape's # HELP and # TYPE lines say, and the names of
// its labels, comma-separated in the order they are documented ("" for none).
struct MetricSpec {
  std::string_view name;
  MetricType type;
  std::string_view labels;
  std::string_view help;
};

// MetricTable is every metric shakend exports.
std::span<const MetricSpec> MetricTable();

// FindMetric returns the declaration of `name`, or null.
const MetricSpec* FindMetric(std::string_view name);

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
  // RecordRest counts one REST answer; a status outside the documented set counts as "other".
  void RecordRest(RestEndpoint endpoint, int http_status, absl::Duration latency);
  void RecordSip(SipRequestRole role, int code, absl::Duration latency);
  // SetSipTransactions: the SIP stack's server transactions now (the redirect server's loop).
  void SetSipTransactions(size_t n);

  // AddCollector registers a function called at every scrape that returns gauge/counter
  // families computed from live state (pool stats, cache counters, certificate expiry).
  void AddCollector(std::function<std::vector<prometheus::MetricFamily>()> collect);

  const std::shared_ptr<prometheus::Registry>& registry() const { return registry_; }
  std::vector<std::shared_ptr<prometheus::Collectable>> collectables() const;

 private:
  std::shared_ptr<prometheus::Registry> registry_;
  std::array<std::array<prometheus::Counter*, kGrpcCodes>, static_cast<size_t>(Method::kCount_)> rpcs_;
  std::array<prometheus::Histogram*, static_cast<size_t>(Method::kCount_)> rpc_latency_;
  prometheus::Family<prometheus::Histogram>* sign_family_ = nullptr;
  prometheus::Family<prometheus::Histogram>* queue_wait_family_ = nullptr;
  absl::Mutex profiles_mu_;
  std::map<std::string, size_t> profile_series_ ABSL_GUARDED_BY(profiles_mu_);
  // Written once per index under profiles_mu_, before the index is handed out.
  std::array<prometheus::Histogram*, kMaxProfileSeries> sign_latency_{};
  std::array<prometheus::Histogram*, kMaxProfileSeries> queue_wait_{};
  std::array<prometheus::Counter*, static_cast<size_t>(stir::Reason::kCount_)> verdicts_;
  static constexpr int kRestStatuses[] = {200, 400, 403, 404, 405, 406, 411, 413, 415, 500, 503};
  static constexpr size_t kRestStatusSlots = std::size(kRestStatuses) + 1;  // + "other"
  std::array<std::array<prometheus::Counter*, kRestStatusSlots>,
             static_cast<size_t>(RestEndpoint::kCount_)> rest_;
  std::array<prometheus::Histogram*, static_cast<size_t>(RestEndpoint::kCount_)> rest_latency_;
  prometheus::Histogram* fetch_ok_ = nullptr;
  prometheus::Histogram* fetch_error_ = nullptr;
  static constexpr size_t kSipRoles = static_cast<size_t>(SipRequestRole::kCount_);
  // [role][index in kSipCodes, or its size for "other"]
  std::array<std::array<prometheus::Counter*, std::size(kSipCodes) + 1>, kSipRoles> sip_;
  std::array<prometheus::Histogram*, kSipRoles> sip_latency_;
  prometheus::Gauge* sip_transactions_ = nullptr;
  std::shared_ptr<prometheus::Collectable> live_;
};

// Helpers for collectors. Family is the empty family of the declared counter or gauge `name`;
// a name the table does not declare is a programming error (aborts naming it).
prometheus::MetricFamily Family(std::string_view name);
void AddSample(prometheus::MetricFamily* family, double value,
               std::vector<prometheus::ClientMetric::Label> labels = {});

}  // namespace shaken::daemon

#endif  // SHAKEN_DAEMON_METRICS_H_
