#include "stir/x5u_fetcher.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <fstream>
#include <list>
#include <mutex>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/container/flat_hash_map.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"

namespace shaken::stir {
namespace {

struct CurlUrlDeleter {
  void operator()(CURLU* u) const { curl_url_cleanup(u); }
};
struct CurlEasyDeleter {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
struct CurlFreeDeleter {
  void operator()(char* p) const { curl_free(p); }
};
using CurlUrlPtr = std::unique_ptr<CURLU, CurlUrlDeleter>;
using CurlEasyPtr = std::unique_ptr<CURL, CurlEasyDeleter>;

// curl_global_init is not thread-safe in every libcurl build we might meet; do it once.
void GlobalInit() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

// GetPart returns a URL part, or nullopt when libcurl reports it absent.
std::optional<std::string> GetPart(CURLU* url, CURLUPart part, unsigned flags = 0) {
  char* raw = nullptr;
  if (curl_url_get(url, part, &raw, flags) != CURLUE_OK || raw == nullptr) return std::nullopt;
  std::unique_ptr<char, CurlFreeDeleter> owned(raw);
  return std::string(raw);
}

// Transfer is the per-fetch state the libcurl callbacks see.
struct Transfer {
  const X5uFetcherOptions* options = nullptr;
  size_t max_body = 0;  // max_body_bytes, or max_crl_bytes for a CRL
  std::string body;
  bool too_large = false;
  bool address_blocked = false;
  std::string blocked_address;
  std::string cache_control;
  std::string expires;
  std::string date;
};

size_t WriteCallback(char* data, size_t size, size_t nmemb, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const size_t n = size * nmemb;
  if (t->body.size() + n > t->max_body) {
    t->too_large = true;
    return 0;  // aborts the transfer (CURLE_WRITE_ERROR)
  }
  t->body.append(data, n);
  return n;
}

size_t HeaderCallback(char* data, size_t size, size_t nmemb, void* user) {
  auto* t = static_cast<Transfer*>(user);
  const size_t n = size * nmemb;
  std::string_view line(data, n);
  if (line.starts_with("HTTP/")) {  // a new response (e.g. after 100 Continue)
    t->cache_control.clear();
    t->expires.clear();
    t->date.clear();
    return n;
  }
  size_t colon = line.find(':');
  if (colon == std::string_view::npos) return n;
  std::string name = absl::AsciiStrToLower(absl::string_view(line.data(), colon));
  std::string_view value = line.substr(colon + 1);
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
  while (!value.empty() && (value.back() == '\r' || value.back() == '\n' || value.back() == ' ')) {
    value.remove_suffix(1);
  }
  constexpr size_t kMaxHeaderValue = 1024;
  if (value.size() > kMaxHeaderValue) return n;  // ignore absurd values rather than fail
  if (name == "cache-control") {
    if (!t->cache_control.empty()) t->cache_control += ",";
    if (t->cache_control.size() < 4 * kMaxHeaderValue) t->cache_control.append(value);
  } else if (name == "expires") {
    t->expires.assign(value);
  } else if (name == "date") {
    t->date.assign(value);
  }
  return n;
}

curl_socket_t OpenSocketCallback(void* user, curlsocktype purpose, struct curl_sockaddr* address) {
  auto* t = static_cast<Transfer*>(user);
  if (!IsAddressAllowed(&address->addr, *t->options)) {
    t->address_blocked = true;
    char text[INET6_ADDRSTRLEN] = "?";
    if (address->family == AF_INET) {
      inet_ntop(AF_INET, &reinterpret_cast<const sockaddr_in*>(&address->addr)->sin_addr, text,
                sizeof(text));
    } else if (address->family == AF_INET6) {
      inet_ntop(AF_INET6, &reinterpret_cast<const sockaddr_in6*>(&address->addr)->sin6_addr, text,
                sizeof(text));
    }
    t->blocked_address = text;
    return CURL_SOCKET_BAD;
  }
  return socket(address->family, address->socktype | SOCK_CLOEXEC, address->protocol);
}

// ParseCacheControl reads the directives we use (RFC 9111 §5.2.2).
void ParseCacheControl(std::string_view value, FetchResult* out) {
  std::optional<absl::Duration> max_age, s_maxage;
  while (!value.empty()) {
    size_t comma = value.find(',');
    std::string_view item = value.substr(0, comma);
    value = comma == std::string_view::npos ? std::string_view() : value.substr(comma + 1);
    std::string directive(absl::StripAsciiWhitespace(absl::string_view(item.data(), item.size())));
    directive = absl::AsciiStrToLower(directive);
    size_t eq = directive.find('=');
    std::string name = directive.substr(0, eq);
    std::string arg = eq == std::string::npos ? "" : directive.substr(eq + 1);
    if (arg.size() >= 2 && arg.front() == '"' && arg.back() == '"')
      arg = arg.substr(1, arg.size() - 2);
    if (name == "no-store" || name == "no-cache") {
      out->no_store = true;
    } else if (name == "max-age" || name == "s-maxage") {
      int64_t seconds = 0;
      if (arg.empty() || arg.size() > 12 ||
          arg.find_first_not_of("0123456789") != std::string::npos ||
          !absl::SimpleAtoi(arg, &seconds)) {
        continue;  // RFC 9111 §4.2.1: an invalid value is ignored here (treated as absent)
      }
      (name == "max-age" ? max_age : s_maxage) = absl::Seconds(seconds);
    }
  }
  out->max_age = s_maxage.has_value() ? s_maxage : max_age;
}

std::optional<absl::Time> ParseHttpDate(const std::string& value) {
  if (value.empty()) return std::nullopt;
  time_t t = curl_getdate(value.c_str(), nullptr);
  if (t == -1) return std::nullopt;
  return absl::FromTimeT(t);
}

Reason MapCurlError(CURLcode code, const Transfer& t) {
  if (t.too_large) return Reason::kFetchTooLarge;
  if (t.address_blocked && (code == CURLE_COULDNT_CONNECT || code == CURLE_OPERATION_TIMEDOUT)) {
    return Reason::kFetchAddressBlocked;
  }
  switch (code) {
    case CURLE_COULDNT_RESOLVE_HOST:
      return Reason::kFetchDns;
    case CURLE_COULDNT_CONNECT:
      return Reason::kFetchConnect;
    case CURLE_OPERATION_TIMEDOUT:
      return Reason::kFetchTimeout;
    case CURLE_FILESIZE_EXCEEDED:
      return Reason::kFetchTooLarge;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_SHUTDOWN_FAILED:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_USE_SSL_FAILED:
      return Reason::kFetchTls;
    case CURLE_UNSUPPORTED_PROTOCOL:
    case CURLE_URL_MALFORMAT:
      return Reason::kX5uNotAllowed;
    case CURLE_TOO_MANY_REDIRECTS:
      return Reason::kFetchRedirect;
    default:
      return Reason::kFetchFailed;
  }
}

// ParseAllowedUrl applies the URL policy; on success `*out` holds libcurl's parse.
FetchResult ParseAllowedUrl(std::string_view url, const X5uPolicy& options,
                            CurlUrlPtr* out) {
  auto refuse = [](std::string why) {
    return FetchResult::Failure(Reason::kX5uNotAllowed, std::move(why));
  };
  if (url.empty()) return refuse("the x5u URL is empty");
  if (url.size() > options.max_url_bytes) {
    return refuse(absl::StrCat("the x5u URL is longer than ", options.max_url_bytes, " bytes"));
  }
  for (char c : url) {
    if (c <= 0x20 || c >= 0x7F || c == '\\') {
      return refuse("the x5u URL has a space, control, backslash or non-ASCII character");
    }
  }
  // The characters are checked as well as libcurl's parts: libcurl reports an empty query or
  // fragment ("...pem?") as absent.
  if (url.find('?') != std::string_view::npos) return refuse("the x5u URL has a query");
  if (url.find('#') != std::string_view::npos) return refuse("the x5u URL has a fragment");
  // libcurl tolerates "https:///host/..." and other slash variants; require "scheme://authority".
  const size_t sep = url.find("://");
  if (sep == std::string_view::npos || sep + 3 >= url.size() || url[sep + 3] == '/') {
    return refuse("the x5u URL must have the form https://host[:port]/path");
  }
  GlobalInit();
  CurlUrlPtr parsed(curl_url());
  if (!parsed) return FetchResult::Failure(Reason::kFetchFailed, "out of memory");
  std::string copy(url);
  CURLUcode rc = curl_url_set(parsed.get(), CURLUPART_URL, copy.c_str(), CURLU_NON_SUPPORT_SCHEME);
  if (rc != CURLUE_OK) {
    return refuse(absl::StrCat("the x5u URL is malformed: ", curl_url_strerror(rc)));
  }
  std::optional<std::string> scheme = GetPart(parsed.get(), CURLUPART_SCHEME);
  if (!scheme || !(*scheme == "https" || (*scheme == "http" && options.allow_http))) {
    return refuse(absl::StrCat("the x5u URL scheme must be https (ATIS-1000080), not '",
                               scheme.value_or(""), "'"));
  }
  if (GetPart(parsed.get(), CURLUPART_USER) || GetPart(parsed.get(), CURLUPART_PASSWORD) ||
      GetPart(parsed.get(), CURLUPART_OPTIONS) || url.find('@') != std::string_view::npos) {
    return refuse("the x5u URL has userinfo ('user@host')");
  }
  if (GetPart(parsed.get(), CURLUPART_QUERY)) return refuse("the x5u URL has a query");
  if (GetPart(parsed.get(), CURLUPART_FRAGMENT)) return refuse("the x5u URL has a fragment");
  std::optional<std::string> host = GetPart(parsed.get(), CURLUPART_HOST);
  if (!host || host->empty()) return refuse("the x5u URL has no host");
  std::optional<std::string> port = GetPart(parsed.get(), CURLUPART_PORT, CURLU_DEFAULT_PORT);
  const bool port_ok = port == "443" || port == "8443" || (*scheme == "http" && port == "80");
  if (!options.allow_any_port && !port_ok) {
    return refuse(absl::StrCat("the x5u URL port must be 443 or 8443 (ATIS-1000080), not ",
                               port.value_or("?")));
  }
  *out = std::move(parsed);
  return FetchResult{};
}

}  // namespace


std::optional<absl::Duration> FetchResult::FreshnessLifetime(absl::Time now) const {
  if (no_store) return absl::ZeroDuration();
  if (max_age.has_value()) return *max_age;
  if (expires.has_value()) {
    absl::Duration d = *expires - date.value_or(now);
    return d < absl::ZeroDuration() ? absl::ZeroDuration() : d;
  }
  return std::nullopt;
}

X5uPolicy CrlPolicy(const X5uPolicy& x5u) {
  X5uPolicy crl = x5u;
  crl.allow_http = true;
  return crl;
}

FetchResult CheckX5uUrl(std::string_view url, const X5uPolicy& options) {
  CurlUrlPtr parsed;
  return ParseAllowedUrl(url, options, &parsed);
}

absl::StatusOr<std::unique_ptr<X5uFetcher>> X5uFetcher::New(X5uFetcherOptions options) {
  if (options.connect_timeout <= absl::ZeroDuration() ||
      options.total_timeout <= absl::ZeroDuration()) {
    return absl::InvalidArgumentError("x5u fetch timeouts must be positive");
  }
  if (options.max_body_bytes == 0 || options.max_crl_bytes == 0) {
    return absl::InvalidArgumentError("x5u max_body_bytes and max_crl_bytes must be positive");
  }
  if (options.max_in_flight < 1 || options.max_per_host < 1 || options.max_queued < 0) {
    return absl::InvalidArgumentError(
        "x5u fetch limits: max_in_flight and max_per_host must be at least 1, max_queued at "
        "least 0");
  }
  if (!options.tls_ca_file.empty() && !std::ifstream(options.tls_ca_file).good()) {
    return absl::InvalidArgumentError(
        absl::StrCat("cannot read the x5u TLS CA file ", options.tls_ca_file));
  }
  GlobalInit();
  return std::unique_ptr<X5uFetcher>(new X5uFetcher(std::move(options)));
}

// FetchRequest is one fetch: libcurl's easy handle and everything its callbacks write into.
struct X5uFetcher::Request {
  std::string url;
  std::string host;  // "host:port", the per-host limit's key
  absl::Time deadline = absl::InfiniteFuture();
  FetchDone done;
  CurlUrlPtr parsed;  // CURLOPT_CURLU points at it: lives as long as the easy handle
  CurlEasyPtr easy;
  Transfer transfer;
  char error[CURL_ERROR_SIZE] = "";
  bool waited_for_host = false;
  bool waited_for_slot = false;
  BodyKind kind = BodyKind::kCertificates;
};

absl::StatusOr<std::unique_ptr<X5uFetcher::Request>> X5uFetcher::Prepare(
    std::string_view url, BodyKind kind, FetchResult* refusal) const {
  auto req = std::make_unique<Request>();
  req->kind = kind;
  const bool crl = kind == BodyKind::kCrl;
  const X5uPolicy policy_in_force = crl ? CrlPolicy(options_) : X5uPolicy(options_);
  FetchResult policy = ParseAllowedUrl(url, policy_in_force, &req->parsed);
  if (!policy.ok()) {
    *refusal = std::move(policy);
    return absl::InvalidArgumentError("refused");
  }
  req->url = std::string(url);
  req->host = absl::StrCat(GetPart(req->parsed.get(), CURLUPART_HOST).value_or(""), ":",
                           GetPart(req->parsed.get(), CURLUPART_PORT, CURLU_DEFAULT_PORT)
                               .value_or(""));
  req->easy.reset(curl_easy_init());
  if (!req->easy) {
    *refusal = FetchResult::Failure(Reason::kFetchFailed, "curl_easy_init failed");
    return absl::InternalError("curl_easy_init");
  }
  Transfer& t = req->transfer;
  t.options = &options_;
  t.max_body = crl ? options_.max_crl_bytes : options_.max_body_bytes;
  CURL* c = req->easy.get();
  curl_easy_setopt(c, CURLOPT_CURLU, req->parsed.get());
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, policy_in_force.allow_http ? "http,https" : "https");
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);  // thread-safe timeouts
  curl_easy_setopt(c, CURLOPT_PROXY, "");     // ignore http_proxy & co: the guard checks peers
  curl_easy_setopt(c, CURLOPT_NETRC, static_cast<long>(CURL_NETRC_IGNORED));
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(absl::ToInt64Milliseconds(options_.connect_timeout)));
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS,
                   static_cast<long>(absl::ToInt64Milliseconds(options_.total_timeout)));
  curl_easy_setopt(c, CURLOPT_MAXFILESIZE_LARGE, static_cast<curl_off_t>(t.max_body));
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
  curl_easy_setopt(c, CURLOPT_SSLVERSION, static_cast<long>(CURL_SSLVERSION_TLSv1_2));
  if (!options_.tls_ca_file.empty()) {
    curl_easy_setopt(c, CURLOPT_CAINFO, options_.tls_ca_file.c_str());
    curl_easy_setopt(c, CURLOPT_CAPATH, nullptr);  // only the configured CA file
  }
  curl_easy_setopt(c, CURLOPT_USERAGENT, options_.user_agent.c_str());
  curl_easy_setopt(c, CURLOPT_FORBID_REUSE, 1L);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, req->error);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, WriteCallback);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, HeaderCallback);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &t);
  curl_easy_setopt(c, CURLOPT_OPENSOCKETFUNCTION, OpenSocketCallback);
  curl_easy_setopt(c, CURLOPT_OPENSOCKETDATA, &t);
  return req;
}

FetchResult X5uFetcher::Complete(int curl_code, Request& req) const {
  const CURLcode rc = static_cast<CURLcode>(curl_code);
  CURL* c = req.easy.get();
  Transfer& t = req.transfer;
  if (rc != CURLE_OK) {
    Reason reason = MapCurlError(rc, t);
    std::string detail;
    if (reason == Reason::kFetchTooLarge) {
      detail = absl::StrCat("the ",
                            req.kind == BodyKind::kCrl       ? "CRL"
                            : req.kind == BodyKind::kContent ? "content"
                                                             : "x5u",
                            " response is larger than ",
                            t.max_body, " bytes");
    } else if (reason == Reason::kFetchAddressBlocked) {
      detail = absl::StrCat("the x5u host resolves to a non-public address (", t.blocked_address,
                            "); refused by the SSRF guard");
    } else {
      detail =
          absl::StrCat("x5u fetch failed: ", req.error[0] ? req.error : curl_easy_strerror(rc));
    }
    return FetchResult::Failure(reason, std::move(detail));
  }

  FetchResult out;
  curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &out.http_status);
  if (out.http_status >= 300 && out.http_status < 400) {
    FetchResult f = FetchResult::Failure(Reason::kFetchRedirect,
                                         absl::StrCat("the x5u server answered ", out.http_status,
                                                      " (a redirect); redirects are not followed"));
    f.http_status = out.http_status;
    return f;
  }
  if (out.http_status != 200) {
    FetchResult f = FetchResult::Failure(
        Reason::kFetchHttpStatus,
        absl::StrCat("the x5u server answered HTTP ", out.http_status, "; expected 200"));
    f.http_status = out.http_status;
    return f;
  }
  char* content_type = nullptr;
  if (curl_easy_getinfo(c, CURLINFO_CONTENT_TYPE, &content_type) == CURLE_OK && content_type) {
    out.content_type = std::string(content_type).substr(0, 256);
  }
  // CE-13: the body is a PEM chain; the validator parses it strictly, this is the early check.
  if (req.kind == BodyKind::kCertificates &&
      std::string_view(t.body).find("-----BEGIN CERTIFICATE-----") == std::string_view::npos) {
    FetchResult f = FetchResult::Failure(Reason::kFetchNotPem,
                                         "the x5u response body is not a PEM certificate chain");
    f.http_status = out.http_status;
    f.content_type = out.content_type;
    return f;
  }
  ParseCacheControl(t.cache_control, &out);
  out.expires = ParseHttpDate(t.expires);
  if (!t.expires.empty() && !out.expires.has_value()) {
    out.expires = absl::InfinitePast();  // RFC 9111 §5.3: an invalid Expires means "expired"
  }
  out.date = ParseHttpDate(t.date);
  out.body = std::move(t.body);
  return out;
}

FetchResult X5uFetcher::Fetch(std::string_view url) const {
  return FetchBody(url, BodyKind::kCertificates);
}

FetchResult X5uFetcher::FetchContent(std::string_view url) const {
  return FetchBody(url, BodyKind::kContent);
}

FetchResult X5uFetcher::FetchBody(std::string_view url, BodyKind kind) const {
  FetchResult refusal;
  absl::StatusOr<std::unique_ptr<Request>> req = Prepare(url, kind, &refusal);
  if (!req.ok()) return refusal;
  const CURLcode rc = curl_easy_perform((*req)->easy.get());
  return Complete(rc, **req);
}

// Loop runs every asynchronous fetch on one thread with libcurl's multi interface: thousands of
// slow servers cost file descriptors and memory, not threads. It starts fetches in arrival order
// while fewer than max_in_flight run in all and fewer than max_per_host run to the fetch's host;
// the others wait (FIFO; one at its host's limit does not hold up other hosts). A waiting fetch
// whose deadline passes is answered then, without touching the network.
class X5uFetcher::Loop {
 public:
  Loop(const X5uFetcher* fetcher, const X5uFetcherOptions& options)
      : fetcher_(fetcher), options_(options), multi_(curl_multi_init()) {
    thread_ = std::thread([this] { Run(); });
  }

  ~Loop() {
    {
      absl::MutexLock lock(&mu_);
      stopping_ = true;
    }
    curl_multi_wakeup(multi_);
    thread_.join();
    curl_multi_cleanup(multi_);
  }

  void Submit(std::unique_ptr<Request> req) {
    {
      absl::MutexLock lock(&mu_);
      if (!stopping_ && waiting_.load(std::memory_order_relaxed) < options_.max_queued) {
        waiting_.fetch_add(1, std::memory_order_relaxed);
        incoming_.push_back(std::move(req));
        req = nullptr;
      }
    }
    if (req == nullptr) {
      curl_multi_wakeup(multi_);
      return;
    }
    shed_.fetch_add(1, std::memory_order_relaxed);
    FetchResult f = FetchResult::Failure(
        Reason::kFetchFailed, absl::StrCat("x5u fetch not attempted: ", options_.max_queued,
                                           " fetches already wait for a slot (overload)"));
    f.shed = true;
    std::move(req->done)(std::move(f));
  }

  FetchLoopStats Stats() const {
    FetchLoopStats s;
    s.in_flight = in_flight_.load(std::memory_order_relaxed);
    s.waiting = waiting_.load(std::memory_order_relaxed);
    s.host_limit_waits = host_limit_waits_.load(std::memory_order_relaxed);
    s.global_limit_waits = global_limit_waits_.load(std::memory_order_relaxed);
    s.shed = shed_.load(std::memory_order_relaxed);
    return s;
  }

 private:
  void Run() {
    std::vector<std::unique_ptr<Request>> arrived;
    while (true) {
      {
        absl::MutexLock lock(&mu_);
        if (stopping_) break;
        arrived.swap(incoming_);
      }
      for (auto& r : arrived) pending_.push_back(std::move(r));
      arrived.clear();
      const absl::Time now = absl::Now();
      ExpireWaiting(now);
      StartWaiting();
      int running = 0;
      curl_multi_perform(multi_, &running);
      CollectDone();

      long timeout_ms = -1;
      curl_multi_timeout(multi_, &timeout_ms);
      if (timeout_ms < 0 || timeout_ms > 1000) timeout_ms = 1000;
      for (const auto& r : pending_) {
        if (r->deadline < absl::InfiniteFuture()) {
          const int64_t until = absl::ToInt64Milliseconds(r->deadline - now) + 1;
          timeout_ms = std::max<long>(0, std::min<long>(timeout_ms, until));
        }
      }
      curl_multi_poll(multi_, nullptr, 0, static_cast<int>(timeout_ms), nullptr);
    }
    // Stopping: abandon what runs and what waits; every caller still gets its answer.
    for (auto& [easy, req] : active_) {
      curl_multi_remove_handle(multi_, easy);
      Answer(*req, FetchResult::Failure(Reason::kFetchFailed, "x5u fetcher stopped"));
    }
    active_.clear();
    {
      absl::MutexLock lock(&mu_);
      for (auto& r : incoming_) pending_.push_back(std::move(r));
      incoming_.clear();
    }
    for (auto& r : pending_) {
      Answer(*r, FetchResult::Failure(Reason::kFetchFailed, "x5u fetcher stopped"));
    }
    pending_.clear();
  }

  void Answer(Request& req, FetchResult result) { std::move(req.done)(std::move(result)); }

  void ExpireWaiting(absl::Time now) {
    for (auto it = pending_.begin(); it != pending_.end();) {
      if ((*it)->deadline > now) {
        ++it;
        continue;
      }
      std::unique_ptr<Request> req = std::move(*it);
      it = pending_.erase(it);
      waiting_.fetch_sub(1, std::memory_order_relaxed);
      shed_.fetch_add(1, std::memory_order_relaxed);
      FetchResult f = FetchResult::Failure(
          Reason::kFetchTimeout,
          absl::StrCat("no x5u fetch slot before the deadline: ", host_active_[req->host],
                       " fetches to ", req->host, " and ", active_.size(),
                       " in all were in progress (limits ", options_.max_per_host, " per host, ",
                       options_.max_in_flight, " in all)"));
      f.shed = true;
      Answer(*req, std::move(f));
    }
  }

  void StartWaiting() {
    for (auto it = pending_.begin(); it != pending_.end();) {
      Request& req = **it;
      if (static_cast<int>(active_.size()) >= options_.max_in_flight) {
        for (auto rest = it; rest != pending_.end(); ++rest) {
          if (!(*rest)->waited_for_slot) {
            (*rest)->waited_for_slot = true;
            global_limit_waits_.fetch_add(1, std::memory_order_relaxed);
          }
        }
        return;
      }
      int& on_host = host_active_[req.host];
      if (on_host >= options_.max_per_host) {
        if (!req.waited_for_host) {
          req.waited_for_host = true;
          host_limit_waits_.fetch_add(1, std::memory_order_relaxed);
        }
        ++it;
        continue;
      }
      ++on_host;
      std::unique_ptr<Request> owned = std::move(*it);
      it = pending_.erase(it);
      waiting_.fetch_sub(1, std::memory_order_relaxed);
      in_flight_.fetch_add(1, std::memory_order_relaxed);
      CURL* easy = owned->easy.get();
      curl_multi_add_handle(multi_, easy);
      active_.emplace(easy, std::move(owned));
    }
  }

  void CollectDone() {
    int left = 0;
    while (CURLMsg* msg = curl_multi_info_read(multi_, &left)) {
      if (msg->msg != CURLMSG_DONE) continue;
      CURL* easy = msg->easy_handle;
      const CURLcode rc = msg->data.result;
      auto it = active_.find(easy);
      if (it == active_.end()) continue;
      std::unique_ptr<Request> req = std::move(it->second);
      active_.erase(it);
      curl_multi_remove_handle(multi_, easy);
      if (--host_active_[req->host] == 0) host_active_.erase(req->host);
      in_flight_.fetch_sub(1, std::memory_order_relaxed);
      Answer(*req, fetcher_->Complete(rc, *req));
    }
  }

  const X5uFetcher* fetcher_;
  const X5uFetcherOptions& options_;
  CURLM* const multi_;
  std::thread thread_;

  absl::Mutex mu_;
  bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  std::vector<std::unique_ptr<Request>> incoming_ ABSL_GUARDED_BY(mu_);

  // The loop thread's own.
  std::list<std::unique_ptr<Request>> pending_;
  absl::flat_hash_map<CURL*, std::unique_ptr<Request>> active_;
  absl::flat_hash_map<std::string, int> host_active_;

  std::atomic<int> in_flight_{0};
  std::atomic<int> waiting_{0};
  std::atomic<uint64_t> host_limit_waits_{0};
  std::atomic<uint64_t> global_limit_waits_{0};
  std::atomic<uint64_t> shed_{0};
};

X5uFetcher::X5uFetcher(X5uFetcherOptions options) : options_(std::move(options)) {}
X5uFetcher::~X5uFetcher() = default;

void X5uFetcher::FetchAsync(std::string_view url, absl::Time deadline, FetchDone done) const {
  Submit(url, BodyKind::kCertificates, deadline, std::move(done));
}

void X5uFetcher::FetchCrlAsync(std::string_view url, absl::Time deadline, FetchDone done) const {
  Submit(url, BodyKind::kCrl, deadline, std::move(done));
}

void X5uFetcher::FetchContentAsync(std::string_view url, absl::Time deadline,
                                   FetchDone done) const {
  Submit(url, BodyKind::kContent, deadline, std::move(done));
}

void X5uFetcher::Submit(std::string_view url, BodyKind kind, absl::Time deadline,
                        FetchDone done) const {
  FetchResult refusal;
  absl::StatusOr<std::unique_ptr<Request>> req = Prepare(url, kind, &refusal);
  if (!req.ok()) {
    std::move(done)(std::move(refusal));
    return;
  }
  (*req)->deadline = deadline;
  (*req)->done = std::move(done);
  std::call_once(loop_once_, [this] {
    loop_ = std::make_unique<Loop>(this, options_);
    loop_started_.store(loop_.get(), std::memory_order_release);
  });
  loop_->Submit(*std::move(req));
}

FetchLoopStats X5uFetcher::LoopStats() const {
  const Loop* loop = loop_started_.load(std::memory_order_acquire);
  return loop != nullptr ? loop->Stats() : FetchLoopStats{};
}

}  // namespace shaken::stir
