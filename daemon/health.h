// health.h: what shakend publishes through gRPC's default health service (grpc.health.v1).
#ifndef SHAKEN_DAEMON_HEALTH_H_
#define SHAKEN_DAEMON_HEALTH_H_

#include <initializer_list>
#include <optional>

#include <grpcpp/server.h>

#include "absl/base/thread_annotations.h"
#include "absl/synchronization/mutex.h"

namespace shaken::daemon {

// HealthPublisher sets the serving status of "" and "shaken.v1.Shaken" (readiness: NOT_SERVING
// while a profile's token is down or while draining) and "liveness" (always SERVING while the
// process answers: a liveness probe must not restart a replica because its HSM is away), and of
// nothing else, on each server's health service, and only when readiness changes. It never calls gRPC's
// SetServingStatus(bool) overload: that one sets every name a client ever Checked or Watched, so
// made-up names would turn SERVING and stay in gRPC's map for the life of the process (a memory
// leak any client of the plaintext health listener can drive). Thread-safe.
class HealthPublisher {
 public:
  // Publish sets `serving` on the health service of each non-null server in `servers` if it
  // differs from what was last published (or nothing was).
  void Publish(bool serving, std::initializer_list<grpc::Server*> servers);
  // PublishTo sets what was last published on `server`'s health service (a server started after
  // the last change); nothing when nothing was published yet.
  void PublishTo(grpc::Server* server);

 private:
  absl::Mutex mu_;
  std::optional<bool> published_ ABSL_GUARDED_BY(mu_);
};

}  // namespace shaken::daemon

#endif  // SHAKEN_DAEMON_HEALTH_H_
