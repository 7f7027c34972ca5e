#include "daemon/health.h"

#include <grpcpp/health_check_service_interface.h>

namespace shaken::daemon {

void HealthPublisher::Publish(bool serving, std::initializer_list<grpc::Server*> servers) {
  absl::MutexLock lock(&mu_);
  if (published_ == serving) return;
  for (grpc::Server* server : servers) {
    if (server == nullptr) continue;
    grpc::HealthCheckServiceInterface* h = server->GetHealthCheckService();
    if (h == nullptr) continue;
    h->SetServingStatus("", serving);
    h->SetServingStatus("shaken.v1.Shaken", serving);
    // Liveness: the process answers; never depends on the HSM or the drain.
    h->SetServingStatus("liveness", true);
  }
  published_ = serving;
}

}  // namespace shaken::daemon
