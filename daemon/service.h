// service.h: shaken.v1.Shaken on gRPC's callback API. The request path takes no lock of its own:
// a profile lookup in an immutable map, the token pool's checkout, the verifier's cache lookup.
#ifndef SHAKEN_DAEMON_SERVICE_H_
#define SHAKEN_DAEMON_SERVICE_H_

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
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
  const stir::Clock* clock = nullptr;
  bool audit_tns = false;
};

class ShakenService final : public shaken::v1::Shaken::CallbackService {
 public:
  explicit ShakenService(ServiceDeps deps);

  grpc::ServerUnaryReactor* Sign(grpc::CallbackServerContext* ctx,
                                 const shaken::v1::SignRequest* request,
                                 shaken::v1::SignResponse* response) override;
  grpc::ServerBidiReactor<shaken::v1::SignRequest, shaken::v1::SignStreamResponse>* SignStream(
      grpc::CallbackServerContext* ctx) override;
  grpc::ServerUnaryReactor* Verify(grpc::CallbackServerContext* ctx,
                                   const shaken::v1::VerifyRequest* request,
                                   shaken::v1::VerifyResponse* response) override;
  grpc::ServerUnaryReactor* ListProfiles(grpc::CallbackServerContext* ctx,
                                         const shaken::v1::ListProfilesRequest* request,
                                         shaken::v1::ListProfilesResponse* response) override;

  // DoSign signs one request for `caller` (shared by Sign and SignStream).
  grpc::Status DoSign(const Caller& caller, absl::Time deadline,
                      const shaken::v1::SignRequest& request, shaken::v1::SignResponse* response,
                      Method method) const;

 private:
  class StreamReactor;

  ServiceDeps deps_;
  absl::flat_hash_map<std::string, size_t> profile_index_;
  size_t default_index_ = 0;
};

}  // namespace shaken::daemon

#endif  // SHAKEN_DAEMON_SERVICE_H_
