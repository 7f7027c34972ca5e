// service.h: shaken.v1.Shaken on gRPC's callback API, a front end of the service core (core.h):
// it decodes the request, identifies the caller from the TLS peer, hands the call to the core and
// finishes the RPC when the core completes it. No reaction ever waits (core.h says how).
#ifndef SHAKEN_DAEMON_SERVICE_H_
#define SHAKEN_DAEMON_SERVICE_H_


#include "absl/status/status.h"
#include "daemon/core.h"
#include "shaken/v1/shaken.grpc.pb.h"

namespace shaken::daemon {

// ToGrpcStatus maps an absl::Status to a grpc::Status with the same code and message.
grpc::Status ToGrpcStatus(const absl::Status& s);

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
  // `core` outlives the service.
  explicit ShakenService(const ServiceCore* core) : core_(core) {}

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

 private:
  class StreamReactor;

  const ServiceCore* core_;
};

}  // namespace shaken::daemon

#endif  // SHAKEN_DAEMON_SERVICE_H_
