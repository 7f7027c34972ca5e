// server.h: the demo STI-CA's ACME endpoint: shaken::http::Server (libmicrohttpd, TLS) in front
// of the Engine. The HTTP event threads never block: OnRequest puts the exchange on a bounded
// queue and returns; worker threads run Engine::Handle (SQLite writes, x5u fetches, the CA key's
// signature, possibly in a PKCS#11 token) and answer through Exchange::Respond. A full queue is
// answered at once with 503 rateLimited and Retry-After.
#ifndef SHAKEN_CLI_ACME_SERVER_H_
#define SHAKEN_CLI_ACME_SERVER_H_

#include <deque>
#include <functional>
#include <memory>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "cli/acme/engine.h"
#include "http/server.h"

namespace shaken::acme {

struct AcmeServerOptions {
  http::ServerOptions http;  // address, TLS files, limits
  int workers = 2;
  size_t max_queue = 64;
  // external_base_url: the URL clients use ("https://ca.example.net:8443"); empty: https://
  // (or http:// without TLS) + the listen host and the bound port.
  std::string external_base_url;
  // on_answer, when set, is told of every answer (on the worker that made it): an access log.
  // It must not block for long and must not log request bodies (tokens, CSRs).
  std::function<void(const http::Request&, const http::Response&)> on_answer;
};

class AcmeServer final : public http::Handler {
 public:
  // Start binds, then starts the workers with `config` (whose base_url is filled in from the
  // options). `store` must outlive the server.
  static absl::StatusOr<std::unique_ptr<AcmeServer>> Start(AcmeServerOptions options,
                                                           EngineConfig config, Store* store);
  ~AcmeServer() override;  // Stop()

  int port() const;
  const std::string& base_url() const { return engine_->config().base_url; }
  std::string directory_url() const { return base_url() + "/acme/directory"; }
  // Stop answers what is queued with 503, then stops the HTTP server and joins the workers.
  void Stop();
  // queued: requests waiting for a worker (not counting those being handled).
  size_t queued() const;

  // http::Handler (HTTP event threads).
  std::optional<http::Response> OnHeaders(const http::Request& request) override;
  http::Response TooLarge(const http::Request& request, size_t max_body_bytes) override;
  http::Response Unavailable() override;
  void OnRequest(std::unique_ptr<http::Exchange> exchange) override;

 private:
  AcmeServer() = default;
  void Work();

  std::unique_ptr<Engine> engine_;
  std::unique_ptr<http::Server> http_;
  size_t max_queue_ = 64;
  std::function<void(const http::Request&, const http::Response&)> on_answer_;
  mutable absl::Mutex mu_;
  std::deque<std::unique_ptr<http::Exchange>> queue_ ABSL_GUARDED_BY(mu_);
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  bool started_ ABSL_GUARDED_BY(mu_) = false;  // workers may run (base_url known)
  std::vector<std::thread> workers_;
};

}  // namespace shaken::acme

#endif  // SHAKEN_CLI_ACME_SERVER_H_
