// acme_unit_test.cc: the ACME engine's pieces without a network: JWK and thumbprint, the account
// key fingerprint, flattened JWS and EAB, the Authority Token codec, problem documents, and the
// SQLite store (nonces used once, jti replay, state kept across a reopen).
#include <string>

#include "absl/strings/match.h"
#include "absl/time/clock.h"
#include "cli/acme/authority_token.h"
#include "cli/acme/jws.h"
#include "cli/acme/problem.h"
#include "cli/acme/store.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "stir/base64url.h"
#include "stir/memory_signer.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/test_pki.h"

namespace shaken::acme {
namespace {

using ::testing::HasSubstr;
using ::testing::MatchesRegex;

TEST(AcmeJws, JwkRoundTripAndThumbprint) {
  auto signer = stir::MemorySigner::Generate();
  ASSERT_OK(signer);
  auto jwk = JwkOf((*signer)->key());
  ASSERT_OK(jwk);
  EXPECT_EQ((*jwk)["kty"], "EC");
  EXPECT_EQ((*jwk)["crv"], "P-256");
  auto key = KeyFromJwk(*jwk);
  ASSERT_OK(key);
  EXPECT_EQ(EVP_PKEY_eq(key->get(), (*signer)->key()), 1);
  auto t1 = JwkThumbprint(*jwk);
  ASSERT_OK(t1);
  EXPECT_EQ(t1->size(), 43u);  // base64url of 32 bytes
  Json with_extra = *jwk;
  with_extra["kid"] = "ignored";  // RFC 7638: only the required members count
  EXPECT_THAT(JwkThumbprint(with_extra), ::shaken::testing::IsOkAndHolds(*t1));
  Json priv = *jwk;
  priv["d"] = "AAAA";
  EXPECT_FALSE(KeyFromJwk(priv).ok());
  Json rsa = {{"kty", "RSA"}, {"n", "AQAB"}, {"e", "AQAB"}};
  EXPECT_FALSE(KeyFromJwk(rsa).ok());
}

TEST(AcmeJws, FingerprintIsSha256OfSpkiInColonHex) {
  auto signer = stir::MemorySigner::Generate();
  ASSERT_OK(signer);
  auto fp = AccountKeyFingerprint((*signer)->key());
  ASSERT_OK(fp);
  EXPECT_THAT(*fp, MatchesRegex("SHA256 ([0-9A-F]{2}:){31}[0-9A-F]{2}"));
  auto spki = stir::PublicKeyToDer((*signer)->key());
  ASSERT_OK(spki);
  stir::Sha256Digest d = stir::Sha256(*spki);
  char first[3];
  snprintf(first, sizeof(first), "%02X", d[0]);
  EXPECT_EQ(fp->substr(7, 2), first);
}

TEST(AcmeJws, FlattenedJwsVerifiesAndTamperingIsCaught) {
  auto signer = stir::MemorySigner::Generate();
  ASSERT_OK(signer);
  auto body = FlattenedJws(**signer, {{"alg", "ES256"}, {"nonce", "n"}, {"url", "https://x/y"}},
                           R"({"a":1})");
  ASSERT_OK(body);
  auto jws = ParseFlattenedJws(*body);
  ASSERT_OK(jws);
  EXPECT_EQ(jws->payload, R"({"a":1})");
  EXPECT_OK(VerifyEs256Jws(*jws, (*signer)->key()));
  auto other = stir::MemorySigner::Generate();
  ASSERT_OK(other);
  EXPECT_FALSE(VerifyEs256Jws(*jws, (*other)->key()).ok());
  Json j = Json::parse(*body);
  j["header"] = Json::object();  // unprotected header: refused
  EXPECT_FALSE(ParseFlattenedJws(j.dump()).ok());
  EXPECT_FALSE(ParseFlattenedJws("not json").ok());
  EXPECT_FALSE(ParseFlattenedJws(R"({"protected":"e30","payload":"","signature":"**"})").ok());
}

TEST(AcmeJws, ExternalAccountBindingIsHs256OverTheJwk) {
  auto signer = stir::MemorySigner::Generate();
  ASSERT_OK(signer);
  auto jwk = JwkOf((*signer)->key());
  ASSERT_OK(jwk);
  auto eab = ExternalAccountBinding("kid-1", "0123456789abcdef", "https://ca/new-account", *jwk);
  ASSERT_OK(eab);
  auto parsed = ParseFlattenedJws(eab->dump());
  ASSERT_OK(parsed);
  EXPECT_EQ(parsed->header["alg"], "HS256");
  EXPECT_EQ(parsed->header["kid"], "kid-1");
  EXPECT_EQ(parsed->header["url"], "https://ca/new-account");
  EXPECT_EQ(parsed->signature, HmacSha256("0123456789abcdef", parsed->signing_input));
  EXPECT_EQ(Json::parse(parsed->payload), *jwk);
  EXPECT_FALSE(ExternalAccountBinding("kid-1", "", "u", *jwk).ok());
}

TEST(AcmeProblem, DocumentsCarryTypeDetailAndStatus) {
  absl::Status s = Problem("badNonce", "stale");
  EXPECT_EQ(ProblemType(s), "badNonce");
  EXPECT_EQ(ProblemHttpStatus(s), 400);
  Json j = Json::parse(ProblemJson(s));
  EXPECT_EQ(j["type"], "urn:ietf:params:acme:error:badNonce");
  EXPECT_EQ(j["detail"], "stale");
  EXPECT_EQ(j["status"], 400);
  EXPECT_EQ(ProblemHttpStatus(Problem("unauthorized", "x")), 403);
  EXPECT_EQ(ProblemHttpStatus(NotFoundProblem("x")), 404);
  EXPECT_EQ(ProblemType(NotFoundProblem("x")), "malformed");
  EXPECT_EQ(ProblemType(absl::InternalError("x")), "serverInternal");
  Json alg = Json::parse(ProblemJson(Problem("badSignatureAlgorithm", "x")));
  EXPECT_EQ(alg["algorithms"], Json::array({"ES256"}));
}

TEST(AcmeAuthorityToken, ValueIsStandardBase64AndDecodesEitherAlphabet) {
  const std::string der("\x30\x08\xa0\x06\x16\x04\x37\x30\x39\x4a", 10);
  EXPECT_EQ(TnAuthListValue(der), "MAigBhYENzA5Sg==");
  EXPECT_THAT(DecodeTnAuthListValue("MAigBhYENzA5Sg=="), ::shaken::testing::IsOkAndHolds(der));
  EXPECT_THAT(DecodeTnAuthListValue("MAigBhYENzA5Sg"), ::shaken::testing::IsOkAndHolds(der));
  EXPECT_FALSE(DecodeTnAuthListValue("").ok());
  EXPECT_FALSE(DecodeTnAuthListValue("!!!").ok());
}

// A fetcher that serves one body for one URL.
class OneFetcher : public stir::CertificateFetcher {
 public:
  OneFetcher(std::string url, std::string body) : url_(std::move(url)), body_(std::move(body)) {}
  stir::FetchResult Fetch(std::string_view url) const override {
    if (url != url_) return stir::FetchResult::Failure(stir::Reason::kFetchHttpStatus, "404");
    stir::FetchResult r;
    r.body = body_;
    r.http_status = 200;
    return r;
  }

 private:
  std::string url_, body_;
};

TEST(AcmeAuthorityToken, SignedTokenVerifiesAndEachCheckFails) {
  const absl::Time now = absl::FromUnixSeconds(absl::ToUnixSeconds(absl::Now()));
  auto pki = testing::TestPki::Create(now);
  ASSERT_OK(pki);
  // The PA's certificate is the test PKI's intermediate; its root is the anchor.
  const testing::TestCert& pa = (*pki)->intermediate();
  auto pa_signer = stir::MemorySigner::FromKey(stir::EvpPkeyPtr(EVP_PKEY_dup(pa.key.get())));
  ASSERT_OK(pa_signer);
  OneFetcher fetcher("https://pa.test/pa.pem", testing::CertToPem(pa.cert.get()));
  stir::X509StorePtr anchors(X509_STORE_new());
  X509_STORE_add_cert(anchors.get(), (*pki)->root().cert.get());
  auto account = stir::MemorySigner::Generate();
  ASSERT_OK(account);
  auto fp = AccountKeyFingerprint((*account)->key());
  ASSERT_OK(fp);
  const std::string der("\x30\x08\xa0\x06\x16\x04\x37\x30\x39\x4a", 10);
  AuthorityTokenClaims c{der, *fp, false, "lab PA", "", now, now + absl::Minutes(5)};
  auto token = SignAuthorityToken(**pa_signer, "https://pa.test/pa.pem", c);
  ASSERT_OK(token);
  TokenExpectations e{der, *fp, now, anchors.get(), &fetcher};
  auto v = VerifyAuthorityToken(*token, e);
  ASSERT_OK(v);
  EXPECT_EQ(v->iss, "lab PA");
  EXPECT_FALSE(v->jti.empty());

  auto denied = [&](const std::string& t, const TokenExpectations& x, const char* why) {
    auto r = VerifyAuthorityToken(t, x);
    EXPECT_THAT(r.status(),
                ::shaken::testing::StatusIs(absl::StatusCode::kPermissionDenied, HasSubstr(why)));
  };
  TokenExpectations late = e;
  late.now = now + absl::Minutes(6);
  denied(*token, late, "expired");
  TokenExpectations other_fp = e;
  other_fp.fingerprint = "SHA256 00";
  denied(*token, other_fp, "fingerprint");
  TokenExpectations other_tn = e;
  other_tn.tnauthlist_der = std::string("\x30\x08\xa0\x06\x16\x04\x31\x32\x33\x41", 10);
  denied(*token, other_tn, "tkvalue");
  auto forger = stir::MemorySigner::Generate();
  ASSERT_OK(forger);
  auto forged = SignAuthorityToken(**forger, "https://pa.test/pa.pem", c);
  ASSERT_OK(forged);
  denied(*forged, e, "signature does not verify");
  stir::X509StorePtr wrong(X509_STORE_new());
  auto stranger = testing::MakeTestCa("Stranger ROOT", now);
  ASSERT_OK(stranger);
  X509_STORE_add_cert(wrong.get(), stranger->cert.get());
  TokenExpectations untrusted = e;
  untrusted.pa_anchors = wrong.get();
  denied(*token, untrusted, "does not chain");
  denied("a.b", e, "compact JWS");
}

TEST(AcmeStore, NoncesAreUsedOnceAndStateSurvivesReopen) {
  testing::TempDir dir;
  const std::string path = dir.path() + "/acme.db";
  const absl::Time now = absl::Now();
  {
    auto store = Store::Open(path);
    ASSERT_OK(store);
    ASSERT_OK((*store)->AddNonce("n1", now + absl::Minutes(1)));
    ASSERT_OK((*store)->AddNonce("old", now - absl::Seconds(1)));
    EXPECT_THAT((*store)->ConsumeNonce("old", now), ::shaken::testing::IsOkAndHolds(false));
    ASSERT_OK((*store)->Put("order", "o1", {{"status", "ready"}}));
    EXPECT_THAT((*store)->RecordJti("pa", "j1", now + absl::Minutes(5)),
                ::shaken::testing::IsOkAndHolds(true));
    EXPECT_THAT((*store)->RecordSerial("0A", "c1"), ::shaken::testing::IsOkAndHolds(true));
  }
  auto store = Store::Open(path);
  ASSERT_OK(store);
  EXPECT_THAT((*store)->ConsumeNonce("n1", now), ::shaken::testing::IsOkAndHolds(true));
  EXPECT_THAT((*store)->ConsumeNonce("n1", now), ::shaken::testing::IsOkAndHolds(false));
  EXPECT_THAT((*store)->ConsumeNonce("never", now), ::shaken::testing::IsOkAndHolds(false));
  auto order = (*store)->Get("order", "o1");
  ASSERT_OK(order);
  ASSERT_TRUE(order->has_value());
  EXPECT_EQ((**order)["status"], "ready");
  EXPECT_THAT((*store)->RecordJti("pa", "j1", now + absl::Minutes(5)),
              ::shaken::testing::IsOkAndHolds(false));
  EXPECT_THAT((*store)->RecordSerial("0A", "c2"), ::shaken::testing::IsOkAndHolds(false));
  EXPECT_OK((*store)->Prune(now + absl::Minutes(10)));
  EXPECT_THAT((*store)->RecordJti("pa", "j1", now + absl::Minutes(20)),
              ::shaken::testing::IsOkAndHolds(true));  // pruned once it could no longer be used
  EXPECT_FALSE(Store::Open(dir.path() + "/no/such/dir/acme.db").ok());
}

}  // namespace
}  // namespace shaken::acme
