// metrics_test.cc: the metric table is the one declaration: every series the request path and the
// process collectors register is in it with its type and labels, and the operators' list in
// docs/operations.md#metrics is exactly the table. (The daemon's own collectors are checked
// against the table on a live scrape in tests/daemon_wire_test.cc.)
#include "daemon/metrics.h"

#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/source_path.h"

namespace shaken::daemon {
namespace {

std::string TypeOf(prometheus::MetricType t) {
  switch (t) {
    case prometheus::MetricType::Counter:
      return "counter";
    case prometheus::MetricType::Gauge:
      return "gauge";
    case prometheus::MetricType::Histogram:
      return "histogram";
    default:
      return "other";
  }
}

std::set<std::string> LabelSet(std::string_view labels) {
  std::set<std::string> out;
  for (absl::string_view l : absl::StrSplit(absl::string_view(labels.data(), labels.size()), ',',
                                            absl::SkipEmpty())) {
    out.emplace(l);
  }
  return out;
}

TEST(MetricsTableTest, NamesAreUniqueAndFollowTheStyle) {
  std::set<std::string_view> names;
  for (const MetricSpec& m : MetricTable()) {
    EXPECT_TRUE(names.insert(m.name).second) << m.name;
    EXPECT_TRUE(m.name.starts_with("shaken_")) << m.name;
    EXPECT_FALSE(m.help.empty()) << m.name;
    EXPECT_EQ(m.type == MetricType::kCounter, m.name.ends_with("_total")) << m.name;
    EXPECT_EQ(FindMetric(m.name), &m);
  }
  EXPECT_EQ(FindMetric("shaken_x5u_cache_fetches_total"), nullptr);
}

TEST(MetricsTableTest, EveryRegisteredSeriesIsDeclaredWithItsTypeAndLabels) {
  Metrics metrics({"token", "file"});
  metrics.RecordRpc(Method::kSign, grpc::StatusCode::OK, absl::Milliseconds(1));
  metrics.RecordSign(0, absl::Milliseconds(1));
  metrics.RecordQueueWait(1, absl::Milliseconds(1));
  metrics.RecordVerdict(stir::Reason::kPassed);
  metrics.RecordFetch(true, absl::Milliseconds(1));
  std::set<std::string> seen;
  for (const auto& collectable : metrics.collectables()) {
    for (const prometheus::MetricFamily& f : collectable->Collect()) {
      const MetricSpec* spec = FindMetric(f.name);
      ASSERT_NE(spec, nullptr) << f.name << " is registered but not declared in MetricTable()";
      seen.insert(f.name);
      EXPECT_EQ(TypeOf(f.type), MetricTypeName(spec->type)) << f.name;
      EXPECT_EQ(f.help, spec->help) << f.name;
      for (const prometheus::ClientMetric& sample : f.metric) {
        std::set<std::string> labels;
        for (const auto& l : sample.label) labels.insert(l.name);
        EXPECT_EQ(labels, LabelSet(spec->labels)) << f.name;
      }
    }
  }
  for (const char* name : {"shaken_rpc_requests_total", "shaken_rpc_duration_seconds",
                           "shaken_sign_duration_seconds", "shaken_sign_queue_wait_seconds",
                           "shaken_verify_verdicts_total", "shaken_x5u_fetch_duration_seconds",
                           "shaken_audit_available", "shaken_build_info"}) {
    EXPECT_TRUE(seen.count(name)) << name;
  }
}

TEST(MetricsTableTest, CollectorFamiliesTakeTypeAndHelpFromTheTable) {
  prometheus::MetricFamily f = Family("shaken_hsm_health");
  EXPECT_EQ(f.type, prometheus::MetricType::Gauge);
  EXPECT_EQ(f.help, FindMetric("shaken_hsm_health")->help);
  EXPECT_EQ(Family("shaken_x5u_fetches_total").type, prometheus::MetricType::Counter);
  EXPECT_DEATH(Family("shaken_not_declared"), "shaken_not_declared is not declared");
}

TEST(MetricsTableTest, TheOperatorsListIsTheTable) {
  std::ifstream in(testing::SourcePath("docs/operations.md"));
  ASSERT_TRUE(in) << "docs/operations.md";
  std::string line;
  bool in_section = false;
  std::vector<std::string> documented;
  while (std::getline(in, line)) {
    if (line.starts_with("### 7.1 Metrics")) {
      in_section = true;
      continue;
    }
    if (in_section && line.starts_with("#")) break;
    if (!in_section || !line.starts_with("| `shaken_")) continue;
    std::vector<std::string> cells = absl::StrSplit(line, '|');
    ASSERT_GE(cells.size(), 6u) << line;
    std::vector<std::string> row;
    for (size_t i = 1; i + 1 < cells.size(); ++i) {
      row.emplace_back(absl::StripAsciiWhitespace(cells[i]));
    }
    documented.push_back(absl::StrJoin(row, " | "));
  }
  std::vector<std::string> declared;
  for (const MetricSpec& m : MetricTable()) {
    std::string labels(m.labels);
    declared.push_back("`" + std::string(m.name) + "` | " + std::string(MetricTypeName(m.type)) +
                       " | " + absl::StrJoin(absl::StrSplit(labels, ','), ", ") + " | " +
                       std::string(m.help));
  }
  EXPECT_EQ(documented, declared)
      << "docs/operations.md#metrics must list MetricTable() (daemon/metrics.cc) row for row";
}

TEST(GrpcCodeNameTest, NamesAreGrpcs) {
  EXPECT_EQ(GrpcCodeName(0), "OK");
  EXPECT_EQ(GrpcCodeName(4), "DEADLINE_EXCEEDED");
  EXPECT_EQ(GrpcCodeName(14), "UNAVAILABLE");
  EXPECT_EQ(GrpcCodeName(16), "UNAUTHENTICATED");
  EXPECT_EQ(GrpcCodeName(17), "UNKNOWN");
  EXPECT_EQ(GrpcCodeName(-1), "UNKNOWN");
}

}  // namespace
}  // namespace shaken::daemon
