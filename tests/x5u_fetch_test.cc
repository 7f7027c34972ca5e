// x5u_fetch_test: the libcurl fetcher against a real HTTPS server on 127.0.0.1.
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <thread>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "stir/x5u_fetcher.h"
#include "tests/testing/https_server.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/test_pki.h"

namespace shaken::stir {
namespace {

using ::shaken::testing::HttpResponse;
using ::shaken::testing::HttpsServer;
using ::shaken::testing::HttpsServerOptions;
using ::shaken::testing::TempDir;
using ::shaken::testing::TlsServerPki;
using ::testing::HasSubstr;

constexpr char kPemBody[] =
    "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n";  // the fetcher only
                                                                       // looks for PEM

class X5uFetchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(tls_, TlsServerPki::Create(absl::Now()));
    HttpsServerOptions so;
    so.cert_pem = tls_.server.cert_pem;
    so.key_pem = tls_.server.key_pem;
    ASSERT_OK_AND_ASSIGN(server_, HttpsServer::Start(so));
    ca_file_ = dir_.Write("tls-ca.pem", tls_.ca.cert_pem);
  }

  // LabOptions: what a test on 127.0.0.1 with an ephemeral port needs.
  X5uFetcherOptions LabOptions() const {
    X5uFetcherOptions o;
    o.tls_ca_file = ca_file_;
    o.allow_any_port = true;
    o.allow_private_addresses = true;
    o.connect_timeout = absl::Milliseconds(1000);
    o.total_timeout = absl::Milliseconds(1500);
    return o;
  }

  FetchResult Fetch(const std::string& path, X5uFetcherOptions o) {
    auto fetcher = X5uFetcher::New(o);
    EXPECT_TRUE(fetcher.ok()) << fetcher.status();
    return (*fetcher)->Fetch(server_->Url(path));
  }
  FetchResult Fetch(const std::string& path) { return Fetch(path, LabOptions()); }

  TempDir dir_;
  TlsServerPki tls_;
  std::unique_ptr<HttpsServer> server_;
  std::string ca_file_;
};

TEST_F(X5uFetchTest, GoodBodyAndCacheHeaders) {
  server_->SetRoute("/709J.pem", {.status = 200,
                                  .headers = {{"Content-Type", "application/pem-certificate-chain"},
                                              {"Cache-Control", "public, max-age=3600"},
                                              {"Date", "Thu, 01 Jan 2026 00:00:00 GMT"},
                                              {"Expires", "Thu, 01 Jan 2026 02:00:00 GMT"}},
                                  .body = kPemBody});
  FetchResult r = Fetch("/709J.pem");
  ASSERT_TRUE(r.ok()) << r.detail;
  EXPECT_EQ(r.http_status, 200);
  EXPECT_EQ(r.body, kPemBody);
  EXPECT_EQ(r.content_type, "application/pem-certificate-chain");
  EXPECT_EQ(r.max_age, absl::Hours(1));
  EXPECT_EQ(r.date, absl::FromUnixSeconds(1767225600));
  EXPECT_EQ(r.expires, absl::FromUnixSeconds(1767225600 + 7200));
  EXPECT_FALSE(r.no_store);
  EXPECT_EQ(server_->RequestCount("/709J.pem"), 1);
}

TEST_F(X5uFetchTest, CacheControlVariants) {
  server_->SetRoute("/s",
                    {.headers = {{"Cache-Control", "max-age=10, s-maxage=20"}}, .body = kPemBody});
  EXPECT_EQ(Fetch("/s").max_age, absl::Seconds(20));  // a shared cache prefers s-maxage
  server_->SetRoute("/ns", {.headers = {{"Cache-Control", "no-store"}}, .body = kPemBody});
  EXPECT_TRUE(Fetch("/ns").no_store);
  server_->SetRoute("/bad",
                    {.headers = {{"Cache-Control", "max-age=-5, max-age=abc"}, {"Expires", "0"}},
                     .body = kPemBody});
  FetchResult bad = Fetch("/bad");
  EXPECT_FALSE(bad.max_age.has_value());
  EXPECT_EQ(bad.FreshnessLifetime(absl::Now()), absl::ZeroDuration());  // invalid Expires
  server_->SetRoute("/two",
                    {.headers = {{"Cache-Control", "public"}, {"Cache-Control", "MAX-AGE=\"30\""}},
                     .body = kPemBody});
  EXPECT_EQ(Fetch("/two").max_age, absl::Seconds(30));
}

TEST_F(X5uFetchTest, HttpErrors) {
  FetchResult r = Fetch("/missing.pem");
  EXPECT_EQ(r.reason, Reason::kFetchHttpStatus);
  EXPECT_EQ(r.http_status, 404);
  EXPECT_THAT(r.detail, HasSubstr("404"));
  server_->SetRoute("/err", {.status = 500, .body = "oops"});
  r = Fetch("/err");
  EXPECT_EQ(r.reason, Reason::kFetchHttpStatus);
  EXPECT_EQ(r.http_status, 500);
}

TEST_F(X5uFetchTest, RedirectIsNotFollowed) {
  server_->SetRoute("/moved",
                    {.status = 302, .headers = {{"Location", server_->Url("/709J.pem")}}});
  server_->SetRoute("/709J.pem", {.body = kPemBody});
  FetchResult r = Fetch("/moved");
  EXPECT_EQ(r.reason, Reason::kFetchRedirect);
  EXPECT_EQ(server_->RequestCount("/709J.pem"), 0);
}

TEST_F(X5uFetchTest, SlowServerTimesOut) {
  server_->SetRoute("/slow", {.body = kPemBody, .delay_before = absl::Seconds(30)});
  X5uFetcherOptions o = LabOptions();
  o.total_timeout = absl::Milliseconds(300);
  const absl::Time start = absl::Now();
  FetchResult r = Fetch("/slow", o);
  EXPECT_EQ(r.reason, Reason::kFetchTimeout) << r.detail;
  EXPECT_LT(absl::Now() - start, absl::Seconds(3));
  // A body that trickles in is cut by the same total timeout.
  server_->SetRoute("/trickle", {.body = std::string(kPemBody) + std::string(1000, '\n'),
                                 .delay_between_chunks = absl::Seconds(1),
                                 .chunk_size = 10});
  r = Fetch("/trickle", o);
  EXPECT_EQ(r.reason, Reason::kFetchTimeout) << r.detail;
}

TEST_F(X5uFetchTest, OversizedBodyIsAborted) {
  std::string big = std::string(kPemBody) + std::string(20000, '\n');
  server_->SetRoute("/big", {.body = big});
  FetchResult r = Fetch("/big");
  EXPECT_EQ(r.reason, Reason::kFetchTooLarge) << r.detail;
  // Without Content-Length the cap applies while streaming.
  server_->SetRoute("/big-stream", {.body = big, .chunk_size = 1024, .send_content_length = false});
  r = Fetch("/big-stream");
  EXPECT_EQ(r.reason, Reason::kFetchTooLarge) << r.detail;
  // Exactly at the cap is fine.
  X5uFetcherOptions o = LabOptions();
  o.max_body_bytes = sizeof(kPemBody) - 1;
  server_->SetRoute("/exact", {.body = kPemBody});
  EXPECT_TRUE(Fetch("/exact", o).ok());
}

TEST_F(X5uFetchTest, NotPem) {
  server_->SetRoute("/html",
                    {.headers = {{"Content-Type", "text/html"}}, .body = "<html>login</html>"});
  FetchResult r = Fetch("/html");
  EXPECT_EQ(r.reason, Reason::kFetchNotPem);
  server_->SetRoute("/empty", {.body = ""});
  EXPECT_EQ(Fetch("/empty").reason, Reason::kFetchNotPem);
}

TEST_F(X5uFetchTest, TlsFailures) {
  server_->SetRoute("/709J.pem", {.body = kPemBody});
  // The system store does not know the test TLS CA.
  X5uFetcherOptions o = LabOptions();
  o.tls_ca_file.clear();
  EXPECT_EQ(Fetch("/709J.pem", o).reason, Reason::kFetchTls);
  // A CA file that is not the server's issuer.
  ASSERT_OK_AND_ASSIGN(TlsServerPki other, TlsServerPki::Create(absl::Now()));
  o.tls_ca_file = dir_.Write("other-ca.pem", other.ca.cert_pem);
  EXPECT_EQ(Fetch("/709J.pem", o).reason, Reason::kFetchTls);
  EXPECT_EQ(server_->RequestCount("/709J.pem"), 0);
}

TEST_F(X5uFetchTest, LocalhostByName) {
  server_->SetRoute("/709J.pem", {.body = kPemBody});
  ASSERT_OK_AND_ASSIGN(auto fetcher, X5uFetcher::New(LabOptions()));
  FetchResult r = fetcher->Fetch(server_->Url("/709J.pem", "localhost"));
  EXPECT_TRUE(r.ok()) << r.detail;  // the server certificate names DNS:localhost too
}

TEST_F(X5uFetchTest, SsrfGuardRefusesLoopback) {
  server_->SetRoute("/709J.pem", {.body = kPemBody});
  X5uFetcherOptions o = LabOptions();
  o.allow_private_addresses = false;
  ASSERT_OK_AND_ASSIGN(auto fetcher, X5uFetcher::New(o));
  FetchResult r = fetcher->Fetch(server_->Url("/709J.pem"));
  EXPECT_EQ(r.reason, Reason::kFetchAddressBlocked) << r.detail;
  EXPECT_THAT(r.detail, HasSubstr("127.0.0.1"));
  // By name: the check is on the resolved address actually being connected to.
  r = fetcher->Fetch(server_->Url("/709J.pem", "localhost"));
  EXPECT_EQ(r.reason, Reason::kFetchAddressBlocked) << r.detail;
  EXPECT_EQ(server_->TotalRequests(), 0);
}

// The lab flag allows loopback only: link-local and cloud metadata, unspecified, private and
// CGNAT addresses stay blocked; wider allowances are CIDRs, which never reach the always-blocked.
TEST_F(X5uFetchTest, LabFlagAllowsLoopbackOnly) {
  X5uFetcherOptions lab = LabOptions();
  for (const char* ip : {"127.0.0.1", "127.1.2.3", "::1", "::ffff:127.0.0.1", "8.8.8.8"}) {
    EXPECT_TRUE(IsIpAllowed(ip, lab)) << ip;
  }
  for (const char* ip : {"169.254.169.254", "fe80::1", "10.0.0.1", "100.64.0.1", "0.0.0.0",
                         "::", "::ffff:169.254.169.254", "64:ff9b::a9fe:a9fe", "fd00:ec2::254",
                         "100.100.100.200", "192.168.1.1", "172.16.0.1", "fd12::1", "224.0.0.1",
                         "255.255.255.255", "not an address"}) {
    EXPECT_FALSE(IsIpAllowed(ip, lab)) << ip;
  }
  X5uFetcherOptions strict;
  for (const char* ip : {"127.0.0.1", "::1", "10.0.0.1"}) EXPECT_FALSE(IsIpAllowed(ip, strict)) << ip;
  EXPECT_TRUE(IsIpAllowed("8.8.8.8", strict));
}

TEST_F(X5uFetchTest, AllowCidrsWidenButNeverToLinkLocalMetadataOrUnspecified) {
  X5uFetcherOptions o;
  for (const char* text : {"10.0.0.0/8", "100.64.0.0/10", "0.0.0.0/0", "::/0"}) {
    ASSERT_OK_AND_ASSIGN(IpCidr c, ParseCidr(text));
    o.allow_cidrs.push_back(c);
  }
  for (const char* ip : {"10.0.0.1", "100.64.0.1", "192.168.1.1", "127.0.0.1", "fd12::1"}) {
    EXPECT_TRUE(IsIpAllowed(ip, o)) << ip;
  }
  for (const char* ip : {"169.254.169.254", "fe80::1", "0.0.0.0", "::", "fd00:ec2::254",
                         "100.100.100.200", "ff02::1", "224.0.0.1"}) {
    EXPECT_FALSE(IsIpAllowed(ip, o)) << ip;
  }
  X5uFetcherOptions narrow;
  ASSERT_OK_AND_ASSIGN(IpCidr c, ParseCidr("10.20.0.0/16"));
  narrow.allow_cidrs = {c};
  EXPECT_TRUE(IsIpAllowed("10.20.3.4", narrow));
  EXPECT_FALSE(IsIpAllowed("10.21.0.1", narrow));
  EXPECT_FALSE(IsIpAllowed("127.0.0.1", narrow));
}

TEST(ParseCidrTest, AcceptsNetworksAndRefusesTheRest) {
  ASSERT_OK_AND_ASSIGN(IpCidr v4, ParseCidr("10.20.0.0/16"));
  EXPECT_EQ(v4.family, AF_INET);
  EXPECT_EQ(v4.prefix_length, 16);
  ASSERT_OK_AND_ASSIGN(IpCidr host, ParseCidr("192.0.2.7"));
  EXPECT_EQ(host.prefix_length, 32);
  ASSERT_OK_AND_ASSIGN(IpCidr v6, ParseCidr("fd12:3400::/24"));
  EXPECT_EQ(v6.family, AF_INET6);
  for (const char* bad : {"10.0.0.1/8", "10.0.0.0/33", "10.0.0.0/", "10.0.0.0/x", "::/129",
                          "example.com/8", "", "fd12::1/16"}) {
    EXPECT_FALSE(ParseCidr(bad).ok()) << bad;
  }
}

TEST_F(X5uFetchTest, LabFlagStillRefusesLinkLocalWithoutConnecting) {
  ASSERT_OK_AND_ASSIGN(auto fetcher, X5uFetcher::New(LabOptions()));
  FetchResult r = fetcher->Fetch("https://169.254.169.254:8443/latest/meta-data");
  EXPECT_EQ(r.reason, Reason::kFetchAddressBlocked) << r.detail;
  r = fetcher->Fetch("https://[fe80::1]:443/c.pem");
  EXPECT_NE(r.reason, Reason::kPassed);
}

TEST_F(X5uFetchTest, ConnectRefused) {
  // A port that was free a moment ago.
  int fd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr = {};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  ASSERT_EQ(bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
  ASSERT_EQ(getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  close(fd);
  ASSERT_OK_AND_ASSIGN(auto fetcher, X5uFetcher::New(LabOptions()));
  FetchResult r =
      fetcher->Fetch("https://127.0.0.1:" + std::to_string(ntohs(addr.sin_port)) + "/a.pem");
  EXPECT_EQ(r.reason, Reason::kFetchConnect) << r.detail;
}

TEST_F(X5uFetchTest, DnsFailure) {
  ASSERT_OK_AND_ASSIGN(auto fetcher, X5uFetcher::New(LabOptions()));
  FetchResult r = fetcher->Fetch("https://no-such-host.invalid/a.pem");  // RFC 6761
  // Without a resolver the lookup may also time out; either way it must be a 436 fetch reason.
  EXPECT_TRUE(r.reason == Reason::kFetchDns || r.reason == Reason::kFetchTimeout)
      << ReasonName(r.reason) << ": " << r.detail;
}

TEST_F(X5uFetchTest, PlainHttpOnlyWhenAllowed) {
  HttpsServerOptions so;
  so.tls = false;
  ASSERT_OK_AND_ASSIGN(auto plain, HttpsServer::Start(so));
  plain->SetRoute("/709J.pem", {.body = kPemBody});
  X5uFetcherOptions o = LabOptions();
  ASSERT_OK_AND_ASSIGN(auto strict, X5uFetcher::New(o));
  EXPECT_EQ(strict->Fetch(plain->Url("/709J.pem")).reason, Reason::kX5uNotAllowed);
  EXPECT_EQ(plain->TotalRequests(), 0);
  o.allow_http = true;
  ASSERT_OK_AND_ASSIGN(auto lab, X5uFetcher::New(o));
  FetchResult r = lab->Fetch(plain->Url("/709J.pem"));
  EXPECT_TRUE(r.ok()) << r.detail;
  // https:// to a plain-HTTP server never completes a handshake: a TLS failure or a timeout,
  // depending on what the peer answers to the ClientHello (ours waits for a request line).
  std::string https_url = plain->Url("/709J.pem");
  https_url.replace(0, 4, "https");
  o.connect_timeout = absl::Milliseconds(200);
  ASSERT_OK_AND_ASSIGN(auto short_lab, X5uFetcher::New(o));
  FetchResult r2 = short_lab->Fetch(https_url);
  EXPECT_TRUE(r2.reason == Reason::kFetchTls || r2.reason == Reason::kFetchTimeout)
      << ReasonName(r2.reason) << ": " << r2.detail;
}

TEST_F(X5uFetchTest, UrlPolicyAgainstTheRealServer) {
  server_->SetRoute("/709J.pem", {.body = kPemBody});
  X5uFetcherOptions o = LabOptions();
  o.allow_any_port = false;
  ASSERT_OK_AND_ASSIGN(auto fetcher, X5uFetcher::New(o));
  EXPECT_EQ(fetcher->Fetch(server_->Url("/709J.pem")).reason, Reason::kX5uNotAllowed);  // port
  ASSERT_OK_AND_ASSIGN(auto lab, X5uFetcher::New(LabOptions()));
  const std::string base = "https://127.0.0.1:" + std::to_string(server_->port());
  EXPECT_EQ(
      lab->Fetch("https://u:p@127.0.0.1:" + std::to_string(server_->port()) + "/709J.pem").reason,
      Reason::kX5uNotAllowed);
  EXPECT_EQ(lab->Fetch(base + "/709J.pem?x").reason, Reason::kX5uNotAllowed);
  EXPECT_EQ(lab->Fetch(base + "/709J.pem#x").reason, Reason::kX5uNotAllowed);
  EXPECT_EQ(server_->TotalRequests(), 0);
  EXPECT_TRUE(lab->Fetch(base + "/709J.pem").ok());
}

TEST_F(X5uFetchTest, ConcurrentFetches) {
  server_->SetRoute("/709J.pem", {.body = kPemBody});
  ASSERT_OK_AND_ASSIGN(auto fetcher, X5uFetcher::New(LabOptions()));
  std::vector<std::thread> threads;
  std::atomic<int> ok{0};
  for (int i = 0; i < 8; ++i) {
    threads.emplace_back([&] {
      if (fetcher->Fetch(server_->Url("/709J.pem")).ok()) ok++;
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(ok.load(), 8);
  EXPECT_EQ(server_->RequestCount("/709J.pem"), 8);
}

TEST_F(X5uFetchTest, HeldFetchCompletesAfterRelease) {
  server_->SetPrefixRoute("/tarpit/", {.body = kPemBody, .hold_until_release = true});
  X5uFetcherOptions o = LabOptions();
  o.total_timeout = absl::Seconds(30);  // only the release ends the wait
  ASSERT_OK_AND_ASSIGN(auto fetcher, X5uFetcher::New(o));
  std::atomic<bool> done{false};
  FetchResult r;
  std::thread client([&] {
    r = fetcher->Fetch(server_->Url("/tarpit/1.pem"));
    done = true;
  });
  ASSERT_TRUE(server_->WaitForHeld(1, absl::Seconds(10)));
  EXPECT_FALSE(done.load()) << "a held request was answered";
  EXPECT_EQ(server_->ReleaseHeld(), 1);
  client.join();
  EXPECT_TRUE(r.ok()) << r.detail;
  EXPECT_EQ(r.body, kPemBody);
  EXPECT_EQ(server_->HeldCount(), 0);
  EXPECT_EQ(server_->RequestCount("/tarpit/1.pem"), 1);
  // The route still holds; stop_holding makes later requests answer at once.
  server_->ReleaseHeld("/tarpit/", /*stop_holding=*/true);
  EXPECT_TRUE(fetcher->Fetch(server_->Url("/tarpit/2.pem")).ok());
}

TEST_F(X5uFetchTest, HeldFetchTimesOut) {
  server_->SetRoute("/held.pem", {.body = kPemBody, .hold_until_release = true});
  X5uFetcherOptions o = LabOptions();
  o.total_timeout = absl::Milliseconds(300);
  FetchResult r = Fetch("/held.pem", o);
  EXPECT_EQ(r.reason, Reason::kFetchTimeout) << r.detail;
  // The client gave up; the server still holds the request until released (or Stop).
  EXPECT_TRUE(server_->WaitForHeld(1, absl::Seconds(10)));
  EXPECT_EQ(server_->ReleaseHeld("/held.pem"), 1);
}

// The tarpit holds a few hundred connections at once (one thread each) and Stop ends them.
// --- FetchAsync: the libcurl multi loop, its limits and its answers ---------------------------

// AsyncResult collects one FetchAsync answer.
struct AsyncResult {
  absl::Notification done;
  FetchResult result;
  std::atomic<bool> inline_answer{false};
  std::atomic<bool> returned{false};  // FetchAsync has returned
};

void StartFetch(const X5uFetcher& f, const std::string& url, absl::Time deadline,
                AsyncResult* out) {
  f.FetchAsync(url, deadline, [out](FetchResult r) {
    out->inline_answer = !out->returned.load();
    out->result = std::move(r);
    out->done.Notify();
  });
  out->returned = true;
}

TEST_F(X5uFetchTest, FetchAsyncAnswersWhatFetchAnswers) {
  server_->SetRoute("/a.pem", {.body = kPemBody});
  ASSERT_OK_AND_ASSIGN(auto f, X5uFetcher::New(LabOptions()));
  AsyncResult ok, refused;
  StartFetch(*f, server_->Url("/a.pem"), absl::InfiniteFuture(), &ok);
  ASSERT_TRUE(ok.done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_TRUE(ok.result.ok()) << ok.result.detail;
  EXPECT_EQ(ok.result.body, kPemBody);
  EXPECT_FALSE(ok.inline_answer.load());  // the loop thread answered
  // A URL the policy refuses is answered before FetchAsync returns, without the network.
  StartFetch(*f, "http://127.0.0.1/a.pem", absl::InfiniteFuture(), &refused);
  EXPECT_TRUE(refused.done.HasBeenNotified());
  EXPECT_TRUE(refused.inline_answer.load());
  EXPECT_EQ(refused.result.reason, Reason::kX5uNotAllowed);
}

TEST_F(X5uFetchTest, FetchAsyncKeepsToThePerHostLimitAndAnswersEveryoneAfterRelease) {
  HttpResponse held{.body = kPemBody};
  held.hold_until_release = true;
  server_->SetPrefixRoute("/held/", held);
  X5uFetcherOptions o = LabOptions();
  o.total_timeout = absl::Seconds(20);
  o.max_per_host = 2;
  ASSERT_OK_AND_ASSIGN(auto f, X5uFetcher::New(o));
  constexpr int kFetches = 6;
  std::vector<AsyncResult> results(kFetches);
  for (int i = 0; i < kFetches; ++i) {
    StartFetch(*f, server_->Url(absl::StrCat("/held/", i, ".pem")), absl::InfiniteFuture(),
               &results[i]);
  }
  ASSERT_TRUE(server_->WaitForHeld(2, absl::Seconds(10)));
  // The other four wait for a slot: the server never sees more than two at once.
  const absl::Time until = absl::Now() + absl::Seconds(5);
  while (f->LoopStats().waiting != 4 && absl::Now() < until) absl::SleepFor(absl::Milliseconds(5));
  EXPECT_EQ(f->LoopStats().in_flight, 2);
  EXPECT_EQ(f->LoopStats().waiting, 4);
  EXPECT_EQ(f->LoopStats().host_limit_waits, 4u);
  EXPECT_EQ(server_->HeldCount(), 2);
  for (const auto& r : results) EXPECT_FALSE(r.done.HasBeenNotified());
  server_->ReleaseHeld("", /*stop_holding=*/true);
  for (auto& r : results) {
    ASSERT_TRUE(r.done.WaitForNotificationWithTimeout(absl::Seconds(10)));
    EXPECT_TRUE(r.result.ok()) << r.result.detail;
  }
  EXPECT_EQ(server_->TotalRequests(), kFetches);
}

TEST_F(X5uFetchTest, FetchAsyncThatCannotGetASlotBeforeItsDeadlineIsShed) {
  HttpResponse held{.body = kPemBody};
  held.hold_until_release = true;
  server_->SetPrefixRoute("/held/", held);
  X5uFetcherOptions o = LabOptions();
  o.total_timeout = absl::Seconds(20);
  o.max_per_host = 1;
  ASSERT_OK_AND_ASSIGN(auto f, X5uFetcher::New(o));
  AsyncResult first, second;
  StartFetch(*f, server_->Url("/held/1.pem"), absl::InfiniteFuture(), &first);
  ASSERT_TRUE(server_->WaitForHeld(1, absl::Seconds(10)));
  StartFetch(*f, server_->Url("/held/2.pem"), absl::Now() + absl::Milliseconds(200), &second);
  // Answered at its deadline while the first still holds the host's only slot.
  ASSERT_TRUE(second.done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_FALSE(first.done.HasBeenNotified());
  EXPECT_EQ(second.result.reason, Reason::kFetchTimeout);
  EXPECT_TRUE(second.result.shed);
  EXPECT_THAT(second.result.detail, HasSubstr("no x5u fetch slot"));
  EXPECT_EQ(server_->RequestCount("/held/2.pem"), 0);
  EXPECT_EQ(f->LoopStats().shed, 1u);
  server_->ReleaseHeld("", /*stop_holding=*/true);
  ASSERT_TRUE(first.done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_TRUE(first.result.ok()) << first.result.detail;
}

TEST_F(X5uFetchTest, FetchAsyncBeyondTheQueueIsShedAtOnce) {
  HttpResponse held{.body = kPemBody};
  held.hold_until_release = true;
  server_->SetPrefixRoute("/held/", held);
  X5uFetcherOptions o = LabOptions();
  o.total_timeout = absl::Seconds(20);
  o.max_in_flight = 1;
  o.max_queued = 1;
  ASSERT_OK_AND_ASSIGN(auto f, X5uFetcher::New(o));
  AsyncResult running, queued, refused;
  StartFetch(*f, server_->Url("/held/1.pem"), absl::InfiniteFuture(), &running);
  ASSERT_TRUE(server_->WaitForHeld(1, absl::Seconds(10)));
  StartFetch(*f, server_->Url("/held/2.pem"), absl::InfiniteFuture(), &queued);
  StartFetch(*f, server_->Url("/held/3.pem"), absl::InfiniteFuture(), &refused);
  EXPECT_TRUE(refused.done.HasBeenNotified());  // before FetchAsync returned
  EXPECT_TRUE(refused.result.shed);
  EXPECT_THAT(refused.result.detail, HasSubstr("wait for a slot"));
  server_->ReleaseHeld("", /*stop_holding=*/true);
  for (AsyncResult* r : {&running, &queued}) {
    ASSERT_TRUE(r->done.WaitForNotificationWithTimeout(absl::Seconds(10)));
    EXPECT_TRUE(r->result.ok()) << r->result.detail;
  }
}

TEST_F(X5uFetchTest, DestroyingTheFetcherAnswersWhatIsStillWaiting) {
  HttpResponse held{.body = kPemBody};
  held.hold_until_release = true;
  server_->SetPrefixRoute("/held/", held);
  X5uFetcherOptions o = LabOptions();
  o.total_timeout = absl::Seconds(20);
  o.max_per_host = 1;
  AsyncResult running, waiting;
  {
    ASSERT_OK_AND_ASSIGN(auto f, X5uFetcher::New(o));
    StartFetch(*f, server_->Url("/held/1.pem"), absl::InfiniteFuture(), &running);
    ASSERT_TRUE(server_->WaitForHeld(1, absl::Seconds(10)));
    StartFetch(*f, server_->Url("/held/2.pem"), absl::InfiniteFuture(), &waiting);
  }
  EXPECT_TRUE(running.done.HasBeenNotified());
  EXPECT_TRUE(waiting.done.HasBeenNotified());
  EXPECT_FALSE(running.result.ok());
  EXPECT_FALSE(waiting.result.ok());
  server_->ReleaseHeld("", /*stop_holding=*/true);
}

TEST(HttpsServerTarpitTest, HoldsTwoHundredConnectionsAndStopEndsThem) {
  HttpsServerOptions so;
  so.tls = false;  // raw sockets below: the capacity under test is the server's, not TLS's
  ASSERT_OK_AND_ASSIGN(auto server, HttpsServer::Start(so));
  server->SetPrefixRoute("/tarpit/", {.body = "released", .hold_until_release = true});
  constexpr int kHeld = 220;
  auto connect_and_ask = [&](int i) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in addr = {};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    addr.sin_port = htons(static_cast<uint16_t>(server->port()));
    EXPECT_EQ(connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)), 0);
    std::string req = "GET /tarpit/" + std::to_string(i) + " HTTP/1.1\r\nHost: x\r\n\r\n";
    EXPECT_EQ(send(fd, req.data(), req.size(), MSG_NOSIGNAL), static_cast<ssize_t>(req.size()));
    timeval tv = {20, 0};  // bounded reads below
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    return fd;
  };
  auto read_all = [](int fd) {
    std::string out;
    char buf[1024];
    ssize_t n;
    while ((n = recv(fd, buf, sizeof(buf), 0)) > 0) out.append(buf, static_cast<size_t>(n));
    close(fd);
    return out;
  };
  std::vector<int> fds;
  for (int i = 0; i < kHeld; ++i) fds.push_back(connect_and_ask(i));
  ASSERT_TRUE(server->WaitForHeld(kHeld, absl::Seconds(30))) << server->HeldCount();
  EXPECT_EQ(server->ReleaseHeld(), kHeld);
  int answered = 0;
  for (int fd : fds) {
    std::string response = read_all(fd);
    if (response.rfind("HTTP/1.1 200", 0) == 0 && response.find("released") != std::string::npos) {
      ++answered;
    }
  }
  EXPECT_EQ(answered, kHeld);

  // Held again, then Stop: every held connection is closed unanswered and Stop returns.
  fds.clear();
  for (int i = 0; i < 3; ++i) fds.push_back(connect_and_ask(1000 + i));
  ASSERT_TRUE(server->WaitForHeld(3, absl::Seconds(10)));
  server->Stop();
  for (int fd : fds) EXPECT_EQ(read_all(fd), "");
  EXPECT_FALSE(server->WaitForHeld(1, absl::Milliseconds(1)));
}

}  // namespace
}  // namespace shaken::stir
