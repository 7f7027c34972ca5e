// rate_reporter.h: a Google Benchmark reporter that prints as usual and remembers each run's
// items_per_second, so a benchmark binary can end with its one-line summary of ratios.
#ifndef SHAKEN_BENCH_RATE_REPORTER_H_
#define SHAKEN_BENCH_RATE_REPORTER_H_

#include <benchmark/benchmark.h>

#include <map>
#include <string>
#include <vector>

namespace shaken::bench {

class RateReporter : public benchmark::ConsoleReporter {
 public:
  void ReportRuns(const std::vector<Run>& runs) override {
    for (const Run& r : runs) {
      auto it = r.counters.find("items_per_second");
      if (it != r.counters.end() && !r.error_occurred) rates_[r.benchmark_name()] = it->second.value;
    }
    ConsoleReporter::ReportRuns(runs);
  }

  // Rate is the items/s of the run named `name` (e.g. "pool/real_time/threads:2"), 0 if absent.
  double Rate(const std::string& name) const {
    auto it = rates_.find(name);
    return it == rates_.end() ? 0.0 : it->second;
  }

  // Ratio is a / b, 0 when b is 0 (a run that failed).
  static double Ratio(double a, double b) { return b > 0 ? a / b : 0.0; }

 private:
  std::map<std::string, double> rates_;
};

}  // namespace shaken::bench

#endif  // SHAKEN_BENCH_RATE_REPORTER_H_
