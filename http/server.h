// server.h: a small HTTP/1.1 server for JSON APIs, over libmicrohttpd (Debian libmicrohttpd-dev),
// protocol-neutral: it hands each complete request to a Handler and lets the handler answer
// later, from any thread, without holding a server thread. Used by shakend's REST front end
// (daemon/rest/) and meant for other small servers of this repository (an ACME server).
//
// What the server does itself: HTTP parsing and keep-alive (libmicrohttpd), TLS (GnuTLS inside
// libmicrohttpd) with an optional client certificate checked against a CA file (OpenSSL), limits
// (body bytes, connections, idle time, header memory), and the life cycle (drain, then stop).
// What it leaves to the Handler: every answer, including the refusals it detects (body too
// large, draining), so that the application chooses the documents it sends.
#ifndef SHAKEN_HTTP_SERVER_H_
#define SHAKEN_HTTP_SERVER_H_

#include <cstddef>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace shaken::http {

// ClientCertificate is what a TLS client proved about itself.
enum class ClientCertificate {
  kNone,       // plain HTTP, or TLS without a client certificate
  kVerified,   // a certificate that chains to ServerOptions::tls->client_ca_pem (client purpose)
  kUntrusted,  // a certificate was presented but does not verify; `client_cert_problem` says why
};

// Request is one HTTP request. Header names are matched case-insensitively by Header().
struct Request {
  std::string method;
  std::string path;  // the URL path, without the query string
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;  // empty until the whole body has been read (Handler::OnRequest)
  // The Content-Length header's value, when the request has one that is a number.
  std::optional<size_t> content_length;
  ClientCertificate client_cert = ClientCertificate::kNone;
  std::string client_cert_der;     // the leaf (DER) when kVerified or kUntrusted
  std::string client_cert_problem;  // why, when kUntrusted
  std::string peer;                // "address:port" of the client

  // Header is the value of the first header named `name` (ASCII case-insensitive), or nullopt.
  std::optional<std::string_view> Header(std::string_view name) const;
};

// Response is one answer. Content-Length is set by the server.
struct Response {
  int status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  // close: ask the client to close the connection after this answer (Connection: close).
  bool close = false;
};

// Exchange is one request waiting for its answer. Respond may be called from any thread, once;
// later calls do nothing. An Exchange answered after the server stopped is dropped. Destroying
// an Exchange that was never answered answers 500 (a handler bug must not hang the client).
class Exchange {
 public:
  virtual ~Exchange() = default;
  virtual const Request& request() const = 0;
  virtual void Respond(Response response) = 0;
};

// Handler is the application. Its methods run on the server's threads and must not block.
class Handler {
 public:
  virtual ~Handler() = default;
  // OnHeaders sees a request whose line and headers (not yet its body) are in. Return a Response
  // to answer at once without reading the body (the server then closes the connection if a body
  // was announced), or nullopt to read the body and get OnRequest.
  virtual std::optional<Response> OnHeaders(const Request& request) = 0;
  // TooLarge answers a request whose body (announced, or read so far) is over max_body_bytes.
  virtual Response TooLarge(const Request& request, size_t max_body_bytes) = 0;
  // Unavailable answers new requests while the server drains, and requests still unanswered
  // when Stop gives up waiting.
  virtual Response Unavailable() = 0;
  // OnRequest gets a complete request; answer through `exchange`, now or later, from any thread.
  virtual void OnRequest(std::unique_ptr<Exchange> exchange) = 0;
};

struct TlsFiles {
  std::string cert_pem;       // server certificate chain, leaf first
  std::string key_pem;        // its private key
  std::string client_ca_pem;  // CAs for client certificates; empty: none requested
};

struct ServerOptions {
  std::string address;  // "host:port" (IPv4 or [IPv6]); port 0 picks a free port
  std::optional<TlsFiles> tls;  // nullopt: plain HTTP
  size_t max_body_bytes = 64 * 1024;
  int max_connections = 1024;
  absl::Duration idle_timeout = absl::Seconds(60);  // a connection idle this long is closed
  int threads = 2;  // libmicrohttpd event threads
  // Memory per connection for the request line and headers (libmicrohttpd's pool).
  size_t header_memory_bytes = 32 * 1024;
};

// Server is a running HTTP server. Thread-safe. The Handler must outlive it.
class Server {
 public:
  // Start binds and serves. Errors name the address or the TLS material that failed.
  static absl::StatusOr<std::unique_ptr<Server>> Start(ServerOptions options, Handler* handler);
  ~Server();  // Stop(now)

  int port() const;
  // Drain makes every new request get Handler::Unavailable (connections stay open: a client
  // learns of the drain from the 503, not from a refused connection). Idempotent.
  void Drain();
  // Stop drains, waits until `deadline` for the requests in progress to be answered, answers the
  // rest with Handler::Unavailable and stops. Idempotent.
  void Stop(absl::Time deadline);
  // in_flight: requests handed to OnRequest and not yet answered.
  int in_flight() const;

  struct Impl;

 private:
  explicit Server(std::shared_ptr<Impl> impl);
  std::shared_ptr<Impl> impl_;  // shared with the Exchanges still in flight
};

}  // namespace shaken::http

#endif  // SHAKEN_HTTP_SERVER_H_
