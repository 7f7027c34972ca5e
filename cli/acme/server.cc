#include "cli/acme/server.h"

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "cli/acme/problem.h"

namespace shaken::acme {
namespace {

http::Response ProblemResponse(const absl::Status& status) {
  http::Response r;
  r.status = ProblemHttpStatus(status);
  r.headers.emplace_back("Content-Type", "application/problem+json");
  r.body = ProblemJson(status);
  return r;
}

}  // namespace

absl::StatusOr<std::unique_ptr<AcmeServer>> AcmeServer::Start(AcmeServerOptions options,
                                                              EngineConfig config, Store* store) {
  std::unique_ptr<AcmeServer> s(new AcmeServer());
  s->max_queue_ = options.max_queue;
  s->on_answer_ = options.on_answer;
  const bool tls = options.http.tls.has_value();
  const std::string address = options.http.address;
  absl::StatusOr<std::unique_ptr<http::Server>> http = http::Server::Start(options.http, s.get());
  if (!http.ok()) return http.status();
  s->http_ = *std::move(http);
  if (!options.external_base_url.empty()) {
    config.base_url = options.external_base_url;
  } else {
    std::string host = address.substr(0, address.rfind(':'));
    config.base_url = absl::StrCat(tls ? "https://" : "http://", host, ":", s->http_->port());
  }
  while (!config.base_url.empty() && config.base_url.back() == '/') config.base_url.pop_back();
  s->engine_ = std::make_unique<Engine>(std::move(config), store);
  {
    absl::MutexLock lock(&s->mu_);
    s->started_ = true;
  }
  for (int i = 0; i < std::max(1, options.workers); ++i) {
    s->workers_.emplace_back([p = s.get()] { p->Work(); });
  }
  return s;
}

AcmeServer::~AcmeServer() { Stop(); }

int AcmeServer::port() const { return http_ ? http_->port() : 0; }

size_t AcmeServer::queued() const {
  absl::MutexLock lock(&mu_);
  return queue_.size();
}

void AcmeServer::Stop() {
  std::deque<std::unique_ptr<http::Exchange>> left;
  {
    absl::MutexLock lock(&mu_);
    if (stopping_ && workers_.empty()) return;
    stopping_ = true;
    left.swap(queue_);
  }
  for (auto& e : left) e->Respond(Unavailable());
  for (std::thread& t : workers_) t.join();
  workers_.clear();
  if (http_) http_->Stop(absl::Now() + absl::Seconds(2));
}

std::optional<http::Response> AcmeServer::OnHeaders(const http::Request& request) {
  if (request.method != "GET" && request.method != "HEAD" && request.method != "POST") {
    http::Response r = ProblemResponse(Problem("malformed", "ACME uses GET, HEAD and POST only"));
    r.status = 405;
    return r;
  }
  return std::nullopt;
}

http::Response AcmeServer::TooLarge(const http::Request&, size_t max_body_bytes) {
  http::Response r = ProblemResponse(
      Problem("malformed", absl::StrCat("the request body is over ", max_body_bytes, " bytes")));
  r.status = 413;
  return r;
}

http::Response AcmeServer::Unavailable() {
  http::Response r = ProblemResponse(Problem("serverInternal", "the ACME server is stopping"));
  r.status = 503;
  r.headers.emplace_back("Retry-After", "5");
  return r;
}

void AcmeServer::OnRequest(std::unique_ptr<http::Exchange> exchange) {
  bool stopping;
  {
    absl::MutexLock lock(&mu_);
    stopping = stopping_;
    if (!stopping && queue_.size() < max_queue_) {
      queue_.push_back(std::move(exchange));
      return;
    }
  }
  if (stopping) {
    exchange->Respond(Unavailable());
    return;
  }
  http::Response r = ProblemResponse(Problem("rateLimited", "the CA is busy; retry shortly"));
  r.headers.emplace_back("Retry-After", "1");
  exchange->Respond(std::move(r));
}

void AcmeServer::Work() {
  for (;;) {
    std::unique_ptr<http::Exchange> e;
    {
      absl::MutexLock lock(&mu_);
      mu_.Await(absl::Condition(
          +[](AcmeServer* s) ABSL_EXCLUSIVE_LOCKS_REQUIRED(s->mu_) {
            return s->stopping_ || (s->started_ && !s->queue_.empty());
          },
          this));
      if (stopping_) return;
      e = std::move(queue_.front());
      queue_.pop_front();
    }
    http::Response r = engine_->Handle(e->request());
    if (on_answer_) on_answer_(e->request(), r);
    e->Respond(std::move(r));
  }
}

}  // namespace shaken::acme
