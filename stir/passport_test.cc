#include "stir/passport.h"

#include <fstream>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "stir/base64url.h"
#include "stir/identity_header.h"
#include "stir/memory_signer.h"
#include "stir/openssl_util.h"
#include "stir/tn.h"
#include "stir/verdict.h"
#include "tests/testing/source_path.h"
#include "tests/testing/status_matchers.h"

namespace shaken::stir {
namespace {

using ::shaken::testing::IsOk;
using ::shaken::testing::SourcePath;
using ::shaken::testing::StatusIs;
using ::testing::HasSubstr;

Json Vectors() {
  std::ifstream in(SourcePath("conformance/vectors/rfc_vectors.json"));
  return Json::parse(in);
}

std::string K1(const char* which) {
  return *ReadFile(SourcePath(std::string("conformance/vectors/k1_") + which + ".pem"));
}

Reason ReasonOfResult(const absl::Status& s) { return ReasonOf(s, Reason::kPassed); }

std::string B64(std::string_view s) { return Base64UrlEncode(s); }

TEST(PassportVectorsTest, V1CanonicalizationReproducesRfc8225AppendixA) {
  Json v1 = Vectors()["V1"];
  std::string header, payload;
  ASSERT_OK(AppendCanonicalJson(Json::parse(v1["header_json"].get<std::string>()), &header));
  ASSERT_OK(AppendCanonicalJson(Json::parse(v1["payload_json"].get<std::string>()), &payload));
  EXPECT_EQ(header, v1["header_json"]);
  EXPECT_EQ(B64(header), v1["header_b64"]);
  EXPECT_EQ(B64(payload), v1["payload_b64"]);
}

TEST(PassportVectorsTest, V5CanonicalizesToV4) {
  // RFC 8588 §6 prints the header in another order; canonical JSON sorts it (SH-4).
  Json vs = Vectors();
  std::string header;
  ASSERT_OK(AppendCanonicalJson(Json::parse(vs["V5"]["header_json"].get<std::string>()), &header));
  EXPECT_EQ(header, vs["V4"]["header_json"]);
}

TEST(PassportVectorsTest, SignerReproducesV4SigningInputAndSignatureVerifies) {
  Json v4 = Vectors()["V4"];
  auto signer = MemorySigner::FromPem(K1("private"));
  ASSERT_OK(signer);
  FixedClock clock(absl::FromUnixSeconds(v4["iat"].get<int64_t>()));
  auto ps = PassportSigner::Create(signer->get(), v4["x5u"], &clock);
  ASSERT_OK(ps);
  ShakenClaims claims{.attest = "A",
                      .orig_tn = v4["orig"],
                      .dest_tns = {v4["dest"]},
                      .iat = v4["iat"].get<int64_t>(),
                      .origid = v4["origid"].get<std::string>()};
  auto signed_passport = (*ps)->Sign(claims);
  ASSERT_OK(signed_passport);

  // The first two segments are deterministic; ECDSA signatures are not (no RFC 6979 here).
  std::string expected = v4["identity"];
  std::string expected_input = expected.substr(0, expected.rfind('.', expected.find(';')));
  std::string got_input = signed_passport->jws.substr(0, signed_passport->jws.rfind('.'));
  EXPECT_EQ(got_input, expected_input);
  EXPECT_EQ(B64(std::string(v4["payload_json"])), got_input.substr(got_input.find('.') + 1));

  auto decoded = DecodePassport(signed_passport->jws);
  ASSERT_OK(decoded);
  auto pub = ReadPublicKeyPem(K1("public"));
  ASSERT_OK(pub);
  ASSERT_EQ(decoded->signature.size(), 64u);
  Es256Signature sig;
  std::copy(decoded->signature.begin(), decoded->signature.end(), sig.begin());
  EXPECT_OK(VerifyEs256(pub->get(), Sha256(decoded->signing_input), sig));

  // The Identity header is the canonical full form.
  EXPECT_EQ(signed_passport->identity,
            signed_passport->jws + ";info=<" + std::string(v4["x5u"]) + ">;alg=ES256;ppt=shaken");
}

TEST(PassportVectorsTest, V4PublishedSignatureVerifiesWithK1) {
  Json v4 = Vectors()["V4"];
  auto header = ParseIdentityHeader(v4["identity"].get<std::string>());
  ASSERT_OK(header);
  auto decoded = DecodePassport(header->digest);
  ASSERT_OK(decoded);
  auto pub = ReadPublicKeyPem(K1("public"));
  ASSERT_OK(pub);
  Es256Signature sig;
  ASSERT_EQ(decoded->signature.size(), 64u);
  std::copy(decoded->signature.begin(), decoded->signature.end(), sig.begin());
  EXPECT_OK(VerifyEs256(pub->get(), Sha256(decoded->signing_input), sig));
  sig[10] ^= 1;
  EXPECT_FALSE(VerifyEs256(pub->get(), Sha256(decoded->signing_input), sig).ok());
}

TEST(PassportVectorsTest, V2AndV3SignaturesVerifyButStringIatIsRejected) {
  auto pub = ReadPublicKeyPem(K1("public"));
  ASSERT_OK(pub);
  for (const char* name : {"V2", "V3"}) {
    auto decoded = DecodePassport(Vectors()[name]["jws"].get<std::string>());
    ASSERT_OK(decoded) << name;
    Es256Signature sig;
    ASSERT_EQ(decoded->signature.size(), 64u);
    std::copy(decoded->signature.begin(), decoded->signature.end(), sig.begin());
    // V3 is non-canonical JSON: it verifies only because the received bytes are hashed (PP-5).
    EXPECT_OK(VerifyEs256(pub->get(), Sha256(decoded->signing_input), sig)) << name;
    auto claims = ExtractClaims(decoded->payload, "shaken");
    EXPECT_EQ(ReasonOfResult(claims.status()), Reason::kClaimInvalid) << name;
    EXPECT_THAT(claims.status().message(), HasSubstr("integer"));
  }
}

std::string Jws(std::string_view header, std::string_view payload, std::string_view sig = "sig") {
  return B64(header) + "." + B64(payload) + "." + B64(sig);
}

constexpr char kHeader[] =
    R"({"alg":"ES256","ppt":"shaken","typ":"passport","x5u":"https://x.example/c.pem"})";
constexpr char kPayload[] =
    R"({"attest":"A","dest":{"tn":["12155550131"]},"iat":1443208345,"orig":{"tn":"12155550121"},"origid":"123e4567-e89b-12d3-a456-426655440000"})";

TEST(DecodePassportTest, DecodesWellFormed) {
  auto d = DecodePassport(Jws(kHeader, kPayload));
  ASSERT_OK(d);
  EXPECT_EQ(d->header.alg, "ES256");
  EXPECT_EQ(d->header.ppt, "shaken");
  EXPECT_EQ(d->header.typ, "passport");
  EXPECT_EQ(d->header.x5u, "https://x.example/c.pem");
  EXPECT_EQ(d->signature, "sig");
  EXPECT_EQ(d->signing_input, B64(kHeader) + "." + B64(kPayload));
}

TEST(DecodePassportTest, RecognizesCompactForm) {
  EXPECT_EQ(ReasonOfResult(DecodePassport("..c2ln").status()), Reason::kCompactForm);
}

TEST(DecodePassportTest, RejectsMalformed) {
  std::string good = Jws(kHeader, kPayload);
  std::vector<std::string> bad = {
      B64(kHeader) + "." + B64(kPayload),                       // two segments
      good + ".x",                                              // four
      "." + B64(kPayload) + ".c2ln",                            // empty header
      B64(kHeader) + "..c2ln",                                  // empty payload
      B64(kHeader) + "." + B64(kPayload) + ".",                 // empty signature
      B64(kHeader) + "=." + B64(kPayload) + ".c2ln",            // padding
      B64(kHeader) + "." + B64(kPayload) + ".c2l+",             // base64, not base64url
      B64(kHeader) + "." + B64(kPayload) + ".c2R",              // non-zero trailing bits
      Jws(R"({"alg":"ES256","alg":"none"})", kPayload),         // duplicate header member
      Jws(kHeader, R"({"iat":1,"iat":2})"),                     // duplicate claim
      Jws(R"({"alg":256})", kPayload),                          // non-string header member
      Jws("[]", kPayload),                                      // header not an object
      Jws(kHeader, "not json"),
      Jws(kHeader, std::string(kMaxPassportBytes, ' ')),        // oversize
  };
  for (size_t i = 0; i < bad.size(); ++i) {
    auto d = DecodePassport(bad[i]);
    EXPECT_FALSE(d.ok()) << i;
    EXPECT_EQ(ReasonOfResult(d.status()), Reason::kPassportMalformed) << i << ": " << d.status();
  }
}

TEST(DecodePassportTest, CritNamingAnUnknownExtensionIsRefused) {
  auto d = DecodePassport(Jws(
      R"({"alg":"ES256","crit":["exp"],"exp":1,"ppt":"shaken","typ":"passport","x5u":"https://x.example/c.pem"})",
      kPayload));
  EXPECT_EQ(ReasonOfResult(d.status()), Reason::kCritUnsupported) << d.status();
  EXPECT_EQ(ReasonSipCode(Reason::kCritUnsupported), 438);
  // RFC 7515 §4.1.11: naming a JWS-defined parameter is not allowed either.
  d = DecodePassport(Jws(
      R"({"alg":"ES256","crit":["alg"],"ppt":"shaken","typ":"passport","x5u":"https://x.example/c.pem"})",
      kPayload));
  EXPECT_EQ(ReasonOfResult(d.status()), Reason::kCritUnsupported) << d.status();
}

TEST(DecodePassportTest, CritNamingPptIsAccepted) {
  auto d = DecodePassport(Jws(
      R"({"alg":"ES256","crit":["ppt"],"ppt":"shaken","typ":"passport","x5u":"https://x.example/c.pem"})",
      kPayload));
  EXPECT_OK(d);
}

TEST(DecodePassportTest, MalformedCritIsRefused) {
  const std::vector<std::string> headers = {
      R"({"alg":"ES256","crit":[],"ppt":"shaken"})",              // empty
      R"({"alg":"ES256","crit":"ppt","ppt":"shaken"})",           // not an array
      R"({"alg":"ES256","crit":[1],"ppt":"shaken"})",             // not strings
      R"({"alg":"ES256","crit":["ppt",null],"ppt":"shaken"})",
      R"({"alg":"ES256","crit":["ppt"]})",                        // names an absent member
      R"({"alg":"ES256","crit":["crit"],"ppt":"shaken"})",        // names itself
      R"({"alg":"ES256","crit":{"ppt":1},"ppt":"shaken"})",       // an object
  };
  for (const std::string& h : headers) {
    auto d = DecodePassport(Jws(h, kPayload));
    EXPECT_EQ(ReasonOfResult(d.status()), Reason::kPassportMalformed) << h << ": " << d.status();
  }
}

TEST(ExtractClaimsTest, TypesShakenClaims) {
  auto c = ExtractClaims(Json::parse(kPayload), "shaken");
  ASSERT_OK(c);
  EXPECT_EQ(c->attest, "A");
  EXPECT_EQ(c->iat, 1443208345);
  EXPECT_EQ(c->orig_tn, "12155550121");
  EXPECT_EQ(c->dest_tns, std::vector<std::string>{"12155550131"});
  EXPECT_EQ(c->origid, "123e4567-e89b-12d3-a456-426655440000");
  EXPECT_TRUE(c->other.empty());
}

TEST(ExtractClaimsTest, KeepsOtherClaimsForFuturePpts) {
  Json p = Json::parse(kPayload);
  p["x-future"] = {{"nam", "Alice"}};
  auto c = ExtractClaims(p, "shaken");
  ASSERT_OK(c);
  EXPECT_EQ(c->other["x-future"]["nam"], "Alice");
}

TEST(ExtractClaimsTest, EveryRejection) {
  struct Case {
    const char* name;
    std::function<void(Json&)> mutate;
    Reason reason;
  };
  std::vector<Case> cases = {
      {"no iat", [](Json& j) { j.erase("iat"); }, Reason::kClaimMissing},
      {"no orig", [](Json& j) { j.erase("orig"); }, Reason::kClaimMissing},
      {"no dest", [](Json& j) { j.erase("dest"); }, Reason::kClaimMissing},
      {"no attest", [](Json& j) { j.erase("attest"); }, Reason::kClaimMissing},
      {"no origid", [](Json& j) { j.erase("origid"); }, Reason::kClaimMissing},
      {"string iat", [](Json& j) { j["iat"] = "1443208345"; }, Reason::kClaimInvalid},
      {"float iat", [](Json& j) { j["iat"] = 1443208345.5; }, Reason::kClaimInvalid},
      {"negative iat", [](Json& j) { j["iat"] = -1; }, Reason::kClaimInvalid},
      {"orig string", [](Json& j) { j["orig"] = "12155550121"; }, Reason::kClaimInvalid},
      {"orig tn+uri", [](Json& j) { j["orig"]["uri"] = "sip:a@b"; }, Reason::kClaimInvalid},
      {"orig tn number", [](Json& j) { j["orig"]["tn"] = 12155550121; }, Reason::kClaimInvalid},
      {"orig uri only", [](Json& j) { j["orig"] = {{"uri", "sip:a@b"}}; }, Reason::kClaimMissing},
      {"dest tn string", [](Json& j) { j["dest"]["tn"] = "12155550131"; }, Reason::kClaimInvalid},
      {"dest tn empty", [](Json& j) { j["dest"]["tn"] = Json::array(); }, Reason::kClaimInvalid},
      {"dest other", [](Json& j) { j["dest"]["x"] = Json::array({"1"}); }, Reason::kClaimInvalid},
      {"dest uri only", [](Json& j) { j["dest"] = {{"uri", {"sip:b@c"}}}; }, Reason::kClaimMissing},
      {"attest D", [](Json& j) { j["attest"] = "D"; }, Reason::kAttestInvalid},
      {"attest a", [](Json& j) { j["attest"] = "a"; }, Reason::kAttestInvalid},
      {"attest number", [](Json& j) { j["attest"] = 1; }, Reason::kClaimInvalid},
      {"origid not uuid", [](Json& j) { j["origid"] = "call-1"; }, Reason::kOrigidInvalid},
      {"orig tn with +", [](Json& j) { j["orig"]["tn"] = "+12155550121"; }, Reason::kClaimInvalid},
      {"dest tn with -", [](Json& j) { j["dest"]["tn"] = {"1-215-555-0131"}; },
       Reason::kClaimInvalid},
  };
  for (const Case& c : cases) {
    Json p = Json::parse(kPayload);
    c.mutate(p);
    auto claims = ExtractClaims(p, "shaken");
    EXPECT_EQ(ReasonOfResult(claims.status()), c.reason) << c.name << ": " << claims.status();
  }
}

TEST(ExtractClaimsTest, OtherPptsAreNotYetSupported) {
  EXPECT_EQ(ReasonOfResult(ExtractClaims(Json::parse(kPayload), "div-o").status()),
            Reason::kPptUnsupported);
}

TEST(CanonicalPayloadTest, FastPathMatchesGenericCanonicalJson) {
  std::vector<std::string> dest = {"12155550131", "12155550132", "*67#"};
  std::string fast = CanonicalShakenPayload("B", dest, 1700000000, "12155550121",
                                            "123e4567-e89b-12d3-a456-426655440000");
  Json j = {{"origid", "123e4567-e89b-12d3-a456-426655440000"},
            {"orig", {{"tn", "12155550121"}}},
            {"iat", 1700000000},
            {"dest", {{"tn", dest}}},
            {"attest", "B"}};
  std::string generic;
  ASSERT_OK(AppendCanonicalJson(j, &generic));
  EXPECT_EQ(fast, generic);
}

class PassportSignerTest : public ::testing::Test {
 protected:
  void SetUp() override {
    auto s = MemorySigner::Generate();
    ASSERT_OK(s);
    signer_ = *std::move(s);
    auto ps = PassportSigner::Create(signer_.get(), "https://cert.example.org/sp.pem", &clock_);
    ASSERT_OK(ps);
    ps_ = *std::move(ps);
  }
  ShakenClaims Claims() {
    return ShakenClaims{.attest = "A", .orig_tn = "+1 215-555-0121", .dest_tns = {"12155550131"}};
  }
  FixedClock clock_{absl::FromUnixSeconds(1700000000)};
  std::unique_ptr<MemorySigner> signer_;
  std::unique_ptr<PassportSigner> ps_;
};

TEST_F(PassportSignerTest, FillsDefaultsAndCanonicalizes) {
  auto sp = ps_->Sign(Claims());
  ASSERT_OK(sp);
  EXPECT_EQ(sp->iat, 1700000000);
  EXPECT_TRUE(IsUuid(sp->origid));
  auto d = DecodePassport(sp->jws);
  ASSERT_OK(d);
  EXPECT_EQ(d->payload["orig"]["tn"], "12155550121");
  EXPECT_EQ(d->payload["origid"], sp->origid);
  auto pub = signer_->key();
  Es256Signature sig;
  std::copy(d->signature.begin(), d->signature.end(), sig.begin());
  EXPECT_OK(VerifyEs256(pub, Sha256(d->signing_input), sig));
}

TEST_F(PassportSignerTest, RejectsBadClaimsWithClearErrors) {
  ShakenClaims c = Claims();
  c.attest = "D";
  EXPECT_THAT(ps_->Sign(c), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("A, B or C")));
  c = Claims();
  c.orig_tn = "12a";
  EXPECT_THAT(ps_->Sign(c), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("orig tn")));
  c = Claims();
  c.dest_tns = {};
  EXPECT_THAT(ps_->Sign(c), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("dest")));
  c = Claims();
  c.dest_tns = {"1", "x"};
  EXPECT_THAT(ps_->Sign(c), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("dest tn #2")));
  c = Claims();
  c.dest_tns.assign(kMaxDestTns + 1, "1");
  EXPECT_THAT(ps_->Sign(c), StatusIs(absl::StatusCode::kInvalidArgument));
  c = Claims();
  c.origid = "not-a-uuid";
  EXPECT_THAT(ps_->Sign(c), StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("UUID")));
  c = Claims();
  c.iat = 1700000000 - 120;
  EXPECT_THAT(ps_->Sign(c),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       HasSubstr("is 120 s in the past; the signing policy allows 60 s")));
  c.iat = 1700000000 + 30;
  EXPECT_OK(ps_->Sign(c));
}

TEST(PassportSignerCreateTest, ValidatesX5u) {
  auto s = MemorySigner::Generate();
  ASSERT_OK(s);
  FixedClock clock(absl::Now());
  for (const char* bad : {"http://x.example/c.pem", "https://", "https://u:p@x.example/c",
                          "https://x.example/c?q=1", "https://x.example/c#f",
                          "https://x.example/a b", "https://x.example/<c>"}) {
    EXPECT_THAT(PassportSigner::Create(s->get(), bad, &clock),
                StatusIs(absl::StatusCode::kInvalidArgument))
        << bad;
  }
  EXPECT_THAT(PassportSigner::Create(s->get(), "https://x.example:8443/c.pem", &clock), IsOk());
}

// ATIS-1000080 CE-12: the signing x5u passes the fetcher's own URL policy (CheckX5uUrl), so a URL
// shakend would sign with is never one its verifier refuses (436 x5u_not_allowed).
TEST(ValidateX5uForSigningTest, SharesTheFetchersPolicy) {
  absl::Status st = ValidateX5uForSigning("https://cert.example.org:9443/sp.pem");
  EXPECT_THAT(st, StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not 9443")));
  EXPECT_THAT(st.message(), HasSubstr("Publish the certificate chain at"));
  EXPECT_FALSE(CheckX5uUrl("https://cert.example.org:9443/sp.pem", X5uFetcherOptions()).ok());
  for (const char* good : {"https://cert.example.org/sp.pem", "https://cert.example.org:443/sp.pem",
                           "https://cert.example.org:8443/sp.pem"}) {
    EXPECT_OK(ValidateX5uForSigning(good)) << good;
    EXPECT_TRUE(CheckX5uUrl(good, X5uFetcherOptions()).ok()) << good;
  }
  // Whatever the fetcher refuses, signing refuses; signing adds the Identity header's needs.
  for (const char* url : {"https://cert.example.org:0/a.pem", "https://cert.example.org:80/a.pem",
                          "https://[::1]:9443/a.pem", "ftp://cert.example.org/a.pem",
                          "https:///cert.example.org/a.pem", "https://u@cert.example.org/a.pem"}) {
    EXPECT_FALSE(CheckX5uUrl(url, X5uFetcherOptions()).ok()) << url;
    EXPECT_THAT(ValidateX5uForSigning(url), StatusIs(absl::StatusCode::kInvalidArgument)) << url;
  }
  EXPECT_THAT(ValidateX5uForSigning("https://cert.example.org/\"a\".pem"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("info=<")));
  // A lab policy relaxes both sides alike.
  X5uFetcherOptions lab;
  lab.allow_any_port = true;
  EXPECT_OK(ValidateX5uForSigning("https://127.0.0.1:9443/sp.pem", lab));
  auto s = MemorySigner::Generate();
  ASSERT_OK(s);
  FixedClock clock(absl::Now());
  EXPECT_THAT(PassportSigner::Create(s->get(), "https://cert.example.org:9443/sp.pem", &clock),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("9443")));
  EXPECT_OK(PassportSigner::Create(s->get(), "https://127.0.0.1:9443/sp.pem", &clock,
                                   {.x5u_policy = lab}));
}

TEST(MemorySignerTest, RejectsNonP256Keys) {
  EvpPkeyPtr p384(EVP_EC_gen("P-384"));
  EXPECT_THAT(MemorySigner::FromKey(std::move(p384)),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("P-256")));
  EXPECT_THAT(MemorySigner::FromPem("garbage"), StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace shaken::stir
