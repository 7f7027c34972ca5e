#include "daemon/metrics.h"

#include <prometheus/family.h>

#include <cstdio>
#include <cstdlib>

#include "absl/status/status.h"
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

using enum MetricType;
constexpr MetricSpec kMetrics[] = {
    // The request path (Metrics).
    {"shaken_rpc_requests_total", kCounter, "method,code",
     "RPCs handled, by method and gRPC status code"},
    {"shaken_rpc_duration_seconds", kHistogram, "method", "RPC handling time, by method"},
    {"shaken_sign_duration_seconds", kHistogram, "profile",
     "Time spent signing a digest with the profile's key (token or file)"},
    {"shaken_sign_queue_wait_seconds", kHistogram, "profile",
     "Time a signature waited for one of the profile's token session workers"},
    {"shaken_verify_verdicts_total", kCounter, "reason",
     "Verification verdicts (one per Identity header), by reason"},
    {"shaken_x5u_fetch_duration_seconds", kHistogram, "result",
     "x5u fetches by outcome (ok or error; the reasons are in the verdicts)"},
    {"shaken_rest_requests_total", kCounter, "endpoint,status",
     "REST (ATIS-1000082) requests answered, by endpoint (signing, verification, other) and HTTP "
     "status (200, 400, ..., 503, or other)"},
    {"shaken_rest_duration_seconds", kHistogram, "endpoint",
     "REST request handling time, headers in to answer, by endpoint"},
    // The SIP redirect server (listen.sip, daemon/sip/): role sign | verify | options | other;
    // code: a final status code of kSipCodes, else "other".
    {"shaken_sip_requests_total", kCounter, "role,code",
     "SIP requests answered by the redirect server, by role and final status code"},
    {"shaken_sip_duration_seconds", kHistogram, "role",
     "SIP redirect server: request received to final answer, by role"},
    {"shaken_sip_transactions", kGauge, "",
     "SIP server transactions the redirect server holds (answered ones until Timer I)"},
    // Token pools and signing queues, per profile (collector in daemon/server.cc).
    {"shaken_hsm_sessions", kGauge, "profile,state", "Token sessions of a profile's pool"},
    {"shaken_hsm_health", kGauge, "profile", "0 serving, 1 degraded, 2 down"},
    {"shaken_hsm_signatures_total", kCounter, "profile", "Signatures made by the token"},
    {"shaken_hsm_sign_failures_total", kCounter, "profile", "Token signatures that failed"},
    {"shaken_hsm_sessions_opened_total", kCounter, "profile", "Sessions opened"},
    {"shaken_hsm_sessions_dropped_total", kCounter, "profile",
     "Sessions dropped after a fault (reconnects)"},
    {"shaken_hsm_open_failures_total", kCounter, "profile", "Failed session opens"},
    {"shaken_hsm_waits_total", kCounter, "profile",
     "Signatures that found every session busy and waited"},
    {"shaken_hsm_signatures_in_flight", kGauge, "profile", "Signatures the token is making now"},
    {"shaken_sign_queue_depth", kGauge, "profile", "Signatures waiting for a token session worker"},
    {"shaken_sign_queue_limit", kGauge, "profile", "The signing queue's bound"},
    {"shaken_sign_queue_rejected_total", kCounter, "profile",
     "Signatures refused at once: queue full or no start in time"},
    {"shaken_sign_queue_expired_total", kCounter, "profile",
     "Signatures whose deadline or max_wait passed in the queue"},
    {"shaken_certificate_not_after_seconds", kGauge, "profile",
     "notAfter of the profile certificate, Unix seconds"},
    // Verification and x5u (collector in daemon/server.cc).
    {"shaken_verify_in_flight", kGauge, "", "Verify calls in progress"},
    {"shaken_x5u_fetches_in_flight", kGauge, "", "x5u transfers running"},
    {"shaken_x5u_fetches_waiting", kGauge, "", "x5u fetches waiting for a slot"},
    {"shaken_x5u_fetch_limit_waits_total", kCounter, "limit",
     "x5u fetches that waited for a slot, by limit"},
    {"shaken_x5u_fetches_shed_total", kCounter, "",
     "x5u fetches not attempted: no slot before the deadline, or queue full"},
    {"shaken_x5u_cache_hits_total", kCounter, "", "Certificate lookups answered from the cache"},
    {"shaken_x5u_cache_misses_total", kCounter, "", "Certificate lookups that needed a fetch"},
    {"shaken_x5u_cache_negative_hits_total", kCounter, "",
     "Certificate lookups answered from a remembered failure"},
    {"shaken_x5u_fetches_total", kCounter, "", "x5u fetches started"},
    {"shaken_x5u_fetch_errors_total", kCounter, "", "x5u fetches that failed"},
    {"shaken_x5u_validation_failures_total", kCounter, "",
     "Fetched chains that failed validation"},
    {"shaken_x5u_cache_entries", kGauge, "", "Certificates cached"},
    {"shaken_x5u_cache_bytes", kGauge, "", "Approximate bytes cached"},
    {"shaken_crl_fetches_total", kCounter, "result",
     "CRL distribution point fetches: ok, failed (policy, network, HTTP), invalid (not a CRL)"},
    {"shaken_crl_unusable_checks_total", kCounter, "mode",
     "Revocation checks without a usable CRL: soft_fail (call went on), hard_fail (refused)"},
    {"shaken_crl_revoked_total", kCounter, "", "Signing certificates found revoked by their CRL"},
    {"shaken_crl_refreshes_total", kCounter, "",
     "CRLs in use fetched again in the background before their nextUpdate"},
    {"shaken_x5u_revocation_rechecks_total", kCounter, "",
     "Cached chains checked against their CRL again once its verdict ran out (no refetch)"},
    {"shaken_crl_cache_entries", kGauge, "", "CRLs cached"},
    {"shaken_ca_list_fetches_total", kCounter, "result",
     "STI-PA CA list fetches (verifier.ca_list_url): updated, unchanged, fetch_failed, refused"},
    {"shaken_ca_list_anchors", kGauge, "", "Trust anchors of the CA list in force"},
    {"shaken_ca_list_last_success_seconds", kGauge, "",
     "When the CA list was last fetched and accepted, Unix seconds (0: never)"},
    // The process.
    {"shaken_draining", kGauge, "", "1 while the server is shutting down"},
    {"shaken_audit_write_failures_total", kCounter, "",
     "Audit records that could not be written whole"},
    {"shaken_audit_available", kGauge, "",
     "1 while audit records can be written, 0 after a failed write"},
    {"shaken_build_info", kGauge, "version", "Always 1; the version label is shakend's release"},
};

// Declared returns the declaration of `name`; an undeclared name is a programming error.
const MetricSpec& Declared(std::string_view name) {
  const MetricSpec* spec = FindMetric(name);
  if (spec == nullptr) {
    std::fprintf(stderr, "shakend: metric %.*s is not declared in daemon/metrics.cc\n",
                 static_cast<int>(name.size()), name.data());
    std::abort();
  }
  return *spec;
}

// Counters, Gauges and Histograms register the declared metric `name` in `registry`, through
// the builder of its type.
template <typename Builder>
auto& Registered(Builder builder, std::string_view name, prometheus::Registry& registry) {
  const MetricSpec& spec = Declared(name);
  return builder.Name(std::string(spec.name)).Help(std::string(spec.help)).Register(registry);
}
prometheus::Family<prometheus::Counter>& Counters(std::string_view name,
                                                 prometheus::Registry& registry) {
  return Registered(prometheus::BuildCounter(), name, registry);
}
prometheus::Family<prometheus::Gauge>& Gauges(std::string_view name,
                                             prometheus::Registry& registry) {
  return Registered(prometheus::BuildGauge(), name, registry);
}
prometheus::Family<prometheus::Histogram>& Histograms(std::string_view name,
                                                     prometheus::Registry& registry) {
  return Registered(prometheus::BuildHistogram(), name, registry);
}

}  // namespace

std::string_view GrpcCodeName(int code) {
  static const auto* const names = [] {
    auto* out = new std::array<std::string, kGrpcCodes>();
    for (int c = 0; c < kGrpcCodes; ++c) {
      (*out)[c] = absl::StatusCodeToString(static_cast<absl::StatusCode>(c));
    }
    return out;
  }();
  if (code < 0 || code >= kGrpcCodes) return "UNKNOWN";
  return (*names)[code];
}

std::string_view MetricTypeName(MetricType type) {
  switch (type) {
    case MetricType::kCounter:
      return "counter";
    case MetricType::kGauge:
      return "gauge";
    case MetricType::kHistogram:
      return "histogram";
  }
  return "untyped";
}

std::span<const MetricSpec> MetricTable() { return kMetrics; }

const MetricSpec* FindMetric(std::string_view name) {
  for (const MetricSpec& m : kMetrics) {
    if (m.name == name) return &m;
  }
  return nullptr;
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
  prometheus::MetricFamily failures = Family("shaken_audit_write_failures_total");
  AddSample(&failures, static_cast<double>(AuditWriteFailures()));
  prometheus::MetricFamily available = Family("shaken_audit_available");
  AddSample(&available, AuditAvailable() ? 1 : 0);
  prometheus::MetricFamily build = Family("shaken_build_info");
  AddSample(&build, 1, {{"version", SHAKEN_VERSION}});
  return {failures, available, build};
}

Metrics::Metrics(const std::vector<std::string>& profiles)
    : registry_(std::make_shared<prometheus::Registry>()),
      live_(std::make_shared<LiveCollectable>()) {
  auto& rpcs = Counters("shaken_rpc_requests_total", *registry_);
  auto& rpc_latency = Histograms("shaken_rpc_duration_seconds", *registry_);
  for (size_t m = 0; m < static_cast<size_t>(Method::kCount_); ++m) {
    std::string method(MethodName(static_cast<Method>(m)));
    for (int c = 0; c < kGrpcCodes; ++c) {
      rpcs_[m][c] = &rpcs.Add({{"method", method}, {"code", std::string(GrpcCodeName(c))}});
    }
    rpc_latency_[m] = &rpc_latency.Add({{"method", method}}, LatencyBuckets());
  }
  sign_family_ = &Histograms("shaken_sign_duration_seconds", *registry_);
  queue_wait_family_ = &Histograms("shaken_sign_queue_wait_seconds", *registry_);
  for (const auto& p : profiles) ProfileSeries(p);
  auto& verdicts = Counters("shaken_verify_verdicts_total", *registry_);
  for (size_t r = 0; r < verdicts_.size(); ++r) {
    verdicts_[r] =
        &verdicts.Add({{"reason", std::string(stir::ReasonName(static_cast<stir::Reason>(r)))}});
  }
  auto& fetch = Histograms("shaken_x5u_fetch_duration_seconds", *registry_);
  auto& rest = Counters("shaken_rest_requests_total", *registry_);
  auto& rest_latency = Histograms("shaken_rest_duration_seconds", *registry_);
  static constexpr const char* kRestEndpoints[] = {"signing", "verification", "other"};
  for (size_t e = 0; e < rest_.size(); ++e) {
    for (size_t k = 0; k < kRestStatusSlots; ++k) {
      const std::string status =
          k < std::size(kRestStatuses) ? std::to_string(kRestStatuses[k]) : "other";
      rest_[e][k] = &rest.Add({{"endpoint", kRestEndpoints[e]}, {"status", status}});
    }
    rest_latency_[e] = &rest_latency.Add({{"endpoint", kRestEndpoints[e]}}, LatencyBuckets());
  }
  fetch_ok_ = &fetch.Add({{"result", "ok"}}, LatencyBuckets());
  fetch_error_ = &fetch.Add({{"result", "error"}}, LatencyBuckets());
  auto& sip = Counters("shaken_sip_requests_total", *registry_);
  auto& sip_latency = Histograms("shaken_sip_duration_seconds", *registry_);
  static const char* const kSipRoleNames[] = {"sign", "verify", "options", "other"};
  for (size_t r = 0; r < kSipRoles; ++r) {
    for (size_t c = 0; c <= std::size(kSipCodes); ++c) {
      sip_[r][c] = &sip.Add({{"role", kSipRoleNames[r]},
                             {"code", c < std::size(kSipCodes) ? std::to_string(kSipCodes[c])
                                                               : std::string("other")}});
    }
    sip_latency_[r] = &sip_latency.Add({{"role", kSipRoleNames[r]}}, LatencyBuckets());
  }
  sip_transactions_ = &Gauges("shaken_sip_transactions", *registry_).Add({});
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

void Metrics::SetSipTransactions(size_t n) { sip_transactions_->Set(static_cast<double>(n)); }

void Metrics::RecordFetch(bool ok, absl::Duration latency) {
  (ok ? fetch_ok_ : fetch_error_)->Observe(absl::ToDoubleSeconds(latency));
}

void Metrics::RecordRpc(Method method, grpc::StatusCode code, absl::Duration latency) {
  int c = static_cast<int>(code);
  if (c < 0 || c >= kGrpcCodes) c = static_cast<int>(grpc::StatusCode::UNKNOWN);
  size_t m = static_cast<size_t>(method);
  rpcs_[m][c]->Increment();
  rpc_latency_[m]->Observe(absl::ToDoubleSeconds(latency));
}

void Metrics::RecordRest(RestEndpoint endpoint, int http_status, absl::Duration latency) {
  const size_t e = static_cast<size_t>(endpoint);
  if (e >= rest_.size()) return;
  size_t k = 0;
  while (k < std::size(kRestStatuses) && kRestStatuses[k] != http_status) ++k;
  rest_[e][k]->Increment();
  rest_latency_[e]->Observe(absl::ToDoubleSeconds(latency));
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

prometheus::MetricFamily Family(std::string_view name) {
  const MetricSpec& spec = Declared(name);
  prometheus::MetricFamily f;
  f.name = std::string(spec.name);
  f.help = std::string(spec.help);
  f.type = spec.type == MetricType::kCounter ? prometheus::MetricType::Counter
                                             : prometheus::MetricType::Gauge;
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
