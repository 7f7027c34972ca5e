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

constexpr size_t kMaxRequestIdBytes = 128;  // as the core's: an echoed request_id is cut there

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

}  // namespace

grpc::Status ToGrpcStatus(const absl::Status& s) {
  if (s.ok()) return grpc::Status::OK;
  // absl::StatusCode and grpc::StatusCode share the google.rpc.Code numbering.
  return grpc::Status(static_cast<grpc::StatusCode>(s.code()), std::string(s.message()));
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
    core_->metrics()->RecordRpc(Method::kSign, status.error_code(), absl::Now() - start);
    reactor->Finish(status);
    return reactor;
  }
  call->caller = core_->authorizer().Identify(ctx->auth_context().get());
  Unary& c = *call;
  core_->StartSign({&c.caller, Front::kGrpc, Method::kSign, DeadlineOf(ctx)}, c.req, &c.resp,
                   [this, reactor, start, response, call = std::move(call)](absl::Status status) {
                     if (status.ok()) Encode(call->resp, response);
                     grpc::Status out = ToGrpcStatus(status);
                     core_->metrics()->RecordRpc(Method::kSign, out.error_code(),
                                                 absl::Now() - start);
                     reactor->Finish(out);
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

  StreamReactor(const ServiceCore* core, grpc::CallbackServerContext* ctx)
      : core_(core), ctx_(ctx), start_(absl::Now()) {
    caller_ = core_->authorizer().Identify(ctx->auth_context().get());
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
    core_->StartSign({&caller_, Front::kGrpc, Method::kSignStream, DeadlineOf(ctx_)}, raw->req,
                     &raw->resp, [this, raw](absl::Status st) { OnSigned(raw, ToGrpcStatus(st)); });
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
    core_->metrics()->RecordRpc(Method::kSignStream, final_code_, absl::Now() - start_);
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

  const ServiceCore* core_;
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
  return new StreamReactor(core_, ctx);
}

grpc::ServerUnaryReactor* ShakenService::Verify(grpc::CallbackServerContext* ctx,
                                                const grpc::ByteBuffer* request,
                                                grpc::ByteBuffer* response) {
  const absl::Time start = absl::Now();
  auto* reactor = ctx->DefaultReactor();
  // What StartVerify reads until `done`: owned by the completion below.
  struct Unary {
    Caller caller;
    shaken::v1::VerifyRequest req;
    shaken::v1::VerifyResponse resp;
  };
  auto call = std::make_unique<Unary>();
  if (!Decode(*request, &call->req)) {
    grpc::Status status = Undecodable(call->req);
    core_->metrics()->RecordRpc(Method::kVerify, status.error_code(), absl::Now() - start);
    reactor->Finish(status);
    return reactor;
  }
  call->caller = core_->authorizer().Identify(ctx->auth_context().get());
  Unary& c = *call;
  core_->StartVerify({&c.caller, Front::kGrpc, Method::kVerify, DeadlineOf(ctx)}, c.req, &c.resp,
                     [this, reactor, start, response, call = std::move(call)](absl::Status status) {
                       if (status.ok()) Encode(call->resp, response);
                       grpc::Status out = ToGrpcStatus(status);
                       core_->metrics()->RecordRpc(Method::kVerify, out.error_code(),
                                                   absl::Now() - start);
                       reactor->Finish(out);
                     });
  return reactor;
}

grpc::ServerUnaryReactor* ShakenService::ListProfiles(grpc::CallbackServerContext* ctx,
                                                      const grpc::ByteBuffer* request,
                                                      grpc::ByteBuffer* response) {
  const absl::Time start = absl::Now();
  auto* reactor = ctx->DefaultReactor();
  shaken::v1::ListProfilesRequest req;
  shaken::v1::ListProfilesResponse resp;
  grpc::Status status;
  if (!Decode(*request, &req)) {
    status = Undecodable(req);
  } else {
    status = ToGrpcStatus(
        core_->ListProfiles(core_->authorizer().Identify(ctx->auth_context().get()), &resp));
    if (status.ok()) Encode(resp, response);
  }
  core_->metrics()->RecordRpc(Method::kListProfiles, status.error_code(), absl::Now() - start);
  reactor->Finish(status);
  return reactor;
}

}  // namespace shaken::daemon
