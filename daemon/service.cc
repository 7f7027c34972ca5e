#include "daemon/service.h"

#include <deque>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "daemon/log.h"
#include "stir/absl_compat.h"

namespace shaken::daemon {
namespace {

using shaken::v1::SignRequest;
using shaken::v1::SignResponse;
using shaken::v1::SignStreamResponse;

constexpr size_t kMaxRequestIdBytes = 128;
constexpr size_t kMaxProfileNameBytes = 128;
constexpr size_t kMaxTnInputBytes = 64;

grpc::Status Invalid(std::string message) {
  return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, std::move(message));
}

absl::Time DeadlineOf(const grpc::CallbackServerContext* ctx) {
  auto d = ctx->deadline();
  if (d == std::chrono::system_clock::time_point::max()) return absl::InfiniteFuture();
  return absl::FromChrono(d);
}

std::string Micros(absl::Duration d) { return absl::StrCat(absl::ToInt64Microseconds(d)); }

void FillVerdict(const stir::Verdict& v, shaken::v1::Verdict* out) {
  out->set_passed(v.passed);
  out->set_verstat(std::string(stir::VerstatName(v.verstat)));
  out->set_sip_code(v.sip_code);
  out->set_sip_reason(std::string(v.sip_reason));
  out->set_reason(std::string(stir::ReasonName(v.reason)));
  out->set_detail(v.detail);
  out->set_ppt(v.ppt);
  out->set_attest(v.attest);
  out->set_origid(v.origid);
  if (!v.orig_tn.empty()) out->mutable_orig()->set_tn(v.orig_tn);
  for (const auto& tn : v.dest_tns) out->mutable_dest()->add_tn(tn);
  if (v.iat.has_value()) out->set_iat(*v.iat);
  out->set_x5u(v.x5u);
  if (!v.cert_subject.empty() || !v.cert_spc.empty()) {
    auto* c = out->mutable_certificate();
    c->set_subject(v.cert_subject);
    c->set_spc(v.cert_spc);
    c->set_serial(v.cert_serial);
    if (v.cert_not_after.has_value()) c->set_not_after(absl::ToUnixSeconds(*v.cert_not_after));
  }
}

}  // namespace

grpc::Status ToGrpcStatus(const absl::Status& s) {
  if (s.ok()) return grpc::Status::OK;
  // absl::StatusCode and grpc::StatusCode share the google.rpc.Code numbering.
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()), std::string(s.message()));
}

ShakenService::ShakenService(ServiceDeps deps) : deps_(std::move(deps)) {
  for (size_t i = 0; i < deps_.profiles.size(); ++i) {
    profile_index_[deps_.profiles[i]->name()] = i;
    if (deps_.profiles[i] == deps_.default_profile) default_index_ = i;
  }
}

grpc::Status ShakenService::DoSign(const Caller& caller, absl::Time deadline,
                                   const SignRequest& req, SignResponse* resp,
                                   Method method) const {
  const absl::Time start = absl::Now();
  const std::string_view method_name = MethodName(method);
  const SigningProfile* profile = nullptr;
  size_t index = 0;
  grpc::Status status;
  auto audit = [&]() {
    const absl::Duration latency = absl::Now() - start;
    if (profile != nullptr && status.ok()) deps_.metrics->RecordSign(index, latency);
    std::string tns;
    if (deps_.audit_tns) {
      tns = absl::StrCat(req.orig().tn(), "->", absl::StrJoin(req.dest().tn(), ","));
    }
    const std::string_view requested_profile = req.profile();
    const std::string_view request_id = req.request_id();
    Audit("sign", {{"client", caller.identity},
                   {"method", method_name},
                   {"profile", profile != nullptr ? std::string_view(profile->name())
                                                  : requested_profile.substr(0, 64)},
                   {"attest", std::string_view(req.attest()).substr(0, 8)},
                   {"result", status.ok() ? std::string("OK") : std::to_string(status.error_code())},
                   {"latency_us", Micros(latency)},
                   {"request_id", request_id.substr(0, kMaxRequestIdBytes)},
                   {"origid", resp->origid()},
                   {"tns", tns}});
  };

  if (!Authorizer::MayCall(caller, method_name)) {
    status = grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                          absl::StrCat("client ", caller.identity, " may not call ",
                                       ToAbsl(method_name)));
    audit();
    return status;
  }
  // logging.audit_on_failure: refuse. The refusal's own audit record probes the file again.
  if (absl::Status a = CheckAuditForSigning(); !a.ok()) {
    status = ToGrpcStatus(a);
    audit();
    return status;
  }
  if (req.request_id().size() > kMaxRequestIdBytes) {
    status = Invalid(absl::StrCat("request_id is longer than ", kMaxRequestIdBytes, " bytes"));
  } else if (req.profile().size() > kMaxProfileNameBytes) {
    status = Invalid("profile name is too long");
  }
  // One lookup for a named profile; the default profile's index was found at construction.
  size_t chosen = default_index_;
  if (status.ok() && !req.profile().empty()) {
    const auto named = profile_index_.find(req.profile());
    if (named != profile_index_.end()) {
      chosen = named->second;
    } else {
      std::vector<std::string> names;
      for (const auto* p : deps_.profiles) names.push_back(p->name());
      status = Invalid(absl::StrCat("unknown profile \"", req.profile(), "\"; this server has: ",
                                    absl::StrJoin(names, ", ")));
    }
  }
  if (!status.ok()) {
    audit();
    return status;
  }
  index = chosen;
  profile = deps_.profiles[index];
  if (!Authorizer::MayUse(caller, method_name, profile->name())) {
    status = grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                          absl::StrCat("client ", caller.identity, " may not sign with profile ",
                                       profile->name()));
    audit();
    return status;
  }
  if (req.attest() != "A" && req.attest() != "B" && req.attest() != "C") {
    status = Invalid(absl::StrCat("attest \"", req.attest().substr(0, 8),
                                  "\" must be A, B or C (RFC 8588 §4)"));
  } else if (!profile->AllowsAttest(req.attest())) {
    status = Invalid(absl::StrCat("profile ", profile->name(), " signs attest ",
                                  absl::StrJoin(profile->config().attest, ", "), " only; got ",
                                  req.attest()));
  } else if (req.orig().tn().empty()) {
    status = Invalid("orig.tn is required: the calling number");
  } else if (req.orig().tn().size() > kMaxTnInputBytes) {
    status = Invalid("orig.tn is too long");
  } else if (req.dest().tn().empty()) {
    status = Invalid("dest.tn needs at least one called number");
  }
  if (!status.ok()) {
    audit();
    return status;
  }
  stir::ShakenClaims claims;
  claims.attest = req.attest();
  claims.orig_tn = req.orig().tn();
  claims.dest_tns.reserve(req.dest().tn_size());
  for (const std::string& tn : req.dest().tn()) {
    if (tn.size() > kMaxTnInputBytes) {
      status = Invalid("dest.tn has a number that is too long");
      audit();
      return status;
    }
    claims.dest_tns.push_back(tn);
  }
  if (req.has_iat()) claims.iat = req.iat();
  if (!req.origid().empty()) claims.origid = req.origid();

  absl::StatusOr<stir::SignedPassport> signed_passport = profile->Sign(claims, deadline);
  if (!signed_passport.ok()) {
    status = ToGrpcStatus(signed_passport.status());
    if (status.error_code() != grpc::StatusCode::INVALID_ARGUMENT) {
      LogWarn("sign_failed", {{"profile", profile->name()},
                              {"code", std::to_string(status.error_code())},
                              {"error", status.error_message()}});
    }
    audit();
    return status;
  }
  resp->set_identity(std::move(signed_passport->identity));
  resp->set_passport(std::move(signed_passport->jws));
  resp->set_origid(std::move(signed_passport->origid));
  resp->set_iat(signed_passport->iat);
  resp->set_request_id(req.request_id());
  resp->set_profile(profile->name());
  audit();
  return status;
}

grpc::ServerUnaryReactor* ShakenService::Sign(grpc::CallbackServerContext* ctx,
                                              const SignRequest* request,
                                              SignResponse* response) {
  const absl::Time start = absl::Now();
  Caller caller = deps_.authorizer->Identify(ctx->auth_context().get());
  grpc::Status status = DoSign(caller, DeadlineOf(ctx), *request, response, Method::kSign);
  deps_.metrics->RecordRpc(Method::kSign, status.error_code(), absl::Now() - start);
  auto* reactor = ctx->DefaultReactor();
  reactor->Finish(status);
  return reactor;
}

// StreamReactor signs each request of a SignStream call as it arrives and writes the responses
// in order. Reading continues while responses are being written, up to kMaxQueued unsent
// responses (then reading pauses: back-pressure on a client that does not read).
class ShakenService::StreamReactor final
    : public grpc::ServerBidiReactor<SignRequest, SignStreamResponse> {
 public:
  static constexpr size_t kMaxQueued = 64;

  StreamReactor(const ShakenService* service, grpc::CallbackServerContext* ctx)
      : service_(service), ctx_(ctx), start_(absl::Now()) {
    caller_ = service_->deps_.authorizer->Identify(ctx->auth_context().get());
    if (!Authorizer::MayCall(caller_, "SignStream")) {
      FinishOnce(grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                              absl::StrCat("client ", caller_.identity,
                                           " may not call SignStream")));
      return;
    }
    StartRead(&request_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      bool finish;
      {
        absl::MutexLock lock(&mu_);
        reads_done_ = true;
        finish = ShouldFinishLocked();
      }
      if (finish) FinishOnce(grpc::Status::OK);
      return;
    }
    SignStreamResponse out;
    out.set_request_id(request_.request_id().substr(0, kMaxRequestIdBytes));
    SignResponse one;
    grpc::Status st = service_->DoSign(caller_, DeadlineOf(ctx_), request_, &one,
                                       Method::kSignStream);
    if (st.ok()) {
      *out.mutable_response() = std::move(one);
    } else {
      out.mutable_error()->set_code(st.error_code());
      out.mutable_error()->set_message(st.error_message());
    }
    const SignStreamResponse* to_write = nullptr;
    bool read_more = false;
    {
      absl::MutexLock lock(&mu_);
      if (broken_) {
        reads_done_ = true;
      } else {
        queue_.push_back(std::move(out));
        if (!writing_) {
          writing_ = true;
          to_write = &queue_.front();
        }
        if (queue_.size() < kMaxQueued) {
          read_more = true;
        } else {
          read_paused_ = true;
        }
      }
    }
    if (to_write != nullptr) StartWrite(to_write);
    if (read_more) StartRead(&request_);
  }

  void OnWriteDone(bool ok) override {
    const SignStreamResponse* to_write = nullptr;
    bool read_more = false;
    bool finish = false;
    bool broken = false;
    {
      absl::MutexLock lock(&mu_);
      queue_.pop_front();
      if (!ok) {
        // The client is gone: drop what is queued; an outstanding read will fail too.
        broken_ = true;
        queue_.clear();
        writing_ = false;
        if (read_paused_) reads_done_ = true;
      } else if (!queue_.empty()) {
        to_write = &queue_.front();
      } else {
        writing_ = false;
      }
      if (!broken_ && read_paused_ && queue_.size() < kMaxQueued) {
        read_paused_ = false;
        read_more = true;
      }
      finish = ShouldFinishLocked();
      broken = broken_;
    }
    if (to_write != nullptr) StartWrite(to_write);
    if (read_more) StartRead(&request_);
    if (finish) FinishOnce(broken ? grpc::Status::CANCELLED : grpc::Status::OK);
  }

  void OnDone() override {
    service_->deps_.metrics->RecordRpc(Method::kSignStream, final_code_, absl::Now() - start_);
    delete this;
  }

 private:
  bool ShouldFinishLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    return reads_done_ && !writing_ && !finished_;
  }
  void FinishOnce(const grpc::Status& status) {
    {
      absl::MutexLock lock(&mu_);
      finished_ = true;
    }
    final_code_ = status.error_code();
    Finish(status);
  }

  const ShakenService* service_;
  grpc::CallbackServerContext* ctx_;
  const absl::Time start_;
  Caller caller_;
  SignRequest request_;
  grpc::StatusCode final_code_ = grpc::StatusCode::OK;
  absl::Mutex mu_;
  std::deque<SignStreamResponse> queue_ ABSL_GUARDED_BY(mu_);
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool reads_done_ ABSL_GUARDED_BY(mu_) = false;
  bool read_paused_ ABSL_GUARDED_BY(mu_) = false;
  bool broken_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
};

grpc::ServerBidiReactor<SignRequest, SignStreamResponse>* ShakenService::SignStream(
    grpc::CallbackServerContext* ctx) {
  return new StreamReactor(this, ctx);
}

grpc::ServerUnaryReactor* ShakenService::Verify(grpc::CallbackServerContext* ctx,
                                                const shaken::v1::VerifyRequest* req,
                                                shaken::v1::VerifyResponse* resp) {
  const absl::Time start = absl::Now();
  auto* reactor = ctx->DefaultReactor();
  auto finish = [&](grpc::Status status) {
    deps_.metrics->RecordRpc(Method::kVerify, status.error_code(), absl::Now() - start);
    reactor->Finish(status);
    return reactor;
  };
  Caller caller = deps_.authorizer->Identify(ctx->auth_context().get());
  if (!Authorizer::MayCall(caller, "Verify")) {
    return finish(grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                               absl::StrCat("client ", caller.identity, " may not call Verify")));
  }
  if (deps_.verifier == nullptr) {
    return finish(grpc::Status(grpc::StatusCode::FAILED_PRECONDITION,
                               "verification is disabled on this server (verifier.enabled)"));
  }
  // ATIS-1000082 E1/E2: the request itself must be usable.
  if (req->identity().empty()) {
    return finish(Invalid("identity is required: the Identity header value(s) of the call"));
  }
  if (static_cast<size_t>(req->identity_size()) > stir::kMaxIdentityHeaders) {
    return finish(Invalid(absl::StrCat("identity has ", req->identity_size(),
                                       " values; at most ", stir::kMaxIdentityHeaders)));
  }
  if (req->from().tn().empty()) {
    return finish(Invalid("from.tn is required: the P-Asserted-Identity or From number"));
  }
  if (req->to().tn().empty()) return finish(Invalid("to.tn is required: the To number"));
  if (req->request_id().size() > kMaxRequestIdBytes) {
    return finish(Invalid(absl::StrCat("request_id is longer than ", kMaxRequestIdBytes, " bytes")));
  }
  stir::CallInfo call;
  call.from_tn = req->from().tn();
  call.to_tns.assign(req->to().tn().begin(), req->to().tn().end());
  if (req->has_time()) call.date = absl::FromUnixSeconds(req->time());
  std::vector<std::string_view> identities(req->identity().begin(), req->identity().end());
  absl::StatusOr<stir::VerifyResult> result = deps_.verifier->VerifyViews(identities, call);
  if (!result.ok()) return finish(ToGrpcStatus(result.status()));
  FillVerdict(result->overall, resp->mutable_verdict());
  for (const stir::Verdict& v : result->headers) {
    FillVerdict(v, resp->add_identities());
    deps_.metrics->RecordVerdict(v.reason);
  }
  resp->set_request_id(req->request_id());
  return finish(grpc::Status::OK);
}

grpc::ServerUnaryReactor* ShakenService::ListProfiles(
    grpc::CallbackServerContext* ctx, const shaken::v1::ListProfilesRequest* /*request*/,
    shaken::v1::ListProfilesResponse* resp) {
  const absl::Time start = absl::Now();
  auto* reactor = ctx->DefaultReactor();
  Caller caller = deps_.authorizer->Identify(ctx->auth_context().get());
  grpc::Status status;
  if (!Authorizer::MayCall(caller, "ListProfiles")) {
    status = grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                          absl::StrCat("client ", caller.identity, " may not call ListProfiles"));
  } else {
    for (const SigningProfile* p : deps_.profiles) {
      if (!Authorizer::MayUse(caller, "Sign", p->name()) &&
          !Authorizer::MayUse(caller, "SignStream", p->name()) && !caller.unrestricted) {
        continue;
      }
      auto* out = resp->add_profiles();
      out->set_name(p->name());
      out->set_key(p->key_description());
      out->set_x5u(p->config().x5u);
      auto cert = p->certificate();
      out->mutable_certificate()->set_subject(cert->subject);
      out->mutable_certificate()->set_spc(cert->spc);
      out->mutable_certificate()->set_serial(cert->serial_hex);
      out->mutable_certificate()->set_not_after(absl::ToUnixSeconds(cert->not_after));
      for (const auto& a : p->config().attest) out->add_allowed_attest(a);
      switch (p->health()) {
        case hsm::Health::kServing:
          out->set_health(shaken::v1::Profile::SERVING);
          break;
        case hsm::Health::kDegraded:
          out->set_health(shaken::v1::Profile::DEGRADED);
          break;
        case hsm::Health::kDown:
          out->set_health(shaken::v1::Profile::DOWN);
          break;
      }
      out->set_is_default(p == deps_.default_profile);
    }
  }
  deps_.metrics->RecordRpc(Method::kListProfiles, status.error_code(), absl::Now() - start);
  reactor->Finish(status);
  return reactor;
}

}  // namespace shaken::daemon
