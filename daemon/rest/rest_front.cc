#include "daemon/rest/rest_front.h"

#include <openssl/crypto.h>
#include <openssl/x509.h>

#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "daemon/rest/rest_json.h"
#include "stir/openssl_util.h"
#include "stir/status_macros.h"

namespace shaken::daemon::rest {
namespace {

http::Response JsonResponse(int status, std::string body, std::string_view request_id) {
  http::Response r;
  r.status = status;
  r.headers.push_back({"Content-Type", "application/json"});
  if (ValidRequestId(request_id)) r.headers.push_back({"X-RequestID", std::string(request_id)});
  r.body = std::move(body);
  return r;
}

http::Response ErrorResponse(const RestError& e, Dialect dialect, std::string_view request_id) {
  http::Response r = JsonResponse(e.status, ErrorDocument(e, dialect), request_id);
  if (e.status == 503) r.headers.push_back({"Retry-After", "1"});
  if (e.status == 405) r.headers.push_back({"Allow", "POST"});
  return r;
}

VerdictText TextOf(const shaken::v1::Verdict& v) {
  return {.passed = v.passed(), .verstat = v.verstat(), .sip_code = v.sip_code(),
          .sip_reason = v.sip_reason(), .detail = v.detail(), .ppt = v.ppt()};
}

}  // namespace

// Call is one REST request in the core: what the core reads until it completes.
struct RestFrontEnd::Call {
  std::unique_ptr<http::Exchange> exchange;
  RestEndpoint endpoint = RestEndpoint::kOther;
  Dialect dialect = Dialect::kAtis;
  absl::Time start;
  std::string header_request_id;           // X-RequestID, echoed in the headers
  std::optional<std::string> body_request_id;  // 3GPP requestId, echoed in the document
  Caller caller;
  shaken::v1::SignRequest sign_request;
  shaken::v1::SignResponse sign_response;
  shaken::v1::VerifyRequest verify_request;
  shaken::v1::VerifyResponse verify_response;
};

RestFrontEnd::RestFrontEnd(const ServiceCore* core, RestOptions options)
    : core_(core),
      options_(std::move(options)),
      signing_path_(options_.base_path + "/stir/v1/signing"),
      verification_path_(options_.base_path + "/stir/v1/verification") {}

RestEndpoint RestFrontEnd::EndpointOf(std::string_view path) const {
  if (path == signing_path_) return RestEndpoint::kSigning;
  if (path == verification_path_) return RestEndpoint::kVerification;
  return RestEndpoint::kOther;
}

std::optional<http::Response> RestFrontEnd::OnHeaders(const http::Request& r) {
  const std::string_view request_id = r.Header("X-RequestID").value_or("");
  const RestEndpoint endpoint = EndpointOf(r.path);
  std::optional<RestError> refusal;
  if (endpoint == RestEndpoint::kOther ||
      (endpoint == RestEndpoint::kVerification && !core_->verifying())) {
    refusal = NotFound();
  } else if (r.method != "POST") {
    refusal = MethodNotAllowed();
  } else if (options_.require_client_certificate &&
             r.client_cert != http::ClientCertificate::kVerified) {
    refusal = Forbidden(r.client_cert == http::ClientCertificate::kNone
                            ? "no client certificate"
                            : absl::StrCat("the client certificate is not trusted (",
                                           r.client_cert_problem, ")"));
  } else if (auto accept = r.Header("Accept"); accept.has_value() && !AcceptsJson(*accept)) {
    refusal = NotAcceptable(std::string(accept->substr(0, 64)));
  } else if (!r.content_length.has_value()) {
    refusal = NoLength();
  } else if (auto type = r.Header("Content-Type");
             !type.has_value() || MediaType(*type) != "application/json") {
    refusal = UnsupportedType();
  } else if (*r.content_length == 0) {
    refusal = MissingBody();
  }
  if (!refusal.has_value()) return std::nullopt;
  core_->metrics()->RecordRest(endpoint, refusal->status, absl::ZeroDuration());
  return ErrorResponse(*refusal, Dialect::kAtis, request_id);
}

http::Response RestFrontEnd::TooLarge(const http::Request& r, size_t max_body_bytes) {
  core_->metrics()->RecordRest(EndpointOf(r.path), 413, absl::ZeroDuration());
  return ErrorResponse(InvalidValue("Content-Length",
                                    absl::StrCat("the body is larger than ", max_body_bytes,
                                                 " bytes (listen.rest.max_body_bytes)"),
                                    413),
                       Dialect::kAtis, r.Header("X-RequestID").value_or(""));
}

http::Response RestFrontEnd::Unavailable() {
  core_->metrics()->RecordRest(RestEndpoint::kOther, 503, absl::ZeroDuration());
  return ErrorResponse(Internal(503), Dialect::kAtis, "");
}

void RestFrontEnd::Finish(const std::shared_ptr<Call>& call, http::Response response) const {
  core_->metrics()->RecordRest(call->endpoint, response.status, absl::Now() - call->start);
  call->exchange->Respond(std::move(response));
}

void RestFrontEnd::OnRequest(std::unique_ptr<http::Exchange> exchange) {
  auto call = std::make_shared<Call>();
  call->start = absl::Now();
  const http::Request& r = exchange->request();
  call->endpoint = EndpointOf(r.path);
  call->header_request_id = std::string(r.Header("X-RequestID").value_or(""));
  if (!ValidRequestId(call->header_request_id)) call->header_request_id.clear();
  call->exchange = std::move(exchange);
  // The caller, by the same rules as gRPC: a verified client certificate's names, or anonymous.
  if (r.client_cert == http::ClientCertificate::kVerified) {
    const auto* der = reinterpret_cast<const unsigned char*>(r.client_cert_der.data());
    stir::X509Ptr x(d2i_X509(nullptr, &der, static_cast<long>(r.client_cert_der.size())));
    // kVerified: OpenSSL parsed and verified this very DER in the HTTP layer.
    if (x == nullptr) {
      Finish(call, ErrorResponse(Internal(500), Dialect::kAtis, call->header_request_id));
      return;
    }
    call->caller = core_->authorizer().IdentifyCertificate(x.get());
  } else {
    call->caller = core_->authorizer().IdentifyCertificate(nullptr);
  }
  if (call->endpoint == RestEndpoint::kSigning) {
    Sign(std::move(call));
  } else {
    Verify(std::move(call));
  }
}

void RestFrontEnd::Sign(std::shared_ptr<Call> call) {
  SigningInput in = ParseSigningRequest(call->exchange->request().body);
  call->dialect = in.dialect;
  if (in.error.has_value()) {
    Finish(call, ErrorResponse(*in.error, in.dialect, call->header_request_id));
    return;
  }
  shaken::v1::SignRequest& req = call->sign_request;
  req.set_attest(std::move(in.attest));
  req.mutable_orig()->set_tn(std::move(in.orig_tn));
  for (auto& tn : in.dest_tns) req.mutable_dest()->add_tn(std::move(tn));
  if (in.iat.has_value()) req.set_iat(*in.iat);
  req.set_origid(std::move(in.origid));
  req.set_profile(std::move(in.profile));
  if (!in.rph_auth.empty()) {
    for (auto& a : in.rph_auth) req.mutable_rph()->add_auth(std::move(a));
    req.mutable_rph()->set_sph(std::move(in.sph));
  }
  call->body_request_id = std::move(in.request_id);
  req.set_request_id(call->body_request_id.value_or(call->header_request_id));

  Call& c = *call;
  core_->StartSign({&c.caller, Front::kRest, Method::kSign, absl::Now() + options_.request_timeout},
                   c.sign_request, &c.sign_response, [this, call](absl::Status status) {
                     if (!status.ok()) {
                       Finish(call, ErrorResponse(ErrorFromStatus(status), call->dialect,
                                                  call->header_request_id));
                       return;
                     }
                     Finish(call, JsonResponse(200,
                                               SigningAnswer(call->dialect,
                                                             call->sign_response.identity(),
                                                             call->body_request_id),
                                               call->header_request_id));
                   });
}

void RestFrontEnd::Verify(std::shared_ptr<Call> call) {
  VerificationInput in = ParseVerificationRequest(call->exchange->request().body);
  call->dialect = in.dialect;
  if (in.error.has_value()) {
    Finish(call, ErrorResponse(*in.error, in.dialect, call->header_request_id));
    return;
  }
  call->body_request_id = std::move(in.request_id);
  if (in.heartbeat) {
    // No Identity at all: Oracle's SBC sends such a verificationRequest as a heartbeat. RFC 8224
    // answers a call without Identity 428; an SBC's circuit breaker must see a 200 here.
    if (!Authorizer::MayCall(call->caller, "Verify")) {
      Finish(call, ErrorResponse(Forbidden(absl::StrCat("client ", call->caller.identity,
                                                        " may not call Verify")),
                                 call->dialect, call->header_request_id));
      return;
    }
    Finish(call, JsonResponse(200, HeartbeatAnswer(call->dialect, call->body_request_id),
                              call->header_request_id));
    return;
  }
  shaken::v1::VerifyRequest& req = call->verify_request;
  for (auto& id : in.identities) req.add_identity(std::move(id));
  req.mutable_from()->set_tn(std::move(in.from_tn));
  for (auto& tn : in.to_tns) req.mutable_to()->add_tn(std::move(tn));
  req.set_time(in.time);
  for (auto& rp : in.resource_priority) req.add_resource_priority(std::move(rp));
  req.set_request_id(call->body_request_id.value_or(call->header_request_id));

  Call& c = *call;
  core_->StartVerify(
      {&c.caller, Front::kRest, Method::kVerify, absl::Now() + options_.request_timeout},
      c.verify_request, &c.verify_response, [this, call](absl::Status status) {
        if (!status.ok()) {
          Finish(call,
                 ErrorResponse(ErrorFromStatus(status), call->dialect, call->header_request_id));
          return;
        }
        std::vector<VerdictText> headers;
        for (const shaken::v1::Verdict& h : call->verify_response.identities()) {
          headers.push_back(TextOf(h));
        }
        const shaken::v1::VerifyResponse& r = call->verify_response;
        CallExtras extras{.verstat_priority = r.verstat_priority(),
                          .display_name = r.display_name()};
        for (const shaken::v1::DivResult& d : r.divs()) {
          extras.div_results.emplace_back(d.tn(), d.verstat());
        }
        Finish(call, JsonResponse(200,
                                  VerificationAnswer(call->dialect, TextOf(r.verdict()), headers,
                                                     call->body_request_id, extras),
                                  call->header_request_id));
      });
}

absl::StatusOr<std::unique_ptr<RestListener>> RestListener::Start(const Config& config,
                                                                  const ServiceCore* core) {
  const RestListenConfig& rc = *config.rest;
  http::ServerOptions o;
  o.address = rc.address;
  o.max_body_bytes = rc.max_body_bytes;
  o.max_connections = rc.max_connections;
  o.idle_timeout = rc.idle_timeout;
  o.threads = rc.threads;
  RestOptions ro;
  ro.base_path = rc.base_path;
  ro.request_timeout = rc.request_timeout;
  if (const TlsConfig* tls = rc.EffectiveTls(config.tls); tls != nullptr) {
    const std::string key = rc.tls.has_value() ? "listen.rest.tls" : "listen.tls";
    http::TlsFiles files;
    auto read = [&key](const std::string& what, const std::string& path,
                       std::string* out) -> absl::Status {
      absl::StatusOr<std::string> text = stir::ReadFile(path);
      if (!text.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat(key, ".", what, " (for listen.rest): ", text.status().message()));
      }
      *out = *std::move(text);
      return absl::OkStatus();
    };
    RETURN_IF_ERROR(read("cert_file", tls->cert_file, &files.cert_pem));
    RETURN_IF_ERROR(read("key_file", tls->key_file, &files.key_pem));
    if (!tls->client_ca_file.empty()) {
      RETURN_IF_ERROR(read("client_ca_file", tls->client_ca_file, &files.client_ca_pem));
      ro.require_client_certificate = true;
    }
    o.tls = std::move(files);
    OPENSSL_cleanse(files.key_pem.data(), files.key_pem.size());  // moved-from: usually empty
  }
  std::unique_ptr<RestListener> l(new RestListener());
  l->front_ = std::make_unique<RestFrontEnd>(core, std::move(ro));
  absl::StatusOr<std::unique_ptr<http::Server>> server = http::Server::Start(std::move(o), l->front_.get());
  if (!server.ok()) {
    return absl::Status(server.status().code(),
                        absl::StrCat("listen.rest.address: ", server.status().message()));
  }
  l->server_ = *std::move(server);
  return l;
}

RestListener::~RestListener() {
  if (server_ != nullptr) server_->Stop(absl::Now());
}

}  // namespace shaken::daemon::rest
