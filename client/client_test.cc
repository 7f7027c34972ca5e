// client_test.cc: the C++ client against option mistakes and against a real in-process gRPC
// server with canned behaviour (client/fake_shaken_server.h).
#include "shaken/client.h"

#include <atomic>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "client/fake_shaken_server.h"
#include "client/internal.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/test_pki.h"

namespace shaken::client {
namespace {

using ::shaken::client::testing::FakeServerTls;
using ::shaken::client::testing::FakeShakenServer;
using ::shaken::testing::IsOk;
using ::shaken::testing::StatusIs;
using ::shaken::testing::TempDir;
using ::testing::AllOf;
using ::testing::AnyOf;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::SizeIs;

ClientOptions Plaintext(const FakeShakenServer& server) {
  ClientOptions o;
  o.target = server.target();
  o.insecure_plaintext = true;
  return o;
}

SignParams Call(std::string request_id, std::string profile = "") {
  SignParams p;
  p.profile = std::move(profile);
  p.attest = "A";
  p.orig_tn = "12155551212";
  p.dest_tns = {"12155551213"};
  p.request_id = std::move(request_id);
  return p;
}

// --- options ---

TEST(ClientOptionsTest, MissingTargetIsInvalidArgument) {
  EXPECT_THAT(Client::New(ClientOptions{}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("target is empty")));
}

TEST(ClientOptionsTest, UnreadableCaFileIsInvalidArgumentNamingThePath) {
  ClientOptions o;
  o.target = "127.0.0.1:1";
  o.root_ca_file = "/nonexistent/ca.pem";
  EXPECT_THAT(Client::New(o), StatusIs(absl::StatusCode::kInvalidArgument,
                                       AllOf(HasSubstr("root_ca_file"),
                                             HasSubstr("/nonexistent/ca.pem"),
                                             HasSubstr("No such file"))));
}

TEST(ClientOptionsTest, NonPemCaFileIsInvalidArgument) {
  TempDir dir;
  ClientOptions o;
  o.target = "127.0.0.1:1";
  o.root_ca_file = dir.Write("ca.pem", "not a certificate\n");
  EXPECT_THAT(Client::New(o),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("is not PEM")));
}

TEST(ClientOptionsTest, ClientCertWithoutKeyAndKeyWithoutCert) {
  ClientOptions o;
  o.target = "127.0.0.1:1";
  o.client_cert_file = "/etc/client.pem";
  EXPECT_THAT(Client::New(o), StatusIs(absl::StatusCode::kInvalidArgument,
                                       HasSubstr("client_cert_file is set without "
                                                 "client_key_file")));
  o.client_cert_file.clear();
  o.client_key_file = "/etc/client.key";
  EXPECT_THAT(Client::New(o), StatusIs(absl::StatusCode::kInvalidArgument,
                                       HasSubstr("client_key_file is set without "
                                                 "client_cert_file")));
}

TEST(ClientOptionsTest, UnreadableKeyMessageNamesPathNotContents) {
  TempDir dir;
  ASSERT_OK_AND_ASSIGN(auto pki, shaken::testing::TlsServerPki::Create(absl::Now()));
  ClientOptions o;
  o.target = "127.0.0.1:1";
  o.client_cert_file = dir.Write("c.pem", pki.server.cert_pem);
  o.client_key_file = dir.Write("k.pem", "garbage-secret-material");
  absl::StatusOr<std::unique_ptr<Client>> c = Client::New(o);
  EXPECT_THAT(c, StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("client_key_file")));
  EXPECT_THAT(std::string(c.status().message()), Not(HasSubstr("garbage-secret")));
}

TEST(ClientOptionsTest, PlaintextConflictsWithTlsFiles) {
  ClientOptions o;
  o.target = "127.0.0.1:1";
  o.insecure_plaintext = true;
  o.root_ca_file = "/etc/ca.pem";
  EXPECT_THAT(Client::New(o), StatusIs(absl::StatusCode::kInvalidArgument,
                                       HasSubstr("insecure_plaintext conflicts")));
}

TEST(ClientOptionsTest, RetryAndTimeoutBounds) {
  ClientOptions o;
  o.target = "127.0.0.1:1";
  o.insecure_plaintext = true;
  o.retry.max_attempts = 0;
  EXPECT_THAT(Client::New(o), StatusIs(absl::StatusCode::kInvalidArgument,
                                       HasSubstr("max_attempts must be 1..5")));
  o.retry.max_attempts = 6;
  EXPECT_THAT(Client::New(o), StatusIs(absl::StatusCode::kInvalidArgument));
  o.retry.max_attempts = 3;
  o.retry.max_backoff = absl::Milliseconds(1);
  EXPECT_THAT(Client::New(o), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("backoff")));
  o.retry = RetryPolicy{};
  o.default_timeout = absl::ZeroDuration();
  EXPECT_THAT(Client::New(o), StatusIs(absl::StatusCode::kInvalidArgument,
                                       HasSubstr("default_timeout")));
  o.default_timeout = absl::Milliseconds(500);
  EXPECT_OK(Client::New(o));
}

TEST(ClientOptionsTest, ServiceConfigRetriesUnaryMethodsOnUnavailableAndCancelledOnly) {
  RetryPolicy r;
  std::string json = internal::ServiceConfigJson(r);
  EXPECT_THAT(json, HasSubstr(R"("maxAttempts":3)"));
  EXPECT_THAT(json, HasSubstr(R"("retryableStatusCodes":["UNAVAILABLE","CANCELLED"])"));
  EXPECT_THAT(json, HasSubstr(R"("initialBackoff":"0.020000000s")"));
  EXPECT_THAT(json, HasSubstr(R"("method":"Sign")"));
  EXPECT_THAT(json, Not(HasSubstr("SignStream")));
  r.max_attempts = 1;
  EXPECT_THAT(internal::ServiceConfigJson(r), Not(HasSubstr("retryPolicy")));
}

TEST(ClientOptionsTest, ReplicasAreBalancedRoundRobinWithHealthChecksByDefault) {
  ClientOptions o;
  std::string json = internal::ServiceConfigJson(o.retry, o);
  EXPECT_THAT(json, HasSubstr(R"("loadBalancingConfig":[{"round_robin":{}}])"));
  EXPECT_THAT(json, HasSubstr(R"("healthCheckConfig":{"serviceName":"shaken.v1.Shaken"})"));
  // Verification has its own channel, balanced the same way but not health-checked.
  EXPECT_TRUE(internal::SeparateVerifyChannel(o));
  json = internal::ServiceConfigJson(o.retry, o, /*health_checked=*/false);
  EXPECT_THAT(json, HasSubstr(R"("loadBalancingConfig":[{"round_robin":{}}])"));
  EXPECT_THAT(json, Not(HasSubstr("healthCheckConfig")));
  o.health_check_service = "";
  EXPECT_FALSE(internal::SeparateVerifyChannel(o));
  EXPECT_THAT(internal::ServiceConfigJson(o.retry, o), Not(HasSubstr("healthCheckConfig")));
  o.balancing = ClientOptions::Balancing::kPickFirst;
  EXPECT_THAT(internal::ServiceConfigJson(o.retry, o), HasSubstr("pick_first"));
  o.health_check_service = "shaken.v1.Shaken";
  EXPECT_FALSE(internal::SeparateVerifyChannel(o));
  o.target = "127.0.0.1:1";
  o.insecure_plaintext = true;
  o.health_check_service = "bad\"name";
  EXPECT_THAT(Client::New(o), StatusIs(absl::StatusCode::kInvalidArgument,
                                       HasSubstr("health_check_service")));
}

// --- status mapping ---

TEST(StatusMappingTest, EveryCodeAndMessageMapOneToOne) {
  EXPECT_OK(internal::FromGrpcStatus(grpc::Status::OK));
  for (int c = 1; c <= 16; ++c) {
    absl::Status s = internal::FromGrpcStatus(
        grpc::Status(static_cast<grpc::StatusCode>(c), absl::StrCat("message ", c)));
    EXPECT_EQ(static_cast<int>(s.code()), c);
    EXPECT_EQ(s.message(), absl::StrCat("message ", c));
  }
  EXPECT_THAT(internal::FromRpcCode(99, "odd"),
              StatusIs(absl::StatusCode::kUnknown, HasSubstr("rpc code 99: odd")));
}

// --- against a real in-process gRPC server ---

class ClientServerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(server_, FakeShakenServer::Start());
    ASSERT_OK_AND_ASSIGN(client_, Client::New(Plaintext(*server_)));
  }
  std::unique_ptr<FakeShakenServer> server_;
  std::unique_ptr<Client> client_;
};

TEST_F(ClientServerTest, SignVerifyListProfiles) {
  SignParams p = Call("r1");
  p.iat = 1700000123;
  p.origid = "123e4567-e89b-12d3-a456-426614174000";
  ASSERT_OK_AND_ASSIGN(SignResult s, client_->Sign(p));
  EXPECT_EQ(s.identity,
            "jws.12155551212;info=<https://cert.example/x5u.pem>;alg=ES256;ppt=shaken");
  EXPECT_EQ(s.passport, "jws.12155551212");
  EXPECT_EQ(s.origid, p.origid);
  EXPECT_EQ(s.iat, 1700000123);
  EXPECT_EQ(s.profile, "default");
  EXPECT_EQ(s.request_id, "r1");

  VerifyParams v;
  v.identities = {"garbage", s.identity};
  v.from_tn = "12155551212";
  v.to_tns = {"12155551213"};
  v.date = 1700000124;
  v.request_id = "v1";
  ASSERT_OK_AND_ASSIGN(VerifyResult r, client_->Verify(v));
  EXPECT_TRUE(r.overall.passed);
  EXPECT_EQ(r.overall.verstat, "TN-Validation-Passed");
  EXPECT_EQ(r.overall.orig_tn, "12155551212");
  EXPECT_THAT(r.overall.dest_tns, ElementsAre("12155551213"));
  EXPECT_EQ(r.overall.iat, 1700000124);
  EXPECT_EQ(r.overall.certificate.spc, "709J");
  EXPECT_EQ(r.overall.certificate.not_after, 1800000000);
  ASSERT_THAT(r.identities, SizeIs(2));
  EXPECT_FALSE(r.identities[0].passed);
  EXPECT_EQ(r.identities[0].sip_code, 438);
  EXPECT_EQ(r.identities[0].reason, "signature_invalid");
  EXPECT_EQ(r.request_id, "v1");

  ASSERT_OK_AND_ASSIGN(std::vector<ProfileInfo> profiles, client_->ListProfiles());
  ASSERT_THAT(profiles, SizeIs(2));
  EXPECT_EQ(profiles[0].name, "default");
  EXPECT_TRUE(profiles[0].is_default);
  EXPECT_THAT(profiles[0].allowed_attest, ElementsAre("A", "B", "C"));
  EXPECT_EQ(profiles[0].health, ProfileInfo::Health::kServing);
  EXPECT_EQ(profiles[1].health, ProfileInfo::Health::kDown);
}

TEST_F(ClientServerTest, ChannelIsReusedAcrossCalls) {
  ASSERT_OK(client_->WaitForReady(absl::Seconds(5)));
  for (int i = 0; i < 20; ++i) ASSERT_OK(client_->Sign(Call(absl::StrCat("reuse", i))));
  EXPECT_THAT(server_->Peers(), SizeIs(1)) << "every Sign must ride the Client's one connection";
  // Verify and ListProfiles ride a second connection, the one that is not health-checked.
  for (int i = 0; i < 3; ++i) ASSERT_OK(client_->ListProfiles());
  EXPECT_EQ(server_->Calls(), 23);
  EXPECT_THAT(server_->Peers(), SizeIs(2));
}

TEST_F(ClientServerTest, DeadlineIsHonouredAndBounded) {
  absl::Time start = absl::Now();
  EXPECT_THAT(client_->Sign(Call("slow1", "slow"), absl::Milliseconds(100)),
              StatusIs(absl::StatusCode::kDeadlineExceeded));
  absl::Duration took = absl::Now() - start;
  EXPECT_GE(took, absl::Milliseconds(90));
  EXPECT_LT(took, absl::Seconds(1));
  EXPECT_EQ(server_->Attempts("slow1"), 1) << "DEADLINE_EXCEEDED is not retried";

  // The default timeout (500 ms) applies when the call gives none.
  start = absl::Now();
  EXPECT_THAT(client_->Sign(Call("slow2", "slow")),
              StatusIs(absl::StatusCode::kDeadlineExceeded));
  took = absl::Now() - start;
  EXPECT_GE(took, absl::Milliseconds(450));
  EXPECT_LT(took, absl::Seconds(2));
}

TEST_F(ClientServerTest, RetriesUnavailableThenSucceeds) {
  ASSERT_OK_AND_ASSIGN(SignResult s, client_->Sign(Call("flaky2", "flaky-2")));
  EXPECT_EQ(s.request_id, "flaky2");
  EXPECT_EQ(server_->Attempts("flaky2"), 3);
}

TEST_F(ClientServerTest, RetriesACallTheServerCancelled) {
  ASSERT_OK_AND_ASSIGN(SignResult s, client_->Sign(Call("cancel2", "cancelled-2")));
  EXPECT_EQ(s.request_id, "cancel2");
  EXPECT_EQ(server_->Attempts("cancel2"), 3);
}

TEST_F(ClientServerTest, GivesUpAfterMaxAttemptsWithTheServersStatus) {
  EXPECT_THAT(client_->Sign(Call("flaky9", "flaky-9"), absl::Seconds(3)),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("token busy (attempt 3)")));
  EXPECT_EQ(server_->Attempts("flaky9"), 3);
}

TEST_F(ClientServerTest, MaxAttemptsOneMeansNoRetry) {
  ClientOptions o = Plaintext(*server_);
  o.retry.max_attempts = 1;
  ASSERT_OK_AND_ASSIGN(auto client, Client::New(o));
  EXPECT_THAT(client->Sign(Call("flaky1", "flaky-1")),
              StatusIs(absl::StatusCode::kUnavailable));
  EXPECT_EQ(server_->Attempts("flaky1"), 1);
}

TEST_F(ClientServerTest, InvalidArgumentAndPermissionDeniedAreNotRetried) {
  SignParams p = Call("bad1");
  p.attest = "D";
  EXPECT_THAT(client_->Sign(p), StatusIs(absl::StatusCode::kInvalidArgument,
                                         "attest must be A, B or C"));
  EXPECT_EQ(server_->Attempts("bad1"), 1);
  EXPECT_THAT(client_->Sign(Call("denied1", "denied")),
              StatusIs(absl::StatusCode::kPermissionDenied));
  EXPECT_EQ(server_->Attempts("denied1"), 1);
}

TEST_F(ClientServerTest, NoServerIsUnavailableQuickly) {
  int port = server_->port();
  server_.reset();
  ClientOptions o;
  o.target = absl::StrCat("127.0.0.1:", port);
  o.insecure_plaintext = true;
  ASSERT_OK_AND_ASSIGN(auto client, Client::New(o));
  absl::Time start = absl::Now();
  EXPECT_THAT(client->Sign(Call("down")).status().code(),
              AnyOf(absl::StatusCode::kUnavailable, absl::StatusCode::kDeadlineExceeded));
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
}

TEST_F(ClientServerTest, EightThreadsShareOneClient) {
  constexpr int kThreads = 8;
  constexpr int kCallsPerThread = 50;
  std::atomic<int> failures{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kCallsPerThread; ++i) {
        SignParams p = Call(absl::StrCat("t", t, "-", i));
        p.orig_tn = absl::StrCat("1215555", 1000 + t * 100 + i);
        absl::StatusOr<SignResult> s = client_->Sign(p, absl::Seconds(5));
        if (!s.ok() || s->request_id != p.request_id ||
            s->passport != absl::StrCat("jws.", p.orig_tn)) {
          ++failures;
        }
        if (i % 10 == 0) {
          VerifyParams v;
          v.identities = {absl::StrCat("jws.", p.orig_tn)};
          v.from_tn = p.orig_tn;
          absl::StatusOr<VerifyResult> r = client_->Verify(v, absl::Seconds(5));
          if (!r.ok() || !r->overall.passed) ++failures;
        }
      }
    });
  }
  for (std::thread& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_THAT(server_->Peers(), SizeIs(2)) << "one connection for Sign, one for Verify";
}

TEST_F(ClientServerTest, SignStreamKeepsRequestOrder) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SignStreamSession> stream, client_->OpenSignStream());
  constexpr int kRequests = 300;
  std::thread producer([&] {
    for (int i = 0; i < kRequests; ++i) {
      SignParams p = Call(absl::StrCat("s", i));
      p.orig_tn = absl::StrCat(12155550000 + i);
      if (i % 7 == 3) p.attest = "X";
      ASSERT_OK(stream->Send(p));
    }
    ASSERT_OK(stream->CloseSend());
  });
  for (int i = 0; i < kRequests; ++i) {
    ASSERT_OK_AND_ASSIGN(StreamedSign r, stream->Next());
    ASSERT_EQ(r.request_id, absl::StrCat("s", i));
    if (i % 7 == 3) {
      EXPECT_THAT(r.result, StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("attest")));
    } else {
      ASSERT_OK(r.result);
      EXPECT_EQ(r.result->passport, absl::StrCat("jws.", 12155550000 + i));
    }
  }
  producer.join();
  EXPECT_THAT(stream->Next(), StatusIs(absl::StatusCode::kOutOfRange, HasSubstr("end of stream")));
  EXPECT_THAT(stream->Next(), StatusIs(absl::StatusCode::kOutOfRange));
  EXPECT_THAT(stream->Send(Call("late")), StatusIs(absl::StatusCode::kFailedPrecondition));
}

TEST_F(ClientServerTest, SignStreamDestroyedMidwayCancelsCleanly) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SignStreamSession> stream, client_->OpenSignStream());
  for (int i = 0; i < 10; ++i) ASSERT_OK(stream->Send(Call(absl::StrCat("m", i))));
  ASSERT_OK(stream->Next());
  stream.reset();  // 9 responses unread, send side open
  ASSERT_OK(client_->Sign(Call("after")));
}

TEST_F(ClientServerTest, SignStreamOutlivesClient) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SignStreamSession> stream, client_->OpenSignStream());
  client_.reset();
  ASSERT_OK(stream->Send(Call("orphan")));
  ASSERT_OK(stream->CloseSend());
  ASSERT_OK_AND_ASSIGN(StreamedSign r, stream->Next());
  EXPECT_OK(r.result);
  EXPECT_THAT(stream->Next(), StatusIs(absl::StatusCode::kOutOfRange));
}

TEST_F(ClientServerTest, SignStreamWithDeadlineEnds) {
  ASSERT_OK_AND_ASSIGN(std::unique_ptr<SignStreamSession> stream,
                       client_->OpenSignStream(absl::Milliseconds(200)));
  absl::Time start = absl::Now();
  EXPECT_THAT(stream->Next(), StatusIs(absl::StatusCode::kDeadlineExceeded));
  EXPECT_LT(absl::Now() - start, absl::Seconds(2));
  EXPECT_THAT(stream->Send(Call("x")), StatusIs(absl::StatusCode::kDeadlineExceeded));
}

// --- TLS ---

class ClientTlsTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(tls_, shaken::testing::TlsServerPki::Create(absl::Now()));
    ASSERT_OK_AND_ASSIGN(sti_, shaken::testing::TestPki::Create(absl::Now()));
    ca_file_ = dir_.Write("ca.pem", tls_.ca.cert_pem);
  }
  TempDir dir_;
  shaken::testing::TlsServerPki tls_;
  std::unique_ptr<shaken::testing::TestPki> sti_;
  std::string ca_file_;
};

TEST_F(ClientTlsTest, ServerAuthenticatedWithRootCaAndNameOverride) {
  FakeServerTls t{tls_.server.cert_pem, tls_.server.key_pem, ""};
  ASSERT_OK_AND_ASSIGN(auto server, FakeShakenServer::Start(&t));
  ClientOptions o;
  o.target = server->target();
  o.root_ca_file = ca_file_;
  o.server_name_override = "localhost";
  ASSERT_OK_AND_ASSIGN(auto client, Client::New(o));
  EXPECT_OK(client->ListProfiles(absl::Seconds(5)));

  // A server certificate from another CA is refused.
  ClientOptions wrong = o;
  wrong.root_ca_file = dir_.Write("other.pem", sti_->root().cert_pem);
  ASSERT_OK_AND_ASSIGN(auto refused, Client::New(wrong));
  EXPECT_THAT(refused->ListProfiles(absl::Seconds(2)).status().code(),
              AnyOf(absl::StatusCode::kUnavailable, absl::StatusCode::kDeadlineExceeded));

  // So is a plaintext client.
  ASSERT_OK_AND_ASSIGN(auto plain, Client::New(Plaintext(*server)));
  EXPECT_THAT(plain->ListProfiles(absl::Seconds(2)), Not(IsOk()));
}

TEST_F(ClientTlsTest, MutualTls) {
  ASSERT_OK_AND_ASSIGN(shaken::testing::TestCert leaf, sti_->IssueLeaf());
  FakeServerTls t{tls_.server.cert_pem, tls_.server.key_pem,
                  sti_->root().cert_pem + sti_->intermediate().cert_pem};
  ASSERT_OK_AND_ASSIGN(auto server, FakeShakenServer::Start(&t));
  ClientOptions o;
  o.target = server->target();
  o.root_ca_file = ca_file_;
  o.server_name_override = "localhost";

  ClientOptions without_cert = o;
  ASSERT_OK_AND_ASSIGN(auto anonymous, Client::New(without_cert));
  EXPECT_THAT(anonymous->ListProfiles(absl::Seconds(2)), Not(IsOk()));

  o.client_cert_file = dir_.Write("client.pem", leaf.cert_pem + sti_->intermediate().cert_pem);
  o.client_key_file = dir_.Write("client.key", leaf.key_pem);
  ASSERT_OK_AND_ASSIGN(auto client, Client::New(o));
  EXPECT_OK(client->ListProfiles(absl::Seconds(5)));
}

}  // namespace
}  // namespace shaken::client
