#include "daemon/service.h"

#include <algorithm>
#include <deque>
#include <memory>
#include <optional>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "daemon/log.h"
#include "stir/absl_compat.h"
#include "stir/passport.h"

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

// Decode parses a request message received as bytes; false when they are not that message.
template <typename Message>
bool Decode(const grpc::ByteBuffer& bytes, Message* out) {
  grpc::ByteBuffer copy(bytes);  // shares the slices; Deserialize consumes its buffer
  return grpc::SerializationTraits<Message>::Deserialize(&copy, out).ok();
}

grpc::Status Undecodable(const google::protobuf::Message& type) {
  return Invalid(absl::StrCat("the request is not a valid ", type.GetTypeName(),
                              " message (protobuf decoding failed)"));
}

// Encode serializes a response message into the call's response bytes.
void Encode(const google::protobuf::MessageLite& message, grpc::ByteBuffer* out) {
  bool own_buffer = false;
  (void)grpc::SerializationTraits<google::protobuf::MessageLite>::Serialize(message, out,
                                                                            &own_buffer);
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

// SignCall is one signature in progress: what its audit record and its completion need.
struct ShakenService::SignCall {
  const Caller* caller = nullptr;
  Method method = Method::kSign;
  absl::Time start;
  const SignRequest* req = nullptr;
  SignResponse* resp = nullptr;
  const SigningProfile* profile = nullptr;
  size_t index = 0;
  SignDone done;
};

void ShakenService::AuditSign(const SignCall& c, const grpc::Status& status) const {
  const SignRequest& req = *c.req;
  const absl::Duration latency = absl::Now() - c.start;
  if (c.profile != nullptr && status.ok()) deps_.metrics->RecordSign(c.index, latency);
  std::string tns;
  if (deps_.audit_tns) {
    tns = absl::StrCat(req.orig().tn(), "->", absl::StrJoin(req.dest().tn(), ","));
  }
  const std::string_view requested_profile = req.profile();
  const std::string_view request_id = req.request_id();
  Audit("sign", {{"client", c.caller->identity},
                 {"method", MethodName(c.method)},
                 {"profile", c.profile != nullptr ? std::string_view(c.profile->name())
                                                  : requested_profile.substr(0, 64)},
                 {"attest", std::string_view(req.attest()).substr(0, 8)},
                 {"result", GrpcCodeName(status.error_code())},
                 {"latency_us", Micros(latency), /*number=*/true},
                 {"request_id", request_id.substr(0, kMaxRequestIdBytes)},
                 {"origid", c.resp->origid()},
                 {"tns", tns}});
}

void ShakenService::CompleteSign(std::unique_ptr<SignCall> call, grpc::Status status) const {
  AuditSign(*call, status);
  SignDone done = std::move(call->done);
  call.reset();
  std::move(done)(std::move(status));
}

std::string ShakenService::ProfilesFor(const Caller& caller, std::string_view method) const {
  std::vector<std::string> names;
  for (const auto* p : deps_.profiles) {
    if (Authorizer::MayUse(caller, method, p->name())) names.push_back(p->name());
  }
  if (names.empty()) return "none";
  return absl::StrJoin(names, ", ");
}

void ShakenService::StartSign(const Caller& caller, absl::Time deadline, const SignRequest& req,
                              SignResponse* resp, Method method, SignDone done) const {
  auto call = std::make_unique<SignCall>();
  call->caller = &caller;
  call->method = method;
  call->start = absl::Now();
  call->req = &req;
  call->resp = resp;
  call->done = std::move(done);
  const std::string_view method_name = MethodName(method);

  if (!Authorizer::MayCall(caller, method_name)) {
    CompleteSign(std::move(call),
                 grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                              absl::StrCat("client ", caller.identity, " may not call ",
                                           ToAbsl(method_name))));
    return;
  }
  // logging.audit_on_failure: refuse. The refusal's own audit record probes the file again.
  if (absl::Status a = CheckAuditForSigning(); !a.ok()) {
    CompleteSign(std::move(call), ToGrpcStatus(a));
    return;
  }
  if (req.request_id().size() > kMaxRequestIdBytes) {
    CompleteSign(std::move(call), Invalid(absl::StrCat("request_id is longer than ",
                                                       kMaxRequestIdBytes, " bytes")));
    return;
  }
  if (req.profile().size() > kMaxProfileNameBytes) {
    CompleteSign(std::move(call), Invalid("profile name is too long"));
    return;
  }
  // One lookup for a named profile; the default profile's index was found at construction. A
  // profile the caller may not use is named only by the caller's own request.
  size_t chosen = default_index_;
  if (!req.profile().empty()) {
    const auto named = profile_index_.find(req.profile());
    if (named == profile_index_.end()) {
      CompleteSign(std::move(call),
                   Invalid(absl::StrCat("unknown profile \"", req.profile(),
                                        "\"; profiles this client may use: ",
                                        ProfilesFor(caller, method_name))));
      return;
    }
    chosen = named->second;
  }
  const SigningProfile* profile = deps_.profiles[chosen];
  if (!Authorizer::MayUse(caller, method_name, profile->name())) {
    CompleteSign(std::move(call),
                 grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                              absl::StrCat("client ", caller.identity, " may not sign with profile ",
                                           req.profile().empty() ? "(the default)" : req.profile(),
                                           "; profiles this client may use: ",
                                           ProfilesFor(caller, method_name))));
    return;
  }
  call->index = chosen;
  call->profile = profile;
  // The certificate a verifier would fetch from x5u must be valid now; health() says DOWN too.
  if (absl::Status validity = profile->CheckCertificateValidity(); !validity.ok()) {
    CompleteSign(std::move(call), ToGrpcStatus(validity));
    return;
  }
  grpc::Status invalid;
  if (req.attest() != "A" && req.attest() != "B" && req.attest() != "C") {
    invalid = Invalid(absl::StrCat("attest \"", req.attest().substr(0, 8),
                                   "\" must be A, B or C (RFC 8588 §4)"));
  } else if (!profile->AllowsAttest(req.attest())) {
    invalid = Invalid(absl::StrCat("profile ", profile->name(), " signs attest ",
                                   absl::StrJoin(profile->config().attest, ", "), " only; got ",
                                   req.attest()));
  } else if (req.orig().tn().empty()) {
    invalid = Invalid("orig.tn is required: the calling number");
  } else if (req.orig().tn().size() > kMaxTnInputBytes) {
    invalid = Invalid("orig.tn is too long");
  } else if (req.dest().tn().empty()) {
    invalid = Invalid("dest.tn needs at least one called number");
  } else if (static_cast<size_t>(req.dest().tn_size()) > stir::kMaxDestTns) {
    invalid = Invalid(absl::StrCat("dest.tn has ", req.dest().tn_size(), " numbers; at most ",
                                   stir::kMaxDestTns));
  }
  if (!invalid.ok()) {
    CompleteSign(std::move(call), std::move(invalid));
    return;
  }
  stir::ShakenClaims claims;
  claims.attest = req.attest();
  claims.orig_tn = req.orig().tn();
  claims.dest_tns.reserve(req.dest().tn_size());
  for (const std::string& tn : req.dest().tn()) {
    if (tn.size() > kMaxTnInputBytes) {
      CompleteSign(std::move(call), Invalid("dest.tn has a number that is too long"));
      return;
    }
    claims.dest_tns.push_back(tn);
  }
  if (req.has_iat()) claims.iat = req.iat();
  if (!req.origid().empty()) claims.origid = req.origid();

  profile->SignAsync(
      claims, deadline,
      [this, call = std::move(call)](absl::StatusOr<stir::SignedPassport> signed_passport) mutable {
        const SigningProfile* profile = call->profile;
        if (!signed_passport.ok()) {
          grpc::Status status = ToGrpcStatus(signed_passport.status());
          if (status.error_code() != grpc::StatusCode::INVALID_ARGUMENT) {
            status = grpc::Status(status.error_code(),
                                  absl::StrCat("profile ", profile->name(), ": ",
                                               status.error_message()));
            LogWarn("sign_failed", {{"profile", profile->name()},
                                    {"code", std::to_string(status.error_code())},
                                    {"error", status.error_message()}});
          }
          CompleteSign(std::move(call), std::move(status));
          return;
        }
        SignResponse* resp = call->resp;
        resp->set_identity(std::move(signed_passport->identity));
        resp->set_passport(std::move(signed_passport->jws));
        resp->set_origid(std::move(signed_passport->origid));
        resp->set_iat(signed_passport->iat);
        resp->set_request_id(call->req->request_id());
        resp->set_profile(profile->name());
        CompleteSign(std::move(call), grpc::Status::OK);
      });
}

grpc::ServerUnaryReactor* ShakenService::Sign(grpc::CallbackServerContext* ctx,
                                              const grpc::ByteBuffer* request,
                                              grpc::ByteBuffer* response) {
  const absl::Time start = absl::Now();
  auto* reactor = ctx->DefaultReactor();
  // What StartSign reads until `done`: owned by the completion below.
  struct Unary {
    Caller caller;
    SignRequest req;
    SignResponse resp;
  };
  auto call = std::make_unique<Unary>();
  if (!Decode(*request, &call->req)) {
    grpc::Status status = Undecodable(call->req);
    deps_.metrics->RecordRpc(Method::kSign, status.error_code(), absl::Now() - start);
    reactor->Finish(status);
    return reactor;
  }
  call->caller = deps_.authorizer->Identify(ctx->auth_context().get());
  Unary& c = *call;
  StartSign(c.caller, DeadlineOf(ctx), c.req, &c.resp, Method::kSign,
            [this, reactor, start, response, call = std::move(call)](grpc::Status status) {
              if (status.ok()) Encode(call->resp, response);
              deps_.metrics->RecordRpc(Method::kSign, status.error_code(), absl::Now() - start);
              reactor->Finish(status);
            });
  return reactor;
}

// StreamReactor signs the requests of a SignStream call concurrently, up to kWindow at a time,
// and writes the answers in request order (each echoes its request_id). Reading pauses while
// kWindow requests are being signed or wait to be written: back-pressure on a client that sends
// faster than the profile signs, or does not read its answers.
class ShakenService::StreamReactor final
    : public grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer> {
 public:
  static constexpr size_t kWindow = 32;

  StreamReactor(const ShakenService* service, grpc::CallbackServerContext* ctx)
      : service_(service), ctx_(ctx), start_(absl::Now()) {
    caller_ = service_->deps_.authorizer->Identify(ctx->auth_context().get());
    if (!Authorizer::MayCall(caller_, "SignStream")) {
      {
        absl::MutexLock lock(&mu_);
        finished_ = true;
      }
      final_code_ = grpc::StatusCode::PERMISSION_DENIED;
      Finish(grpc::Status(grpc::StatusCode::PERMISSION_DENIED,
                          absl::StrCat("client ", caller_.identity, " may not call SignStream")));
      return;
    }
    reading_ = true;
    StartRead(&request_);
  }

  void OnReadDone(bool ok) override {
    if (!ok) {
      std::optional<grpc::Status> finish;
      {
        absl::MutexLock lock(&mu_);
        reading_ = false;
        reads_done_ = true;
        finish = FinishLocked();
      }
      if (finish) Finish(*finish);
      return;
    }
    auto slot = std::make_unique<Slot>();
    const bool decoded = Decode(request_, &slot->req);
    request_.Clear();
    if (!decoded) slot->req.Clear();  // nothing of it is echoed
    Slot* raw = slot.get();
    bool read_more = false;
    {
      absl::MutexLock lock(&mu_);
      slots_.push_back(std::move(slot));
      read_more = slots_.size() < kWindow && !broken_;
      reading_ = read_more;
    }
    if (read_more) StartRead(&request_);
    if (!decoded) {
      OnSigned(raw, Undecodable(raw->req));
      return;
    }
    service_->StartSign(caller_, DeadlineOf(ctx_), raw->req, &raw->resp, Method::kSignStream,
                        [this, raw](grpc::Status st) { OnSigned(raw, st); });
  }

  void OnWriteDone(bool ok) override {
    const grpc::ByteBuffer* to_write = nullptr;
    bool read_more = false;
    std::optional<grpc::Status> finish;
    {
      absl::MutexLock lock(&mu_);
      writing_ = false;
      slots_.pop_front();
      if (!ok) broken_ = true;  // the client is gone: sign what is under way, write nothing more
      if (broken_) DropAnsweredLocked();
      to_write = NextWriteLocked();
      if (!broken_ && !reading_ && !reads_done_ && slots_.size() < kWindow) {
        reading_ = true;
        read_more = true;
      }
      finish = FinishLocked();
    }
    if (to_write != nullptr) StartWrite(to_write);
    if (read_more) StartRead(&request_);
    if (finish) Finish(*finish);
  }

  void OnDone() override {
    service_->deps_.metrics->RecordRpc(Method::kSignStream, final_code_, absl::Now() - start_);
    delete this;
  }

 private:
  struct Slot {
    SignRequest req;
    SignResponse resp;
    SignStreamResponse out;
    grpc::ByteBuffer out_bytes;  // `out`, encoded
    bool answered = false;
  };

  void OnSigned(Slot* slot, const grpc::Status& st) {
    slot->out.set_request_id(slot->req.request_id().substr(0, kMaxRequestIdBytes));
    if (st.ok()) {
      *slot->out.mutable_response() = std::move(slot->resp);
    } else {
      slot->out.mutable_error()->set_code(st.error_code());
      slot->out.mutable_error()->set_message(st.error_message());
    }
    Encode(slot->out, &slot->out_bytes);
    const grpc::ByteBuffer* to_write = nullptr;
    std::optional<grpc::Status> finish;
    {
      absl::MutexLock lock(&mu_);
      slot->answered = true;
      if (broken_) DropAnsweredLocked();
      to_write = NextWriteLocked();
      finish = FinishLocked();
    }
    if (to_write != nullptr) StartWrite(to_write);
    if (finish) Finish(*finish);
  }

  // NextWriteLocked starts writing the oldest answer when it is ready and nothing is being written.
  const grpc::ByteBuffer* NextWriteLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (writing_ || broken_ || slots_.empty() || !slots_.front()->answered) return nullptr;
    writing_ = true;
    return &slots_.front()->out_bytes;
  }
  // DropAnsweredLocked forgets answered slots after the client went away (nothing is written).
  void DropAnsweredLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (writing_) return;
    for (auto it = slots_.begin(); it != slots_.end();) {
      it = (*it)->answered ? slots_.erase(it) : std::next(it);
    }
  }
  // FinishLocked: the call ends once reading has ended and every request was answered and written
  // (or, for a broken stream, signed: the slots' callbacks must not outlive the reactor).
  std::optional<grpc::Status> FinishLocked() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_) {
    if (finished_ || reading_ || writing_ || !slots_.empty()) return std::nullopt;
    if (!reads_done_ && !broken_) return std::nullopt;
    finished_ = true;
    const bool cancelled = broken_ || ctx_->IsCancelled();
    final_code_ = cancelled ? grpc::StatusCode::CANCELLED : grpc::StatusCode::OK;
    return cancelled ? grpc::Status::CANCELLED : grpc::Status::OK;
  }

  const ShakenService* service_;
  grpc::CallbackServerContext* ctx_;
  const absl::Time start_;
  Caller caller_;
  grpc::ByteBuffer request_;  // the read buffer; only one read is ever outstanding
  grpc::StatusCode final_code_ = grpc::StatusCode::OK;
  absl::Mutex mu_;
  std::deque<std::unique_ptr<Slot>> slots_ ABSL_GUARDED_BY(mu_);  // request order
  bool reading_ ABSL_GUARDED_BY(mu_) = false;
  bool writing_ ABSL_GUARDED_BY(mu_) = false;
  bool reads_done_ ABSL_GUARDED_BY(mu_) = false;
  bool broken_ ABSL_GUARDED_BY(mu_) = false;
  bool finished_ ABSL_GUARDED_BY(mu_) = false;
};

grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* ShakenService::SignStream(
    grpc::CallbackServerContext* ctx) {
  return new StreamReactor(this, ctx);
}

grpc::ServerUnaryReactor* ShakenService::Verify(grpc::CallbackServerContext* ctx,
                                                const grpc::ByteBuffer* request,
                                                grpc::ByteBuffer* response) {
  const absl::Time start = absl::Now();
  auto* reactor = ctx->DefaultReactor();
  auto finish = [this, reactor, start](grpc::Status status) {
    deps_.metrics->RecordRpc(Method::kVerify, status.error_code(), absl::Now() - start);
    reactor->Finish(status);
    return reactor;
  };
  // Shared by this frame and the completion: the identity views must outlive VerifyAsync even
  // when it completes inline.
  struct Unary {
    shaken::v1::VerifyRequest req;
    shaken::v1::VerifyResponse resp;
  };
  auto unary = std::make_shared<Unary>();
  const shaken::v1::VerifyRequest* req = &unary->req;
  if (!Decode(*request, &unary->req)) return finish(Undecodable(unary->req));
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
  if (req->from().tn().size() > kMaxTnInputBytes) return finish(Invalid("from.tn is too long"));
  if (req->to().tn().empty()) return finish(Invalid("to.tn is required: the To number"));
  if (static_cast<size_t>(req->to().tn_size()) > stir::kMaxDestTns) {
    return finish(Invalid(absl::StrCat("to.tn has ", req->to().tn_size(), " numbers; at most ",
                                       stir::kMaxDestTns)));
  }
  for (const std::string& tn : req->to().tn()) {
    if (tn.size() > kMaxTnInputBytes) return finish(Invalid("to.tn has a number that is too long"));
  }
  // An Identity value over stir::kMaxIdentityHeaderBytes is not refused here: it gets its 438
  // verdict (identity_malformed) like any other malformed header.
  if (req->request_id().size() > kMaxRequestIdBytes) {
    return finish(Invalid(absl::StrCat("request_id is longer than ", kMaxRequestIdBytes, " bytes")));
  }
  // Verify has its own bound, apart from signing's: however slow the x5u servers of the calls
  // being verified, they hold at most this many calls, never a signing slot or an RPC thread.
  if (verify_in_flight_.fetch_add(1, std::memory_order_relaxed) >= deps_.max_verify_in_flight) {
    verify_in_flight_.fetch_sub(1, std::memory_order_relaxed);
    return finish(grpc::Status(
        grpc::StatusCode::RESOURCE_EXHAUSTED,
        absl::StrCat("verifier: ", deps_.max_verify_in_flight,
                     " verifications already in progress (verifier.max_in_flight); retry later")));
  }
  stir::CallInfo call;
  call.from_tn = req->from().tn();
  call.to_tns.assign(req->to().tn().begin(), req->to().tn().end());
  if (req->has_time()) call.date = absl::FromUnixSeconds(req->time());
  std::vector<std::string_view> identities(req->identity().begin(), req->identity().end());
  // Answer before the caller's deadline, so that a certificate still being fetched becomes a 436
  // verdict the caller receives rather than its own DEADLINE_EXCEEDED: at 90 % of the caller's
  // budget, at most 1 s early. (When a storm of slow x5u servers times out ~200 calls at once,
  // their answers took over 100 ms to reach the client on this 2-core machine; 100 ms early lost
  // most of them, 10 % loses none: bench/README.md, storm.)
  absl::Time deadline = DeadlineOf(ctx);
  if (deadline < absl::InfiniteFuture()) {
    const absl::Duration margin =
        std::clamp((deadline - start) / 10, absl::Milliseconds(5), absl::Milliseconds(1000));
    deadline -= margin;
  }
  deps_.verifier->VerifyAsync(
      identities, call, deadline,
      [this, unary, response, finish](absl::StatusOr<stir::VerifyResult> result) {
        verify_in_flight_.fetch_sub(1, std::memory_order_relaxed);
        if (!result.ok()) {
          finish(ToGrpcStatus(result.status()));
          return;
        }
        shaken::v1::VerifyResponse* resp = &unary->resp;
        FillVerdict(result->overall, resp->mutable_verdict());
        for (const stir::Verdict& v : result->headers) {
          FillVerdict(v, resp->add_identities());
          deps_.metrics->RecordVerdict(v.reason);
        }
        resp->set_request_id(unary->req.request_id());
        Encode(*resp, response);
        finish(grpc::Status::OK);
      });
  return reactor;
}

grpc::ServerUnaryReactor* ShakenService::ListProfiles(grpc::CallbackServerContext* ctx,
                                                      const grpc::ByteBuffer* request,
                                                      grpc::ByteBuffer* response) {
  const absl::Time start = absl::Now();
  auto* reactor = ctx->DefaultReactor();
  Caller caller = deps_.authorizer->Identify(ctx->auth_context().get());
  shaken::v1::ListProfilesRequest req;
  shaken::v1::ListProfilesResponse out_message;
  shaken::v1::ListProfilesResponse* resp = &out_message;
  grpc::Status status;
  if (!Decode(*request, &req)) {
    status = Undecodable(req);
  } else if (!Authorizer::MayCall(caller, "ListProfiles")) {
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
      out->mutable_certificate()->set_not_before(absl::ToUnixSeconds(cert->not_before));
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
    Encode(out_message, response);
  }
  deps_.metrics->RecordRpc(Method::kListProfiles, status.error_code(), absl::Now() - start);
  reactor->Finish(status);
  return reactor;
}

}  // namespace shaken::daemon
