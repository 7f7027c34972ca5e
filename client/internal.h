// client/internal.h: the pieces of client.cc that unit tests reach directly. Not installed; may
// include gRPC types (the public headers may not).
#ifndef SHAKEN_CLIENT_INTERNAL_H_
#define SHAKEN_CLIENT_INTERNAL_H_

#include <string>

#include "absl/status/status.h"
#include "grpcpp/support/status.h"
#include "shaken/client.h"

namespace shaken::client::internal {

// FromGrpcStatus maps a grpc::Status to the absl::Status with the same code (the two enums share
// google.rpc's numbering) and the same message. Codes outside 0..16 become UNKNOWN, with the
// original number in the message.
absl::Status FromGrpcStatus(const grpc::Status& status);

// FromRpcCode builds an absl::Status from a google.rpc code number and message (the Error of a
// SignStream response), with the same out-of-range rule.
absl::Status FromRpcCode(int code, const std::string& message);

// ValidateOptions checks `options` without touching the file system: INVALID_ARGUMENT naming the
// option and what to fix.
absl::Status ValidateOptions(const ClientOptions& options);

// ServiceConfigJson is the channel's service config: the balancing policy, the retry policy for
// the unary methods of shaken.v1.Shaken and, unless `health_checked` is false, the client-side
// health check of options.health_check_service. `retry` must have passed ValidateOptions.
std::string ServiceConfigJson(const RetryPolicy& retry,
                              const ClientOptions& options = ClientOptions(),
                              bool health_checked = true);

// SeparateVerifyChannel says whether Verify and ListProfiles need a channel of their own: true when
// the signing channel is health-checked (round robin with a health_check_service), because a
// replica answers NOT_SERVING while its token is down yet still verifies.
bool SeparateVerifyChannel(const ClientOptions& options);

}  // namespace shaken::client::internal

#endif  // SHAKEN_CLIENT_INTERNAL_H_
