// acme_problem_test.cc: every refusal of the demo STI-CA (`shakenctl ca serve`) is the precise
// RFC 8555 problem: forged, expired, replayed, wrong-fingerprint and wrong-TNAuthList Authority
// Tokens (unauthorized), a CSR whose TNAuthList is not the order's (badCSR), a bad JWS
// (malformed, badSignatureAlgorithm), stale, replayed or missing nonces (badNonce), unknown
// accounts (accountDoesNotExist), identifiers (unsupportedIdentifier, rejectedIdentifier) and
// finalize too early (orderNotReady). Requests are made with the client library so that they can
// be wrong on purpose.
#include <fstream>

#include "absl/strings/strip.h"
#include "cli/acme/authority_token.h"
#include "cli/acme/client.h"
#include "cli/acme/jws.h"
#include "cli/acme/problem.h"
#include "cli/common.h"
#include "cli/sp_cert.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "stir/base64url.h"
#include "stir/memory_signer.h"
#include "stir/tn_auth_list.h"
#include "tests/acme_lab.h"
#include "tests/testing/status_matchers.h"

namespace shaken::testing {
namespace {

using acme::Json;
using ::testing::HasSubstr;

class AcmeProblemTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    lab_ = AcmeLab::Create().release();
    ASSERT_NE(lab_, nullptr);
    ASSERT_TRUE(lab_->StartCa());
  }
  static void TearDownTestSuite() {
    delete lab_;
    lab_ = nullptr;
  }
  void SetUp() override {
    ASSERT_NE(lab_, nullptr);
    auto a = stir::MemorySigner::Generate();
    ASSERT_OK(a);
    account_ = *std::move(a);
    acme::ClientOptions co;
    co.tls_ca_file = lab_->P("tls-ca.pem");
    co.poll_timeout = absl::Seconds(10);
    co.max_bad_nonce_retries = 0;  // a badNonce must surface here, not be retried
    auto c = acme::AcmeClient::Connect(lab_->Directory(), account_.get(), account_->key(), co);
    ASSERT_OK(c);
    client_ = *std::move(c);
    ASSERT_OK(client_->NewAccount(std::nullopt));
    auto pa = stir::MemorySigner::FromPem(ReadFileOrEmpty(lab_->P("pa.key")));
    ASSERT_OK(pa);
    pa_ = *std::move(pa);
  }

  static std::string Der(const std::string& spc) {
    return stir::EncodeTnAuthList({{stir::TnAuthEntry::Kind::kSpc, spc}}).value();
  }
  static Json Identifiers(const std::string& spc) {
    return Json::array({{{"type", "TNAuthList"}, {"value", acme::TnAuthListValue(Der(spc))}}});
  }

  // Token signs an Authority Token; by default a good one for this account and `spc`.
  struct TokenSpec {
    std::string spc = "709J";
    const stir::Signer* signer = nullptr;  // default: the PA key
    const EVP_PKEY* account = nullptr;     // default: this test's account key
    absl::Duration from_now = absl::ZeroDuration();
    absl::Duration lifetime = absl::Minutes(5);
  };
  std::string Token(const TokenSpec& t) {
    const absl::Time iat = absl::FromUnixSeconds(absl::ToUnixSeconds(absl::Now())) + t.from_now;
    acme::AuthorityTokenClaims c;
    c.tnauthlist_der = Der(t.spc);
    c.fingerprint = acme::AccountKeyFingerprint(t.account ? t.account : account_->key()).value();
    c.iss = "lab PA";
    c.iat = iat;
    c.exp = iat + t.lifetime;
    return acme::SignAuthorityToken(t.signer ? *t.signer : *pa_, lab_->PaX5u(), c).value();
  }

  struct Pending {
    std::string order_url, authz_url, chall_url, finalize_url;
  };
  Pending NewOrder(const std::string& spc = "709J") {
    Pending p;
    auto o = client_->NewOrder(Identifiers(spc));
    EXPECT_OK(o);
    if (!o.ok()) return p;
    p.order_url = o->url;
    p.finalize_url = o->body["finalize"];
    p.authz_url = o->body["authorizations"][0];
    auto az = client_->PostAsGet(p.authz_url);
    EXPECT_OK(az);
    if (az.ok()) p.chall_url = (*az)["challenges"][0]["url"];
    return p;
  }
  absl::Status Answer(const Pending& p, const std::string& token) {
    return client_->Respond(p.chall_url, {{"atc", token}}).status();
  }
  std::string Csr(const std::string& spc) {
    auto key = stir::MemorySigner::Generate().value();
    stir::EvpPkeyPtr pub(EVP_PKEY_dup(const_cast<EVP_PKEY*>(key->key())));
    cli::LoadedKey k{std::move(key), std::move(pub), "memory"};
    auto subject = cli::ShakenSubject("US", "Lab Telecom", "SHAKEN " + spc).value();
    auto csr =
        cli::BuildShakenCsr({{stir::TnAuthEntry::Kind::kSpc, spc}}, subject.get(), k).value();
    unsigned char* p = nullptr;
    int n = i2d_X509_REQ(csr.get(), &p);
    std::string der(reinterpret_cast<char*>(p), n);
    OPENSSL_free(p);
    return der;
  }
  // ExpectProblem checks the ACME type and a piece of the detail.
  static void ExpectProblem(const absl::Status& s, const std::string& type,
                            const std::string& detail) {
    EXPECT_FALSE(s.ok());
    EXPECT_EQ(acme::ProblemType(s), type) << s;
    EXPECT_THAT(std::string(s.message()), HasSubstr(detail));
  }

  static AcmeLab* lab_;
  std::unique_ptr<stir::MemorySigner> account_;
  std::unique_ptr<stir::MemorySigner> pa_;
  std::unique_ptr<acme::AcmeClient> client_;
};

AcmeLab* AcmeProblemTest::lab_ = nullptr;

TEST_F(AcmeProblemTest, GoodTokenThenReplayedJti) {
  const std::string token = Token({});
  Pending first = NewOrder();
  ASSERT_OK(Answer(first, token));
  auto ready = client_->WaitFor(first.order_url, {"ready"});
  ASSERT_OK(ready);
  Pending second = NewOrder();
  ExpectProblem(Answer(second, token), "unauthorized", "already used");
  // The failed challenge made the authorization and the order invalid (RFC 8555 §7.1.6).
  auto order = client_->PostAsGet(second.order_url);
  ASSERT_OK(order);
  EXPECT_EQ((*order)["status"], "invalid");
  EXPECT_EQ((*order)["error"]["type"], "urn:ietf:params:acme:error:unauthorized");
}

TEST_F(AcmeProblemTest, ForgedTokenIsUnauthorized) {
  auto forger = stir::MemorySigner::Generate();
  ASSERT_OK(forger);
  ExpectProblem(Answer(NewOrder(), Token({.signer = forger->get()})), "unauthorized",
                "signature does not verify");
  std::string token = Token({});
  token[token.size() / 2] = token[token.size() / 2] == 'A' ? 'B' : 'A';  // payload altered
  ExpectProblem(Answer(NewOrder(), token), "unauthorized", "Authority Token");
}

TEST_F(AcmeProblemTest, ExpiredTokenIsUnauthorized) {
  ExpectProblem(
      Answer(NewOrder(), Token({.from_now = -absl::Hours(2), .lifetime = absl::Minutes(5)})),
      "unauthorized", "expired");
}

TEST_F(AcmeProblemTest, WrongFingerprintIsUnauthorized) {
  auto other = stir::MemorySigner::Generate();
  ASSERT_OK(other);
  ExpectProblem(Answer(NewOrder(), Token({.account = (*other)->key()})), "unauthorized",
                "fingerprint");
}

TEST_F(AcmeProblemTest, TokenForAnotherSpcIsUnauthorized) {
  ExpectProblem(Answer(NewOrder("709J"), Token({.spc = "123A"})), "unauthorized", "tkvalue");
}

TEST_F(AcmeProblemTest, ChallengeWithoutAtcIsMalformed) {
  ExpectProblem(client_->Respond(NewOrder().chall_url, Json::object()).status(), "malformed",
                "atc");
}

TEST_F(AcmeProblemTest, FinalizeTooEarlyThenCsrForAnotherSpcThenTheRightOne) {
  Pending p = NewOrder();
  ExpectProblem(client_->Finalize(p.finalize_url, Csr("709J")).status(), "orderNotReady",
                "pending");
  ASSERT_OK(Answer(p, Token({})));
  ASSERT_OK(client_->WaitFor(p.order_url, {"ready"}));
  ExpectProblem(client_->Finalize(p.finalize_url, Csr("123A")).status(), "badCSR",
                "not the order's identifier");
  ExpectProblem(client_->Finalize(p.finalize_url, "not a CSR").status(), "badCSR", "PKCS#10");
  auto done = client_->Finalize(p.finalize_url, Csr("709J"));
  ASSERT_OK(done);
  EXPECT_EQ((*done)["status"], "valid");
  auto pem = client_->DownloadCertificate((*done)["certificate"]);
  ASSERT_OK(pem);
  EXPECT_THAT(*pem, HasSubstr("BEGIN CERTIFICATE"));
}

TEST_F(AcmeProblemTest, BadJwsIsMalformedOrBadSignatureAlgorithm) {
  const std::string url = client_->directory()["newOrder"];
  const std::string payload = Json{{"identifiers", Identifiers("709J")}}.dump();
  auto nonce = client_->FreshNonce();
  ASSERT_OK(nonce);
  auto body = client_->SignedBody(url, payload, *nonce);
  ASSERT_OK(body);
  Json j = Json::parse(*body);
  std::string sig = j["signature"];
  sig[5] = sig[5] == 'A' ? 'B' : 'A';
  j["signature"] = sig;
  auto r = client_->Send("POST", url, j.dump());
  ASSERT_OK(r);
  EXPECT_EQ(r->status, 400);
  EXPECT_EQ(r->Header("content-type"), "application/problem+json");
  ExpectProblem(acme::ProblemFromResponse(*r, "x"), "malformed", "signature does not verify");

  // HS256 in the protected header: badSignatureAlgorithm.
  nonce = client_->FreshNonce();
  ASSERT_OK(nonce);
  Json h = {{"alg", "HS256"}, {"kid", client_->account_url()}, {"nonce", *nonce}, {"url", url}};
  std::string input = stir::Base64UrlEncode(h.dump()) + "." + stir::Base64UrlEncode(payload);
  Json hs = {{"protected", stir::Base64UrlEncode(h.dump())},
             {"payload", stir::Base64UrlEncode(payload)},
             {"signature", stir::Base64UrlEncode(acme::HmacSha256("key", input))}};
  r = client_->Send("POST", url, hs.dump());
  ASSERT_OK(r);
  ExpectProblem(acme::ProblemFromResponse(*r, "x"), "badSignatureAlgorithm", "ES256");

  // Not JSON, the wrong Content-Type, and the url header naming another resource.
  r = client_->Send("POST", url, "{{{");
  ASSERT_OK(r);
  ExpectProblem(acme::ProblemFromResponse(*r, "x"), "malformed", "flattened");
  nonce = client_->FreshNonce();
  body = client_->SignedBody(url, payload, *nonce);
  r = client_->Send("POST", url, *body, "application/json");
  ASSERT_OK(r);
  ExpectProblem(acme::ProblemFromResponse(*r, "x"), "malformed", "application/jose+json");
  nonce = client_->FreshNonce();
  body = client_->SignedBody(client_->directory()["newAccount"], payload, *nonce);
  r = client_->Send("POST", url, *body);
  ASSERT_OK(r);
  ExpectProblem(acme::ProblemFromResponse(*r, "x"), "unauthorized", "url header");
}

TEST_F(AcmeProblemTest, ReplayedUnknownOrMissingNonceIsBadNonce) {
  const std::string url = client_->account_url();
  auto nonce = client_->FreshNonce();
  ASSERT_OK(nonce);
  auto body = client_->SignedBody(url, "", *nonce);
  ASSERT_OK(body);
  auto first = client_->Send("POST", url, *body);
  ASSERT_OK(first);
  EXPECT_EQ(first->status, 200) << first->body;
  EXPECT_FALSE(first->Header("replay-nonce").empty());
  auto replay = client_->Send("POST", url, *body);  // the same request, the same nonce
  ASSERT_OK(replay);
  EXPECT_EQ(replay->status, 400);
  ExpectProblem(acme::ProblemFromResponse(*replay, "x"), "badNonce", "already used");
  EXPECT_FALSE(replay->Header("replay-nonce").empty());  // RFC 8555 §6.5: a fresh one to retry
  auto made_up = client_->SignedBody(url, "", acme::RandomToken(16));
  auto r = client_->Send("POST", url, *made_up);
  ASSERT_OK(r);
  ExpectProblem(acme::ProblemFromResponse(*r, "x"), "badNonce", "unknown");
  Json h = {{"alg", "ES256"}, {"kid", url}, {"url", url}};  // no "nonce" at all
  auto no_nonce = acme::FlattenedJws(*account_, h, "");
  ASSERT_OK(no_nonce);
  r = client_->Send("POST", url, *no_nonce);
  ASSERT_OK(r);
  ExpectProblem(acme::ProblemFromResponse(*r, "x"), "badNonce", "no nonce");
}

TEST_F(AcmeProblemTest, UnknownAccountsAndIdentifiers) {
  // A kid that names no account.
  const std::string url = client_->directory()["newOrder"];
  auto nonce = client_->FreshNonce();
  ASSERT_OK(nonce);
  std::string kid = client_->account_url();
  kid.back() = kid.back() == 'A' ? 'B' : 'A';
  auto body = acme::FlattenedJws(*account_,
                                 {{"alg", "ES256"}, {"kid", kid}, {"nonce", *nonce}, {"url", url}},
                                 Json{{"identifiers", Identifiers("709J")}}.dump());
  auto r = client_->Send("POST", url, *body);
  ASSERT_OK(r);
  ExpectProblem(acme::ProblemFromResponse(*r, "x"), "accountDoesNotExist", "kid");
  // onlyReturnExisting for a key with no account.
  auto stranger = stir::MemorySigner::Generate();
  ASSERT_OK(stranger);
  acme::ClientOptions co;
  co.tls_ca_file = lab_->P("tls-ca.pem");
  auto other =
      acme::AcmeClient::Connect(lab_->Directory(), stranger->get(), (*stranger)->key(), co);
  ASSERT_OK(other);
  ExpectProblem((*other)->NewAccount(std::nullopt, /*only_return_existing=*/true).status(),
                "accountDoesNotExist", "no account");
  // Identifiers: another type, an SPC a SHAKEN certificate may not hold, two of them.
  ExpectProblem(
      client_->NewOrder(Json::array({{{"type", "dns"}, {"value", "example.test"}}})).status(),
      "unsupportedIdentifier", "TNAuthList");
  const std::string lower =
      stir::EncodeTnAuthListUnchecked({{stir::TnAuthEntry::Kind::kSpc, "709j"}});
  ExpectProblem(client_
                    ->NewOrder(Json::array(
                        {{{"type", "TNAuthList"}, {"value", acme::TnAuthListValue(lower)}}}))
                    .status(),
                "rejectedIdentifier", "SPC");
  Json two = Identifiers("709J");
  two.push_back(Identifiers("123A")[0]);
  ExpectProblem(client_->NewOrder(two).status(), "rejectedIdentifier", "exactly one");
  ExpectProblem(
      client_->NewOrder(Json::array({{{"type", "TNAuthList"}, {"value", "!!"}}})).status(),
      "malformed", "base64");
  // Another account's order is not readable.
  ASSERT_OK((*other)->NewAccount(std::nullopt));
  Pending mine = NewOrder();
  ExpectProblem((*other)->PostAsGet(mine.order_url).status(), "unauthorized", "another account");
}

}  // namespace
}  // namespace shaken::testing
