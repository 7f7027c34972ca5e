// engine.h: the ACME server logic (RFC 8555) of the demo STI-CA, with the TNAuthList identifier
// (RFC 9448) and the tkauth-01 challenge (RFC 9447). Engine::Handle turns one HTTP request into
// one HTTP response and blocks (SQLite, x5u fetches, the CA's signature): it runs on the worker
// threads of AcmeServer (server.h), never on an HTTP event thread.
//
// Resources (all under base_url):
//   GET  /acme/directory                    HEAD|GET /acme/new-nonce
//   POST /acme/new-account (jwk)            POST /acme/new-order (kid)
//   POST /acme/acct/<id>                    POST /acme/authz/<id>   (POST-as-GET)
//   POST /acme/chall/<id>  {"atc":<token>}  POST /acme/order/<id>   (POST-as-GET)
//   POST /acme/order/<id>/finalize {"csr"}  POST /acme/cert/<id>    (POST-as-GET)
#ifndef SHAKEN_CLI_ACME_ENGINE_H_
#define SHAKEN_CLI_ACME_ENGINE_H_

#include <openssl/x509.h>

#include <functional>
#include <map>
#include <string>
#include <string_view>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "cli/acme/jws.h"
#include "cli/acme/store.h"
#include "http/server.h"
#include "stir/x5u_fetcher.h"

namespace shaken::acme {

// IssuedCertificate is what the CA's issuing code returns for an accepted CSR.
struct IssuedCertificate {
  std::string chain_pem;   // leaf first, then the intermediates (the x5u body)
  std::string serial_hex;  // the leaf's serial, as stir::SerialHex writes it
};

// IssueFunction issues a certificate for a CSR whose signature and TNAuthList the engine has
// checked against the order: with `ca`, an SP-CA certificate (the CSR asked for BasicConstraints
// CA:TRUE and the order's Authority Token allowed it, atc.ca), else an end-entity one.
// INVALID_ARGUMENT / FAILED_PRECONDITION become badCSR (the message says why the CSR is refused);
// any other error serverInternal. Called on a worker thread.
using IssueFunction = std::function<absl::StatusOr<IssuedCertificate>(
    X509_REQ* csr, std::string_view tnauthlist_der, bool ca)>;

// CsrRequestsCa tells whether a CSR's extension request holds BasicConstraints CA:TRUE.
bool CsrRequestsCa(X509_REQ* csr);

struct EngineConfig {
  std::string base_url;  // "https://127.0.0.1:8443", no trailing '/'
  absl::Duration nonce_lifetime = absl::Hours(1);
  absl::Duration order_lifetime = absl::Hours(24 * 7);
  // tkauth-01: the STI-PA trust anchors and how token x5u URLs are fetched (not owned).
  X509_STORE* pa_anchors = nullptr;
  const stir::CertificateFetcher* fetcher = nullptr;
  // External Account Binding (RFC 8555 §7.3.4): key id -> MAC key (bytes).
  std::map<std::string, std::string> eab_keys;
  bool eab_required = false;
  IssueFunction issue;
  std::function<absl::Time()> now = [] { return absl::Now(); };
};

class Engine {
 public:
  // Engine keeps `store` (not owned; must outlive it).
  Engine(EngineConfig config, Store* store) : config_(std::move(config)), store_(store) {}

  // Handle answers one request. Every refusal is an application/problem+json document; every
  // answer carries a fresh Replay-Nonce (RFC 8555 §6.5). Thread-safe: authenticated requests are
  // handled one at a time under one lock (a lab CA: simplicity over throughput); the directory
  // and newNonce are not.
  http::Response Handle(const http::Request& request);

  const EngineConfig& config() const { return config_; }

 private:
  struct Auth;  // an authenticated JWS request
  // Public answers the unauthenticated resources (directory, newNonce) and refuses methods
  // other than POST elsewhere; status 0 means "an authenticated POST: Route it".
  absl::StatusOr<http::Response> Public(const http::Request& r) const;
  absl::StatusOr<http::Response> Route(const http::Request& r) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<Auth> Authenticate(const http::Request& r, bool new_account)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<http::Response> NewAccount(const Auth& a) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<http::Response> NewOrder(const Auth& a) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<http::Response> GetAccount(const Auth& a, std::string_view id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<http::Response> GetAuthz(const Auth& a, std::string_view id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<http::Response> Challenge(const Auth& a, std::string_view id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<http::Response> GetOrder(const Auth& a, std::string_view id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<http::Response> Finalize(const Auth& a, std::string_view id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<http::Response> GetCertificate(const Auth& a, std::string_view id)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<Json> Load(std::string_view kind, std::string_view id, const Auth& a)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::StatusOr<Json> OrderView(const std::string& id, Json& order)
      ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  Json AuthzView(const std::string& id, const Json& authz) const;
  std::string Url(std::string_view path) const;

  const EngineConfig config_;
  Store* const store_;
  absl::Mutex mu_;
  // Expired nonces and used jti past their exp are deleted every prune_interval (on a worker).
  static constexpr absl::Duration kPruneInterval = absl::Minutes(10);
  absl::Time last_prune_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
};

}  // namespace shaken::acme

#endif  // SHAKEN_CLI_ACME_ENGINE_H_
