#include "bench/latency_recorder.h"

#include <atomic>

namespace shaken::bench {
namespace {
std::atomic<pid_t> charged_server{-1};
}  // namespace

void ChargeServerCpuTo(pid_t pid) { charged_server.store(pid); }
pid_t ChargedServer() { return charged_server.load(); }

}  // namespace shaken::bench
