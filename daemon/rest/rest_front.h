// rest_front.h: the ATIS-1000082 REST front end (listen.rest), a thin adapter over the service
// core: JSON in (the ATIS-1000082 names or the 3GPP TS 24.229 "Ms" names) -> shaken.v1 request ->
// ServiceCore -> JSON out in the request's vocabulary, with the ATIS-1000082 error documents and
// HTTP statuses. Paths, shapes, every error and status: docs/rest-api.md.
//
// No request holds an HTTP server thread: the request is suspended (http::Server) and answered
// from the core's completion (a pool worker for a token key, the fetch loop for an x5u fetch, or
// at once for a refusal, a software key or a cached certificate).
#ifndef SHAKEN_DAEMON_REST_REST_FRONT_H_
#define SHAKEN_DAEMON_REST_REST_FRONT_H_

#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "daemon/config.h"
#include "daemon/core.h"
#include "http/server.h"

namespace shaken::daemon::rest {

struct RestOptions {
  std::string base_path;  // "" or "/StirShakenWeb/resources/v1"
  absl::Duration request_timeout = absl::Seconds(5);
  // The listener asks for client certificates (listen.rest TLS with client_ca_file): a request
  // without a verified one is refused (403) before its body is read.
  bool require_client_certificate = false;
};

// RestFrontEnd maps REST requests onto `core`. Thread-safe; `core` must outlive it.
class RestFrontEnd final : public http::Handler {
 public:
  RestFrontEnd(const ServiceCore* core, RestOptions options);

  std::optional<http::Response> OnHeaders(const http::Request& request) override;
  http::Response TooLarge(const http::Request& request, size_t max_body_bytes) override;
  http::Response Unavailable() override;
  void OnRequest(std::unique_ptr<http::Exchange> exchange) override;

 private:
  struct Call;
  void Sign(std::shared_ptr<Call> call);
  void Verify(std::shared_ptr<Call> call);
  void Finish(const std::shared_ptr<Call>& call, http::Response response) const;
  RestEndpoint EndpointOf(std::string_view path) const;

  const ServiceCore* core_;
  RestOptions options_;
  std::string signing_path_, verification_path_;
};

// RestListener is listen.rest running: the HTTP server and the front end.
class RestListener {
 public:
  // Start reads the TLS files (listen.rest.tls, else listen.tls) and binds. Errors name the key.
  static absl::StatusOr<std::unique_ptr<RestListener>> Start(const Config& config,
                                                             const ServiceCore* core);
  ~RestListener();

  int port() const { return server_->port(); }
  // Drain answers new requests 503 (POL5000); Stop then waits for those in progress until
  // `deadline`, answers what is left 503 and closes.
  void Drain() { server_->Drain(); }
  void Stop(absl::Time deadline) { server_->Stop(deadline); }

 private:
  RestListener() = default;
  std::unique_ptr<RestFrontEnd> front_;
  std::unique_ptr<http::Server> server_;
};

}  // namespace shaken::daemon::rest

#endif  // SHAKEN_DAEMON_REST_REST_FRONT_H_
