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
#include "absl/strings/match.h"
#include "absl/strings/str_join.h"
#include "daemon/authz.h"
#include "daemon/health.h"
#include "daemon/log.h"
#include "daemon/metrics.h"
#include "daemon/profiles.h"
#include "daemon/rest/rest_front.h"
#include "daemon/service.h"
#include "hsm/module.h"
#include "stir/absl_compat.h"
#include "stir/openssl_util.h"
#include "stir/status_macros.h"
#include "stir/verification_stack.h"

namespace shaken::daemon {

constexpr char kServiceName[] = "shaken.v1.Shaken";

struct Daemon::State {
  Config config;
  const stir::Clock* clock = nullptr;
  std::unique_ptr<Authorizer> authorizer;
  std::unique_ptr<Metrics> metrics;
  std::unique_ptr<ServiceCore> core;        // shared by every front end
  std::unique_ptr<ShakenService> service;  // the gRPC front end
  std::unique_ptr<rest::RestListener> rest;  // the REST front end (listen.rest), if configured
  std::unique_ptr<grpc::Server> api;
  grpc::CallbackGenericService health_unknown_methods;  // outlives the server that uses it
  std::unique_ptr<grpc::Server> health;
  std::unique_ptr<prometheus::Exposer> exposer;
  absl::Mutex shutdown_mu;
  bool shut_down ABSL_GUARDED_BY(shutdown_mu) = false;
  // The verification stack in force (null: verifier.enabled is false); the core holds its
  // verifier. Replaced by a reload.
  absl::Mutex mu;
  std::shared_ptr<stir::VerificationStack> verification ABSL_GUARDED_BY(mu);
  // Replaced profile sets and stacks, kept until no call uses them (Reap): their last reference
  // must not be dropped on one of their own threads (a pool worker, the fetch loop).
  std::vector<std::shared_ptr<const ProfileSet>> retired_profiles ABSL_GUARDED_BY(mu);
  std::vector<std::shared_ptr<stir::VerificationStack>> retired_verification ABSL_GUARDED_BY(mu);

  std::shared_ptr<stir::VerificationStack> Verification() {
    absl::MutexLock lock(&mu);
    return verification;
  }
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
  // Rich call data content (RFC 9795 icn, jcl) goes through the same fetcher, not timed as x5u.
  stir::FetchResult FetchContent(std::string_view url) const override {
    return inner_->FetchContent(url);
  }
  void FetchContentAsync(std::string_view url, absl::Time deadline,
                         FetchDone done) const override {
    inner_->FetchContentAsync(url, deadline, std::move(done));
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

// InForce is what the core verifies with: the stack's verifier (sharing the stack's lifetime)
// and the verifier section's bound on verifications in progress.
VerifierInForce InForce(const std::shared_ptr<stir::VerificationStack>& stack,
                        const VerifierConfig& v) {
  VerifierInForce out;
  if (stack != nullptr) {
    out.verifier = std::shared_ptr<const stir::Verifier>(stack, &stack->verifier());
    out.fetcher = std::shared_ptr<const stir::CertificateFetcher>(stack, &stack->fetcher());
  }
  out.max_in_flight = v.max_in_flight;
  return out;
}

void RegisterCollectors(Daemon::State* s, const std::atomic<bool>* draining) {
  s->metrics->AddCollector([s, draining]() {
    std::vector<prometheus::MetricFamily> out;
    auto sessions = Family("shaken_hsm_sessions");
    auto health = Family("shaken_hsm_health");
    auto sigs = Family("shaken_hsm_signatures_total");
    auto fails = Family("shaken_hsm_sign_failures_total");
    auto opened = Family("shaken_hsm_sessions_opened_total");
    auto dropped = Family("shaken_hsm_sessions_dropped_total");
    auto open_fail = Family("shaken_hsm_open_failures_total");
    auto waits = Family("shaken_hsm_waits_total");
    auto not_after = Family("shaken_certificate_not_after_seconds");
    auto queued = Family("shaken_sign_queue_depth");
    auto queue_limit = Family("shaken_sign_queue_limit");
    auto in_flight = Family("shaken_hsm_signatures_in_flight");
    auto rejected = Family("shaken_sign_queue_rejected_total");
    auto expired = Family("shaken_sign_queue_expired_total");
    const std::shared_ptr<const ProfileSet> profiles =
        s->core != nullptr ? s->core->profiles() : nullptr;
    for (const auto& p : profiles != nullptr ? profiles->profiles
                                             : std::vector<std::shared_ptr<SigningProfile>>{}) {
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
    auto verifying = Family("shaken_verify_in_flight");
    AddSample(&verifying, s->core != nullptr ? s->core->verify_in_flight() : 0);
    out.push_back(std::move(verifying));
    const std::shared_ptr<stir::VerificationStack> verification = s->Verification();
    const stir::X5uFetcher* fetcher =
        verification != nullptr ? verification->x5u_fetcher() : nullptr;
    if (fetcher != nullptr) {
      const stir::FetchLoopStats fs = fetcher->LoopStats();
      auto fetching = Family("shaken_x5u_fetches_in_flight");
      AddSample(&fetching, fs.in_flight);
      out.push_back(std::move(fetching));
      auto waiting = Family("shaken_x5u_fetches_waiting");
      AddSample(&waiting, fs.waiting);
      out.push_back(std::move(waiting));
      auto limited = Family("shaken_x5u_fetch_limit_waits_total");
      AddSample(&limited, static_cast<double>(fs.host_limit_waits), {{"limit", "per_host"}});
      AddSample(&limited, static_cast<double>(fs.global_limit_waits), {{"limit", "total"}});
      out.push_back(std::move(limited));
      auto shed = Family("shaken_x5u_fetches_shed_total");
      AddSample(&shed, static_cast<double>(fs.shed));
      out.push_back(std::move(shed));
    }
    auto drain = Family("shaken_draining");
    AddSample(&drain, draining->load() ? 1 : 0);
    out.push_back(std::move(drain));
    const stir::X5uCertificateSource* certs =
        verification != nullptr ? verification->certificate_cache() : nullptr;
    if (certs != nullptr) {
      stir::CertCacheStats cs = certs->Stats();
      auto counter = [&](const char* name, uint64_t v) {
        auto f = Family(name);
        AddSample(&f, static_cast<double>(v));
        out.push_back(std::move(f));
      };
      counter("shaken_x5u_cache_hits_total", cs.hits);
      counter("shaken_x5u_cache_misses_total", cs.misses);
      counter("shaken_x5u_cache_negative_hits_total", cs.negative_hits);
      counter("shaken_x5u_fetches_total", cs.fetches);
      counter("shaken_x5u_fetch_errors_total", cs.fetch_errors);
      counter("shaken_x5u_validation_failures_total", cs.validation_failures);
      auto entries = Family("shaken_x5u_cache_entries");
      AddSample(&entries, static_cast<double>(cs.entries));
      out.push_back(std::move(entries));
      auto bytes = Family("shaken_x5u_cache_bytes");
      AddSample(&bytes, static_cast<double>(cs.bytes));
      out.push_back(std::move(bytes));
    }
    return out;
  });
}

}  // namespace

namespace {

// OpenProfile opens profile `p` of `config` for start-up and reloads alike. A token that cannot be
// reached now (an HSM outage) does not stop it: the key is opened in the background and the
// profile is DOWN meanwhile (pkcs11.require_token_at_start: false).
absl::StatusOr<std::shared_ptr<SigningProfile>> OpenProfile(const ProfileConfig& p,
                                                            const Config& config,
                                                            const stir::Clock* clock,
                                                            Metrics* metrics) {
  auto on_queue_wait = [metrics, series = metrics->ProfileSeries(p.name)](absl::Duration waited) {
    metrics->RecordQueueWait(series, waited);
  };
  absl::StatusOr<std::unique_ptr<SigningProfile>> profile =
      SigningProfile::Open(p, config, clock, on_queue_wait);
  const bool pending = !profile.ok() && absl::StartsWith(p.key, "pkcs11:") &&
                       hsm::IsTokenUnreachable(profile.status()) && config.pkcs11.has_value() &&
                       !config.pkcs11->require_token_at_start;
  if (pending) {
    LogWarn("profile_pending", {{"profile", p.name},
                                {"error", ToStd(profile.status().message())},
                                {"detail", "NOT_SERVING until the key is opened in the background "
                                           "(pkcs11.require_token_at_start)"}});
    profile = SigningProfile::OpenInBackground(p, config, clock, on_queue_wait, profile.status());
  }
  if (!profile.ok()) return profile.status();
  if (!pending) {
    auto cert = (*profile)->certificate();
    LogInfo("profile_ready", {{"profile", p.name},
                              {"key", (*profile)->key_description()},
                              {"x5u", p.x5u},
                              {"spc", cert->spc},
                              {"not_after", absl::FormatTime(cert->not_after)}});
  }
  return std::shared_ptr<SigningProfile>(*std::move(profile));
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
  std::vector<std::shared_ptr<SigningProfile>> profiles;
  for (const ProfileConfig& p : config.profiles) {
    ASSIGN_OR_RETURN(std::shared_ptr<SigningProfile> profile,
                     OpenProfile(p, config, s.clock, s.metrics.get()));
    profiles.push_back(std::move(profile));
  }
  if (config.verifier.enabled) {
    ASSIGN_OR_RETURN(std::unique_ptr<stir::VerificationStack> stack, BuildVerifier(config, &s));
    absl::MutexLock lock(&s.mu);
    s.verification = std::move(stack);
  }
  s.authorizer = std::make_unique<Authorizer>(config.clients);
  RegisterCollectors(&s, &d->draining_);

  ServiceDeps deps;
  deps.profiles = ProfileSet::Make(std::move(profiles), s.metrics.get());
  deps.verifier = InForce(s.Verification(), config.verifier);
  deps.authorizer = s.authorizer.get();
  deps.metrics = s.metrics.get();
  deps.audit_tns = config.audit_tns;
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
  if (config.rest.has_value()) {
    ASSIGN_OR_RETURN(s.rest, rest::RestListener::Start(config, s.core.get()));
    d->rest_port_ = s.rest->port();
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
  d->MonitorHealth();  // set the first status before anyone probes
  d->monitor_ = std::thread([raw = d.get(), check = config.certificate_check_interval] {
    absl::Time next_check = absl::Now() + check;
    while (!raw->stop_.WaitForNotificationWithTimeout(absl::Milliseconds(250))) {
      raw->MonitorHealth();
      if (check > absl::ZeroDuration() && absl::Now() >= next_check) {
        raw->CheckCertificateFiles();
        next_check = absl::Now() + check;
      }
    }
  });
  LogInfo("serving", {{"version", SHAKEN_VERSION},
                      {"api", absl::StrCat(config.api_listen, " (port ", d->api_port_, ")")},
                      {"tls", config.tls.has_value()
                                  ? (config.tls->client_ca_file.empty() ? "tls" : "mtls")
                                  : "insecure"},
                      {"health_port", absl::StrCat(d->health_port_)},
                      {"metrics_port", absl::StrCat(d->metrics_port_)},
                      {"rest_port", absl::StrCat(d->rest_port_)},
                      {"reflection", config.reflection},
                      {"profiles", absl::StrCat(config.profiles.size())},
                      {"verifier", config.verifier.enabled ? "on" : "off"}});
  return d;
}

bool Daemon::serving() const {
  if (draining_.load()) return false;
  for (const auto& p : state_->core->profiles()->profiles) {
    if (p->health() == hsm::Health::kDown) return false;
  }
  return true;
}

void Daemon::MonitorHealth() {
  state_->health_publisher.Publish(serving(), {state_->api.get(), state_->health.get()});
  Reap();
}

void Daemon::CheckCertificateFiles() {
  for (const auto& p : state_->core->profiles()->profiles) {
    absl::StatusOr<bool> changed = p->ReloadCertificateIfChanged();
    if (!changed.ok()) {
      LogError("reload_failed", {{"what", "certificate"},
                                 {"error", ToStd(changed.status().message())},
                                 {"detail", "the file changed; the certificate in force stays"}});
    } else if (*changed) {
      auto cert = p->certificate();
      LogInfo("certificate_reloaded", {{"profile", p->name()},
                                       {"serial", cert->serial_hex},
                                       {"not_after", absl::FormatTime(cert->not_after)}});
    }
  }
}

void Daemon::Reap() {
  std::vector<std::shared_ptr<const ProfileSet>> profiles;
  std::vector<std::shared_ptr<stir::VerificationStack>> stacks;
  {
    absl::MutexLock lock(&state_->mu);
    auto unused = [](const auto& p) { return p.use_count() == 1; };
    for (auto& set : state_->retired_profiles) {
      if (unused(set)) profiles.push_back(std::move(set));
    }
    std::erase(state_->retired_profiles, nullptr);
    for (auto& stack : state_->retired_verification) {
      if (unused(stack)) stacks.push_back(std::move(stack));
    }
    std::erase(state_->retired_verification, nullptr);
  }
  // Freed here, outside the lock: a removed profile's key pool joins its workers.
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
  if (state_->rest != nullptr) state_->rest->Drain();  // new REST requests: 503
  state_->api->Shutdown(deadline);
  if (state_->rest != nullptr) state_->rest->Stop(absl::FromChrono(deadline));
  if (state_->health != nullptr) state_->health->Shutdown(absl::ToChronoTime(absl::Now()));
  stop_.Notify();
  if (monitor_.joinable()) monitor_.join();
  state_->exposer.reset();
  LogInfo("stopped");
  FlushLogs();
  stopped_.Notify();
}

void Daemon::Wait() { stopped_.WaitForNotification(); }

namespace {

// RestartRequired names the sections of `next` that differ from `cur` and that a running daemon
// does not change: the listeners, the PKCS#11 module section, limits fixed at start, the log
// format and the audit destination.
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
            cur.rest != next.rest,
        "listen");
  check(cur.pkcs11 != next.pkcs11, "pkcs11");
  check(cur.max_request_bytes != next.max_request_bytes, "max_request_bytes");
  check(cur.drain_grace != next.drain_grace, "drain_grace");
  check(cur.certificate_check_interval != next.certificate_check_interval,
        "certificate_check_interval");
  check(cur.log_format != next.log_format || cur.audit_file != next.audit_file ||
            cur.audit_on_failure != next.audit_on_failure,
        "logging (format, audit_file, audit_on_failure)");
  return keys;
}

}  // namespace

absl::StatusOr<std::vector<std::string>> Daemon::ApplyConfig(const Config& file) {
  State& s = *state_;
  Config& cur = s.config;
  // What needs a restart stays as it is; profiles opened now use the pkcs11 section in force.
  Config next = file;
  next.pkcs11 = cur.pkcs11;

  // First everything that can fail, into new objects; nothing is in force yet.
  const std::shared_ptr<const ProfileSet> old_set = s.core->profiles();
  absl::flat_hash_map<std::string, std::shared_ptr<SigningProfile>> old_by_name;
  for (const auto& p : old_set->profiles) old_by_name[p->name()] = p;
  // A profile is kept (not reopened) when nothing it was opened with changed.
  const bool signing_policy_same = cur.max_iat_skew == next.max_iat_skew &&
                                   cur.verifier.x5u_policy == next.verifier.x5u_policy;
  std::vector<std::shared_ptr<SigningProfile>> profiles;
  std::vector<std::string> added, changed, removed;
  for (const ProfileConfig& p : next.profiles) {
    auto old = old_by_name.find(p.name);
    if (old != old_by_name.end() && old->second->config() == p && signing_policy_same) {
      profiles.push_back(old->second);
      continue;
    }
    ASSIGN_OR_RETURN(std::shared_ptr<SigningProfile> opened,
                     OpenProfile(p, next, s.clock, s.metrics.get()));
    profiles.push_back(std::move(opened));
    (old != old_by_name.end() ? changed : added).push_back(p.name);
  }
  for (const auto& [name, p] : old_by_name) {
    if (std::none_of(next.profiles.begin(), next.profiles.end(),
                     [&](const ProfileConfig& c) { return c.name == name; })) {
      removed.push_back(name);
    }
  }
  const bool profiles_changed = !added.empty() || !changed.empty() || !removed.empty() ||
                                cur.profiles != next.profiles;  // e.g. order or default
  const bool verifier_changed = cur.verifier != next.verifier;
  std::shared_ptr<stir::VerificationStack> stack;
  if (verifier_changed && next.verifier.enabled) {
    ASSIGN_OR_RETURN(std::unique_ptr<stir::VerificationStack> built, BuildVerifier(next, &s));
    stack = std::move(built);
  }

  // Then all of it in force at once. Calls in progress finish with what they started with.
  std::vector<std::string> applied;
  if (next.clients != cur.clients) {
    s.authorizer->Replace(next.clients);
    applied.push_back("clients");
  }
  if (next.log_level != cur.log_level) {
    SetLogLevel(next.log_level);
    applied.push_back("logging.level");
  }
  if (next.audit_tns != cur.audit_tns) {
    s.core->SetAuditTns(next.audit_tns);
    applied.push_back("logging.audit_tns");
  }
  if (profiles_changed) {
    s.core->ReplaceProfiles(ProfileSet::Make(std::move(profiles), s.metrics.get()));
    absl::MutexLock lock(&s.mu);
    s.retired_profiles.push_back(old_set);
    std::string what = "profiles";
    std::vector<std::string> parts;
    if (!added.empty()) parts.push_back(absl::StrCat("added ", absl::StrJoin(added, " ")));
    if (!changed.empty()) parts.push_back(absl::StrCat("reopened ", absl::StrJoin(changed, " ")));
    if (!removed.empty()) parts.push_back(absl::StrCat("removed ", absl::StrJoin(removed, " ")));
    if (!parts.empty()) absl::StrAppend(&what, " (", absl::StrJoin(parts, "; "), ")");
    applied.push_back(what);
  }
  if (verifier_changed) {
    s.core->ReplaceVerifier(InForce(stack, next.verifier));
    absl::MutexLock lock(&s.mu);
    if (s.verification != nullptr) s.retired_verification.push_back(std::move(s.verification));
    s.verification = std::move(stack);
    applied.push_back("verifier");
  }
  if (next.max_iat_skew != cur.max_iat_skew) applied.push_back("max_iat_skew");
  // The configuration in force: the file, but for what waits for a restart.
  Config in_force = next;
  in_force.api_listen = cur.api_listen;
  in_force.tls = cur.tls;
  in_force.allow_insecure = cur.allow_insecure;
  in_force.reflection = cur.reflection;
  in_force.max_connection_age = cur.max_connection_age;
  in_force.max_connection_age_grace = cur.max_connection_age_grace;
  in_force.health_listen = cur.health_listen;
  in_force.metrics_listen = cur.metrics_listen;
  in_force.rest = cur.rest;
  in_force.max_request_bytes = cur.max_request_bytes;
  in_force.drain_grace = cur.drain_grace;
  in_force.certificate_check_interval = cur.certificate_check_interval;
  in_force.log_format = cur.log_format;
  in_force.audit_file = cur.audit_file;
  in_force.audit_on_failure = cur.audit_on_failure;
  cur = std::move(in_force);
  return applied;
}

absl::Status Daemon::Reload(const Config& next) {
  const std::vector<std::string> restart = RestartRequired(state_->config, next);
  absl::StatusOr<std::vector<std::string>> applied = ApplyConfig(next);
  if (!applied.ok()) {
    LogError("reload_failed",
             {{"what", "configuration"},
              {"error", ToStd(applied.status().message())},
              {"detail", "everything stays as it was (files are still reloaded)"}});
  } else {
    LogInfo("configuration_reloaded",
            {{"applied", applied->empty() ? "nothing changed" : absl::StrJoin(*applied, ", ")},
             {"unchanged_until_restart", restart.empty() ? "none" : absl::StrJoin(restart, ", ")}});
    if (!restart.empty()) {
      LogWarn("restart_required",
              {{"settings", absl::StrJoin(restart, ", ")},
               {"detail", "these settings changed in the file but stay as they were until "
                          "shakend restarts"}});
    }
  }
  absl::Status files = ReloadFiles();
  return applied.ok() ? files : applied.status();
}

absl::Status Daemon::Reload() { return ReloadFiles(); }


absl::Status Daemon::ReloadFiles() {
  absl::Status result = ReopenAuditFile();
  if (!result.ok()) {
    LogError("reload_failed", {{"what", "audit file"}, {"error", std::string(result.message())}});
  }
  if (const auto verification = state_->Verification(); verification != nullptr) {
    absl::Status s = verification->ReloadTrust();
    if (!s.ok()) {
      LogError("reload_failed", {{"what", "trust anchors"}, {"error", std::string(s.message())}});
      result = s;
    }
  }
  for (const auto& p : state_->core->profiles()->profiles) {
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
  state_->api.reset();
  state_->rest.reset();
  state_->health.reset();
  state_->service.reset();
  // The core (the profiles and verifier in force) before what it uses; then the verification
  // stacks before the metrics their fetches still in progress record into.
  state_->core.reset();
  absl::MutexLock lock(&state_->mu);
  state_->retired_profiles.clear();
  state_->retired_verification.clear();
  state_->verification.reset();
}

}  // namespace shaken::daemon
