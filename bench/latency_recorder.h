// latency_recorder.h: the one latency recorder of load_bench: one phase's per-call latencies
// (percentiles), throughput over its measured window, errors, and the CPU time per call of the
// server process and of the load generator.
#ifndef SHAKEN_BENCH_LATENCY_RECORDER_H_
#define SHAKEN_BENCH_LATENCY_RECORDER_H_

#include <sys/types.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "bench/load_support.h"

namespace shaken::bench {

// ChargeServerCpuTo names the process whose CPU time recorders made from now on charge as the
// server's (shakend, then secsipidx or the floor server); -1: none.
void ChargeServerCpuTo(pid_t pid);
pid_t ChargedServer();

class LatencyRecorder {
 public:
  explicit LatencyRecorder(std::string name)
      : name_(std::move(name)),
        server_(ChargedServer()),
        server_cpu0_(server_ > 0 ? ProcCpuNs(server_) : 0),
        client_cpu0_(SelfCpuNs()) {
    lat_.reserve(1 << 16);
  }
  void Add(int64_t ns) { lat_.push_back(ns); }
  void Error(const std::string& what) {
    if (errors_++ == 0) first_error_ = what;
  }
  // Completions inside the measured window, over its length.
  // Also closes the CPU accounting (server: the process charged when this recorder was made;
  // client: this process).
  void SetWindow(uint64_t completed, int64_t window_ns) {
    completed_ = completed;
    window_ns_ = window_ns;
    if (server_ > 0) server_cpu_ = ProcCpuNs(server_) - server_cpu0_;
    client_cpu_ = SelfCpuNs() - client_cpu0_;
  }
  double ServerCpuUs() const { return lat_.empty() ? 0 : server_cpu_ / 1e3 / lat_.size(); }
  double ClientCpuUs() const { return lat_.empty() ? 0 : client_cpu_ / 1e3 / lat_.size(); }
  double rate() const { return window_ns_ > 0 ? completed_ * 1e9 / window_ns_ : 0.0; }
  uint64_t errors() const { return errors_; }
  size_t count() const { return lat_.size(); }
  double PercentileMs(double p) {
    if (lat_.empty()) return 0;
    if (!sorted_) {
      std::sort(lat_.begin(), lat_.end());
      sorted_ = true;
    }
    size_t i = static_cast<size_t>(p / 100.0 * static_cast<double>(lat_.size()));
    return lat_[std::min(i, lat_.size() - 1)] / 1e6;
  }
  void Print(const std::string& detail) {
    std::printf("%-26s %9.0f /s  p50 %6.3f  p90 %6.3f  p99 %7.3f  p99.9 %7.3f ms  n=%zu err=%llu  "
                "cpu/call server %.0f us client %.0f us  %s\n",
                name_.c_str(), rate(), PercentileMs(50), PercentileMs(90), PercentileMs(99),
                PercentileMs(99.9), lat_.size(), static_cast<unsigned long long>(errors_),
                ServerCpuUs(), ClientCpuUs(), detail.c_str());
    if (errors_ > 0) std::printf("%-26s first error: %s\n", "", first_error_.c_str());
    std::fflush(stdout);
  }

 private:
  std::string name_;
  pid_t server_ = -1;
  std::vector<int64_t> lat_;
  bool sorted_ = false;
  uint64_t errors_ = 0;
  std::string first_error_;
  uint64_t completed_ = 0;
  int64_t window_ns_ = 0;
  int64_t server_cpu0_ = 0, client_cpu0_ = 0, server_cpu_ = 0, client_cpu_ = 0;
};

}  // namespace shaken::bench

#endif  // SHAKEN_BENCH_LATENCY_RECORDER_H_
