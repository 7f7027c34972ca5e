#include "daemon/authz.h"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <map>
#include <string>

#include <grpc/grpc_security_constants.h>
#include <openssl/pem.h>

#include "absl/strings/str_split.h"
#include "absl/time/clock.h"
#include "gtest/gtest.h"
#include "stir/openssl_util.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/test_pki.h"

namespace shaken::daemon {
namespace {

// FakeAuthContext holds the properties gRPC's TLS handshake would set (ssl_utils.cc: every SAN of
// a supported kind in x509_subject_alternative_name, and again by kind in peer_dns, peer_uri,
// peer_email, peer_ip).
class FakeAuthContext : public grpc::AuthContext {
 public:
  bool IsPeerAuthenticated() const override { return true; }
  std::vector<grpc::string_ref> GetPeerIdentity() const override { return {}; }
  std::string GetPeerIdentityPropertyName() const override { return ""; }
  std::vector<grpc::string_ref> FindPropertyValues(const std::string& name) const override {
    std::vector<grpc::string_ref> out;
    auto [b, e] = props_.equal_range(name);
    for (auto it = b; it != e; ++it) out.emplace_back(it->second);
    return out;
  }
  grpc::AuthPropertyIterator begin() const override { return Iterator(); }
  grpc::AuthPropertyIterator end() const override { return Iterator(); }
  void AddProperty(const std::string& key, const grpc::string_ref& value) override {
    props_.emplace(key, std::string(value.data(), value.size()));
  }
  bool SetPeerIdentityPropertyName(const std::string&) override { return false; }

 private:
  struct Iterator : grpc::AuthPropertyIterator {};
  std::multimap<std::string, std::string> props_;
};

ClientRule Rule(std::string identity) {
  ClientRule r;
  r.identity = std::move(identity);
  r.methods = {"*"};
  r.profiles = {"*"};
  return r;
}

class AuthzTest : public ::testing::Test {
 protected:
  // Context builds what gRPC reports for a client certificate with subject CN `cn` and SANs
  // `san` in OpenSSL syntax.
  FakeAuthContext Context(const std::string& cn, const std::string& san) {
    auto pki = testing::TlsServerPki::Create(absl::Now());
    EXPECT_OK(pki);
    auto cert = pki->IssueClientWithNames(cn, san, absl::Now());
    EXPECT_OK(cert);
    FakeAuthContext ctx;
    ctx.AddProperty(GRPC_X509_CN_PROPERTY_NAME, cn);
    ctx.AddProperty(GRPC_X509_PEM_CERT_PROPERTY_NAME, cert->cert_pem);
    for (absl::string_view item : absl::StrSplit(san, ',', absl::SkipEmpty())) {
      const size_t colon = item.find(':');
      const std::string kind(item.substr(0, colon)), value(item.substr(colon + 1));
      const char* by_kind = kind == "DNS"     ? GRPC_PEER_DNS_PROPERTY_NAME
                            : kind == "URI"   ? GRPC_PEER_URI_PROPERTY_NAME
                            : kind == "email" ? GRPC_PEER_EMAIL_PROPERTY_NAME
                            : kind == "IP"    ? GRPC_PEER_IP_PROPERTY_NAME
                                              : nullptr;
      if (by_kind == nullptr) continue;  // gRPC does not report otherName and the like
      ctx.AddProperty(GRPC_X509_SAN_PROPERTY_NAME, value);
      ctx.AddProperty(by_kind, value);
    }
    return ctx;
  }

  // Certificate issues the client certificate itself, for IdentifyCertificate.
  stir::X509Ptr Certificate(const std::string& cn, const std::string& san) {
    auto pki = testing::TlsServerPki::Create(absl::Now());
    EXPECT_OK(pki);
    auto cert = pki->IssueClientWithNames(cn, san, absl::Now());
    EXPECT_OK(cert);
    stir::BioPtr bio(BIO_new_mem_buf(cert->cert_pem.data(), static_cast<int>(cert->cert_pem.size())));
    return stir::X509Ptr(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  }

  Authorizer authz_{{Rule("sbc.demo"), Rule("spiffe://demo/sbc")}};
};

// Front ends whose TLS is not gRPC's name a client by its certificate with the same rules.
TEST_F(AuthzTest, ACertificateNamesItsClientAsGrpcsAuthContextDoes) {
  const std::pair<const char*, const char*> cases[] = {
      {"whatever", "DNS:sbc.demo"},       {"whatever", "URI:spiffe://demo/sbc"},
      {"sbc.demo", "DNS:other.host"},     {"sbc.demo", "email:sbc.demo"},
      {"sbc.demo", "IP:10.0.0.1"},        {"sbc.demo", "otherName:1.3.6.1.4.1.311.20.2.3;UTF8:sbc.demo"},
      {"sbc.demo", ""},                   {"x", "DNS:first.host,DNS:sbc.demo"},
  };
  for (const auto& [cn, san] : cases) {
    FakeAuthContext ctx = Context(cn, san);
    stir::X509Ptr cert = Certificate(cn, san);
    ASSERT_NE(cert, nullptr);
    const Caller by_grpc = authz_.Identify(&ctx);
    const Caller by_cert = authz_.IdentifyCertificate(cert.get());
    EXPECT_EQ(by_cert.identity, by_grpc.identity) << cn << " " << san;
    EXPECT_EQ(Authorizer::MayCall(by_cert, "Sign"), Authorizer::MayCall(by_grpc, "Sign"))
        << cn << " " << san;
  }
  EXPECT_EQ(authz_.IdentifyCertificate(nullptr).identity, "anonymous");
}

TEST_F(AuthzTest, SanDnsNameMatches) {
  FakeAuthContext ctx = Context("whatever", "DNS:sbc.demo");
  Caller c = authz_.Identify(&ctx);
  EXPECT_TRUE(Authorizer::MayCall(c, "Sign"));
  EXPECT_EQ(c.identity, "sbc.demo");
}

TEST_F(AuthzTest, SanUriNameMatches) {
  FakeAuthContext ctx = Context("whatever", "URI:spiffe://demo/sbc");
  Caller c = authz_.Identify(&ctx);
  EXPECT_TRUE(Authorizer::MayCall(c, "Sign"));
  EXPECT_EQ(c.identity, "spiffe://demo/sbc");
}

TEST_F(AuthzTest, CommonNameIsIgnoredWhenTheCertificateHasSans) {
  FakeAuthContext ctx = Context("sbc.demo", "DNS:other.host");
  Caller c = authz_.Identify(&ctx);
  EXPECT_FALSE(Authorizer::MayCall(c, "Sign"));
  EXPECT_EQ(c.identity, "other.host");
}

TEST_F(AuthzTest, EmailAndIpSansNeverNameAClient) {
  for (const char* san : {"email:sbc.demo", "IP:10.0.0.1"}) {
    FakeAuthContext ctx = Context("sbc.demo", san);
    Caller c = authz_.Identify(&ctx);
    EXPECT_FALSE(Authorizer::MayCall(c, "Sign")) << san;
    EXPECT_EQ(c.identity, "unnamed") << san;
  }
}

TEST_F(AuthzTest, SansGrpcDoesNotReportStillDisableTheCommonName) {
  FakeAuthContext ctx = Context("sbc.demo", "otherName:1.3.6.1.4.1.311.20.2.3;UTF8:sbc.demo");
  EXPECT_FALSE(Authorizer::MayCall(authz_.Identify(&ctx), "Sign"));
}

TEST_F(AuthzTest, CommonNameCountsOnlyWithoutSans) {
  FakeAuthContext ctx = Context("sbc.demo", "");
  Caller c = authz_.Identify(&ctx);
  EXPECT_TRUE(Authorizer::MayCall(c, "Sign"));
  EXPECT_EQ(c.identity, "sbc.demo");
}

TEST_F(AuthzTest, AuditsTheNameARuleMatched) {
  FakeAuthContext ctx = Context("x", "DNS:first.host,DNS:sbc.demo");
  EXPECT_EQ(authz_.Identify(&ctx).identity, "sbc.demo");
}

TEST_F(AuthzTest, NoCertificateIsAnonymous) {
  Caller c = authz_.Identify(nullptr);
  EXPECT_EQ(c.identity, "anonymous");
  EXPECT_FALSE(Authorizer::MayCall(c, "Sign"));
}

// Sockaddr is a source address as the SIP front end sees it.
sockaddr_storage Sockaddr(const char* ip) {
  sockaddr_storage ss{};
  if (inet_pton(AF_INET, ip, &reinterpret_cast<sockaddr_in*>(&ss)->sin_addr) == 1) {
    ss.ss_family = AF_INET;
  } else {
    EXPECT_EQ(inet_pton(AF_INET6, ip, &reinterpret_cast<sockaddr_in6*>(&ss)->sin6_addr), 1);
    ss.ss_family = AF_INET6;
  }
  return ss;
}

TEST(AuthzSourcesTest, SipClientsAreNamedByTheirSourceAddress) {
  ClientRule east{.identity = "sbc-east", .methods = {"Sign"}, .profiles = {"*"}};
  east.sources = {*stir::ParseCidr("10.1.0.0/16"), *stir::ParseCidr("2001:db8::/32")};
  ClientRule cert{.identity = "*", .methods = {"*"}, .profiles = {"*"}};
  Authorizer authz({east, cert});
  auto identify = [&](const char* ip) {
    sockaddr_storage ss = Sockaddr(ip);
    return authz.IdentifyAddress(reinterpret_cast<sockaddr*>(&ss));
  };
  Caller in = identify("10.1.200.7");
  EXPECT_EQ(in.identity, "sbc-east");
  EXPECT_TRUE(Authorizer::MayCall(in, "Sign"));
  EXPECT_FALSE(Authorizer::MayCall(in, "Verify"));
  EXPECT_EQ(identify("2001:db8:1::5").identity, "sbc-east");
  EXPECT_EQ(identify("::ffff:10.1.0.9").identity, "sbc-east");  // a dual-stack socket's view
  // Outside every rule's sources: no rule, not even the certificate wildcard.
  Caller out = identify("10.2.0.1");
  EXPECT_EQ(out.identity, "unknown");
  EXPECT_TRUE(out.rules.empty());
  EXPECT_FALSE(out.unrestricted);
  EXPECT_FALSE(Authorizer::MayCall(out, "Sign"));
  // A certificate never matches a rule with sources.
  EXPECT_TRUE(authz.IdentifyCertificate(nullptr).rules.size() == 1u);
  EXPECT_EQ(authz.IdentifyCertificate(nullptr).rules[0]->identity, "*");
  // No rules at all: every source may do everything, as every client may.
  Authorizer open({});
  sockaddr_storage ss = Sockaddr("192.0.2.1");
  EXPECT_TRUE(open.IdentifyAddress(reinterpret_cast<sockaddr*>(&ss)).unrestricted);
}

}  // namespace
}  // namespace shaken::daemon
