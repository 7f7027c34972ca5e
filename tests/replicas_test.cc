// Several shakend replicas behind one client target, as a carrier runs them (a headless
// Kubernetes Service gives the client every pod's address): three shakend processes on one
// SoftHSM2 token, each signing through the fault-injecting PKCS#11 module so that one replica's
// token can be taken away alone. The client balances round robin, watches each replica's health
// and retries UNAVAILABLE on another replica. Asserted: the load spreads over the three; killing
// one (SIGKILL) and taking another's token away fail no call beyond those in flight at that
// instant; the survivors take the load; a replica whose token comes back gets traffic again.
#include <curl/curl.h>
#include <signal.h>

#include <atomic>
#include <fstream>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "shaken/client.h"
#include "tests/daemon_fixture.h"
#include "tests/testing/fault_pkcs11_control.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/subprocess.h"

namespace shaken::testing {
namespace {

constexpr int kReplicas = 3;

size_t Append(char* data, size_t size, size_t n, void* out) {
  static_cast<std::string*>(out)->append(data, size * n);
  return size * n;
}

// SignsServed reads shaken_rpc_requests_total{method="Sign",code="OK"} from a replica's
// /metrics; -1 when it cannot be read (the replica is down).
double SignsServed(int metrics_port) {
  CURL* curl = curl_easy_init();
  std::string body;
  const std::string url = absl::StrCat("http://127.0.0.1:", metrics_port, "/metrics");
  curl_easy_setopt(curl, CURLOPT_URL, url.c_str());
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, Append);
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT, 5L);
  const CURLcode rc = curl_easy_perform(curl);
  curl_easy_cleanup(curl);
  if (rc != CURLE_OK) return -1;
  for (absl::string_view line : absl::StrSplit(body, '\n')) {
    if (absl::StartsWith(line, "shaken_rpc_requests_total{") &&
        absl::StrContains(line, "method=\"Sign\"") && absl::StrContains(line, "code=\"OK\"")) {
      return std::stod(std::string(line.substr(line.rfind(' ') + 1)));
    }
  }
  return 0;
}

struct Replica {
  int api = 0, health = 0, metrics = 0;
  std::string config, control, log;
  std::unique_ptr<Child> child;
};

class ReplicasTest : public ::testing::Test {
 protected:
  void SetUp() override {
    DaemonEnvOptions options;
    options.pkcs11_module = SHAKEN_FAULT_P11_MODULE;
    options.start_daemon = false;
    options.pool_size = 2;
    auto env = DaemonEnv::Create(options);
    ASSERT_OK(env);
    env_ = *std::move(env);
    for (int i = 0; i < kReplicas; ++i) {
      Replica& r = replicas_[i];
      r.api = FreeLoopbackPort();
      r.health = FreeLoopbackPort();
      r.metrics = FreeLoopbackPort();
      r.control = absl::StrCat(env_->dir(), "/fault-", i, ".conf");
      r.log = absl::StrCat(env_->dir(), "/replica-", i, ".log");
      ASSERT_OK(WriteFaultP11Control(r.control, "token_gone=0\n"));
      r.config = absl::StrCat(env_->dir(), "/replica-", i, ".yaml");
      std::ofstream(r.config) << absl::StrReplaceAll(
          env_->config_yaml(),
          {{"api: 127.0.0.1:0\n", absl::StrCat("api: 127.0.0.1:", r.api, "\n")},
           {"health: 127.0.0.1:0\n", absl::StrCat("health: 127.0.0.1:", r.health, "\n")},
           {"metrics: 127.0.0.1:0\n", absl::StrCat("metrics: 127.0.0.1:", r.metrics, "\n")}});
      // One at a time: SoftHSM2 keeps its token in files that a process starting up reads while
      // another logging in may rewrite them, and then sees no token ("no token matches"). Real
      // HSMs have no such race; the test is not about start-up.
      StartReplica(i);
      WaitServing(i);
    }
    client::ClientOptions o = env_->ClientOptionsFor("sbc1.test");
    o.target = absl::StrCat("ipv4:127.0.0.1:", replicas_[0].api, ",127.0.0.1:", replicas_[1].api,
                            ",127.0.0.1:", replicas_[2].api);
    o.default_timeout = absl::Seconds(5);
    o.max_reconnect_backoff = absl::Milliseconds(500);
    auto c = client::Client::New(o);
    ASSERT_OK(c);
    client_ = *std::move(c);
    ASSERT_OK(client_->WaitForReady(absl::Seconds(10)));
  }

  void StartReplica(int i) {
    Replica& r = replicas_[i];
    auto child = Child::Start({SHAKEND_BINARY, "--config", r.config}, r.log,
                              {{"SHAKEN_FAULT_P11_CONTROL", r.control}});
    ASSERT_OK(child);
    r.child = std::make_unique<Child>(*std::move(child));
  }
  void WaitServing(int i) {
    const std::string target = absl::StrCat("127.0.0.1:", replicas_[i].health);
    for (int n = 0; n < 600; ++n) {  // 30 s
      auto h = HealthStatus(target, "shaken.v1.Shaken");
      if (h.ok() && *h == 1) return;
      absl::SleepFor(absl::Milliseconds(50));
    }
    FAIL() << "replica " << i << " not SERVING:\n" << replicas_[i].child->Log();
  }
  // Served returns each replica's count of Sign calls answered OK (-1: down).
  std::vector<double> Served() {
    std::vector<double> out;
    for (const Replica& r : replicas_) out.push_back(SignsServed(r.metrics));
    return out;
  }
  client::SignParams Call() {
    return {.attest = "A", .orig_tn = "12155550121", .dest_tns = {"12155550131"}};
  }

  // Load runs `threads` callers signing back to back until `stop`; counts the outcomes.
  struct Load {
    std::atomic<bool> stop{false};
    std::atomic<int> ok{0}, failed{0};
    std::string first_failure;
    std::vector<std::thread> threads;
  };
  void StartLoad(Load* load, int threads) {
    for (int t = 0; t < threads; ++t) {
      load->threads.emplace_back([this, load] {
        while (!load->stop.load()) {
          absl::StatusOr<client::SignResult> r = client_->Sign(Call());
          if (r.ok()) {
            ++load->ok;
          } else if (load->failed++ == 0) {
            load->first_failure = r.status().ToString();
          }
        }
      });
    }
  }
  void StopLoad(Load* load) {
    load->stop = true;
    for (auto& t : load->threads) t.join();
  }

  std::unique_ptr<DaemonEnv> env_;
  Replica replicas_[kReplicas];
  std::unique_ptr<client::Client> client_;
};

TEST_F(ReplicasTest, LoadSpreadsAndSurvivesAKilledReplicaAndALostToken) {
  constexpr int kCallers = 6;
  // 1. Spread: 300 calls, each replica within ±25 % of a third.
  for (int i = 0; i < 30; ++i) ASSERT_OK(client_->Sign(Call()));  // every connection up
  const std::vector<double> before = Served();
  {
    std::atomic<int> next{0};
    std::vector<std::thread> callers;
    for (int t = 0; t < kCallers; ++t) {
      callers.emplace_back([&] {
        while (next++ < 300) EXPECT_OK(client_->Sign(Call()));
      });
    }
    for (auto& t : callers) t.join();
  }
  const std::vector<double> spread = Served();
  for (int i = 0; i < kReplicas; ++i) {
    const double share = spread[i] - before[i];
    EXPECT_GE(share, 75) << "replica " << i;
    EXPECT_LE(share, 125) << "replica " << i;
  }

  // 2. SIGKILL replica 0 under load: at most the calls in flight then fail (retries move them).
  {
    Load load;
    StartLoad(&load, kCallers);
    absl::SleepFor(absl::Milliseconds(500));
    replicas_[0].child->Signal(SIGKILL);
    replicas_[0].child->Wait(absl::Seconds(5));
    const std::vector<double> at_kill = Served();
    absl::SleepFor(absl::Seconds(1));
    StopLoad(&load);
    const std::vector<double> after = Served();
    EXPECT_LE(load.failed.load(), kCallers) << load.first_failure;
    EXPECT_GT(load.ok.load(), 0);
    EXPECT_EQ(after[0], -1);  // gone
    EXPECT_GT(after[1], at_kill[1]);
    EXPECT_GT(after[2], at_kill[2]);
  }

  // 3. Replica 1's token goes away under load: it turns NOT_SERVING, calls move to replica 2.
  {
    Load load;
    StartLoad(&load, kCallers);
    absl::SleepFor(absl::Milliseconds(300));
    ASSERT_OK(WriteFaultP11Control(replicas_[1].control, "token_gone=1\n"));
    const std::string health = absl::StrCat("127.0.0.1:", replicas_[1].health);
    bool down = false;
    for (int n = 0; n < 200 && !down; ++n) {
      auto h = HealthStatus(health, "shaken.v1.Shaken");
      down = h.ok() && *h == 2;
      if (!down) absl::SleepFor(absl::Milliseconds(25));
    }
    EXPECT_TRUE(down) << "replica 1 still SERVING without its token";
    const std::vector<double> at_loss = Served();
    absl::SleepFor(absl::Seconds(1));
    StopLoad(&load);
    const std::vector<double> after = Served();
    EXPECT_LE(load.failed.load(), kCallers) << load.first_failure;
    EXPECT_EQ(after[1], at_loss[1]);  // no call reached it while NOT_SERVING
    EXPECT_GT(after[2], at_loss[2]);
  }

  // 4. The token comes back: replica 1 turns SERVING and receives traffic again.
  ASSERT_OK(WriteFaultP11Control(replicas_[1].control, "token_gone=0\n"));
  WaitServing(1);
  const std::vector<double> back = Served();
  bool served_again = false;
  for (int n = 0; n < 100 && !served_again; ++n) {
    for (int i = 0; i < 10; ++i) EXPECT_OK(client_->Sign(Call()));
    served_again = Served()[1] > back[1];
  }
  EXPECT_TRUE(served_again);
}

}  // namespace
}  // namespace shaken::testing
