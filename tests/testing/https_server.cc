#include "tests/testing/https_server.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstring>
#include <mutex>

#include "absl/strings/str_cat.h"
#include "stir/openssl_util.h"

namespace shaken::testing {
namespace {

std::string StatusText(int status) {
  switch (status) {
    case 200:
      return "OK";
    case 301:
      return "Moved Permanently";
    case 302:
      return "Found";
    case 404:
      return "Not Found";
    case 500:
      return "Internal Server Error";
    default:
      return "Status";
  }
}

// Conn reads and writes a plain or TLS connection.
class Conn {
 public:
  Conn(int fd, SSL* ssl) : fd_(fd), ssl_(ssl) {}
  ~Conn() {
    if (ssl_ != nullptr) {
      SSL_shutdown(ssl_);
      SSL_free(ssl_);
    }
    ERR_clear_error();
  }
  long Read(char* buf, size_t n) {
    if (ssl_ != nullptr) return SSL_read(ssl_, buf, static_cast<int>(n));
    return recv(fd_, buf, n, 0);
  }
  bool WriteAll(std::string_view data) {
    while (!data.empty()) {
      long n = ssl_ != nullptr ? SSL_write(ssl_, data.data(), static_cast<int>(data.size()))
                               : send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n <= 0) return false;
      data.remove_prefix(static_cast<size_t>(n));
    }
    return true;
  }

 private:
  int fd_;
  SSL* ssl_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<HttpsServer>> HttpsServer::Start(HttpsServerOptions options) {
  // A client that aborts (body cap, timeout) makes our next write raise SIGPIPE: ignore it.
  static std::once_flag sigpipe_once;
  std::call_once(sigpipe_once, [] { signal(SIGPIPE, SIG_IGN); });

  std::unique_ptr<HttpsServer> server(new HttpsServer(std::move(options)));
  if (server->options_.tls) {
    server->ctx_ = SSL_CTX_new(TLS_server_method());
    stir::BioPtr cert_bio(BIO_new_mem_buf(server->options_.cert_pem.data(),
                                          static_cast<int>(server->options_.cert_pem.size())));
    stir::X509Ptr cert(PEM_read_bio_X509(cert_bio.get(), nullptr, nullptr, nullptr));
    stir::BioPtr key_bio(BIO_new_mem_buf(server->options_.key_pem.data(),
                                         static_cast<int>(server->options_.key_pem.size())));
    stir::EvpPkeyPtr key(PEM_read_bio_PrivateKey(key_bio.get(), nullptr, nullptr, nullptr));
    if (server->ctx_ == nullptr || !cert || !key ||
        SSL_CTX_use_certificate(server->ctx_, cert.get()) != 1 ||
        SSL_CTX_use_PrivateKey(server->ctx_, key.get()) != 1 ||
        SSL_CTX_check_private_key(server->ctx_) != 1) {
      return stir::OpenSslError(absl::StatusCode::kInvalidArgument, "test HTTPS server TLS setup");
    }
  }
  server->listen_fd_ = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(server->listen_fd_, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in addr = {};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  if (server->listen_fd_ < 0 ||
      bind(server->listen_fd_, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) != 0 ||
      listen(server->listen_fd_, SOMAXCONN) != 0 ||
      getsockname(server->listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0 ||
      pipe2(server->wake_fds_, O_CLOEXEC) != 0) {
    return absl::InternalError(absl::StrCat("test HTTPS server socket: ", strerror(errno)));
  }
  server->port_ = ntohs(addr.sin_port);
  server->accept_thread_ = std::thread([s = server.get()] { s->AcceptLoop(); });
  return server;
}

HttpsServer::~HttpsServer() {
  Stop();
  if (listen_fd_ >= 0) close(listen_fd_);
  for (int fd : wake_fds_) {
    if (fd >= 0) close(fd);
  }
  if (ctx_ != nullptr) SSL_CTX_free(ctx_);
}

void HttpsServer::Stop() {
  {
    absl::MutexLock lock(&mu_);
    if (stopping_) return;
    stopping_ = true;
    for (int fd : open_fds_) shutdown(fd, SHUT_RDWR);  // unblocks reads of idle connections
  }
  if (wake_fds_[1] >= 0) {
    char c = 0;
    (void)!write(wake_fds_[1], &c, 1);
  }
  if (accept_thread_.joinable()) accept_thread_.join();
  std::map<uint64_t, std::thread> workers;
  {
    absl::MutexLock lock(&mu_);
    workers.swap(workers_);
    finished_.clear();
  }
  for (auto& [id, t] : workers) t.join();
}

void HttpsServer::JoinFinished() {
  std::vector<std::thread> done;
  {
    absl::MutexLock lock(&mu_);
    for (uint64_t id : finished_) {
      auto it = workers_.find(id);
      if (it == workers_.end()) continue;
      done.push_back(std::move(it->second));
      workers_.erase(it);
    }
    finished_.clear();
  }
  for (std::thread& t : done) t.join();  // each is returning from Serve, or has
}

void HttpsServer::SetRoute(const std::string& path, HttpResponse response) {
  absl::MutexLock lock(&mu_);
  routes_[path] = std::move(response);
}

void HttpsServer::SetPrefixRoute(const std::string& prefix, HttpResponse response) {
  absl::MutexLock lock(&mu_);
  prefix_routes_[prefix] = std::move(response);
}

int HttpsServer::ReleaseHeld(std::string_view route, bool stop_holding) {
  absl::MutexLock lock(&mu_);
  int released = 0;
  for (auto& [id, held] : held_) {
    if (!held->released && (route.empty() || held->route == route)) {
      held->released = true;
      ++released;
    }
  }
  if (stop_holding) {
    for (auto* routes : {&routes_, &prefix_routes_}) {
      for (auto& [key, response] : *routes) {
        if (route.empty() || key == route) response.hold_until_release = false;
      }
    }
  }
  return released;
}

int HttpsServer::HeldCount() const {
  absl::MutexLock lock(&mu_);
  int n = 0;
  for (const auto& [id, held] : held_) n += held->released ? 0 : 1;
  return n;
}

bool HttpsServer::WaitForHeld(int n, absl::Duration timeout) const {
  absl::MutexLock lock(&mu_);
  auto count = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    int held = 0;
    for (const auto& [id, h] : held_) held += h->released ? 0 : 1;
    return held;
  };
  auto enough = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return stopping_ || count() >= n; };
  mu_.AwaitWithTimeout(absl::Condition(&enough), timeout);
  return !stopping_ && count() >= n;
}

bool HttpsServer::Hold(const std::string& route) {
  absl::MutexLock lock(&mu_);
  Held held{route};
  const uint64_t id = next_held_++;
  held_[id] = &held;
  auto done = [&]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return held.released || stopping_; };
  mu_.Await(absl::Condition(&done));
  held_.erase(id);
  return !stopping_;
}

std::string HttpsServer::Url(std::string_view path, std::string_view host) const {
  return absl::StrCat(options_.tls ? "https://" : "http://",
                      absl::string_view(host.data(), host.size()), ":", port_,
                      absl::string_view(path.data(), path.size()));
}

int HttpsServer::RequestCount(const std::string& path) const {
  absl::MutexLock lock(&mu_);
  auto it = counts_.find(path);
  return it == counts_.end() ? 0 : it->second;
}

int HttpsServer::TotalRequests() const {
  absl::MutexLock lock(&mu_);
  return total_;
}

bool HttpsServer::Wait(absl::Duration d) {
  absl::MutexLock lock(&mu_);
  if (d > absl::ZeroDuration()) mu_.AwaitWithTimeout(absl::Condition(&stopping_), d);
  return !stopping_;
}

void HttpsServer::AcceptLoop() {
  while (true) {
    pollfd fds[2] = {{listen_fd_, POLLIN, 0}, {wake_fds_[0], POLLIN, 0}};
    if (poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      return;
    }
    if (fds[1].revents != 0) return;
    if (!(fds[0].revents & POLLIN)) continue;
    int fd = accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) continue;
    JoinFinished();  // a long run (a benchmark) does not accumulate exited threads
    absl::MutexLock lock(&mu_);
    if (stopping_) {
      close(fd);
      return;
    }
    open_fds_.insert(fd);
    const uint64_t id = next_worker_++;
    workers_.emplace(id, std::thread([this, id, fd] { Serve(id, fd); }));
  }
}

void HttpsServer::Serve(uint64_t id, int fd) {
  timeval tv = {5, 0};  // a stuck client cannot hold a worker (and Stop) for long
  setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
  setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
  {
    SSL* ssl = nullptr;
    bool ok = true;
    if (ctx_ != nullptr) {
      ssl = SSL_new(ctx_);
      SSL_set_fd(ssl, fd);
      if (SSL_accept(ssl) != 1) ok = false;
    }
    Conn conn(fd, ssl);
    std::string request;
    char buf[4096];
    while (ok && request.find("\r\n\r\n") == std::string::npos && request.size() < 16384) {
      long n = conn.Read(buf, sizeof(buf));
      if (n <= 0) {
        ok = false;
        break;
      }
      request.append(buf, static_cast<size_t>(n));
    }
    if (ok) {
      // "GET /path HTTP/1.1"
      std::string path;
      size_t sp1 = request.find(' ');
      size_t sp2 = sp1 == std::string::npos ? sp1 : request.find(' ', sp1 + 1);
      if (sp2 != std::string::npos) path = request.substr(sp1 + 1, sp2 - sp1 - 1);
      HttpResponse response;
      response.status = 404;
      response.body = "not found\n";
      std::string route;  // the key of the route that matched
      {
        absl::MutexLock lock(&mu_);
        ++counts_[path];
        ++total_;
        if (auto it = routes_.find(path); it != routes_.end()) {
          response = it->second;
          route = path;
        } else {
          for (const auto& [prefix, r] : prefix_routes_) {
            if (path.compare(0, prefix.size(), prefix) == 0 && prefix.size() >= route.size()) {
              response = r;
              route = prefix;
            }
          }
        }
      }
      if ((!response.hold_until_release || Hold(route)) && Wait(response.delay_before)) {
        std::string head = absl::StrCat("HTTP/1.1 ", response.status, " ",
                                        StatusText(response.status), "\r\nConnection: close\r\n");
        if (response.send_content_length) {
          absl::StrAppend(&head, "Content-Length: ", response.body.size(), "\r\n");
        }
        for (const auto& [name, value] : response.headers) {
          absl::StrAppend(&head, name, ": ", value, "\r\n");
        }
        head += "\r\n";
        if (conn.WriteAll(head)) {
          std::string_view body = response.body;
          size_t chunk = response.chunk_size == 0 ? body.size() : response.chunk_size;
          bool first = true;
          while (!body.empty()) {
            if (!first && !Wait(response.delay_between_chunks)) break;
            first = false;
            size_t n = std::min(chunk, body.size());
            if (!conn.WriteAll(body.substr(0, n))) break;
            body.remove_prefix(n);
          }
        }
      }
    }
  }  // the TLS session is shut down before the socket closes
  absl::MutexLock lock(&mu_);
  open_fds_.erase(fd);
  close(fd);
  finished_.push_back(id);
}

}  // namespace shaken::testing
