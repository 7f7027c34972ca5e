// server_internal.h: internal to daemon/server.cc and daemon/reload.cc. What a running Daemon
// holds (Daemon::State) and the pieces that start-up and a reload both use to build it.
#ifndef SHAKEN_DAEMON_SERVER_INTERNAL_H_
#define SHAKEN_DAEMON_SERVER_INTERNAL_H_

#include <grpcpp/generic/async_generic_service.h>
#include <grpcpp/grpcpp.h>
#include <prometheus/exposer.h>

#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "daemon/authz.h"
#include "daemon/ca_list_refresher.h"
#include "daemon/config.h"
#include "daemon/core.h"
#include "daemon/health.h"
#include "daemon/metrics.h"
#include "daemon/profiles.h"
#include "daemon/rest/rest_front.h"
#include "daemon/server.h"
#include "daemon/service.h"
#include "daemon/sip/redirect_server.h"
#include "stir/verification_stack.h"

namespace shaken::daemon {

struct Daemon::State {
  Config config;
  const stir::Clock* clock = nullptr;
  std::unique_ptr<Authorizer> authorizer;
  std::unique_ptr<Metrics> metrics;
  std::unique_ptr<ServiceCore> core;        // shared by every front end
  std::unique_ptr<ShakenService> service;  // the gRPC front end
  std::unique_ptr<rest::RestListener> rest;  // the REST front end (listen.rest), if configured
  std::unique_ptr<grpc::Server> api;
  grpc::CallbackGenericService health_unknown_methods;  // outlives the server that uses it
  std::unique_ptr<grpc::Server> health;
  std::unique_ptr<prometheus::Exposer> exposer;
  std::unique_ptr<sip::RedirectServer> sip;  // listen.sip
  absl::Mutex shutdown_mu;
  bool shut_down ABSL_GUARDED_BY(shutdown_mu) = false;
  // Starts another API server like `api` (same address and port, same settings) for `service`;
  // Daemon::MoveClientsAway. The port it got goes to *port.
  std::function<std::unique_ptr<grpc::Server>(ShakenService* service, int* port)> restart_api;
  // API servers replaced by MoveClientsAway, shutting down on their own threads (joined by
  // Daemon::Shutdown), and when the last one was.
  std::vector<std::thread> api_closers ABSL_GUARDED_BY(shutdown_mu);
  absl::Time last_goaway = absl::InfinitePast();  // monitor thread only
  absl::Duration drain_grace;                       // as at start (restart-only)
  // The verification stack in force (null: verifier.enabled is false); the core holds its
  // verifier. Replaced by a reload.
  absl::Mutex mu;
  std::shared_ptr<stir::VerificationStack> verification ABSL_GUARDED_BY(mu);
  // verifier.ca_list_url (null without): keeps the listed trust anchors of the stack in force.
  std::unique_ptr<CaListRefresher> ca_list;
  // Replaced profile sets and stacks, kept until no call uses them (Reap): their last reference
  // must not be dropped on one of their own threads (a pool worker, the fetch loop).
  std::vector<std::shared_ptr<const ProfileSet>> retired_profiles ABSL_GUARDED_BY(mu);
  std::vector<std::shared_ptr<stir::VerificationStack>> retired_verification ABSL_GUARDED_BY(mu);

  std::shared_ptr<stir::VerificationStack> Verification() {
    absl::MutexLock lock(&mu);
    return verification;
  }
  HealthPublisher health_publisher;
};

namespace server_internal {

// BuildVerifier builds the verification stack of `c`'s verifier section (x5u fetches timed into
// `state`'s metrics).
absl::StatusOr<std::unique_ptr<stir::VerificationStack>> BuildVerifier(const Config& c,
                                                                       Daemon::State* state);

// InForce is what the core verifies with: the stack's verifier (sharing the stack's lifetime)
// and the verifier section's bound on verifications in progress.
VerifierInForce InForce(const std::shared_ptr<stir::VerificationStack>& stack,
                        const VerifierConfig& v);

// OpenProfile opens profile `p` of `config` for start-up and reloads alike. A token that cannot be
// reached now (an HSM outage) does not stop it: the key is opened in the background and the
// profile is DOWN meanwhile (pkcs11.require_token_at_start: false).
absl::StatusOr<std::shared_ptr<SigningProfile>> OpenProfile(const ProfileConfig& p,
                                                            const Config& config,
                                                            const stir::Clock* clock,
                                                            Metrics* metrics);

}  // namespace server_internal
}  // namespace shaken::daemon

#endif  // SHAKEN_DAEMON_SERVER_INTERNAL_H_
