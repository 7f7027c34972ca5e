#include "daemon/server.h"

#include <grpcpp/ext/proto_server_reflection_plugin.h>
#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/health_check_service_interface.h>
#include <grpcpp/impl/server_builder_option.h>
#include <grpcpp/impl/server_builder_plugin.h>
#include <grpcpp/security/server_credentials.h>
#include <prometheus/exposer.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "daemon/authz.h"
#include "daemon/health.h"
#include "daemon/log.h"
#include "daemon/metrics.h"
#include "daemon/profiles.h"
#include "daemon/service.h"
#include "daemon/sip/redirect_server.h"
#include "stir/openssl_util.h"
#include "stir/status_macros.h"
#include "stir/verification_stack.h"

namespace shaken::daemon {

constexpr char kServiceName[] = "shaken.v1.Shaken";

struct Daemon::State {
  Config config;
  const stir::Clock* clock = nullptr;
  std::vector<std::unique_ptr<SigningProfile>> profiles;
  std::unique_ptr<stir::VerificationStack> verification;  // null: verifier.enabled is false
  std::unique_ptr<Authorizer> authorizer;
  std::unique_ptr<Metrics> metrics;
  std::unique_ptr<ServiceCore> core;        // shared by every front end
  std::unique_ptr<ShakenService> service;  // the gRPC front end
  std::unique_ptr<grpc::Server> api;
  grpc::CallbackGenericService health_unknown_methods;  // outlives the server that uses it
  std::unique_ptr<grpc::Server> health;
  std::unique_ptr<prometheus::Exposer> exposer;
  std::unique_ptr<sip::RedirectServer> sip;  // listen.sip
  absl::Mutex shutdown_mu;
  bool shut_down ABSL_GUARDED_BY(shutdown_mu) = false;
  HealthPublisher health_publisher;
};

namespace {

// MeteredFetcher times every x5u fetch into shaken_x5u_fetch_duration_seconds.
class MeteredFetcher final : public stir::CertificateFetcher {
 public:
  MeteredFetcher(std::shared_ptr<const stir::CertificateFetcher> inner, Metrics* metrics)
      : inner_(std::move(inner)), metrics_(metrics) {}
  stir::FetchResult Fetch(std::string_view url) const override {
    const absl::Time start = absl::Now();
    stir::FetchResult r = inner_->Fetch(url);
    metrics_->RecordFetch(r.ok(), absl::Now() - start);
    return r;
  }
  void FetchAsync(std::string_view url, absl::Time deadline, FetchDone done) const override {
    inner_->FetchAsync(url, deadline,
                       [this, start = absl::Now(), done = std::move(done)](
                           stir::FetchResult r) mutable {
                         if (!r.shed) metrics_->RecordFetch(r.ok(), absl::Now() - start);
                         std::move(done)(std::move(r));
                       });
  }

 private:
  std::shared_ptr<const stir::CertificateFetcher> inner_;
  Metrics* metrics_;
};

absl::StatusOr<std::shared_ptr<grpc::ServerCredentials>> ApiCredentials(const Config& c) {
  if (!c.tls.has_value()) return grpc::InsecureServerCredentials();
  grpc::SslServerCredentialsOptions opts;
  ASSIGN_OR_RETURN(std::string cert, stir::ReadFile(c.tls->cert_file));
  ASSIGN_OR_RETURN(std::string key, stir::ReadFile(c.tls->key_file));
  opts.pem_key_cert_pairs.push_back({key, cert});
  OPENSSL_cleanse(key.data(), key.size());
  if (!c.tls->client_ca_file.empty()) {
    ASSIGN_OR_RETURN(opts.pem_root_certs, stir::ReadFile(c.tls->client_ca_file));
    opts.client_certificate_request = GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY;
  } else {
    opts.client_certificate_request = GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE;
  }
  return grpc::SslServerCredentials(opts);
}

// ReflectionOption decides whether one server serves reflection. Linking gRPC's reflection
// library registers its plugin for every ServerBuilder in the process (a static initializer calls
// InitProtoReflectionServerBuilderPlugin()), the plaintext health listener's included: this
// option drops that plugin and, when `enabled`, adds one of its own.
class ReflectionOption final : public grpc::ServerBuilderOption {
 public:
  explicit ReflectionOption(bool enabled) : enabled_(enabled) {}
  void UpdateArguments(grpc::ChannelArguments* /*args*/) override {}
  void UpdatePlugins(std::vector<std::unique_ptr<grpc::ServerBuilderPlugin>>* plugins) override {
    auto reflection = std::make_unique<grpc::reflection::ProtoServerReflectionPlugin>();
    const std::string name = reflection->name();
    std::erase_if(*plugins, [&name](const auto& p) { return p->name() == name; });
    if (enabled_) plugins->push_back(std::move(reflection));
  }

 private:
  const bool enabled_;
};

absl::StatusOr<std::unique_ptr<stir::VerificationStack>> BuildVerifier(const Config& c,
                                                                       Daemon::State* state) {
  stir::VerificationStackParts parts;
  parts.wrap_fetcher = [metrics = state->metrics.get()](
                           std::shared_ptr<const stir::CertificateFetcher> fetcher) {
    return std::make_shared<MeteredFetcher>(std::move(fetcher), metrics);
  };
  return stir::VerificationStack::New(VerifierSettingsFrom(c.verifier), state->clock,
                                      std::move(parts));
}

void RegisterCollectors(Daemon::State* s, const std::atomic<bool>* draining) {
  s->metrics->AddCollector([s, draining]() {
    std::vector<prometheus::MetricFamily> out;
    auto sessions = GaugeFamily("shaken_hsm_sessions", "Token sessions of a profile's pool");
    auto health = GaugeFamily("shaken_hsm_health", "0 serving, 1 degraded, 2 down");
    auto sigs = CounterFamily("shaken_hsm_signatures_total", "Signatures made by the token");
    auto fails = CounterFamily("shaken_hsm_sign_failures_total", "Token signatures that failed");
    auto opened = CounterFamily("shaken_hsm_sessions_opened_total", "Sessions opened");
    auto dropped = CounterFamily("shaken_hsm_sessions_dropped_total",
                                 "Sessions dropped after a fault (reconnects)");
    auto open_fail = CounterFamily("shaken_hsm_open_failures_total", "Failed session opens");
    auto waits = CounterFamily("shaken_hsm_waits_total",
                               "Signatures that found every session busy and waited");
    auto not_after = GaugeFamily("shaken_certificate_not_after_seconds",
                                 "notAfter of the profile certificate, Unix seconds");
    auto queued = GaugeFamily("shaken_sign_queue_depth",
                              "Signatures waiting for a token session worker");
    auto queue_limit = GaugeFamily("shaken_sign_queue_limit", "The signing queue's bound");
    auto in_flight = GaugeFamily("shaken_hsm_signatures_in_flight",
                                 "Signatures the token is making now");
    auto rejected = CounterFamily("shaken_sign_queue_rejected_total",
                                  "Signatures refused at once: queue full or no start in time");
    auto expired = CounterFamily("shaken_sign_queue_expired_total",
                                 "Signatures whose deadline or max_wait passed in the queue");
    for (const auto& p : s->profiles) {
      const std::string& name = p->name();
      AddSample(&not_after, static_cast<double>(absl::ToUnixSeconds(p->certificate()->not_after)),
                {{"profile", name}});
      if (p->pool() == nullptr) continue;
      hsm::KeyPoolStats st = p->pool()->stats();
      AddSample(&sessions, st.size, {{"profile", name}, {"state", "size"}});
      AddSample(&sessions, st.live, {{"profile", name}, {"state", "live"}});
      AddSample(&sessions, st.idle, {{"profile", name}, {"state", "idle"}});
      AddSample(&health, static_cast<double>(st.health), {{"profile", name}});
      AddSample(&sigs, static_cast<double>(st.signatures), {{"profile", name}});
      AddSample(&fails, static_cast<double>(st.sign_failures), {{"profile", name}});
      AddSample(&opened, static_cast<double>(st.sessions_opened), {{"profile", name}});
      AddSample(&dropped, static_cast<double>(st.sessions_dropped), {{"profile", name}});
      AddSample(&open_fail, static_cast<double>(st.open_failures), {{"profile", name}});
      AddSample(&waits, static_cast<double>(st.waits), {{"profile", name}});
      AddSample(&queued, st.queued, {{"profile", name}});
      AddSample(&queue_limit, st.queue_limit, {{"profile", name}});
      AddSample(&in_flight, st.in_flight, {{"profile", name}});
      AddSample(&rejected, static_cast<double>(st.queue_rejected), {{"profile", name}});
      AddSample(&expired, static_cast<double>(st.queue_expired), {{"profile", name}});
    }
    for (auto* f : {&sessions, &health, &sigs, &fails, &opened, &dropped, &open_fail, &waits,
                    &not_after, &queued, &queue_limit, &in_flight, &rejected, &expired}) {
      if (!f->metric.empty()) out.push_back(std::move(*f));
    }
    auto verifying = GaugeFamily("shaken_verify_in_flight", "Verify calls in progress");
    AddSample(&verifying, s->core != nullptr ? s->core->verify_in_flight() : 0);
    out.push_back(std::move(verifying));
    const stir::X5uFetcher* fetcher =
        s->verification != nullptr ? s->verification->x5u_fetcher() : nullptr;
    if (fetcher != nullptr) {
      const stir::FetchLoopStats fs = fetcher->LoopStats();
      auto fetching = GaugeFamily("shaken_x5u_fetches_in_flight", "x5u transfers running");
      AddSample(&fetching, fs.in_flight);
      out.push_back(std::move(fetching));
      auto waiting = GaugeFamily("shaken_x5u_fetches_waiting", "x5u fetches waiting for a slot");
      AddSample(&waiting, fs.waiting);
      out.push_back(std::move(waiting));
      auto limited = CounterFamily("shaken_x5u_fetch_limit_waits_total",
                                   "x5u fetches that waited for a slot, by limit");
      AddSample(&limited, static_cast<double>(fs.host_limit_waits), {{"limit", "per_host"}});
      AddSample(&limited, static_cast<double>(fs.global_limit_waits), {{"limit", "total"}});
      out.push_back(std::move(limited));
      auto shed = CounterFamily("shaken_x5u_fetches_shed_total",
                                "x5u fetches not attempted: no slot before the deadline, or "
                                "queue full");
      AddSample(&shed, static_cast<double>(fs.shed));
      out.push_back(std::move(shed));
    }
    auto drain = GaugeFamily("shaken_draining", "1 while the server is shutting down");
    AddSample(&drain, draining->load() ? 1 : 0);
    out.push_back(std::move(drain));
    const stir::X5uCertificateSource* certs =
        s->verification != nullptr ? s->verification->certificate_cache() : nullptr;
    if (certs != nullptr) {
      stir::CertCacheStats cs = certs->Stats();
      auto counter = [&](const char* name, const char* help, uint64_t v) {
        auto f = CounterFamily(name, help);
        AddSample(&f, static_cast<double>(v));
        out.push_back(std::move(f));
      };
      counter("shaken_x5u_cache_hits_total", "Certificate lookups answered from the cache",
              cs.hits);
      counter("shaken_x5u_cache_misses_total", "Certificate lookups that needed a fetch",
              cs.misses);
      counter("shaken_x5u_cache_negative_hits_total",
              "Certificate lookups answered from a remembered failure", cs.negative_hits);
      counter("shaken_x5u_fetches_total", "x5u fetches started", cs.fetches);
      counter("shaken_x5u_fetch_errors_total", "x5u fetches that failed", cs.fetch_errors);
      counter("shaken_x5u_validation_failures_total", "Fetched chains that failed validation",
              cs.validation_failures);
      auto entries = GaugeFamily("shaken_x5u_cache_entries", "Certificates cached");
      AddSample(&entries, static_cast<double>(cs.entries));
      out.push_back(std::move(entries));
      auto bytes = GaugeFamily("shaken_x5u_cache_bytes", "Approximate bytes cached");
      AddSample(&bytes, static_cast<double>(cs.bytes));
      out.push_back(std::move(bytes));
    }
    return out;
  });
}

}  // namespace

absl::StatusOr<std::unique_ptr<Daemon>> Daemon::Start(const Config& config,
                                                      const stir::Clock* clock) {
  std::unique_ptr<Daemon> d(new Daemon());
  d->state_ = std::make_unique<State>();
  State& s = *d->state_;
  s.config = config;
  s.clock = clock != nullptr ? clock : &stir::SystemClock::Shared();

  std::vector<std::string> names;
  for (const ProfileConfig& p : config.profiles) names.push_back(p.name);
  s.metrics = std::make_unique<Metrics>(names);
  for (size_t i = 0; i < config.profiles.size(); ++i) {
    const ProfileConfig& p = config.profiles[i];
    ASSIGN_OR_RETURN(std::unique_ptr<SigningProfile> profile,
                     SigningProfile::Open(p, config, s.clock,
                                          [m = s.metrics.get(), i](absl::Duration waited) {
                                            m->RecordQueueWait(i, waited);
                                          }));
    auto cert = profile->certificate();
    LogInfo("profile_ready", {{"profile", p.name},
                              {"key", profile->key_description()},
                              {"x5u", p.x5u},
                              {"spc", cert->spc},
                              {"not_after", absl::FormatTime(cert->not_after)}});
    s.profiles.push_back(std::move(profile));
  }
  if (config.verifier.enabled) {
    ASSIGN_OR_RETURN(s.verification, BuildVerifier(config, &s));
  }
  s.authorizer = std::make_unique<Authorizer>(config.clients);
  RegisterCollectors(&s, &d->draining_);

  ServiceDeps deps;
  for (auto& p : s.profiles) {
    deps.profiles.push_back(p.get());
    if (p->config().is_default) deps.default_profile = p.get();
  }
  deps.verifier = s.verification != nullptr ? &s.verification->verifier() : nullptr;
  deps.authorizer = s.authorizer.get();
  deps.metrics = s.metrics.get();
  deps.audit_tns = config.audit_tns;
  deps.max_verify_in_flight = config.verifier.max_in_flight;
  s.core = std::make_unique<ServiceCore>(std::move(deps));
  s.service = std::make_unique<ShakenService>(s.core.get());

  grpc::EnableDefaultHealthCheckService(true);
  {
    ASSIGN_OR_RETURN(std::shared_ptr<grpc::ServerCredentials> creds, ApiCredentials(config));
    grpc::ServerBuilder b;
    b.AddListeningPort(config.api_listen, creds, &d->api_port_);
    b.RegisterService(s.service.get());
    b.SetOption(std::make_unique<ReflectionOption>(config.reflection == "api"));
    b.SetMaxReceiveMessageSize(static_cast<int>(config.max_request_bytes));
    // SBC clients keep one long-lived connection and ping it every 30 s even when idle
    // (client/include/shaken/client.h): accept that instead of answering GOAWAY too_many_pings.
    b.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
    b.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 10000);
    if (config.max_connection_age > absl::ZeroDuration()) {
      // gRPC adds ±10 % jitter, so reconnections of clients that connected together spread out.
      b.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_MS,
                           static_cast<int>(absl::ToInt64Milliseconds(config.max_connection_age)));
      b.AddChannelArgument(
          GRPC_ARG_MAX_CONNECTION_AGE_GRACE_MS,
          static_cast<int>(absl::ToInt64Milliseconds(config.max_connection_age_grace)));
    }
    s.api = b.BuildAndStart();
    if (s.api == nullptr || d->api_port_ == 0) {
      return absl::UnavailableError(
          absl::StrCat("cannot listen on listen.api ", config.api_listen,
                       " (address in use, or not an address of this host?)"));
    }
  }
  if (!config.health_listen.empty()) {
    grpc::ServerBuilder b;
    b.AddListeningPort(config.health_listen, grpc::InsecureServerCredentials(), &d->health_port_);
    // grpc.health.v1 only: no reflection (listen.reflection), no API. A callback service here
    // (the UNIMPLEMENTED answer for unknown methods) keeps this server from being a synchronous
    // one whose polling threads would take the API connections' events too and hand them to the
    // callback threads: a thread switch per call.
    b.RegisterCallbackGenericService(&s.health_unknown_methods);
    b.SetOption(std::make_unique<ReflectionOption>(false));
    s.health = b.BuildAndStart();
    if (s.health == nullptr || d->health_port_ == 0) {
      return absl::UnavailableError(
          absl::StrCat("cannot listen on listen.health ", config.health_listen));
    }
  }
  if (!config.metrics_listen.empty()) {
    try {
      s.exposer = std::make_unique<prometheus::Exposer>(config.metrics_listen, 2);
    } catch (const std::exception& e) {
      return absl::UnavailableError(absl::StrCat("cannot listen on listen.metrics ",
                                                 config.metrics_listen, ": ", e.what()));
    }
    for (auto& c : s.metrics->collectables()) s.exposer->RegisterCollectable(c);
    auto ports = s.exposer->GetListeningPorts();
    d->metrics_port_ = ports.empty() ? 0 : ports.front();
  }
  if (config.sip.has_value()) {
    ASSIGN_OR_RETURN(s.sip, sip::RedirectServer::Start(
                                *config.sip, {s.core.get(), [raw = d.get()] { return raw->serving(); },
                                              config.max_iat_skew}));
    d->sip_udp_port_ = s.sip->udp_port();
    d->sip_tcp_port_ = s.sip->tcp_port();
  }
  d->MonitorHealth();  // set the first status before anyone probes
  d->monitor_ = std::thread([raw = d.get()] {
    while (!raw->stop_.WaitForNotificationWithTimeout(absl::Milliseconds(250))) {
      raw->MonitorHealth();
    }
  });
  LogInfo("serving", {{"version", SHAKEN_VERSION},
                      {"api", absl::StrCat(config.api_listen, " (port ", d->api_port_, ")")},
                      {"tls", config.tls.has_value()
                                  ? (config.tls->client_ca_file.empty() ? "tls" : "mtls")
                                  : "insecure"},
                      {"health_port", absl::StrCat(d->health_port_)},
                      {"metrics_port", absl::StrCat(d->metrics_port_)},
                      {"sip", absl::StrCat("udp ", d->sip_udp_port_, ", tcp ", d->sip_tcp_port_)},
                      {"reflection", config.reflection},
                      {"profiles", absl::StrCat(s.profiles.size())},
                      {"verifier", s.verification != nullptr ? "on" : "off"}});
  return d;
}

bool Daemon::serving() const {
  if (draining_.load()) return false;
  for (const auto& p : state_->profiles) {
    if (p->health() == hsm::Health::kDown) return false;
  }
  return true;
}

void Daemon::MonitorHealth() {
  state_->health_publisher.Publish(serving(), {state_->api.get(), state_->health.get()});
}

void Daemon::Shutdown() {
  if (state_ == nullptr || state_->api == nullptr) {
    // Start failed before serving: nothing to drain. Stop the monitor if it runs.
    stop_.Notify();
    if (monitor_.joinable()) monitor_.join();
    if (!stopped_.HasBeenNotified()) stopped_.Notify();
    return;
  }
  {
    absl::MutexLock lock(&state_->shutdown_mu);
    if (state_->shut_down) return;
    state_->shut_down = true;
  }
  draining_.store(true);
  MonitorHealth();
  LogInfo("draining", {{"grace", absl::FormatDuration(state_->config.drain_grace)}});
  const auto deadline = absl::ToChronoTime(absl::Now() + state_->config.drain_grace);
  // The API server stops accepting calls and waits for in-flight ones until the deadline, then
  // cancels the rest. Meanwhile the health listener answers NOT_SERVING, so a load balancer or a
  // Kubernetes readiness probe moves traffic away; it stops last.
  if (state_->sip != nullptr) state_->sip->Shutdown(absl::FromChrono(deadline));
  state_->api->Shutdown(deadline);
  if (state_->health != nullptr) state_->health->Shutdown(absl::ToChronoTime(absl::Now()));
  stop_.Notify();
  if (monitor_.joinable()) monitor_.join();
  state_->exposer.reset();
  LogInfo("stopped");
  FlushLogs();
  stopped_.Notify();
}

void Daemon::Wait() { stopped_.WaitForNotification(); }

std::vector<std::string> Daemon::ApplyConfig(const Config& next) {
  Config& cur = state_->config;
  std::vector<std::string> applied;
  if (next.clients != cur.clients) {
    state_->authorizer->Replace(next.clients);
    cur.clients = next.clients;
    applied.push_back("clients");
  }
  if (next.log_level != cur.log_level) {
    SetLogLevel(next.log_level);
    cur.log_level = next.log_level;
    applied.push_back("logging.level");
  }
  return applied;
}

namespace {

// RestartRequired names the sections of `next` that differ from `cur` and that a running daemon
// does not change (listeners, the token, profiles, the verifier, limits, audit destination).
std::vector<std::string> RestartRequired(const Config& cur, const Config& next) {
  std::vector<std::string> keys;
  auto check = [&](bool changed, const char* key) {
    if (changed) keys.push_back(key);
  };
  check(cur.api_listen != next.api_listen || cur.tls != next.tls ||
            cur.allow_insecure != next.allow_insecure || cur.reflection != next.reflection ||
            cur.max_connection_age != next.max_connection_age ||
            cur.max_connection_age_grace != next.max_connection_age_grace ||
            cur.health_listen != next.health_listen || cur.metrics_listen != next.metrics_listen ||
            cur.sip != next.sip,
        "listen");
  check(cur.pkcs11 != next.pkcs11, "pkcs11");
  check(cur.profiles != next.profiles, "profiles");
  check(cur.verifier != next.verifier, "verifier");
  check(cur.max_iat_skew != next.max_iat_skew, "max_iat_skew");
  check(cur.max_request_bytes != next.max_request_bytes, "max_request_bytes");
  check(cur.drain_grace != next.drain_grace, "drain_grace");
  check(cur.log_format != next.log_format || cur.audit_tns != next.audit_tns ||
            cur.audit_file != next.audit_file || cur.audit_on_failure != next.audit_on_failure,
        "logging (other than level)");
  return keys;
}

}  // namespace

absl::Status Daemon::Reload(const Config& next) {
  const std::vector<std::string> restart = RestartRequired(state_->config, next);
  const std::vector<std::string> applied = ApplyConfig(next);
  absl::Status result = ReloadFiles();
  LogInfo("configuration_reloaded",
          {{"applied", applied.empty() ? "nothing changed" : absl::StrJoin(applied, ", ")},
           {"unchanged_until_restart", restart.empty() ? "none" : absl::StrJoin(restart, ", ")}});
  if (!restart.empty()) {
    LogWarn("restart_required",
            {{"settings", absl::StrJoin(restart, ", ")},
             {"detail", "these settings changed in the file but stay as they were until shakend "
                        "restarts"}});
  }
  return result;
}

absl::Status Daemon::Reload() { return ReloadFiles(); }


absl::Status Daemon::ReloadFiles() {
  absl::Status result = ReopenAuditFile();
  if (!result.ok()) {
    LogError("reload_failed", {{"what", "audit file"}, {"error", std::string(result.message())}});
  }
  if (state_->verification != nullptr) {
    absl::Status s = state_->verification->ReloadTrust();
    if (!s.ok()) {
      LogError("reload_failed", {{"what", "trust anchors"}, {"error", std::string(s.message())}});
      result = s;
    }
  }
  for (auto& p : state_->profiles) {
    absl::Status s = p->ReloadCertificate();
    if (!s.ok()) {
      LogError("reload_failed", {{"what", "certificate"}, {"error", std::string(s.message())}});
      if (result.ok()) result = s;
    }
  }
  if (result.ok()) LogInfo("reloaded");
  return result;
}

Daemon::~Daemon() {
  Shutdown();
  if (state_ == nullptr) return;
  // Servers before the service they call into; profiles (token pools) last.
  state_->sip.reset();
  state_->api.reset();
  state_->health.reset();
  state_->service.reset();
  // The verification stack before the metrics its fetches still in progress record into.
  state_->verification.reset();
}

}  // namespace shaken::daemon
