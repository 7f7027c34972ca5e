#include "http/server.h"

#include <arpa/inet.h>
#include <gnutls/gnutls.h>
#include <microhttpd.h>
#include <netdb.h>
#include <netinet/in.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509_vfy.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>

#include <atomic>
#include <cstring>
#include <set>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "http/listener.h"

namespace shaken::http {
namespace {

struct X509Free {
  void operator()(X509* x) const { X509_free(x); }
};
struct StoreFree {
  void operator()(X509_STORE* s) const { X509_STORE_free(s); }
};
struct StoreCtxFree {
  void operator()(X509_STORE_CTX* c) const { X509_STORE_CTX_free(c); }
};
struct StackFree {
  void operator()(STACK_OF(X509) * s) const { sk_X509_pop_free(s, X509_free); }
};
using X509Ptr = std::unique_ptr<X509, X509Free>;

X509Ptr FromDer(const gnutls_datum_t& d) {
  const unsigned char* p = d.data;
  return X509Ptr(d2i_X509(nullptr, &p, static_cast<long>(d.size)));
}

// StoreFromPem loads every certificate of a PEM bundle as a trust anchor.
absl::StatusOr<std::unique_ptr<X509_STORE, StoreFree>> StoreFromPem(const std::string& pem) {
  std::unique_ptr<X509_STORE, StoreFree> store(X509_STORE_new());
  std::unique_ptr<BIO, decltype(&BIO_free)> bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())),
                                                 &BIO_free);
  int n = 0;
  while (X509* x = PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr)) {
    X509_STORE_add_cert(store.get(), x);
    X509_free(x);
    ++n;
  }
  ERR_clear_error();  // the end of the bundle is reported as an error
  if (n == 0) return absl::InvalidArgumentError("the client CA file holds no PEM certificate");
  return store;
}

// ConnInfo is what one TCP connection remembers across its keep-alive requests: the client
// certificate is checked once per connection (the TLS session cannot change it).
struct ConnInfo {
  bool checked = false;
  ClientCertificate cert = ClientCertificate::kNone;
  std::string der;
  std::string problem;
};

// Debian's abseil has its own string_view type: convert at the call.
absl::string_view A(std::string_view s) { return absl::string_view(s.data(), s.size()); }

bool SameHeaderName(std::string_view a, std::string_view b) {
  return absl::EqualsIgnoreCase(A(a), A(b));
}

}  // namespace

std::optional<std::string_view> Request::Header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (SameHeaderName(k, name)) return std::string_view(v);
  }
  return std::nullopt;
}

// Call is one request from its headers to the end of its answer. Guarded by Impl::mu where noted.
struct Call {
  Request request;
  MHD_Connection* conn = nullptr;
  bool too_large = false;
  bool handed_off = false;
  // An answer given at the headers to a request with a body: the body is read and dropped, then
  // this is the answer, so that the connection stays usable (keep-alive).
  std::optional<Response> after_body;
  // Guarded by Impl::mu:
  bool counted = false;  // in Impl::unfinished
  bool answered = false;
  bool suspended = false;
  std::optional<Response> answer;
};

struct Server::Impl : std::enable_shared_from_this<Server::Impl> {
  ServerOptions options;
  Handler* handler = nullptr;
  MHD_Daemon* daemon = nullptr;
  std::unique_ptr<Listener> listener;  // accepts; libmicrohttpd has no listening socket
  std::unique_ptr<X509_STORE, StoreFree> client_ca;
  std::string key_pem, cert_pem, trust_pem;  // libmicrohttpd reads them at start
  int port = 0;
  std::atomic<bool> draining{false};

  mutable absl::Mutex mu;
  bool stopped ABSL_GUARDED_BY(mu) = false;
  std::set<std::shared_ptr<Call>> outstanding ABSL_GUARDED_BY(mu);  // handed off, unanswered
  int suspended ABSL_GUARDED_BY(mu) = 0;
  // Requests handed to OnRequest whose connection has not finished with them (answer sent, or
  // the connection closed): Stop waits for them before stopping libmicrohttpd.
  int unfinished ABSL_GUARDED_BY(mu) = 0;

  ~Impl() {
    OPENSSL_cleanse(key_pem.data(), key_pem.size());
    if (options.tls.has_value()) OPENSSL_cleanse(options.tls->key_pem.data(), options.tls->key_pem.size());
  }

  // Answer stores `response` for `call` and wakes its connection. False when already answered.
  bool Answer(const std::shared_ptr<Call>& call, Response response) {
    absl::MutexLock lock(&mu);
    if (call->answered) return false;
    call->answered = true;
    outstanding.erase(call);
    if (stopped) return true;
    call->answer = std::move(response);
    // Resumed here, under mu, so that it cannot race the suspension in OnAccess nor Stop.
    if (call->suspended) MHD_resume_connection(call->conn);
    return true;
  }

  void CheckClientCertificate(MHD_Connection* conn, Request* r);
  MHD_Result OnAccess(MHD_Connection* conn, const char* url, const char* method,
                      const char* upload_data, size_t* upload_size, void** con_cls);
};

namespace {

class ExchangeImpl final : public Exchange {
 public:
  ExchangeImpl(std::shared_ptr<Server::Impl> server, std::shared_ptr<Call> call)
      : server_(std::move(server)), call_(std::move(call)) {}
  ~ExchangeImpl() override {
    if (!done_) {
      Response r;
      r.status = 500;
      r.close = true;
      server_->Answer(call_, std::move(r));
    }
  }
  const Request& request() const override { return call_->request; }
  void Respond(Response response) override {
    if (done_) return;
    done_ = true;
    server_->Answer(call_, std::move(response));
  }

 private:
  std::shared_ptr<Server::Impl> server_;
  std::shared_ptr<Call> call_;
  bool done_ = false;
};

MHD_Result Queue(MHD_Connection* conn, const Response& r) {
  MHD_Response* resp = MHD_create_response_from_buffer(
      r.body.size(), const_cast<char*>(r.body.data()), MHD_RESPMEM_MUST_COPY);
  if (resp == nullptr) return MHD_NO;
  for (const auto& [k, v] : r.headers) MHD_add_response_header(resp, k.c_str(), v.c_str());
  if (r.close) MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
  MHD_Result ok = MHD_queue_response(conn, static_cast<unsigned int>(r.status), resp);
  MHD_destroy_response(resp);
  return ok;
}

MHD_Result CollectHeader(void* cls, MHD_ValueKind, const char* key, const char* value) {
  static_cast<Request*>(cls)->headers.emplace_back(key != nullptr ? key : "",
                                                   value != nullptr ? value : "");
  return MHD_YES;
}

std::string PeerName(MHD_Connection* conn) {
  const MHD_ConnectionInfo* info = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
  if (info == nullptr || info->client_addr == nullptr) return "";
  char host[INET6_ADDRSTRLEN] = {0};
  const sockaddr* sa = info->client_addr;
  if (sa->sa_family == AF_INET) {
    const auto* in = reinterpret_cast<const sockaddr_in*>(sa);
    inet_ntop(AF_INET, &in->sin_addr, host, sizeof(host));
    return absl::StrCat(host, ":", ntohs(in->sin_port));
  }
  if (sa->sa_family == AF_INET6) {
    const auto* in6 = reinterpret_cast<const sockaddr_in6*>(sa);
    inet_ntop(AF_INET6, &in6->sin6_addr, host, sizeof(host));
    return absl::StrCat("[", host, "]:", ntohs(in6->sin6_port));
  }
  return "";
}

MHD_Result AccessTrampoline(void* cls, MHD_Connection* conn, const char* url, const char* method,
                            const char* /*version*/, const char* upload_data, size_t* upload_size,
                            void** con_cls) {
  return static_cast<Server::Impl*>(cls)->OnAccess(conn, url, method, upload_data, upload_size,
                                                   con_cls);
}

void CompletedTrampoline(void* cls, MHD_Connection*, void** con_cls, MHD_RequestTerminationCode) {
  auto* call = static_cast<std::shared_ptr<Call>*>(*con_cls);
  if (call == nullptr) return;
  auto* impl = static_cast<Server::Impl*>(cls);
  {
    absl::MutexLock lock(&impl->mu);
    if ((*call)->counted) --impl->unfinished;
  }
  delete call;
  *con_cls = nullptr;
}

void ConnectionTrampoline(void* /*cls*/, MHD_Connection*, void** socket_context,
                          MHD_ConnectionNotificationCode code) {
  if (code == MHD_CONNECTION_NOTIFY_STARTED) {
    *socket_context = new ConnInfo();
  } else if (code == MHD_CONNECTION_NOTIFY_CLOSED) {
    delete static_cast<ConnInfo*>(*socket_context);
    *socket_context = nullptr;
  }
}

}  // namespace

void Server::Impl::CheckClientCertificate(MHD_Connection* conn, Request* r) {
  if (client_ca == nullptr) return;
  const MHD_ConnectionInfo* sc = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
  ConnInfo* ci = sc != nullptr ? static_cast<ConnInfo*>(sc->socket_context) : nullptr;
  if (ci != nullptr && ci->checked) {
    r->client_cert = ci->cert;
    r->client_cert_der = ci->der;
    r->client_cert_problem = ci->problem;
    return;
  }
  ConnInfo result;
  result.checked = true;
  const MHD_ConnectionInfo* ti = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
  gnutls_session_t session = ti != nullptr ? static_cast<gnutls_session_t>(ti->tls_session) : nullptr;
  unsigned int n = 0;
  const gnutls_datum_t* peers = session != nullptr ? gnutls_certificate_get_peers(session, &n) : nullptr;
  if (peers != nullptr && n > 0) {
    result.der.assign(reinterpret_cast<const char*>(peers[0].data), peers[0].size);
    // The TLS handshake proved the client holds the key of peers[0]; here the chain is checked
    // against the configured client CAs, with the TLS client purpose, by OpenSSL.
    X509Ptr leaf = FromDer(peers[0]);
    std::unique_ptr<STACK_OF(X509), StackFree> chain(sk_X509_new_null());
    for (unsigned int i = 1; i < n && i < 8; ++i) {
      if (X509Ptr c = FromDer(peers[i])) sk_X509_push(chain.get(), c.release());
    }
    std::unique_ptr<X509_STORE_CTX, StoreCtxFree> ctx(X509_STORE_CTX_new());
    if (leaf == nullptr) {
      result.cert = ClientCertificate::kUntrusted;
      result.problem = "the client certificate is not valid DER";
    } else if (ctx == nullptr ||
               X509_STORE_CTX_init(ctx.get(), client_ca.get(), leaf.get(), chain.get()) != 1) {
      result.cert = ClientCertificate::kUntrusted;
      result.problem = "cannot check the client certificate";
    } else {
      X509_STORE_CTX_set_purpose(ctx.get(), X509_PURPOSE_SSL_CLIENT);
      if (X509_verify_cert(ctx.get()) == 1) {
        result.cert = ClientCertificate::kVerified;
      } else {
        result.cert = ClientCertificate::kUntrusted;
        result.problem = X509_verify_cert_error_string(X509_STORE_CTX_get_error(ctx.get()));
      }
    }
    ERR_clear_error();
  }
  r->client_cert = result.cert;
  r->client_cert_der = result.der;
  r->client_cert_problem = result.problem;
  if (ci != nullptr) *ci = std::move(result);
}

MHD_Result Server::Impl::OnAccess(MHD_Connection* conn, const char* url, const char* method,
                                  const char* upload_data, size_t* upload_size, void** con_cls) {
  if (*con_cls == nullptr) {
    // First call: the request line and headers are in.
    auto call = std::make_shared<Call>();
    call->conn = conn;
    Request& r = call->request;
    r.method = method != nullptr ? method : "";
    r.path = url != nullptr ? url : "";
    MHD_get_connection_values(conn, MHD_HEADER_KIND, &CollectHeader, &r);
    if (auto cl = r.Header("Content-Length")) {
      size_t n = 0;
      if (absl::SimpleAtoi(A(*cl), &n)) r.content_length = n;
    }
    r.peer = PeerName(conn);
    CheckClientCertificate(conn, &r);
    *con_cls = new std::shared_ptr<Call>(call);
    std::optional<Response> early;
    if (draining.load(std::memory_order_relaxed)) {
      early = handler->Unavailable();
      early->close = true;
    } else if (r.content_length.has_value() && *r.content_length > options.max_body_bytes) {
      early = handler->TooLarge(r, options.max_body_bytes);
    } else {
      early = handler->OnHeaders(r);
    }
    if (early.has_value()) {
      call->handed_off = true;
      call->answered = true;
      if (r.content_length.value_or(0) > 0 && !early->close) {
        call->after_body = std::move(early);
        return MHD_YES;
      }
      return Queue(conn, *early);
    }
    return MHD_YES;
  }
  std::shared_ptr<Call> call = *static_cast<std::shared_ptr<Call>*>(*con_cls);
  if (*upload_size != 0) {
    // Body bytes. Past the limit they are read and dropped, and the answer is TooLarge.
    if (call->after_body.has_value()) {
      // Answered already: dropped.
    } else if (!call->too_large &&
               call->request.body.size() + *upload_size <= options.max_body_bytes) {
      call->request.body.append(upload_data, *upload_size);
    } else {
      call->too_large = true;
      call->request.body.clear();
    }
    *upload_size = 0;
    return MHD_YES;
  }
  if (call->after_body.has_value()) {
    Response r = std::move(*call->after_body);
    call->after_body.reset();
    return Queue(conn, r);
  }
  if (call->handed_off) {
    // Resumed: the answer is there (Answer resumes only with one).
    std::optional<Response> answer;
    {
      absl::MutexLock lock(&mu);
      if (call->suspended) {
        call->suspended = false;
        --suspended;
      }
      answer = std::move(call->answer);
      call->answer.reset();
      if (!answer.has_value()) {
        if (call->answered) return MHD_NO;  // answered after Stop began: close
        call->suspended = true;
        ++suspended;
        MHD_suspend_connection(conn);
        return MHD_YES;
      }
    }
    return Queue(conn, *answer);
  }
  call->handed_off = true;
  if (call->too_large) {
    Response r = handler->TooLarge(call->request, options.max_body_bytes);
    r.close = true;
    absl::MutexLock lock(&mu);
    call->answered = true;
    return Queue(conn, r);
  }
  {
    absl::MutexLock lock(&mu);
    outstanding.insert(call);
    call->counted = true;
    ++unfinished;
  }
  handler->OnRequest(std::make_unique<ExchangeImpl>(shared_from_this(), call));
  std::optional<Response> answer;
  {
    absl::MutexLock lock(&mu);
    if (call->answer.has_value()) {
      answer = std::move(call->answer);
      call->answer.reset();
    } else if (!call->answered) {
      // Not answered yet: wait without a thread. Answer() resumes the connection.
      call->suspended = true;
      ++suspended;
      MHD_suspend_connection(conn);
      return MHD_YES;
    }
  }
  if (!answer.has_value()) return MHD_NO;
  return Queue(conn, *answer);
}

namespace {

absl::StatusOr<std::pair<sockaddr_storage, socklen_t>> ParseAddress(const std::string& address) {
  std::string host, port;
  if (absl::StartsWith(address, "[")) {
    const size_t close = address.find("]:");
    if (close == std::string::npos) return absl::InvalidArgumentError("must be [IPv6]:port");
    host = address.substr(1, close - 1);
    port = address.substr(close + 2);
  } else {
    const size_t colon = address.rfind(':');
    if (colon == std::string::npos) return absl::InvalidArgumentError("must be host:port");
    host = address.substr(0, colon);
    port = address.substr(colon + 1);
  }
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
  addrinfo* res = nullptr;
  if (int rc = getaddrinfo(host.empty() ? nullptr : host.c_str(), port.c_str(), &hints, &res);
      rc != 0 || res == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("cannot resolve: ", gai_strerror(rc)));
  }
  std::pair<sockaddr_storage, socklen_t> out{};
  std::memcpy(&out.first, res->ai_addr, res->ai_addrlen);
  out.second = res->ai_addrlen;
  freeaddrinfo(res);
  return out;
}

}  // namespace

absl::StatusOr<std::unique_ptr<Server>> Server::Start(ServerOptions options, Handler* handler) {
  auto impl = std::make_shared<Impl>();
  impl->options = std::move(options);
  impl->handler = handler;
  const ServerOptions& o = impl->options;
  auto addr = ParseAddress(o.address);
  if (!addr.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(o.address, ": ", addr.status().message()));
  }
  absl::StatusOr<std::unique_ptr<Listener>> listener =
      Listener::Listen(reinterpret_cast<const sockaddr*>(&addr->first), addr->second);
  if (!listener.ok()) {
    return absl::UnavailableError(
        absl::StrCat("cannot serve HTTP on ", o.address, ": ", listener.status().message()));
  }
  impl->listener = *std::move(listener);
  // Connections come from the Listener (listener.h says why), through the inter-thread channel
  // that wakes the worker they are given to.
  unsigned int flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME |
                       MHD_USE_NO_LISTEN_SOCKET | MHD_USE_ITC;
  std::vector<MHD_OptionItem> opts;
  opts.push_back({MHD_OPTION_CONNECTION_LIMIT, static_cast<intptr_t>(o.max_connections), nullptr});
  opts.push_back({MHD_OPTION_CONNECTION_TIMEOUT,
                  static_cast<intptr_t>(std::max<int64_t>(1, absl::ToInt64Seconds(o.idle_timeout))),
                  nullptr});
  opts.push_back({MHD_OPTION_CONNECTION_MEMORY_LIMIT, static_cast<intptr_t>(o.header_memory_bytes),
                  nullptr});
  opts.push_back({MHD_OPTION_THREAD_POOL_SIZE, static_cast<intptr_t>(std::max(1, o.threads)), nullptr});
  opts.push_back({MHD_OPTION_NOTIFY_COMPLETED, reinterpret_cast<intptr_t>(&CompletedTrampoline),
                  impl.get()});
  opts.push_back({MHD_OPTION_NOTIFY_CONNECTION, reinterpret_cast<intptr_t>(&ConnectionTrampoline),
                  nullptr});
  if (o.tls.has_value()) {
    flags |= MHD_USE_TLS;
    impl->key_pem = o.tls->key_pem;
    impl->cert_pem = o.tls->cert_pem;
    opts.push_back({MHD_OPTION_HTTPS_MEM_KEY, 0, impl->key_pem.data()});
    opts.push_back({MHD_OPTION_HTTPS_MEM_CERT, 0, impl->cert_pem.data()});
    // TLS 1.2 and 1.3 only (GnuTLS priority string).
    opts.push_back({MHD_OPTION_HTTPS_PRIORITIES, 0,
                    const_cast<char*>("NORMAL:-VERS-ALL:+VERS-TLS1.3:+VERS-TLS1.2")});
    if (!o.tls->client_ca_pem.empty()) {
      auto store = StoreFromPem(o.tls->client_ca_pem);
      if (!store.ok()) return store.status();
      impl->client_ca = *std::move(store);
      // With a trust list libmicrohttpd asks the client for a certificate (not required: a
      // client without one gets the Handler's answer, not a failed handshake).
      impl->trust_pem = o.tls->client_ca_pem;
      opts.push_back({MHD_OPTION_HTTPS_MEM_TRUST, 0, impl->trust_pem.data()});
    }
  }
  opts.push_back({MHD_OPTION_END, 0, nullptr});
  impl->daemon = MHD_start_daemon(flags, 0, nullptr, nullptr, &AccessTrampoline, impl.get(),
                                  MHD_OPTION_ARRAY, opts.data(), MHD_OPTION_END);
  if (impl->daemon == nullptr) {
    return absl::UnavailableError(absl::StrCat(
        "cannot serve HTTP on ", o.address,
        o.tls.has_value() ? " (is the TLS certificate or key usable?)" : ""));
  }
  impl->port = impl->listener->port();
  // MHD_add_connection gives a connection to the worker its descriptor names (modulo the pool
  // size, the next one with room when that one is full), and closes it when none has room.
  impl->listener->Start([daemon = impl->daemon](int fd, const sockaddr* peer, socklen_t len) {
    (void)MHD_add_connection(daemon, fd, peer, len);
  });
  return std::unique_ptr<Server>(new Server(std::move(impl)));
}

Server::Server(std::shared_ptr<Impl> impl) : impl_(std::move(impl)) {}

Server::~Server() { Stop(absl::Now()); }

int Server::port() const { return impl_->port; }

void Server::Drain() { impl_->draining.store(true); }

int Server::in_flight() const {
  absl::MutexLock lock(&impl_->mu);
  return static_cast<int>(impl_->outstanding.size());
}

void Server::Stop(absl::Time deadline) {
  Drain();
  {
    absl::MutexLock lock(&impl_->mu);
    if (impl_->stopped) return;
    // Requests in progress finish until the deadline.
    auto none = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(impl_->mu) {
      return impl_->outstanding.empty();
    };
    impl_->mu.AwaitWithDeadline(absl::Condition(&none), deadline);
  }
  // The rest are answered now: libmicrohttpd must not be stopped with suspended connections.
  std::vector<std::shared_ptr<Call>> left;
  {
    absl::MutexLock lock(&impl_->mu);
    left.assign(impl_->outstanding.begin(), impl_->outstanding.end());
  }
  for (const auto& call : left) {
    Response r = impl_->handler->Unavailable();
    r.close = true;
    impl_->Answer(call, std::move(r));
  }
  {
    absl::MutexLock lock(&impl_->mu);
    // Every answer sent (or its connection gone) before libmicrohttpd stops and closes them.
    auto resumed = [this]() ABSL_EXCLUSIVE_LOCKS_REQUIRED(impl_->mu) {
      return impl_->suspended == 0 && impl_->unfinished == 0;
    };
    impl_->mu.AwaitWithTimeout(absl::Condition(&resumed), absl::Seconds(2));
    impl_->stopped = true;
  }
  impl_->listener->Stop();  // no connection is added to a stopping libmicrohttpd
  MHD_stop_daemon(impl_->daemon);
  impl_->daemon = nullptr;
}

}  // namespace shaken::http
