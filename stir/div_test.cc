// div_test.cc: div PASSporTs (RFC 8946): signing (PassportSigner::SignDiv), typing
// (ExtractClaims "div") and the verifier's chain linking (stir/div_chain.h).
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "stir/base64url.h"
#include "stir/identity_header.h"
#include "stir/memory_signer.h"
#include "stir/openssl_util.h"
#include "stir/passport.h"
#include "stir/verifier.h"
#include "tests/testing/fixed_cert_source.h"
#include "tests/testing/status_matchers.h"

namespace shaken::stir {
namespace {

using ::shaken::testing::FixedCertificateSource;
using ::shaken::testing::StatusIs;
using ::testing::HasSubstr;

constexpr char kX5u[] = "https://cert.example.org/sp.pem";
constexpr int64_t kNow = 1700000000;
constexpr char kA[] = "12155550121";  // the caller
constexpr char kB[] = "12155550131";  // the original target
constexpr char kC[] = "12155550141";  // B forwards to C
constexpr char kD[] = "12155550151";  // C forwards to D

class DivTest : public ::testing::Test {
 public:
  void SetUp() override {
    auto s = MemorySigner::Generate();
    ASSERT_OK(s);
    signer_ = *std::move(s);
    certs_.AddKey(kX5u, signer_->key());
    auto ps = PassportSigner::Create(signer_.get(), kX5u, &clock_);
    ASSERT_OK(ps);
    passports_ = *std::move(ps);
  }

  std::string Shaken(std::string orig = kA, std::string dest = kB) {
    auto sp = passports_->Sign({.attest = "A", .orig_tn = orig, .dest_tns = {dest}});
    EXPECT_OK(sp);
    return sp.ok() ? sp->identity : "";
  }
  std::string Div(const std::string& original, std::string dest) {
    auto sp = passports_->SignDiv({.original = original, .dest_tns = {dest}});
    EXPECT_OK(sp);
    return sp.ok() ? sp->identity : "";
  }
  // Forged signs any div payload with the test key (claims the signer would refuse).
  std::string Forged(const Json& payload) {
    std::string h = CanonicalHeader(kPptDiv, kX5u), p;
    EXPECT_OK(AppendCanonicalJson(payload, &p));
    std::string input = Base64UrlEncode(h) + "." + Base64UrlEncode(p);
    auto sig = signer_->SignDigest(Sha256(input), absl::InfiniteFuture());
    EXPECT_OK(sig);
    return BuildIdentityHeader(
        input + "." + Base64UrlEncode(std::string_view(reinterpret_cast<const char*>(sig->data()), 64)),
        kX5u, kPptDiv);
  }
  static Json DivPayload(std::string orig, std::string dest, std::string div) {
    return {{"dest", {{"tn", {dest}}}}, {"div", {{"tn", div}}}, {"iat", kNow},
            {"orig", {{"tn", orig}}}};
  }
  VerifyResult Verify(const std::vector<std::string>& headers, std::string to) {
    auto r = verifier_.Verify(headers, {.from_tn = kA, .to_tns = {to}});
    EXPECT_OK(r);
    return r.ok() ? *std::move(r) : VerifyResult();
  }

  FixedClock clock_{absl::FromUnixSeconds(kNow)};
  FixedCertificateSource certs_;
  std::unique_ptr<MemorySigner> signer_;
  std::unique_ptr<PassportSigner> passports_;
  Verifier verifier_{&certs_, &clock_};
};

Json Segment(std::string_view jws, int n) {
  std::vector<std::string> parts;
  size_t start = 0;
  for (size_t dot; (dot = jws.find('.', start)) != std::string_view::npos; start = dot + 1) {
    parts.emplace_back(jws.substr(start, dot - start));
  }
  parts.emplace_back(jws.substr(start));
  return Json::parse(*Base64UrlDecode(parts.at(n)));
}

TEST_F(DivTest, SignsACanonicalDivPassport) {
  const std::string original = Shaken();
  clock_.Advance(absl::Seconds(5));
  auto sp = passports_->SignDiv(
      {.original = original, .dest_tns = {"+1 (215) 555-0141"}, .hi = "1.2"});
  ASSERT_OK(sp);
  auto header = ParseIdentityHeader(sp->identity);
  ASSERT_OK(header);
  EXPECT_EQ(header->ppt, "div");
  EXPECT_EQ(header->info, kX5u);
  EXPECT_EQ(sp->identity, BuildIdentityHeader(sp->jws, kX5u, "div"));
  EXPECT_EQ(sp->iat, kNow + 5);  // fresh, not the original's
  EXPECT_TRUE(sp->origid.empty());
  const std::string jws = sp->jws;
  const std::string header_b64 = jws.substr(0, jws.find('.'));
  EXPECT_EQ(*Base64UrlDecode(header_b64),
            std::string(R"({"alg":"ES256","ppt":"div","typ":"passport","x5u":")") + kX5u + "\"}");
  const std::string payload_b64 =
      jws.substr(jws.find('.') + 1, jws.rfind('.') - jws.find('.') - 1);
  EXPECT_EQ(*Base64UrlDecode(payload_b64),
            absl::StrCat(R"({"dest":{"tn":["12155550141"]},"div":{"hi":"1.2","tn":"12155550131"},)",
                         R"("iat":)", kNow + 5, R"(,"orig":{"tn":"12155550121"}})"));
  // DIV-6: no attest, no origid.
  Json payload = Segment(jws, 1);
  EXPECT_FALSE(payload.contains("attest"));
  EXPECT_FALSE(payload.contains("origid"));
  auto claims = ExtractClaims(payload, "div");
  ASSERT_OK(claims);
  EXPECT_EQ(claims->div_tn, kB);
  EXPECT_EQ(claims->div_hi, "1.2");
  EXPECT_EQ(claims->orig_tn, kA);
}

TEST_F(DivTest, CanonicalDivPayloadIsTheGenericCanonicalJson) {
  for (std::optional<std::string_view> hi : {std::optional<std::string_view>(),
                                             std::optional<std::string_view>("3.1.2")}) {
    Json j = DivPayload(kA, kC, kB);
    j["dest"]["tn"].push_back(kD);
    if (hi) j["div"]["hi"] = std::string(*hi);
    std::string generic;
    ASSERT_OK(AppendCanonicalJson(j, &generic));
    EXPECT_EQ(CanonicalDivPayload({kC, kD}, kB, hi, kNow, kA), generic);
  }
}

TEST_F(DivTest, DivertsABareJwsOrADivAndPicksTheDivertedTn) {
  auto sp = passports_->Sign({.attest = "B", .orig_tn = kA, .dest_tns = {kB, kC}});
  ASSERT_OK(sp);
  EXPECT_THAT(passports_->SignDiv({.original = sp->jws, .dest_tns = {kD}}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("div_tn is required")));
  EXPECT_THAT(passports_->SignDiv({.original = sp->jws, .dest_tns = {kD}, .div_tn = kD}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("div_tn")));
  auto div = passports_->SignDiv({.original = sp->jws, .dest_tns = {kD}, .div_tn = "+1215555 0141"});
  ASSERT_OK(div);
  EXPECT_EQ(Segment(div->jws, 1)["div"]["tn"], kC);
  // A div of a div: orig still the caller's, div the previous div's dest.
  auto again = passports_->SignDiv({.original = div->identity, .dest_tns = {kB}});
  ASSERT_OK(again);
  EXPECT_EQ(Segment(again->jws, 1)["div"]["tn"], kD);
  EXPECT_EQ(Segment(again->jws, 1)["orig"]["tn"], kA);
}

TEST_F(DivTest, RefusesToDivertAStaleOriginal) {  // DIV-5
  const std::string original = Shaken();
  clock_.Advance(absl::Seconds(61));
  EXPECT_THAT(passports_->SignDiv({.original = original, .dest_tns = {kC}}),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("original: its iat is 61 s in the past")));
  clock_.Advance(absl::Seconds(-122));  // an original from the future is refused as well
  EXPECT_THAT(passports_->SignDiv({.original = original, .dest_tns = {kC}}),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("original")));
  clock_.Advance(absl::Seconds(2));
  EXPECT_OK(passports_->SignDiv({.original = original, .dest_tns = {kC}}));
}

TEST_F(DivTest, RefusesBadFieldsNamingThem) {
  const std::string original = Shaken();
  struct Case {
    DivClaims claims;
    std::string field;
  };
  const std::vector<Case> cases = {
      {{.original = "", .dest_tns = {kC}}, "original"},
      {{.original = "not a passport", .dest_tns = {kC}}, "original"},
      {{.original = "e30.e30.e30;info=<https://x.example/a>", .dest_tns = {kC}}, "original"},
      {{.original = original, .dest_tns = {}}, "dest"},
      {{.original = original, .dest_tns = {"12a"}}, "dest tn #1"},
      {{.original = original, .dest_tns = {kC}, .hi = "1..2"}, "hi"},
      {{.original = original, .dest_tns = {kC}, .hi = ""}, "hi"},
      {{.original = original, .dest_tns = {kC}, .div_tn = "x"}, "div_tn"},
  };
  for (const Case& c : cases) {
    EXPECT_THAT(passports_->SignDiv(c.claims),
                StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr(c.field)))
        << c.field;
  }
}

TEST(IsHistoryInfoIndexTest, Rfc7044Grammar) {
  for (const char* ok : {"1", "1.1", "1.2.13"}) EXPECT_TRUE(IsHistoryInfoIndex(ok)) << ok;
  for (const char* bad : {"", ".", "1.", ".1", "1..2", "1.a", "1 .2", "-1"}) {
    EXPECT_FALSE(IsHistoryInfoIndex(bad)) << bad;
  }
}

TEST(ExtractDivClaimsTest, TypesTheDivClaim) {
  auto reason = [](Json payload) {
    return ReasonOf(ExtractClaims(payload, "div").status(), Reason::kPassed);
  };
  Json good = {{"dest", {{"tn", {kC}}}}, {"div", {{"tn", kB}}}, {"iat", kNow},
               {"orig", {{"tn", kA}}}};
  EXPECT_EQ(reason(good), Reason::kPassed);
  Json uri = good;
  uri["div"] = {{"uri", "sip:bob@example.com"}, {"hi", "1"}};
  auto claims = ExtractClaims(uri, "div");
  ASSERT_OK(claims);
  EXPECT_EQ(claims->div_uri, "sip:bob@example.com");
  Json j = good;
  j.erase("div");
  EXPECT_EQ(reason(j), Reason::kClaimMissing);
  for (Json div : {Json("12155550131"), Json::object(), Json{{"tn", kB}, {"uri", "sip:b@x"}},
                   Json{{"tn", 12155550131}}, Json{{"tn", "+12155550131"}},
                   Json{{"tn", kB}, {"hi", "x"}}, Json{{"tn", kB}, {"foo", "1"}}}) {
    j = good;
    j["div"] = div;
    EXPECT_EQ(reason(j), Reason::kClaimInvalid) << div.dump();
  }
  j = good;
  j["orig"] = {{"uri", "sip:a@x"}};
  EXPECT_EQ(reason(j), Reason::kClaimMissing);
}

TEST_F(DivTest, AValidChainPassesAndReportsEachDivertingIdentity) {
  const std::string shaken = Shaken();
  const std::string div = Div(shaken, kC);
  for (const auto& headers : {std::vector<std::string>{shaken, div},
                              std::vector<std::string>{div, shaken}}) {
    VerifyResult r = Verify(headers, kC);
    ASSERT_EQ(r.headers.size(), 2u);
    EXPECT_TRUE(r.overall.passed) << r.overall.detail;
    EXPECT_EQ(r.overall.ppt, "shaken");  // the caller's identity speaks for the call
    EXPECT_EQ(r.overall.attest, "A");
    for (const Verdict& v : r.headers) EXPECT_TRUE(v.passed) << v.ppt << ": " << v.detail;
    ASSERT_EQ(r.divs.size(), 1u);
    const size_t div_index = headers[0] == div ? 0 : 1;
    EXPECT_EQ(r.divs[0].header, div_index);
    EXPECT_TRUE(r.divs[0].passed);
    EXPECT_EQ(r.divs[0].div_tn, kB);
    EXPECT_EQ(r.divs[0].diverts, 1 - div_index);
    EXPECT_EQ(r.headers[div_index].ppt, "div");
    EXPECT_EQ(r.headers[div_index].div_tn, kB);
    EXPECT_EQ(r.headers[div_index].dest_tns, std::vector<std::string>{kC});
  }
  // Two hops, B -> C -> D, and the asynchronous path agrees.
  const std::string div2 = Div(div, kD);
  VerifyResult r = Verify({shaken, div, div2}, kD);
  EXPECT_TRUE(r.overall.passed) << r.overall.detail;
  ASSERT_EQ(r.divs.size(), 2u);
  EXPECT_TRUE(r.divs[1].passed);
  EXPECT_EQ(r.divs[1].diverts, 1u);
  std::vector<std::string_view> views = {shaken, div, div2};
  std::optional<absl::StatusOr<VerifyResult>> async;
  verifier_.VerifyAsync(views, {.from_tn = kA, .to_tns = {kD}}, absl::InfiniteFuture(),
                        [&](absl::StatusOr<VerifyResult> res) { async = std::move(res); });
  ASSERT_TRUE(async.has_value());
  ASSERT_OK(*async);
  EXPECT_TRUE((*async)->overall.passed);
  EXPECT_EQ((*async)->divs.size(), 2u);
}

TEST_F(DivTest, ADivWhoseDivTnIsNoDestIsUnlinked) {
  const std::string shaken = Shaken();
  const std::string div = Forged(DivPayload(kA, kC, kD));  // diverts D, but the call went to B
  VerifyResult r = Verify({shaken, div}, kC);
  EXPECT_FALSE(r.overall.passed);
  EXPECT_EQ(r.headers[1].reason, Reason::kDivUnlinked) << r.headers[1].detail;
  EXPECT_EQ(r.headers[1].sip_code, 438);
  EXPECT_EQ(r.headers[0].reason, Reason::kDestMismatch);  // B is neither the To nor diverted
  ASSERT_EQ(r.divs.size(), 1u);
  EXPECT_FALSE(r.divs[0].passed);
  EXPECT_EQ(r.divs[0].reason, Reason::kDivUnlinked);
  EXPECT_FALSE(r.divs[0].diverts.has_value());
  // A div with no shaken PASSporT to divert.
  r = Verify({Div(shaken, kC)}, kC);
  EXPECT_FALSE(r.overall.passed);
  EXPECT_EQ(r.overall.reason, Reason::kDivUnlinked);
}

TEST_F(DivTest, ADivWithAnotherOrigIsRefused) {
  const std::string shaken = Shaken();
  const std::string div = Forged(DivPayload("12155550199", kC, kB));
  auto r = verifier_.Verify({shaken, div}, {.to_tns = {kC}});  // From unchecked: orig alone
  ASSERT_OK(r);
  EXPECT_FALSE(r->overall.passed);
  EXPECT_EQ(r->headers[1].reason, Reason::kDivOrigMismatch) << r->headers[1].detail;
  EXPECT_THAT(r->headers[1].detail, HasSubstr("Identity header #1"));
}

TEST_F(DivTest, TheToMustBeTheLastDivsDest) {
  const std::string shaken = Shaken();
  const std::string div = Div(shaken, kC);
  VerifyResult r = Verify({shaken, div}, kD);
  EXPECT_FALSE(r.overall.passed);
  EXPECT_EQ(r.headers[1].reason, Reason::kDestMismatch);
  EXPECT_EQ(r.headers[0].reason, Reason::kDestMismatch);
  // A call to B that carries B's shaken and a stray div still passes on the shaken one.
  r = Verify({shaken, div}, kB);
  EXPECT_TRUE(r.overall.passed);
  EXPECT_EQ(r.headers[1].reason, Reason::kDestMismatch);
}

TEST_F(DivTest, EachDivIsVerifiedAsAShakenOne) {
  const std::string shaken = Shaken();
  Json stale = DivPayload(kA, kC, kB);
  stale["iat"] = kNow - 100;
  VerifyResult r = Verify({shaken, Forged(stale)}, kC);
  EXPECT_EQ(r.headers[1].reason, Reason::kIatStale);
  EXPECT_FALSE(r.overall.passed);
  std::string div = Div(shaken, kC);
  char& c = div[div.find(';') - 3];  // in the signature
  c = c == 'A' ? 'B' : 'A';
  r = Verify({shaken, div}, kC);
  EXPECT_EQ(r.headers[1].reason, Reason::kSignatureInvalid);
  EXPECT_FALSE(r.divs.at(0).passed);
}

TEST_F(DivTest, DivsThatDivertEachOtherAreUnlinked) {
  const std::string x = Forged(DivPayload(kA, kC, kB));
  const std::string y = Forged(DivPayload(kA, kB, kC));
  VerifyResult r = Verify({x, y}, kC);
  EXPECT_FALSE(r.overall.passed);
  EXPECT_EQ(r.headers[0].reason, Reason::kDivUnlinked);
  EXPECT_EQ(r.headers[1].reason, Reason::kDivUnlinked);
}

TEST_F(DivTest, UnsupportedPptHeadersStayIgnored) {
  const std::string shaken = Shaken();
  const std::string div = Div(shaken, kC);
  const std::string rph = shaken.substr(0, shaken.find(';')) + ";info=<" + kX5u + ">;ppt=div-o";
  VerifyResult r = Verify({rph, shaken, div}, kC);
  EXPECT_TRUE(r.overall.passed) << r.overall.detail;
  EXPECT_EQ(r.headers[0].reason, Reason::kPptUnsupported);
  EXPECT_TRUE(r.headers[0].ppt_not_supported);
  EXPECT_EQ(r.divs.size(), 1u);
}

}  // namespace
}  // namespace shaken::stir
