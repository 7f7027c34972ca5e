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
#include "daemon/server_internal.h"
#include "daemon/service.h"
#include "daemon/sip/redirect_server.h"
#include "hsm/module.h"
#include "stir/absl_compat.h"
#include "stir/openssl_util.h"
#include "stir/status_macros.h"
#include "stir/verification_stack.h"

namespace shaken::daemon {

constexpr char kServiceName[] = "shaken.v1.Shaken";


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

// StartApiServer starts the API server (shaken.v1 over `service`, reflection as configured, the
// health service) on `address`; null when it cannot listen. The port it got goes to *port.
std::unique_ptr<grpc::Server> StartApiServer(const Config& config, const std::string& address,
                                             const std::shared_ptr<grpc::ServerCredentials>& creds,
                                             ShakenService* service, int* port) {
  grpc::ServerBuilder b;
  b.AddListeningPort(address, creds, port);
  b.RegisterService(service);
  b.SetOption(std::make_unique<ReflectionOption>(config.reflection == "api"));
  b.SetMaxReceiveMessageSize(static_cast<int>(config.max_request_bytes));
  // SBC clients keep one long-lived connection and ping it every 30 s even when idle
  // (client/include/shaken/client.h): accept that instead of answering GOAWAY too_many_pings.
  b.AddChannelArgument(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS, 1);
  b.AddChannelArgument(GRPC_ARG_HTTP2_MIN_RECV_PING_INTERVAL_WITHOUT_DATA_MS, 10000);
  // Two API servers share the port for a moment when MoveClientsAway replaces one (gRPC's
  // default on Linux; said here because it is relied on).
  b.AddChannelArgument(GRPC_ARG_ALLOW_REUSEPORT, 1);
  if (config.max_connection_age > absl::ZeroDuration()) {
    // gRPC adds ±10 % jitter, so reconnections of clients that connected together spread out.
    b.AddChannelArgument(GRPC_ARG_MAX_CONNECTION_AGE_MS,
                         static_cast<int>(absl::ToInt64Milliseconds(config.max_connection_age)));
    b.AddChannelArgument(
        GRPC_ARG_MAX_CONNECTION_AGE_GRACE_MS,
        static_cast<int>(absl::ToInt64Milliseconds(config.max_connection_age_grace)));
  }
  return b.BuildAndStart();
}

}  // namespace

namespace server_internal {

absl::StatusOr<std::unique_ptr<stir::VerificationStack>> BuildVerifier(const Config& c,
                                                                       Daemon::State* state) {
  stir::VerificationStackParts parts;
  parts.wrap_fetcher = [metrics = state->metrics.get()](
                           std::shared_ptr<const stir::CertificateFetcher> fetcher) {
    return std::make_shared<MeteredFetcher>(std::move(fetcher), metrics);
  };
  stir::VerifierSettings settings = VerifierSettingsFrom(c.verifier);
  if (state->ca_list != nullptr) {  // the STI-PA list in force (see also PutInForce)
    settings.validator.listed_anchors_pem = state->ca_list->pem();
    settings.validator.anchors_may_be_empty = true;
  }
  settings.crl.on_soft_fail = [](std::string_view what) {
    LogWarn("crl_soft_fail", {{"detail", what}});
  };
  return stir::VerificationStack::New(std::move(settings), state->clock, std::move(parts));
}

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

}  // namespace server_internal

namespace {

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
      counter("shaken_x5u_revocation_rechecks_total", cs.rechecks);
      auto entries = Family("shaken_x5u_cache_entries");
      AddSample(&entries, static_cast<double>(cs.entries));
      out.push_back(std::move(entries));
      auto bytes = Family("shaken_x5u_cache_bytes");
      AddSample(&bytes, static_cast<double>(cs.bytes));
      out.push_back(std::move(bytes));
    }
    const stir::CrlChecker* crl = verification != nullptr ? verification->crl_checker() : nullptr;
    if (crl != nullptr) {
      const stir::CrlStats rs = crl->Stats();
      auto fetches = Family("shaken_crl_fetches_total");
      AddSample(&fetches, static_cast<double>(rs.fetch_ok), {{"result", "ok"}});
      AddSample(&fetches, static_cast<double>(rs.fetch_failed), {{"result", "failed"}});
      AddSample(&fetches, static_cast<double>(rs.fetch_invalid), {{"result", "invalid"}});
      out.push_back(std::move(fetches));
      auto checks = Family("shaken_crl_unusable_checks_total");
      AddSample(&checks, static_cast<double>(rs.soft_failed), {{"mode", "soft_fail"}});
      AddSample(&checks, static_cast<double>(rs.hard_failed), {{"mode", "hard_fail"}});
      out.push_back(std::move(checks));
      auto revoked = Family("shaken_crl_revoked_total");
      AddSample(&revoked, static_cast<double>(rs.revoked));
      out.push_back(std::move(revoked));
      auto refreshes = Family("shaken_crl_refreshes_total");
      AddSample(&refreshes, static_cast<double>(rs.refreshes));
      out.push_back(std::move(refreshes));
      auto cached = Family("shaken_crl_cache_entries");
      AddSample(&cached, static_cast<double>(rs.cached));
      out.push_back(std::move(cached));
    }
    if (s->ca_list != nullptr) {
      const CaListStats ls = s->ca_list->Stats();
      auto fetches = Family("shaken_ca_list_fetches_total");
      AddSample(&fetches, static_cast<double>(ls.updated), {{"result", "updated"}});
      AddSample(&fetches, static_cast<double>(ls.unchanged), {{"result", "unchanged"}});
      AddSample(&fetches, static_cast<double>(ls.fetch_failed), {{"result", "fetch_failed"}});
      AddSample(&fetches, static_cast<double>(ls.refused), {{"result", "refused"}});
      out.push_back(std::move(fetches));
      auto anchors = Family("shaken_ca_list_anchors");
      AddSample(&anchors, static_cast<double>(ls.anchors));
      out.push_back(std::move(anchors));
      auto last = Family("shaken_ca_list_last_success_seconds");
      AddSample(&last, ls.last_success == absl::InfinitePast()
                           ? 0.0
                           : absl::ToDoubleSeconds(ls.last_success - absl::UnixEpoch()));
      out.push_back(std::move(last));
    }
    return out;
  });
}

}  // namespace

namespace server_internal {

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

}  // namespace server_internal

using server_internal::BuildVerifier;
using server_internal::InForce;
using server_internal::OpenProfile;

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
  if (config.verifier.enabled && !config.verifier.ca_list_url.empty()) {
    // After the stack: the cached list, then every fetched one, go into the stack in force.
    ASSIGN_OR_RETURN(s.ca_list, CaListRefresher::Start(config.verifier, [state = &s](
                                                                            const std::string& pem) {
      const std::shared_ptr<stir::VerificationStack> stack = state->Verification();
      return stack != nullptr ? stack->SetListedAnchors(pem) : absl::OkStatus();
    }));
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
    s.api = StartApiServer(config, config.api_listen, creds, s.service.get(), &d->api_port_);
    if (s.api == nullptr || d->api_port_ == 0) {
      return absl::UnavailableError(
          absl::StrCat("cannot listen on listen.api ", config.api_listen,
                       " (address in use, or not an address of this host?)"));
    }
    // The same address with the port now known (listen.api may say port 0).
    std::string address = config.api_listen;
    if (const size_t colon = address.rfind(':'); colon != std::string::npos) {
      address = absl::StrCat(address.substr(0, colon + 1), d->api_port_);
    }
    s.drain_grace = config.drain_grace;
    s.restart_api = [config, creds, address](ShakenService* service, int* port) {
      return StartApiServer(config, address, creds, service, port);
    };
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
  if (config.sip.has_value()) {
    ASSIGN_OR_RETURN(s.sip, sip::RedirectServer::Start(
                                *config.sip, {s.core.get(), [raw = d.get()] { return raw->serving(); },
                                              config.max_iat_skew}));
    d->sip_udp_port_ = s.sip->udp_port();
    d->sip_tcp_port_ = s.sip->tcp_port();
  }
  d->MonitorHealth();  // set the first status before anyone probes
  d->monitor_ = std::thread([raw = d.get(), check = config.certificate_check_interval] {
    absl::Time next_check = absl::Now() + check;
    bool was_serving = raw->serving();
    while (!raw->stop_.WaitForNotificationWithTimeout(absl::Milliseconds(250))) {
      const bool serving = raw->MonitorHealth();
      if (was_serving && !serving) raw->MoveClientsAway();
      was_serving = serving;
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
                      {"sip", absl::StrCat("udp ", d->sip_udp_port_, ", tcp ", d->sip_tcp_port_)},
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

bool Daemon::MonitorHealth() {
  const bool now = serving();
  state_->health_publisher.Publish(now, {state_->api.get(), state_->health.get()});
  Reap();
  return now;
}

void Daemon::MoveClientsAway() {
  State& s = *state_;
  if (absl::Now() - s.last_goaway < absl::Seconds(10)) return;  // a flapping token
  absl::MutexLock lock(&s.shutdown_mu);
  if (s.shut_down) return;  // draining: Shutdown sends GOAWAY itself
  s.last_goaway = absl::Now();
  auto service = std::make_unique<ShakenService>(s.core.get());
  int port = 0;
  std::unique_ptr<grpc::Server> next = s.restart_api(service.get(), &port);
  if (next == nullptr || port != api_port_) {
    LogWarn("goaway_skipped", {{"detail", absl::StrCat("no second API server on port ", api_port_,
                                                       "; clients stay connected")}});
    return;
  }
  s.health_publisher.PublishTo(next.get());
  std::swap(s.api, next);
  std::swap(s.service, service);
  s.api_closers.emplace_back(
      [old = std::move(next), old_service = std::move(service), grace = s.drain_grace]() mutable {
        old->Shutdown(absl::ToChronoTime(absl::Now() + grace));  // GOAWAY; calls finish
        old->Wait();
        old.reset();  // the server before the service it calls into
        old_service.reset();
      });
  LogInfo("goaway_sent", {{"reason", "not serving (a profile is down)"},
                          {"detail", "API connections told to reconnect; calls in progress "
                                     "finish on the old server"}});
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
  bool serving_started = false;
  if (state_ != nullptr) {
    // Under the lock MoveClientsAway swaps the API server with.
    absl::MutexLock lock(&state_->shutdown_mu);
    serving_started = state_->api != nullptr;
  }
  if (!serving_started) {
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
  if (state_->sip != nullptr) state_->sip->Shutdown(absl::FromChrono(deadline));
  state_->api->Shutdown(deadline);
  std::vector<std::thread> closers;
  {
    absl::MutexLock lock(&state_->shutdown_mu);
    closers.swap(state_->api_closers);
  }
  for (std::thread& t : closers) t.join();  // replaced API servers: their deadlines have passed
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

Daemon::~Daemon() {
  Shutdown();
  if (state_ == nullptr) return;
  // The CA list refresher first: its thread puts lists into the verification stack in force.
  state_->ca_list.reset();
  // Servers before the service they call into; profiles (token pools) last.
  state_->sip.reset();
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
