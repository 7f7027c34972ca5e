// The Kubernetes manifests in deploy/kubernetes hold what running shakend in a cluster needs:
// probes by health name, a drain that outlasts the endpoint update, hardening, spread, the PIN as
// a mounted Secret, the configuration mounted so that reloads reach the pod.
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/source_path.h"
#include "yaml-cpp/yaml.h"

namespace shaken::testing {
namespace {

std::map<std::string, YAML::Node> ByKind() {
  std::map<std::string, YAML::Node> docs;
  for (const YAML::Node& doc : YAML::LoadAllFromFile(SourcePath("deploy/kubernetes/shakend.yaml"))) {
    if (doc && doc["kind"]) docs[doc["kind"].as<std::string>()] = doc;
  }
  return docs;
}

TEST(DeployManifestTest, DeploymentProbesDrainHardeningAndMounts) {
  auto docs = ByKind();
  ASSERT_TRUE(docs.count("Deployment"));
  const YAML::Node pod = docs["Deployment"]["spec"]["template"]["spec"];
  EXPECT_EQ(pod["securityContext"]["seccompProfile"]["type"].as<std::string>(), "RuntimeDefault");
  EXPECT_TRUE(pod["securityContext"]["runAsNonRoot"].as<bool>());
  ASSERT_TRUE(pod["topologySpreadConstraints"].IsSequence());
  EXPECT_EQ(pod["topologySpreadConstraints"][0]["topologyKey"].as<std::string>(),
            "kubernetes.io/hostname");
  const YAML::Node c = pod["containers"][0];
  // Readiness follows the token; liveness and start-up do not.
  EXPECT_EQ(c["readinessProbe"]["grpc"]["service"].as<std::string>(), "shaken.v1.Shaken");
  EXPECT_GT(c["readinessProbe"]["failureThreshold"].as<int>(), 1);
  EXPECT_EQ(c["livenessProbe"]["grpc"]["service"].as<std::string>(), "liveness");
  EXPECT_EQ(c["startupProbe"]["grpc"]["service"].as<std::string>(), "liveness");
  // preStop lets the endpoints drop the pod; the grace period covers it and drain_grace (10s).
  const int pre_stop = c["lifecycle"]["preStop"]["sleep"]["seconds"].as<int>();
  EXPECT_GT(pre_stop, 0);
  EXPECT_GT(pod["terminationGracePeriodSeconds"].as<int>(), pre_stop + 10);
  EXPECT_FALSE(c["securityContext"]["allowPrivilegeEscalation"].as<bool>());
  EXPECT_TRUE(c["securityContext"]["readOnlyRootFilesystem"].as<bool>());
  // No PIN in the environment; the configuration is mounted as a directory (no subPath).
  EXPECT_FALSE(c["env"]) << "the PIN belongs in a mounted Secret file, not the environment";
  bool pin_mounted = false;
  for (const YAML::Node& m : c["volumeMounts"]) {
    EXPECT_FALSE(m["subPath"]) << m["name"].as<std::string>() << " uses subPath";
    if (m["name"].as<std::string>() == "pin") pin_mounted = m["readOnly"].as<bool>();
  }
  EXPECT_TRUE(pin_mounted);
  const std::string config = docs["ConfigMap"]["data"]["shakend.yaml"].as<std::string>();
  EXPECT_THAT(config, ::testing::HasSubstr("pin_source: file:/etc/shakend/pin/pin"));
}

TEST(DeployManifestTest, HeadlessServiceDisruptionBudgetAndScrapeTarget) {
  auto docs = ByKind();
  ASSERT_TRUE(docs.count("Service"));
  EXPECT_EQ(docs["Service"]["spec"]["clusterIP"].as<std::string>(), "None");
  ASSERT_TRUE(docs.count("PodDisruptionBudget"));
  ASSERT_TRUE(docs.count("PodMonitor"));
  EXPECT_EQ(docs["PodMonitor"]["spec"]["podMetricsEndpoints"][0]["port"].as<std::string>(),
            "metrics");
}


// The PrometheusRule for the Prometheus Operator is made from the one rules file, so the two never
// disagree.
TEST(DeployManifestTest, PrometheusRuleCarriesTheAlertRules) {
  const std::string command = SourcePath("deploy/kubernetes/prometheusrule.sh");
  FILE* pipe = popen(command.c_str(), "r");
  ASSERT_NE(pipe, nullptr);
  std::string out;
  char buf[4096];
  for (size_t n; (n = fread(buf, 1, sizeof buf, pipe)) > 0;) out.append(buf, n);
  ASSERT_EQ(pclose(pipe), 0) << out;
  const YAML::Node rule = YAML::Load(out);
  EXPECT_EQ(rule["apiVersion"].as<std::string>(), "monitoring.coreos.com/v1");
  EXPECT_EQ(rule["kind"].as<std::string>(), "PrometheusRule");
  const YAML::Node file = YAML::LoadFile(SourcePath("deploy/prometheus/shakend-alerts.yaml"));
  ASSERT_TRUE(rule["spec"]["groups"].IsSequence());
  EXPECT_EQ(YAML::Dump(rule["spec"]["groups"]), YAML::Dump(file["groups"]));
  EXPECT_GT(rule["spec"]["groups"][0]["rules"].size(), 3u);
}

}  // namespace
}  // namespace shaken::testing
