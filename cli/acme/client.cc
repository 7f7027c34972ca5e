#include "cli/acme/client.h"

#include <curl/curl.h>

#include <algorithm>
#include <thread>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "cli/acme/problem.h"
#include "stir/absl_compat.h"
#include "stir/base64url.h"
#include "stir/status_macros.h"

namespace shaken::acme {
namespace {

constexpr size_t kMaxBody = 1 << 20;

struct Collect {
  HttpResult* out;
  bool too_large = false;
};

size_t OnBody(char* data, size_t size, size_t n, void* user) {
  auto* c = static_cast<Collect*>(user);
  if (c->out->body.size() + size * n > kMaxBody) {
    c->too_large = true;
    return 0;
  }
  c->out->body.append(data, size * n);
  return size * n;
}

size_t OnHeader(char* data, size_t size, size_t n, void* user) {
  auto* c = static_cast<Collect*>(user);
  absl::string_view line(data, size * n);
  if (absl::StartsWith(line, "HTTP/")) c->out->headers.clear();  // a new response (100, ...)
  size_t colon = line.find(':');
  if (colon != absl::string_view::npos) {
    std::string name = absl::AsciiStrToLower(line.substr(0, colon));
    c->out->headers[name] = std::string(absl::StripAsciiWhitespace(line.substr(colon + 1)));
  }
  return size * n;
}

struct CurlFree {
  void operator()(CURL* c) const { curl_easy_cleanup(c); }
};
struct SlistFree {
  void operator()(curl_slist* s) const { curl_slist_free_all(s); }
};

}  // namespace

std::string HttpResult::Header(const std::string& lower_name) const {
  auto it = headers.find(lower_name);
  return it == headers.end() ? std::string() : it->second;
}

absl::Status ProblemFromResponse(const HttpResult& r, std::string_view what) {
  Json j = Json::parse(r.body, nullptr, /*allow_exceptions=*/false);
  if (j.is_object() && j.contains("type") && j["type"].is_string()) {
    absl::string_view type = j["type"].get_ref<const std::string&>();
    absl::ConsumePrefix(&type, kProblemPrefix);
    std::string detail = StringMember(j, "detail");
    return Problem(type, absl::StrCat(ToAbsl(what), ": ", type, ": ", detail));
  }
  return absl::UnavailableError(
      absl::StrCat(ToAbsl(what), ": HTTP ", r.status, " ", r.body.substr(0, 200)));
}

absl::StatusOr<std::unique_ptr<AcmeClient>> AcmeClient::Connect(std::string directory_url,
                                                                const stir::Signer* signer,
                                                                const EVP_PKEY* account_key,
                                                                ClientOptions options) {
  curl_global_init(CURL_GLOBAL_DEFAULT);
  std::unique_ptr<AcmeClient> c(new AcmeClient(signer, account_key, std::move(options)));
  ASSIGN_OR_RETURN(c->jwk_, JwkOf(account_key));
  ASSIGN_OR_RETURN(HttpResult r, c->Send("GET", directory_url, "", ""));
  if (r.status != 200) return ProblemFromResponse(r, absl::StrCat("directory ", directory_url));
  c->directory_ = Json::parse(r.body, nullptr, false);
  if (!c->directory_.is_object() || !c->directory_.contains("newNonce") ||
      !c->directory_.contains("newAccount") || !c->directory_.contains("newOrder")) {
    return absl::InvalidArgumentError(
        absl::StrCat(directory_url, " is not an ACME directory (newNonce, newAccount, newOrder)"));
  }
  return c;
}

AcmeClient::~AcmeClient() = default;

std::string AcmeClient::DirectoryUrl(const char* name) const {
  return StringMember(directory_, name);
}

absl::StatusOr<HttpResult> AcmeClient::Send(const std::string& method, const std::string& url,
                                            std::string_view body, std::string_view content_type) {
  if (!absl::StartsWith(url, "https://") && !absl::StartsWith(url, "http://")) {
    return absl::InvalidArgumentError(absl::StrCat("not an http(s) URL: ", url));
  }
  std::unique_ptr<CURL, CurlFree> curl(curl_easy_init());
  if (!curl) return absl::InternalError("curl_easy_init failed");
  HttpResult out;
  Collect collect{&out};
  std::unique_ptr<curl_slist, SlistFree> headers;
  if (!content_type.empty()) {
    headers.reset(
        curl_slist_append(nullptr, absl::StrCat("Content-Type: ", ToAbsl(content_type)).c_str()));
  }
  CURL* h = curl.get();
  curl_easy_setopt(h, CURLOPT_URL, url.c_str());
  curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
  curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(h, CURLOPT_TIMEOUT_MS,
                   static_cast<long>(absl::ToInt64Milliseconds(options_.request_timeout)));
  curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, 10000L);
  curl_easy_setopt(h, CURLOPT_USERAGENT, "shakenctl-acme/1");
  if (!options_.tls_ca_file.empty())
    curl_easy_setopt(h, CURLOPT_CAINFO, options_.tls_ca_file.c_str());
  curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, &OnBody);
  curl_easy_setopt(h, CURLOPT_WRITEDATA, &collect);
  curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, &OnHeader);
  curl_easy_setopt(h, CURLOPT_HEADERDATA, &collect);
  if (headers) curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers.get());
  if (method == "HEAD") {
    curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
  } else if (method == "POST") {
    curl_easy_setopt(h, CURLOPT_POST, 1L);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, body.data());
    curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, static_cast<long>(body.size()));
  }
  CURLcode rc = curl_easy_perform(h);
  if (collect.too_large)
    return absl::ResourceExhaustedError(absl::StrCat(url, ": answer over 1 MiB"));
  if (rc != CURLE_OK) {
    return absl::UnavailableError(absl::StrCat(
        url, ": ", curl_easy_strerror(rc),
        rc == CURLE_PEER_FAILED_VERIFICATION ? " (give the server's CA with --tls-ca-file)" : ""));
  }
  curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &out.status);
  std::string nonce = out.Header("replay-nonce");
  if (!nonce.empty()) nonce_ = nonce;
  return out;
}

absl::StatusOr<std::string> AcmeClient::FreshNonce() {
  if (!nonce_.empty()) return std::exchange(nonce_, std::string());
  ASSIGN_OR_RETURN(HttpResult r, Send("HEAD", DirectoryUrl("newNonce"), "", ""));
  if (nonce_.empty()) return ProblemFromResponse(r, "newNonce gave no Replay-Nonce");
  return std::exchange(nonce_, std::string());
}

absl::StatusOr<std::string> AcmeClient::SignedBody(const std::string& url, std::string_view payload,
                                                   const std::string& nonce, bool use_jwk) {
  Json header = {{"alg", "ES256"}, {"nonce", nonce}, {"url", url}};
  if (use_jwk || kid_.empty()) {
    header["jwk"] = jwk_;
  } else {
    header["kid"] = kid_;
  }
  return FlattenedJws(*signer_, header, payload);
}

absl::StatusOr<HttpResult> AcmeClient::Post(const std::string& url, std::string_view payload,
                                            bool use_jwk) {
  for (int attempt = 0;; ++attempt) {
    ASSIGN_OR_RETURN(std::string nonce, FreshNonce());
    ASSIGN_OR_RETURN(std::string body, SignedBody(url, payload, nonce, use_jwk));
    ASSIGN_OR_RETURN(HttpResult r, Send("POST", url, body));
    if (r.status < 400) return r;
    absl::Status problem = ProblemFromResponse(r, absl::StrCat("POST ", url));
    // RFC 8555 §6.5: a badNonce answer carries a fresh nonce; retry with it.
    if (ProblemType(problem) == "badNonce" && attempt < options_.max_bad_nonce_retries) continue;
    return problem;
  }
}

absl::StatusOr<std::string> AcmeClient::NewAccount(const std::optional<Eab>& eab,
                                                   bool only_return_existing) {
  const std::string url = DirectoryUrl("newAccount");
  Json payload = {{"termsOfServiceAgreed", true}};
  if (only_return_existing) payload["onlyReturnExisting"] = true;
  if (eab.has_value()) {
    ASSIGN_OR_RETURN(payload["externalAccountBinding"],
                     ExternalAccountBinding(eab->kid, eab->mac_key, url, jwk_));
  }
  ASSIGN_OR_RETURN(HttpResult r, Post(url, payload.dump(), /*use_jwk=*/true));
  kid_ = r.Header("location");
  if (kid_.empty()) return absl::InvalidArgumentError("newAccount answered without a Location");
  return kid_;
}

absl::StatusOr<AcmeClient::Order> AcmeClient::NewOrder(const Json& identifiers) {
  if (kid_.empty()) return absl::FailedPreconditionError("no account: call NewAccount first");
  ASSIGN_OR_RETURN(HttpResult r,
                   Post(DirectoryUrl("newOrder"), Json{{"identifiers", identifiers}}.dump()));
  Order o{r.Header("location"), Json::parse(r.body, nullptr, false)};
  if (o.url.empty() || !o.body.is_object()) {
    return absl::InvalidArgumentError("newOrder answered without a Location or an order object");
  }
  return o;
}

absl::StatusOr<Json> AcmeClient::PostAsGet(const std::string& url) {
  ASSIGN_OR_RETURN(HttpResult r, Post(url, ""));
  Json j = Json::parse(r.body, nullptr, false);
  if (!j.is_object()) return absl::InvalidArgumentError(absl::StrCat(url, " did not answer JSON"));
  return j;
}

absl::StatusOr<Json> AcmeClient::Respond(const std::string& url, const Json& payload) {
  ASSIGN_OR_RETURN(HttpResult r, Post(url, payload.dump()));
  return Json::parse(r.body, nullptr, false);
}

absl::StatusOr<Json> AcmeClient::WaitFor(const std::string& url,
                                         std::initializer_list<const char*> done) {
  const absl::Time deadline = absl::Now() + options_.poll_timeout;
  for (int polls = 0; polls < 1000; ++polls) {
    ASSIGN_OR_RETURN(HttpResult r, Post(url, ""));
    Json j = Json::parse(r.body, nullptr, false);
    const std::string status = StringMember(j, "status");
    for (const char* d : done) {
      if (status == d) return j;
    }
    if (status == "invalid") {
      std::string why = j.contains("error") ? j["error"].dump() : "no error given";
      return absl::FailedPreconditionError(absl::StrCat(url, " became invalid: ", why));
    }
    // RFC 8555 §7.4: honour Retry-After (seconds), within bounds.
    int64_t seconds = 1;
    if (!absl::SimpleAtoi(r.Header("retry-after"), &seconds)) seconds = 1;
    absl::Duration wait =
        std::clamp(absl::Seconds(seconds), absl::Seconds(1), options_.max_retry_after);
    if (absl::Now() + wait > deadline) {
      return absl::DeadlineExceededError(absl::StrCat(url, " is still \"", status, "\" after ",
                                                      absl::FormatDuration(options_.poll_timeout)));
    }
    absl::SleepFor(wait);
  }
  return absl::DeadlineExceededError(absl::StrCat(url, ": too many polls"));
}

absl::StatusOr<Json> AcmeClient::Finalize(const std::string& finalize_url,
                                          std::string_view csr_der) {
  Json payload = {{"csr", stir::Base64UrlEncode(csr_der)}};
  ASSIGN_OR_RETURN(HttpResult r, Post(finalize_url, payload.dump()));
  return Json::parse(r.body, nullptr, false);
}

absl::StatusOr<std::string> AcmeClient::DownloadCertificate(const std::string& url) {
  ASSIGN_OR_RETURN(HttpResult r, Post(url, ""));
  if (!absl::StartsWith(r.Header("content-type"), "application/pem-certificate-chain")) {
    return absl::InvalidArgumentError(absl::StrCat(url, " answered ", r.Header("content-type"),
                                                   ", not application/pem-certificate-chain"));
  }
  return r.body;
}

}  // namespace shaken::acme
