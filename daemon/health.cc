#include "daemon/health.h"

#include <grpcpp/health_check_service_interface.h>

namespace shaken::daemon {
namespace {

void Set(grpc::Server* server, bool serving) {
  if (server == nullptr) return;
  grpc::HealthCheckServiceInterface* h = server->GetHealthCheckService();
  if (h == nullptr) return;
  h->SetServingStatus("", serving);
  h->SetServingStatus("shaken.v1.Shaken", serving);
  // Liveness: the process answers; never depends on the HSM or the drain.
  h->SetServingStatus("liveness", true);
}

}  // namespace

void HealthPublisher::Publish(bool serving, std::initializer_list<grpc::Server*> servers) {
  absl::MutexLock lock(&mu_);
  if (published_ == serving) return;
  for (grpc::Server* server : servers) Set(server, serving);
  published_ = serving;
}

void HealthPublisher::PublishTo(grpc::Server* server) {
  absl::MutexLock lock(&mu_);
  if (published_.has_value()) Set(server, *published_);
}

}  // namespace shaken::daemon
