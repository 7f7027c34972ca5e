// https_server.h: a small real HTTPS (or plain HTTP) server on 127.0.0.1 for x5u tests. One
// background accept thread plus a thread per connection; each request gets one canned response
// (HTTP/1.1, Connection: close). Routes can be slow (delays before and between chunks, cut short by
// Stop), oversized, redirects or errors. Requests are counted per path.
#ifndef SHAKEN_TESTS_TESTING_HTTPS_SERVER_H_
#define SHAKEN_TESTS_TESTING_HTTPS_SERVER_H_

#include <map>
#include <memory>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

typedef struct ssl_ctx_st SSL_CTX;

namespace shaken::testing {

// HttpResponse is what a route answers.
struct HttpResponse {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  // Slow responses: wait before the status line, then send the body in chunk_size pieces (0: all
  // at once) with delay_between_chunks between them. Waits end early when the server stops.
  absl::Duration delay_before = absl::ZeroDuration();
  absl::Duration delay_between_chunks = absl::ZeroDuration();
  size_t chunk_size = 0;
  bool send_content_length = true;
};

struct HttpsServerOptions {
  bool tls = true;       // false: plain HTTP
  std::string cert_pem;  // server certificate (and chain), PEM; required with tls
  std::string key_pem;   // its private key, PEM
};

// HttpsServer listens on 127.0.0.1 on an ephemeral port from Start until Stop (or destruction).
// Unknown paths get 404. Thread-safe: routes may be changed and counters read while it runs.
class HttpsServer {
 public:
  static absl::StatusOr<std::unique_ptr<HttpsServer>> Start(HttpsServerOptions options);
  ~HttpsServer();
  HttpsServer(const HttpsServer&) = delete;
  HttpsServer& operator=(const HttpsServer&) = delete;

  void SetRoute(const std::string& path, HttpResponse response);
  int port() const { return port_; }
  // Url is "https://<host>:<port><path>" ("http://" in plain mode).
  std::string Url(std::string_view path, std::string_view host = "127.0.0.1") const;
  int RequestCount(const std::string& path) const;
  int TotalRequests() const;
  // Stop closes the listener, cuts slow responses short, and joins every thread. Idempotent.
  void Stop();

 private:
  explicit HttpsServer(HttpsServerOptions options) : options_(std::move(options)) {}
  void AcceptLoop();
  void Serve(int fd);
  bool Wait(absl::Duration d);  // false when stopping

  HttpsServerOptions options_;
  SSL_CTX* ctx_ = nullptr;
  int listen_fd_ = -1;
  int wake_fds_[2] = {-1, -1};
  int port_ = 0;
  std::thread accept_thread_;

  mutable absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::map<std::string, HttpResponse> routes_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, int> counts_ ABSL_GUARDED_BY(mu_);
  int total_ ABSL_GUARDED_BY(mu_) = 0;
  std::set<int> open_fds_ ABSL_GUARDED_BY(mu_);
  std::vector<std::thread> workers_ ABSL_GUARDED_BY(mu_);
};

}  // namespace shaken::testing

#endif  // SHAKEN_TESTS_TESTING_HTTPS_SERVER_H_
