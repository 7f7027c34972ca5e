#include "daemon/metrics.h"

#include <prometheus/family.h>

#include "absl/synchronization/mutex.h"
#include "daemon/log.h"

namespace shaken::daemon {
namespace {

// Latency buckets from 50 µs (a software-key signature) to 2.5 s (a slow x5u fetch).
const prometheus::Histogram::BucketBoundaries& LatencyBuckets() {
  static const prometheus::Histogram::BucketBoundaries kBuckets = {
      0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
      0.05,    0.1,    0.25,    0.5,    1.0,   2.5};
  return kBuckets;
}

const char* const kCodeNames[] = {
    "OK",           "CANCELLED",          "UNKNOWN",        "INVALID_ARGUMENT",
    "DEADLINE_EXCEEDED", "NOT_FOUND",     "ALREADY_EXISTS", "PERMISSION_DENIED",
    "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED", "OUT_OF_RANGE",
    "UNIMPLEMENTED", "INTERNAL",          "UNAVAILABLE",    "DATA_LOSS",
    "UNAUTHENTICATED"};

}  // namespace

std::string_view GrpcCodeName(int code) {
  if (code < 0 || code >= static_cast<int>(std::size(kCodeNames))) return "UNKNOWN";
  return kCodeNames[code];
}

namespace {

class LiveCollectable : public prometheus::Collectable {
 public:
  void Add(std::function<std::vector<prometheus::MetricFamily>()> f) {
    absl::MutexLock lock(&mu_);
    collectors_.push_back(std::move(f));
  }
  std::vector<prometheus::MetricFamily> Collect() const override {
    std::vector<std::function<std::vector<prometheus::MetricFamily>()>> copy;
    {
      absl::MutexLock lock(&mu_);
      copy = collectors_;
    }
    std::vector<prometheus::MetricFamily> out;
    for (const auto& f : copy) {
      for (auto& fam : f()) out.push_back(std::move(fam));
    }
    return out;
  }

 private:
  mutable absl::Mutex mu_;
  std::vector<std::function<std::vector<prometheus::MetricFamily>()>> collectors_
      ABSL_GUARDED_BY(mu_);
};

}  // namespace

std::string_view MethodName(Method m) {
  switch (m) {
    case Method::kSign:
      return "Sign";
    case Method::kSignStream:
      return "SignStream";
    case Method::kVerify:
      return "Verify";
    case Method::kListProfiles:
    case Method::kCount_:
      break;
  }
  return "ListProfiles";
}

// AuditFamilies reads the audit stream's state (daemon/log.h) at scrape time, with the build info.
static std::vector<prometheus::MetricFamily> AuditFamilies() {
  prometheus::MetricFamily failures{"shaken_audit_write_failures_total",
                                    "Audit records that could not be written whole",
                                    prometheus::MetricType::Counter,
                                    {}};
  prometheus::ClientMetric f;
  f.counter.value = static_cast<double>(AuditWriteFailures());
  failures.metric.push_back(f);
  prometheus::MetricFamily available{"shaken_audit_available",
                                     "1 while audit records can be written, 0 after a failed write",
                                     prometheus::MetricType::Gauge,
                                     {}};
  prometheus::ClientMetric a;
  a.gauge.value = AuditAvailable() ? 1 : 0;
  available.metric.push_back(a);
  prometheus::MetricFamily build{"shaken_build_info",
                                 "Always 1; the version label is shakend's release",
                                 prometheus::MetricType::Gauge,
                                 {}};
  prometheus::ClientMetric b;
  b.label.push_back({"version", SHAKEN_VERSION});
  b.gauge.value = 1;
  build.metric.push_back(b);
  return {failures, available, build};
}

Metrics::Metrics(const std::vector<std::string>& profiles)
    : registry_(std::make_shared<prometheus::Registry>()),
      live_(std::make_shared<LiveCollectable>()) {
  auto& rpcs = prometheus::BuildCounter()
                   .Name("shaken_rpc_requests_total")
                   .Help("RPCs handled, by method and gRPC status code")
                   .Register(*registry_);
  auto& rpc_latency = prometheus::BuildHistogram()
                          .Name("shaken_rpc_duration_seconds")
                          .Help("RPC handling time, by method")
                          .Register(*registry_);
  for (size_t m = 0; m < static_cast<size_t>(Method::kCount_); ++m) {
    std::string method(MethodName(static_cast<Method>(m)));
    for (int c = 0; c < kCodes; ++c) {
      rpcs_[m][c] = &rpcs.Add({{"method", method}, {"code", kCodeNames[c]}});
    }
    rpc_latency_[m] = &rpc_latency.Add({{"method", method}}, LatencyBuckets());
  }
  sign_family_ = &prometheus::BuildHistogram()
                      .Name("shaken_sign_duration_seconds")
                      .Help("Time spent signing a digest with the profile's key (token or file)")
                      .Register(*registry_);
  queue_wait_family_ = &prometheus::BuildHistogram()
                            .Name("shaken_sign_queue_wait_seconds")
                            .Help("Time a signature waited for one of the profile's token session "
                                  "workers")
                            .Register(*registry_);
  for (const auto& p : profiles) ProfileSeries(p);
  auto& verdicts = prometheus::BuildCounter()
                       .Name("shaken_verify_verdicts_total")
                       .Help("Verification verdicts (one per Identity header), by reason")
                       .Register(*registry_);
  for (size_t r = 0; r < verdicts_.size(); ++r) {
    verdicts_[r] =
        &verdicts.Add({{"reason", std::string(stir::ReasonName(static_cast<stir::Reason>(r)))}});
  }
  auto& fetch = prometheus::BuildHistogram()
                    .Name("shaken_x5u_fetch_duration_seconds")
                    .Help("x5u fetches by outcome (ok or error; the reasons are in the verdicts)")
                    .Register(*registry_);
  fetch_ok_ = &fetch.Add({{"result", "ok"}}, LatencyBuckets());
  fetch_error_ = &fetch.Add({{"result", "error"}}, LatencyBuckets());
  auto& sip = prometheus::BuildCounter()
                  .Name("shaken_sip_requests_total")
                  .Help("SIP requests answered by the redirect server, by role and final status "
                        "code")
                  .Register(*registry_);
  auto& sip_latency = prometheus::BuildHistogram()
                          .Name("shaken_sip_duration_seconds")
                          .Help("SIP redirect server: request received to final answer, by role")
                          .Register(*registry_);
  static const char* const kSipRoleNames[] = {"sign", "verify", "options", "other"};
  for (size_t r = 0; r < kSipRoles; ++r) {
    for (size_t c = 0; c <= std::size(kSipCodes); ++c) {
      sip_[r][c] = &sip.Add({{"role", kSipRoleNames[r]},
                             {"code", c < std::size(kSipCodes) ? std::to_string(kSipCodes[c])
                                                               : std::string("other")}});
    }
    sip_latency_[r] = &sip_latency.Add({{"role", kSipRoleNames[r]}}, LatencyBuckets());
  }
  AddCollector(AuditFamilies);
}

void Metrics::RecordSip(SipRequestRole role, int code, absl::Duration latency) {
  const size_t r = static_cast<size_t>(role);
  if (r >= kSipRoles) return;
  size_t c = 0;
  while (c < std::size(kSipCodes) && kSipCodes[c] != code) ++c;
  sip_[r][c]->Increment();
  sip_latency_[r]->Observe(absl::ToDoubleSeconds(latency));
}

void Metrics::RecordFetch(bool ok, absl::Duration latency) {
  (ok ? fetch_ok_ : fetch_error_)->Observe(absl::ToDoubleSeconds(latency));
}

void Metrics::RecordRpc(Method method, grpc::StatusCode code, absl::Duration latency) {
  int c = static_cast<int>(code);
  if (c < 0 || c >= kCodes) c = static_cast<int>(grpc::StatusCode::UNKNOWN);
  size_t m = static_cast<size_t>(method);
  rpcs_[m][c]->Increment();
  rpc_latency_[m]->Observe(absl::ToDoubleSeconds(latency));
}

size_t Metrics::ProfileSeries(const std::string& profile) {
  absl::MutexLock lock(&profiles_mu_);
  if (auto it = profile_series_.find(profile); it != profile_series_.end()) return it->second;
  const size_t n = profile_series_.size();
  if (n == kMaxProfileSeries) return kMaxProfileSeries;  // recorded nowhere
  sign_latency_[n] = &sign_family_->Add({{"profile", profile}}, LatencyBuckets());
  queue_wait_[n] = &queue_wait_family_->Add({{"profile", profile}}, LatencyBuckets());
  profile_series_[profile] = n;
  return n;
}

void Metrics::RecordSign(size_t profile_index, absl::Duration latency) {
  if (profile_index < kMaxProfileSeries && sign_latency_[profile_index] != nullptr) {
    sign_latency_[profile_index]->Observe(absl::ToDoubleSeconds(latency));
  }
}

void Metrics::RecordQueueWait(size_t profile_index, absl::Duration waited) {
  if (profile_index < kMaxProfileSeries && queue_wait_[profile_index] != nullptr) {
    queue_wait_[profile_index]->Observe(absl::ToDoubleSeconds(waited));
  }
}

void Metrics::RecordVerdict(stir::Reason reason) {
  size_t r = static_cast<size_t>(reason);
  if (r < verdicts_.size()) verdicts_[r]->Increment();
}

void Metrics::AddCollector(std::function<std::vector<prometheus::MetricFamily>()> collect) {
  static_cast<LiveCollectable*>(live_.get())->Add(std::move(collect));
}

std::vector<std::shared_ptr<prometheus::Collectable>> Metrics::collectables() const {
  return {registry_, live_};
}

prometheus::MetricFamily GaugeFamily(std::string name, std::string help) {
  prometheus::MetricFamily f;
  f.name = std::move(name);
  f.help = std::move(help);
  f.type = prometheus::MetricType::Gauge;
  return f;
}

prometheus::MetricFamily CounterFamily(std::string name, std::string help) {
  prometheus::MetricFamily f = GaugeFamily(std::move(name), std::move(help));
  f.type = prometheus::MetricType::Counter;
  return f;
}

void AddSample(prometheus::MetricFamily* family, double value,
               std::vector<prometheus::ClientMetric::Label> labels) {
  prometheus::ClientMetric m;
  m.label = std::move(labels);
  if (family->type == prometheus::MetricType::Counter) {
    m.counter.value = value;
  } else {
    m.gauge.value = value;
  }
  family->metric.push_back(std::move(m));
}

}  // namespace shaken::daemon
