// acme_server_test.cc: the ACME server in process, over plain HTTP on 127.0.0.1: hostile but
// well-signed payloads are answered with problems (never an exception or a crash), a full work
// queue is answered at once with 503 rateLimited while a worker is busy (the event threads never
// wait), and a stopping server answers what is queued with 503.
#include <atomic>
#include <thread>

#include "absl/synchronization/notification.h"
#include "cli/acme/client.h"
#include "cli/acme/problem.h"
#include "cli/acme/server.h"
#include "cli/acme/store.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "stir/memory_signer.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/test_pki.h"

namespace shaken::acme {
namespace {

using ::testing::HasSubstr;

// A fetcher that blocks until released (to keep a worker busy), then fails.
class BlockingFetcher : public stir::CertificateFetcher {
 public:
  stir::FetchResult Fetch(std::string_view) const override {
    if (!entered_.HasBeenNotified()) entered_.Notify();
    release_.WaitForNotificationWithTimeout(absl::Seconds(20));
    return stir::FetchResult::Failure(stir::Reason::kFetchConnect, "test: no PA here");
  }
  mutable absl::Notification entered_, release_;
};

class AcmeServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto store = Store::Open(dir_.path() + "/acme.db");
    ASSERT_OK(store);
    store_ = *std::move(store);
    anchors_.reset(X509_STORE_new());
    EngineConfig config;
    config.pa_anchors = anchors_.get();
    config.fetcher = &fetcher_;
    AcmeServerOptions options;
    options.http.address = "127.0.0.1:0";
    options.workers = 1;
    options.max_queue = 1;
    auto server = AcmeServer::Start(options, config, store_.get());
    ASSERT_OK(server);
    server_ = *std::move(server);
    auto key = stir::MemorySigner::Generate();
    ASSERT_OK(key);
    key_ = *std::move(key);
    client_ = Connect();
    ASSERT_NE(client_, nullptr);
    ASSERT_OK(client_->NewAccount(std::nullopt));
  }
  void TearDown() override {
    if (!fetcher_.release_.HasBeenNotified()) fetcher_.release_.Notify();
    if (server_) server_->Stop();
  }
  std::unique_ptr<AcmeClient> Connect() {
    ClientOptions co;
    co.max_bad_nonce_retries = 0;
    auto c = AcmeClient::Connect(server_->directory_url(), key_.get(), key_->key(), co);
    EXPECT_OK(c);
    return c.ok() ? *std::move(c) : nullptr;
  }
  absl::Status PostJson(AcmeClient& c, const std::string& url, const std::string& payload) {
    return c.Post(url, payload).status();
  }

  testing::TempDir dir_;
  BlockingFetcher fetcher_;
  stir::X509StorePtr anchors_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<AcmeServer> server_;
  std::unique_ptr<stir::MemorySigner> key_;
  std::unique_ptr<AcmeClient> client_;
};

TEST_F(AcmeServerTest, HostilePayloadsAreProblemsNotCrashes) {
  const std::string new_account = client_->directory()["newAccount"];
  const std::string new_order = client_->directory()["newOrder"];
  auto only = client_->Post(new_account, R"({"onlyReturnExisting":"yes"})", /*use_jwk=*/true);
  EXPECT_OK(only);  // not a boolean: ignored; the existing account is returned
  const std::pair<std::string, std::string> cases[] = {
      {new_order, R"({"identifiers":"x"})"},
      {new_order, R"({"identifiers":[5]})"},
      {new_order, R"({"identifiers":[{"type":5,"value":[]}]})"},
      {new_order, R"({"identifiers":[{"type":"TNAuthList","value":5}]})"},
      {new_order, R"({"identifiers":[{"type":"TNAuthList","value":"MAA="}]})"},
      {new_order, R"([1,2,3])"},
      {new_order,
       R"({"identifiers":[{"type":"TNAuthList","value":"MAigBhYENzA5Sg=="}],"x":{"y":{"z":{"a":{"b":{"c":{"d":{"e":{"f":{"g":{"h":{"i":{"j":{"k":{"l":{"m":{"n":{"o":{"p":1}}}}}}}}}}}}}}}}}})"},
      {server_->base_url() + "/acme/authz/nope", ""},
      {server_->base_url() + "/acme/order/nope/finalize", R"({"csr":5})"},
  };
  for (const auto& [url, payload] : cases) {
    absl::Status s = PostJson(*client_, url, payload);
    EXPECT_FALSE(s.ok()) << url << " " << payload;
    EXPECT_THAT(ProblemType(s),
                ::testing::AnyOf("malformed", "rejectedIdentifier", "unsupportedIdentifier"))
        << s;
  }
  auto order =
      client_->NewOrder(Json::array({{{"type", "TNAuthList"}, {"value", "MAigBhYENzA5Sg=="}}}));
  ASSERT_OK(order);
  auto authz = client_->PostAsGet(order->body["authorizations"][0]);
  ASSERT_OK(authz);
  const std::string chall = (*authz)["challenges"][0]["url"];
  EXPECT_EQ(ProblemType(client_->Respond(chall, {{"atc", 5}}).status()), "malformed");
  EXPECT_EQ(ProblemType(client_->Respond(chall, {{"atc", "a.b.c"}}).status()), "unauthorized");
  EXPECT_EQ(ProblemType(client_->Finalize(order->body["finalize"], "x").status()), "orderNotReady");
  // Still serving.
  EXPECT_OK(client_->PostAsGet(client_->account_url()));
}

TEST_F(AcmeServerTest, FullQueueIsRateLimitedAtOnceAndStopAnswersTheQueue) {
  auto order =
      client_->NewOrder(Json::array({{{"type", "TNAuthList"}, {"value", "MAigBhYENzA5Sg=="}}}));
  ASSERT_OK(order);
  auto authz = client_->PostAsGet(order->body["authorizations"][0]);
  ASSERT_OK(authz);
  const std::string chall = (*authz)["challenges"][0]["url"];
  auto second = Connect();  // (its directory GET needs the worker: before it is blocked)
  ASSERT_NE(second, nullptr);
  // The worker blocks in the token's x5u fetch.
  absl::Status busy;
  std::thread a([&] {
    busy =
        client_
            ->Respond(chall,
                      {{"atc", "eyJhbGciOiJFUzI1NiIsIng1dSI6Imh0dHBzOi8vcGEvcGEucGVtIn0.e30.AA"}})
            .status();
  });
  ASSERT_TRUE(fetcher_.entered_.WaitForNotificationWithTimeout(absl::Seconds(10)));
  // A second request waits in the queue (capacity 1) ...
  EXPECT_EQ(server_->queued(), 0u);
  absl::StatusOr<HttpResult> queued_result;
  std::thread b([&] { queued_result = second->Send("GET", server_->directory_url(), "", ""); });
  for (int i = 0; i < 200 && server_->queued() < 1; ++i) absl::SleepFor(absl::Milliseconds(10));
  ASSERT_EQ(server_->queued(), 1u);
  // ... and a third is refused at once, without waiting for the worker.
  const absl::Time start = absl::Now();
  auto third = second->Send("GET", server_->directory_url(), "", "");
  ASSERT_OK(third);
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
  EXPECT_EQ(third->status, 503);
  EXPECT_EQ(third->Header("retry-after"), "1");
  EXPECT_THAT(third->body, HasSubstr("rateLimited"));
  // Stop answers the queued request with 503, then the busy worker finishes.
  std::thread stopper([&] { server_->Stop(); });
  b.join();
  ASSERT_OK(queued_result);
  EXPECT_EQ(queued_result->status, 503);
  fetcher_.release_.Notify();
  stopper.join();
  a.join();
  EXPECT_FALSE(busy.ok());
}

}  // namespace
}  // namespace shaken::acme
