// https_server.h: a small real HTTPS (or plain HTTP) server on 127.0.0.1 for x5u tests. One
// background accept thread plus a thread per connection; each request gets one canned response
// (HTTP/1.1, Connection: close). Routes can be slow (delays before and between chunks, cut short by
// Stop), held until the test releases them (a tarpit), oversized, redirects or errors. A prefix
// route answers every path under it (a fresh URL per call, so no client cache hit). Requests are
// counted per path.
//
// Capacity: a held or slow request costs one thread and one descriptor until it ends; finished
// connection threads are joined as new connections arrive. Hundreds of concurrent connections are
// fine (the listen backlog is SOMAXCONN; mind RLIMIT_NOFILE, which counts both ends of each
// connection when the client is in the same process).
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
  // hold_until_release: after reading the request, send nothing until HttpsServer::ReleaseHeld
  // releases it (then answer as above, delay_before included) or Stop ends it (connection closed,
  // no answer). A client timeout does not end the hold: the request stays held (and counted by
  // HeldCount) until released or stopped.
  bool hold_until_release = false;
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
  // SetPrefixRoute answers every path that starts with `prefix` ("/tarpit/") and has no exact
  // route; the longest matching prefix wins.
  void SetPrefixRoute(const std::string& prefix, HttpResponse response);

  // ReleaseHeld lets held requests answer: those of the route `route` (an exact path or a prefix
  // as given to SetPrefixRoute), or of every route when `route` is empty. With `stop_holding`, the
  // same routes also stop holding later requests (atomically: no request arriving meanwhile is
  // held). Returns how many requests it released.
  int ReleaseHeld(std::string_view route = {}, bool stop_holding = false);
  // HeldCount is the number of requests held now (released and stopped ones excluded).
  int HeldCount() const;
  // WaitForHeld waits until at least `n` requests are held; false if `timeout` passes first or
  // the server stops.
  bool WaitForHeld(int n, absl::Duration timeout) const;

  int port() const { return port_; }
  // Url is "https://<host>:<port><path>" ("http://" in plain mode).
  std::string Url(std::string_view path, std::string_view host = "127.0.0.1") const;
  int RequestCount(const std::string& path) const;
  int TotalRequests() const;
  // Stop closes the listener, cuts slow responses short, ends held ones unanswered, and joins
  // every thread. Idempotent.
  void Stop();

 private:
  explicit HttpsServer(HttpsServerOptions options) : options_(std::move(options)) {}
  // Held is one held request: `route` is the key of the route that matched it.
  struct Held {
    std::string route;
    bool released = false;
  };

  void AcceptLoop();
  void Serve(uint64_t id, int fd);
  bool Wait(absl::Duration d);  // false when stopping
  // Hold blocks until the request is released (true) or the server stops (false).
  bool Hold(const std::string& route);
  void JoinFinished() ABSL_LOCKS_EXCLUDED(mu_);

  HttpsServerOptions options_;
  SSL_CTX* ctx_ = nullptr;
  int listen_fd_ = -1;
  int wake_fds_[2] = {-1, -1};
  int port_ = 0;
  std::thread accept_thread_;

  mutable absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::map<std::string, HttpResponse> routes_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, HttpResponse> prefix_routes_ ABSL_GUARDED_BY(mu_);
  std::map<std::string, int> counts_ ABSL_GUARDED_BY(mu_);
  int total_ ABSL_GUARDED_BY(mu_) = 0;
  std::set<int> open_fds_ ABSL_GUARDED_BY(mu_);
  std::map<uint64_t, Held*> held_ ABSL_GUARDED_BY(mu_);  // each owned by its Serve's stack
  uint64_t next_held_ ABSL_GUARDED_BY(mu_) = 0;
  uint64_t next_worker_ ABSL_GUARDED_BY(mu_) = 0;
  std::map<uint64_t, std::thread> workers_ ABSL_GUARDED_BY(mu_);
  std::vector<uint64_t> finished_ ABSL_GUARDED_BY(mu_);  // workers that returned, to be joined
};

}  // namespace shaken::testing

#endif  // SHAKEN_TESTS_TESTING_HTTPS_SERVER_H_
