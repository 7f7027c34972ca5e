#include "stir/x5u_fetcher.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"

namespace shaken::stir {
namespace {

using ::shaken::testing::StatusIs;
using ::testing::HasSubstr;

TEST(CheckX5uUrlTest, AllowsHttpsOn443And8443) {
  X5uFetcherOptions o;
  EXPECT_TRUE(CheckX5uUrl("https://cert.example.com/sp/709J.pem", o).ok());
  EXPECT_TRUE(CheckX5uUrl("https://cert.example.com:443/709J.pem", o).ok());
  EXPECT_TRUE(CheckX5uUrl("https://cert.example.com:8443/709J.pem", o).ok());  // Asterisk #1271
  EXPECT_TRUE(CheckX5uUrl("HTTPS://Cert.Example.com/a.pem", o).ok());
}

TEST(CheckX5uUrlTest, RefusesEverythingElse) {
  X5uFetcherOptions o;
  const char* refused[] = {
      "",
      "http://cert.example.com/a.pem",  // plain http
      "ftp://cert.example.com/a.pem",
      "file:///etc/passwd",
      "https://cert.example.com:444/a.pem",  // port
      "https://cert.example.com:80/a.pem",
      "https://user@cert.example.com/a.pem",  // userinfo
      "https://user:pw@cert.example.com/a.pem",
      "https://cert.example.com/a.pem?x=1",  // query
      "https://cert.example.com/a.pem?",
      "https://cert.example.com/a.pem#frag",  // fragment
      "https://cert.example.com/a.pem#",
      "https://cert.example.com/a b.pem",  // space
      "https://cert.example.com\\@evil/a.pem",
      "https:///a.pem",  // no host
      "not a url",
      "https://cert.example.com/\x01.pem",
      "https://cert.example.com/\xC3\xA9.pem",
  };
  for (const char* url : refused) {
    FetchResult r = CheckX5uUrl(url, o);
    EXPECT_EQ(r.reason, Reason::kX5uNotAllowed) << url;
    EXPECT_FALSE(r.detail.empty()) << url;
  }
  EXPECT_EQ(CheckX5uUrl(std::string("https://a.example/") + std::string(3000, 'a'), o).reason,
            Reason::kX5uNotAllowed);
}

TEST(CheckX5uUrlTest, LabOptions) {
  X5uFetcherOptions o;
  o.allow_http = true;
  EXPECT_TRUE(CheckX5uUrl("http://cert.example.com/a.pem", o).ok());
  EXPECT_FALSE(CheckX5uUrl("http://cert.example.com:8080/a.pem", o).ok());
  o.allow_any_port = true;
  EXPECT_TRUE(CheckX5uUrl("http://cert.example.com:8080/a.pem", o).ok());
  // Userinfo, query and fragment stay refused whatever the lab options.
  EXPECT_FALSE(CheckX5uUrl("http://u@cert.example.com:8080/a.pem", o).ok());
  EXPECT_FALSE(CheckX5uUrl("http://cert.example.com:8080/a.pem?q", o).ok());
}

TEST(IsBlockedIpTest, Table) {
  const char* blocked[] = {"127.0.0.1",
                           "127.255.0.9",
                           "10.1.2.3",
                           "172.16.0.1",
                           "172.31.255.255",
                           "192.168.1.1",
                           "169.254.169.254",
                           "100.64.0.1",
                           "100.127.255.255",
                           "0.0.0.0",
                           "224.0.0.1",
                           "239.1.1.1",
                           "255.255.255.255",
                           "240.0.0.1",
                           "198.18.0.1",
                           "192.0.2.1",
                           "::",
                           "::1",
                           "fc00::1",
                           "fd12:3456::1",
                           "fe80::1",
                           "ff02::1",
                           "::ffff:127.0.0.1",
                           "::ffff:10.0.0.1",
                           "64:ff9b::a9fe:a9fe",
                           "2001:db8::1",
                           "garbage",
                           ""};
  for (const char* ip : blocked) EXPECT_TRUE(IsBlockedIp(ip)) << ip;
  const char* allowed[] = {"8.8.8.8",        "1.1.1.1",         "172.32.0.1",
                           "100.128.0.1",    "192.169.0.1",     "2606:4700:4700::1111",
                           "::ffff:8.8.8.8", "64:ff9b::808:808"};
  for (const char* ip : allowed) EXPECT_FALSE(IsBlockedIp(ip)) << ip;
}

TEST(FetchResultTest, FreshnessLifetime) {
  const absl::Time now = absl::FromUnixSeconds(1767225600);
  FetchResult r;
  EXPECT_FALSE(r.FreshnessLifetime(now).has_value());
  r.expires = now + absl::Hours(2);
  EXPECT_EQ(r.FreshnessLifetime(now), absl::Hours(2));
  r.date = now - absl::Hours(1);  // Expires - Date, not Expires - now (RFC 9111 §4.2.1)
  EXPECT_EQ(r.FreshnessLifetime(now), absl::Hours(3));
  r.max_age = absl::Seconds(60);  // max-age wins over Expires
  EXPECT_EQ(r.FreshnessLifetime(now), absl::Seconds(60));
  r.no_store = true;
  EXPECT_EQ(r.FreshnessLifetime(now), absl::ZeroDuration());
  FetchResult past;
  past.expires = absl::InfinitePast();
  EXPECT_EQ(past.FreshnessLifetime(now), absl::ZeroDuration());
}

TEST(X5uFetcherTest, OptionErrors) {
  X5uFetcherOptions o;
  o.total_timeout = absl::ZeroDuration();
  EXPECT_THAT(X5uFetcher::New(o), StatusIs(absl::StatusCode::kInvalidArgument));
  o = {};
  o.max_body_bytes = 0;
  EXPECT_THAT(X5uFetcher::New(o), StatusIs(absl::StatusCode::kInvalidArgument));
  o = {};
  o.tls_ca_file = "/nonexistent/ca.pem";
  EXPECT_THAT(X5uFetcher::New(o),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("/nonexistent/ca.pem")));
}

TEST(X5uFetcherTest, PolicyIsCheckedBeforeAnyNetworkIo) {
  ASSERT_OK_AND_ASSIGN(auto fetcher, X5uFetcher::New({}));
  // Port 1 on a documentation address would hang or fail at connect; the policy refuses first.
  FetchResult r = fetcher->Fetch("https://192.0.2.1:1/a.pem");
  EXPECT_EQ(r.reason, Reason::kX5uNotAllowed);
  EXPECT_THAT(r.detail, HasSubstr("port"));
}

}  // namespace
}  // namespace shaken::stir
