// service.h: shaken.v1.Shaken on gRPC's callback API. No reaction ever waits: a token signature
// is handed to the profile's key pool (its workers finish the call), a certificate fetch to the
// verifier's fetch loop (it finishes the call); only a software-key signature and a verification
// whose certificates are cached complete on the RPC thread, because that is cheaper than a hand-off.
// Every hand-off is bounded: the pool's queue per profile, verifier.max_in_flight for Verify (so
// slow x5u servers cannot starve signing), the fetch loop's slots.
#ifndef SHAKEN_DAEMON_SERVICE_H_
#define SHAKEN_DAEMON_SERVICE_H_

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "daemon/authz.h"
#include "daemon/metrics.h"
#include "daemon/profiles.h"
#include "shaken/v1/shaken.grpc.pb.h"
#include "stir/clock.h"
#include "stir/verifier.h"

namespace shaken::daemon {

// ToGrpcStatus maps an absl::Status to a grpc::Status with the same code and message.
grpc::Status ToGrpcStatus(const absl::Status& s);

// ServiceDeps is what the service needs; every member outlives the service.
struct ServiceDeps {
  std::vector<SigningProfile*> profiles;   // in configuration order
  const SigningProfile* default_profile = nullptr;
  const stir::Verifier* verifier = nullptr;  // null: verification disabled
  const Authorizer* authorizer = nullptr;
  Metrics* metrics = nullptr;
  bool audit_tns = false;
  // Verify calls in progress at most (beyond: RESOURCE_EXHAUSTED at once).
  int max_verify_in_flight = 4096;
};

// ShakenRawService is shaken.v1.Shaken on the callback API with every method taking its request
// as bytes. gRPC 1.51's typed callback handlers answer a request that does not decode with
// UNIMPLEMENTED and an empty message (unary), or end a stream's reads as if the client had
// half-closed (SignStream); decoding the messages here answers INVALID_ARGUMENT instead.
using ShakenRawService = shaken::v1::Shaken::WithRawCallbackMethod_Sign<
    shaken::v1::Shaken::WithRawCallbackMethod_SignStream<
        shaken::v1::Shaken::WithRawCallbackMethod_Verify<
            shaken::v1::Shaken::WithRawCallbackMethod_ListProfiles<shaken::v1::Shaken::Service>>>>;

// ShakenService serves shaken.v1.Shaken. A request message that does not decode is answered
// INVALID_ARGUMENT saying so; on SignStream it gets an answer in its place (error code 3, empty
// request_id) and the stream goes on.
class ShakenService final : public ShakenRawService {
 public:
  explicit ShakenService(ServiceDeps deps);

  grpc::ServerUnaryReactor* Sign(grpc::CallbackServerContext* ctx, const grpc::ByteBuffer* request,
                                 grpc::ByteBuffer* response) override;
  grpc::ServerBidiReactor<grpc::ByteBuffer, grpc::ByteBuffer>* SignStream(
      grpc::CallbackServerContext* ctx) override;
  grpc::ServerUnaryReactor* Verify(grpc::CallbackServerContext* ctx,
                                   const grpc::ByteBuffer* request,
                                   grpc::ByteBuffer* response) override;
  grpc::ServerUnaryReactor* ListProfiles(grpc::CallbackServerContext* ctx,
                                         const grpc::ByteBuffer* request,
                                         grpc::ByteBuffer* response) override;

  using SignDone = absl::AnyInvocable<void(grpc::Status) &&>;
  // StartSign signs one request for `caller` (shared by Sign and SignStream) and calls `done`
  // exactly once with the outcome: inline for a refusal or a software key, on the profile's pool
  // worker for a token key. `caller`, `request` and `response` must stay valid until then.
  void StartSign(const Caller& caller, absl::Time deadline, const shaken::v1::SignRequest& request,
                 shaken::v1::SignResponse* response, Method method, SignDone done) const;

  // verify_in_flight: Verify calls accepted and not yet answered.
  int verify_in_flight() const { return verify_in_flight_.load(std::memory_order_relaxed); }

 private:
  class StreamReactor;
  struct SignCall;

  void AuditSign(const SignCall& call, const grpc::Status& status) const;
  void CompleteSign(std::unique_ptr<SignCall> call, grpc::Status status) const;
  std::string ProfilesFor(const Caller& caller, std::string_view method) const;

  ServiceDeps deps_;
  mutable std::atomic<int> verify_in_flight_{0};
  absl::flat_hash_map<std::string, size_t> profile_index_;
  size_t default_index_ = 0;
};

}  // namespace shaken::daemon

#endif  // SHAKEN_DAEMON_SERVICE_H_
