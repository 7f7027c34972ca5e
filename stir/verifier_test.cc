#include "stir/verifier.h"

#include <functional>
#include <limits>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "stir/base64url.h"
#include "stir/identity_header.h"
#include "stir/memory_signer.h"
#include "stir/openssl_util.h"
#include "stir/passport.h"
#include "tests/testing/fixed_cert_source.h"
#include "tests/testing/status_matchers.h"

namespace shaken::stir {
namespace {

using ::shaken::testing::FixedCertificateSource;
using ::shaken::testing::StatusIs;
using ::testing::HasSubstr;

constexpr char kX5u[] = "https://cert.example.org/sp.pem";
constexpr int64_t kNow = 1700000000;
constexpr char kOrig[] = "12155550121";
constexpr char kDest[] = "12155550131";
constexpr char kOrigid[] = "123e4567-e89b-12d3-a456-426655440000";

class VerifierTest : public ::testing::Test {
 public:
  void SetUp() override {
    auto s = MemorySigner::Generate();
    ASSERT_OK(s);
    signer_ = *std::move(s);
    certs_.AddKey(kX5u, signer_->key());
  }

  Json Header() {
    return {{"alg", "ES256"}, {"ppt", "shaken"}, {"typ", "passport"}, {"x5u", kX5u}};
  }
  Json Payload() {
    return {{"attest", "A"},
            {"dest", {{"tn", {kDest}}}},
            {"iat", kNow},
            {"orig", {{"tn", kOrig}}},
            {"origid", kOrigid}};
  }
  // Sign signs any header and payload with the test key, so each rejection below is caused by
  // the check under test and not by a bad signature.
  std::string Sign(const Json& header, const Json& payload, const Signer* signer = nullptr) {
    std::string h, p;
    EXPECT_OK(AppendCanonicalJson(header, &h));
    EXPECT_OK(AppendCanonicalJson(payload, &p));
    std::string input = Base64UrlEncode(h) + "." + Base64UrlEncode(p);
    auto sig = (signer ? signer : signer_.get())->SignDigest(Sha256(input));
    EXPECT_OK(sig);
    return input + "." +
           Base64UrlEncode(std::string_view(reinterpret_cast<const char*>(sig->data()), 64));
  }
  std::string Identity(const std::string& jws, std::string params = "") {
    if (params.empty()) params = std::string(";info=<") + kX5u + ">;alg=ES256;ppt=shaken";
    return jws + params;
  }
  Verdict VerifyOne(const std::string& identity, std::optional<absl::Time> date = {}) {
    return verifier_.VerifyOne(identity, kOrig, {kDest}, date);
  }

  FixedClock clock_{absl::FromUnixSeconds(kNow)};
  FixedCertificateSource certs_;
  std::unique_ptr<MemorySigner> signer_;
  Verifier verifier_{&certs_, &clock_};
};

TEST_F(VerifierTest, PassesAGoodPassportAndReportsItsContents) {
  Verdict v = VerifyOne(Identity(Sign(Header(), Payload())));
  EXPECT_TRUE(v.passed) << v.detail;
  EXPECT_EQ(v.reason, Reason::kPassed);
  EXPECT_EQ(v.verstat, Verstat::kPassed);
  EXPECT_EQ(VerstatName(v.verstat), "TN-Validation-Passed");
  EXPECT_EQ(v.sip_code, 0);
  EXPECT_EQ(v.attest, "A");
  EXPECT_EQ(v.origid, kOrigid);
  EXPECT_EQ(v.orig_tn, kOrig);
  EXPECT_EQ(v.dest_tns, std::vector<std::string>{kDest});
  EXPECT_EQ(v.iat, kNow);
  EXPECT_EQ(v.x5u, kX5u);
  EXPECT_EQ(v.cert_spc, "709J");
}

TEST_F(VerifierTest, PassesWhatPassportSignerMakes) {
  auto ps = PassportSigner::Create(signer_.get(), kX5u, &clock_);
  ASSERT_OK(ps);
  auto sp = (*ps)->Sign({.attest = "B", .orig_tn = "+1-215-555-0121", .dest_tns = {kDest}});
  ASSERT_OK(sp);
  auto result = verifier_.Verify({sp->identity}, {.from_tn = "+1 (215) 555-0121",
                                                  .to_tns = {"1-215-555-0131"}});
  ASSERT_OK(result);
  EXPECT_TRUE(result->overall.passed) << result->overall.detail;
  EXPECT_EQ(result->overall.attest, "B");
}

TEST_F(VerifierTest, AcceptsQuotedPptAndAnyParameterOrder) {
  std::string jws = Sign(Header(), Payload());
  EXPECT_TRUE(VerifyOne(jws + ";ppt=\"shaken\";alg=ES256;info=<" + kX5u + ">").passed);
  EXPECT_TRUE(VerifyOne(jws + "; INFO=<" + kX5u + ">").passed);
}

struct RejectionCase {
  const char* name;
  std::function<std::string(VerifierTest&)> identity;
  Reason reason;
  int sip_code;
  Verstat verstat;
};

class VerifierRejectionTest : public VerifierTest,
                              public ::testing::WithParamInterface<RejectionCase> {};

TEST_P(VerifierRejectionTest, RejectsWithTheRightCode) {
  const RejectionCase& c = GetParam();
  Verdict v = VerifyOne(c.identity(*this));
  EXPECT_FALSE(v.passed);
  EXPECT_EQ(ReasonName(v.reason), ReasonName(c.reason)) << v.detail;
  EXPECT_EQ(v.sip_code, c.sip_code);
  EXPECT_EQ(v.verstat, c.verstat);
  EXPECT_FALSE(v.detail.empty());
  EXPECT_EQ(v.sip_reason, ReasonPhrase(c.reason));
}

Json With(Json j, const std::string& key, Json value) {
  j[key] = std::move(value);
  return j;
}
Json Without(Json j, const std::string& key) {
  j.erase(key);
  return j;
}

constexpr Verstat kNo = Verstat::kNoValidation;
constexpr Verstat kFail = Verstat::kFailed;

INSTANTIATE_TEST_SUITE_P(
    AllChecks, VerifierRejectionTest,
    ::testing::Values(
        RejectionCase{"garbage", [](VerifierTest&) { return std::string("%%%"); },
                      Reason::kIdentityMalformed, 438, kNo},
        RejectionCase{"compact_form",
                      [](VerifierTest& t) {
                        std::string jws = t.Sign(t.Header(), t.Payload());
                        return t.Identity(".." + jws.substr(jws.rfind('.') + 1));
                      },
                      Reason::kCompactForm, 438, kNo},
        RejectionCase{"identity_ppt_div_o",
                      [](VerifierTest& t) {
                        return t.Sign(t.Header(), t.Payload()) + ";info=<" + kX5u + ">;ppt=div-o";
                      },
                      Reason::kPptUnsupported, 438, kNo},
        RejectionCase{"identity_ppt_div_over_shaken",
                      [](VerifierTest& t) {
                        return t.Sign(t.Header(), t.Payload()) + ";info=<" + kX5u + ">;ppt=div";
                      },
                      Reason::kPptMismatch, 438, kNo},
        RejectionCase{"no_info",
                      [](VerifierTest& t) {
                        return t.Sign(t.Header(), t.Payload()) + ";alg=ES256;ppt=shaken";
                      },
                      Reason::kInfoMissing, 436, kNo},
        RejectionCase{"info_not_bracketed",
                      [](VerifierTest& t) {
                        return t.Sign(t.Header(), t.Payload()) + ";info=" + kX5u;
                      },
                      Reason::kInfoInvalid, 436, kNo},
        RejectionCase{"tampered_payload",
                      [](VerifierTest& t) {
                        std::string jws = t.Sign(t.Header(), t.Payload());
                        size_t d = jws.find('.');
                        jws[d + 5] = jws[d + 5] == 'A' ? 'B' : 'A';
                        return t.Identity(jws);
                      },
                      Reason::kPassportMalformed, 438, kNo},
        RejectionCase{"no_typ",
                      [](VerifierTest& t) {
                        return t.Identity(t.Sign(Without(t.Header(), "typ"), t.Payload()));
                      },
                      Reason::kHeaderParamMissing, 436, kNo},
        RejectionCase{"no_ppt",
                      [](VerifierTest& t) {
                        return t.Identity(t.Sign(Without(t.Header(), "ppt"), t.Payload()));
                      },
                      Reason::kHeaderParamMissing, 436, kNo},
        RejectionCase{"no_x5u",
                      [](VerifierTest& t) {
                        return t.Identity(t.Sign(Without(t.Header(), "x5u"), t.Payload()));
                      },
                      Reason::kHeaderParamMissing, 436, kNo},
        RejectionCase{"no_alg",
                      [](VerifierTest& t) {
                        return t.Identity(t.Sign(Without(t.Header(), "alg"), t.Payload()));
                      },
                      Reason::kHeaderParamMissing, 436, kNo},
        RejectionCase{"header_ppt_div_o",
                      [](VerifierTest& t) {
                        return t.Sign(With(t.Header(), "ppt", "div-o"), t.Payload()) + ";info=<" +
                               kX5u + ">";
                      },
                      Reason::kPptUnsupported, 438, kNo},
        RejectionCase{"header_ppt_div_without_identity_ppt",
                      [](VerifierTest& t) {
                        return t.Sign(With(t.Header(), "ppt", "div"), t.Payload()) + ";info=<" +
                               kX5u + ">";
                      },
                      Reason::kPptMismatch, 438, kNo},
        RejectionCase{"x5u_differs_from_info",
                      [](VerifierTest& t) {
                        return t.Identity(t.Sign(
                            With(t.Header(), "x5u", "https://evil.example/c.pem"), t.Payload()));
                      },
                      Reason::kX5uMismatch, 436, kNo},
        RejectionCase{"http_x5u",
                      [](VerifierTest& t) {
                        return t.Sign(With(t.Header(), "x5u", "http://cert.example.org/sp.pem"),
                                      t.Payload()) +
                               ";info=<http://cert.example.org/sp.pem>";
                      },
                      Reason::kX5uNotAllowed, 436, kNo},
        RejectionCase{"typ_jwt",
                      [](VerifierTest& t) {
                        return t.Identity(t.Sign(With(t.Header(), "typ", "JWT"), t.Payload()));
                      },
                      Reason::kTypInvalid, 437, kNo},
        RejectionCase{"alg_none",
                      [](VerifierTest& t) {
                        return t.Identity(t.Sign(With(t.Header(), "alg", "none"), t.Payload()));
                      },
                      Reason::kAlgUnsupported, 437, kNo},
        RejectionCase{"alg_hs256",
                      [](VerifierTest& t) {
                        // An HMAC "signature" keyed with the public certificate: the classic
                        // algorithm-confusion forgery. Never verified.
                        std::string h, p;
                        (void)AppendCanonicalJson(With(t.Header(), "alg", "HS256"), &h);
                        (void)AppendCanonicalJson(t.Payload(), &p);
                        return t.Identity(Base64UrlEncode(h) + "." + Base64UrlEncode(p) + "." +
                                          Base64UrlEncode(std::string(32, 'k')));
                      },
                      Reason::kAlgUnsupported, 437, kNo},
        RejectionCase{"alg_rs256",
                      [](VerifierTest& t) {
                        return t.Identity(t.Sign(With(t.Header(), "alg", "RS256"), t.Payload()));
                      },
                      Reason::kAlgUnsupported, 437, kNo},
        RejectionCase{"identity_alg_rs256_on_es256_passport",
                      [](VerifierTest& t) {
                        return t.Identity(t.Sign(t.Header(), t.Payload()),
                                          std::string(";info=<") + kX5u +
                                              ">;alg=RS256;ppt=shaken");
                      },
                      Reason::kAlgMismatch, 438, kNo},
        RejectionCase{"identity_alg_lowercase",
                      [](VerifierTest& t) {
                        return t.Identity(t.Sign(t.Header(), t.Payload()),
                                          std::string(";alg=es256;info=<") + kX5u + ">");
                      },
                      Reason::kAlgMismatch, 438, kNo},
        RejectionCase{"identity_alg_es256_on_rs256_passport",
                      [](VerifierTest& t) {
                        // The PASSporT's own alg decides first: E12, not a mismatch.
                        return t.Identity(t.Sign(With(t.Header(), "alg", "RS256"), t.Payload()),
                                          std::string(";info=<") + kX5u +
                                              ">;alg=ES256;ppt=shaken");
                      },
                      Reason::kAlgUnsupported, 437, kNo},
        RejectionCase{"crit_unknown_extension",
                      [](VerifierTest& t) {
                        Json h = With(With(t.Header(), "crit", Json::array({"foo"})), "foo", 1);
                        return t.Identity(t.Sign(h, t.Payload()));
                      },
                      Reason::kCritUnsupported, 438, kNo},
        RejectionCase{"alg_es384",
                      [](VerifierTest& t) {
                        return t.Identity(t.Sign(With(t.Header(), "alg", "ES384"), t.Payload()));
                      },
                      Reason::kAlgUnsupported, 437, kNo},
        RejectionCase{"no_attest",
                      [](VerifierTest& t) {
                        return t.Identity(t.Sign(t.Header(), Without(t.Payload(), "attest")));
                      },
                      Reason::kClaimMissing, 438, kNo},
        RejectionCase{"no_origid",
                      [](VerifierTest& t) {
                        return t.Identity(t.Sign(t.Header(), Without(t.Payload(), "origid")));
                      },
                      Reason::kClaimMissing, 438, kNo},
        RejectionCase{"string_iat",
                      [](VerifierTest& t) {
                        return t.Identity(
                            t.Sign(t.Header(), With(t.Payload(), "iat", std::to_string(kNow))));
                      },
                      Reason::kClaimInvalid, 438, kNo},
        RejectionCase{"attest_D",
                      [](VerifierTest& t) {
                        return t.Identity(t.Sign(t.Header(), With(t.Payload(), "attest", "D")));
                      },
                      Reason::kAttestInvalid, 438, kNo},
        RejectionCase{"origid_not_uuid",
                      [](VerifierTest& t) {
                        return t.Identity(t.Sign(t.Header(), With(t.Payload(), "origid", "x")));
                      },
                      Reason::kOrigidInvalid, 438, kNo},
        RejectionCase{"iat_stale",
                      [](VerifierTest& t) {
                        return t.Identity(t.Sign(t.Header(), With(t.Payload(), "iat", kNow - 61)));
                      },
                      Reason::kIatStale, 403, kNo},
        RejectionCase{"iat_future",
                      [](VerifierTest& t) {
                        return t.Identity(t.Sign(t.Header(), With(t.Payload(), "iat", kNow + 61)));
                      },
                      Reason::kIatFuture, 403, kNo},
        RejectionCase{"orig_mismatch",
                      [](VerifierTest& t) {
                        return t.Identity(t.Sign(
                            t.Header(), With(t.Payload(), "orig", {{"tn", "12155550199"}})));
                      },
                      Reason::kOrigMismatch, 438, kNo},
        RejectionCase{"dest_mismatch",
                      [](VerifierTest& t) {
                        return t.Identity(t.Sign(
                            t.Header(), With(t.Payload(), "dest", {{"tn", {"12155550199"}}})));
                      },
                      Reason::kDestMismatch, 438, kNo},
        RejectionCase{"dest_extra_tn",
                      [](VerifierTest& t) {
                        return t.Identity(t.Sign(
                            t.Header(),
                            With(t.Payload(), "dest", {{"tn", {kDest, "12155550199"}}})));
                      },
                      Reason::kDestMismatch, 438, kNo},
        RejectionCase{"unknown_x5u",
                      [](VerifierTest& t) {
                        const std::string other = "https://cert.example.org/other.pem";
                        return t.Sign(With(t.Header(), "x5u", other), t.Payload()) + ";info=<" +
                               other + ">";
                      },
                      Reason::kFetchHttpStatus, 436, kNo},
        RejectionCase{"untrusted_certificate",
                      [](VerifierTest& t) {
                        const std::string other = "https://cert.example.org/untrusted.pem";
                        t.certs_.AddFailure(other, Reason::kCertUntrusted, "unknown CA");
                        return t.Sign(With(t.Header(), "x5u", other), t.Payload()) + ";info=<" +
                               other + ">";
                      },
                      Reason::kCertUntrusted, 437, kFail},
        RejectionCase{"signed_by_another_key",
                      [](VerifierTest& t) {
                        auto other = MemorySigner::Generate();
                        return t.Identity(t.Sign(t.Header(), t.Payload(), other->get()));
                      },
                      Reason::kSignatureInvalid, 438, kFail},
        RejectionCase{"tampered_signature",
                      [](VerifierTest& t) {
                        std::string jws = t.Sign(t.Header(), t.Payload());
                        char& c = jws[jws.size() - 10];
                        c = c == 'A' ? 'B' : 'A';
                        return t.Identity(jws);
                      },
                      Reason::kSignatureInvalid, 438, kFail},
        RejectionCase{"short_signature",
                      [](VerifierTest& t) {
                        std::string jws = t.Sign(t.Header(), t.Payload());
                        return t.Identity(jws.substr(0, jws.rfind('.') + 1) + "c2ln");
                      },
                      Reason::kSignatureInvalid, 438, kFail}),
    [](const ::testing::TestParamInfo<RejectionCase>& info) { return info.param.name; });

TEST_F(VerifierTest, TamperedClaimWithOriginalSignatureFails) {
  std::string jws = Sign(Header(), Payload());
  std::string p;
  ASSERT_OK(AppendCanonicalJson(With(Payload(), "attest", "B"), &p));
  size_t d1 = jws.find('.'), d2 = jws.rfind('.');
  std::string forged = jws.substr(0, d1 + 1) + Base64UrlEncode(p) + jws.substr(d2);
  EXPECT_EQ(VerifyOne(Identity(forged)).reason, Reason::kSignatureInvalid);
}

TEST_F(VerifierTest, IatWindowIsInclusiveAndConfigurable) {
  EXPECT_TRUE(VerifyOne(Identity(Sign(Header(), With(Payload(), "iat", kNow - 60)))).passed);
  EXPECT_TRUE(VerifyOne(Identity(Sign(Header(), With(Payload(), "iat", kNow + 60)))).passed);
  Verifier lenient(&certs_, &clock_, {.iat_window = absl::Seconds(300)});
  EXPECT_TRUE(lenient.VerifyOne(Identity(Sign(Header(), With(Payload(), "iat", kNow - 200))),
                                kOrig, {kDest}, std::nullopt)
                  .passed);
}

TEST_F(VerifierTest, StaleDateHeaderIs403) {
  std::string id = Identity(Sign(Header(), Payload()));
  EXPECT_TRUE(VerifyOne(id, absl::FromUnixSeconds(kNow - 30)).passed);
  Verdict v = VerifyOne(id, absl::FromUnixSeconds(kNow - 90));
  EXPECT_EQ(v.reason, Reason::kDateStale);
  EXPECT_EQ(v.sip_code, 403);
  EXPECT_EQ(v.sip_reason, "Stale Date");
}

TEST_F(VerifierTest, FreshnessDetailsSayWhichSideOfNowInWholeSeconds) {
  Verdict v = VerifyOne(Identity(Sign(Header(), With(Payload(), "iat", kNow - 3600))));
  EXPECT_EQ(v.reason, Reason::kIatStale);
  EXPECT_EQ(v.detail, "iat is 3600 s in the past; the window is 60 s");
  v = VerifyOne(Identity(Sign(Header(), With(Payload(), "iat", kNow + 61))));
  EXPECT_EQ(v.reason, Reason::kIatFuture);
  EXPECT_EQ(v.detail, "iat is 61 s in the future; the window is 60 s");

  const std::string id = Identity(Sign(Header(), Payload()));
  v = VerifyOne(id, absl::FromUnixSeconds(kNow) - absl::Hours(1) - absl::Milliseconds(150));
  EXPECT_EQ(v.detail, "the Date header is 3600 s in the past; the window is 60 s");
  v = VerifyOne(id, absl::FromUnixSeconds(kNow + 90));
  EXPECT_EQ(v.detail, "the Date header is 90 s in the future; the window is 60 s");
  v = VerifyOne(id, absl::FromUnixSeconds(std::numeric_limits<int64_t>::max()));
  EXPECT_EQ(v.detail, "the Date header is 9223372035154775807 s in the future; the window is 60 s");
  v = VerifyOne(id, absl::FromUnixSeconds(std::numeric_limits<int64_t>::min()));
  EXPECT_EQ(v.detail, "the Date header is 9223372036854775807 s in the past; the window is 60 s");
}

TEST_F(VerifierTest, HighSPolicy) {
  // Flip s to n - s: the twin signature verifies unless the low-S policy is on.
  static const uint8_t kN[32] = {0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00,
                                 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                                 0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84,
                                 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51};
  std::string jws = Sign(Header(), Payload());
  size_t d2 = jws.rfind('.');
  std::string sig = *Base64UrlDecode(jws.substr(d2 + 1));
  BignumPtr n(BN_bin2bn(kN, 32, nullptr));
  BignumPtr s(BN_bin2bn(reinterpret_cast<const uint8_t*>(sig.data()) + 32, 32, nullptr));
  BignumPtr twin(BN_new());
  ASSERT_EQ(BN_sub(twin.get(), n.get(), s.get()), 1);
  ASSERT_EQ(BN_bn2binpad(twin.get(), reinterpret_cast<uint8_t*>(sig.data()) + 32, 32), 32);
  std::string twin_jws = jws.substr(0, d2 + 1) + Base64UrlEncode(sig);
  // Exactly one of the pair is high-S.
  Verifier strict(&certs_, &clock_, {.require_low_s = true});
  Verdict a = strict.VerifyOne(Identity(jws), kOrig, {kDest}, std::nullopt);
  Verdict b = strict.VerifyOne(Identity(twin_jws), kOrig, {kDest}, std::nullopt);
  EXPECT_NE(a.passed, b.passed);
  EXPECT_TRUE(VerifyOne(Identity(jws)).passed);
  EXPECT_TRUE(VerifyOne(Identity(twin_jws)).passed);
}

TEST_F(VerifierTest, NoNetworkForAPassportThatFailsLocalChecks) {
  VerifyOne(Identity(Sign(Header(), With(Payload(), "iat", kNow - 600))));
  VerifyOne(Identity(Sign(With(Header(), "alg", "none"), Payload())));
  EXPECT_EQ(certs_.lookups(), 0);
}

TEST_F(VerifierTest, OverallVerdictAcrossSeveralHeaders) {
  std::string good = Identity(Sign(Header(), Payload()));
  std::string bad_sig = Identity(Sign(Header(), Payload(), MemorySigner::Generate()->get()));
  std::string no_info = Sign(Header(), Payload()) + ";ppt=shaken";
  std::string rph = "ZGl2.ZGl2.ZGl2;info=<https://x.example/d>;ppt=div-o";
  CallInfo call{.from_tn = kOrig, .to_tns = {kDest}};

  auto r = verifier_.Verify({rph, bad_sig, good}, call);
  ASSERT_OK(r);
  ASSERT_EQ(r->headers.size(), 3u);
  EXPECT_TRUE(r->overall.passed);
  EXPECT_EQ(r->headers[0].reason, Reason::kPptUnsupported);
  EXPECT_EQ(r->headers[1].reason, Reason::kSignatureInvalid);

  // ID-7: 436 only if every header failed with 436.
  r = verifier_.Verify({no_info, no_info}, call);
  ASSERT_OK(r);
  EXPECT_EQ(r->overall.sip_code, 436);
  r = verifier_.Verify({no_info, bad_sig}, call);
  ASSERT_OK(r);
  EXPECT_EQ(r->overall.reason, Reason::kSignatureInvalid);

  r = verifier_.Verify({}, call);
  ASSERT_OK(r);
  EXPECT_EQ(r->overall.sip_code, 428);
  EXPECT_EQ(r->overall.sip_reason, "Use Identity Header");
}

// DL-2 (RFC 9060, ATIS-1000092): a certificate whose TNAuthList holds TNs or ranges vouches for
// those numbers only; an SPC-only list keeps SH-13 (the SPC names the signer, any orig passes).
TEST_F(VerifierTest, DelegateCertificateCoversOnlyItsTnsAndRanges) {
  using Kind = TnAuthEntry::Kind;
  const std::string x5u = "https://cert.example.org/delegate.pem";
  auto verify = [&](std::vector<TnAuthEntry> list, const std::string& orig) {
    certs_.AddKeyWithTnAuthList(x5u, signer_->key(), std::move(list));
    std::string jws = Sign(With(Header(), "x5u", x5u), With(Payload(), "orig", {{"tn", orig}}));
    return verifier_.VerifyOne(jws + ";info=<" + x5u + ">;alg=ES256;ppt=shaken", orig, {kDest},
                               std::nullopt);
  };
  // The outside review's case: a certificate for 12155550100 alone signing for 19995550123.
  const std::vector<TnAuthEntry> one = {{Kind::kOne, "12155550100", 0}};
  Verdict v = verify(one, "19995550123");
  EXPECT_FALSE(v.passed);
  EXPECT_EQ(ReasonName(v.reason), "orig_not_in_tnauthlist") << v.detail;
  EXPECT_EQ(v.sip_code, 438);
  EXPECT_EQ(v.verstat, Verstat::kFailed);
  EXPECT_THAT(v.detail, HasSubstr("19995550123"));
  EXPECT_TRUE(verify(one, "12155550100").passed);

  // A range is `count` numbers from `start`: 12155550100 .. 12155550199.
  const std::vector<TnAuthEntry> range = {{Kind::kRange, "12155550100", 100}};
  EXPECT_TRUE(verify(range, "12155550100").passed);
  EXPECT_TRUE(verify(range, "12155550199").passed);
  EXPECT_EQ(verify(range, "12155550200").reason, Reason::kOrigNotInTnAuthList);
  EXPECT_EQ(verify(range, "12155550099").reason, Reason::kOrigNotInTnAuthList);
  EXPECT_EQ(verify(range, "121555501000").reason, Reason::kOrigNotInTnAuthList);

  // TNs next to an SPC still scope the certificate.
  EXPECT_EQ(verify({{Kind::kSpc, "709J", 0}, {Kind::kOne, "12155550100", 0}}, "19995550123").reason,
            Reason::kOrigNotInTnAuthList);
  // SPC only: unchanged (SH-13).
  EXPECT_TRUE(verify({{Kind::kSpc, "709J", 0}}, "19995550123").passed);

  // The signature is judged first: a forgery is signature_invalid, not a scope problem.
  certs_.AddKeyWithTnAuthList(x5u, signer_->key(), one);
  std::string forged = Sign(With(Header(), "x5u", x5u), With(Payload(), "orig", {{"tn", "19995550123"}}),
                            MemorySigner::Generate()->get());
  EXPECT_EQ(verifier_.VerifyOne(forged + ";info=<" + x5u + ">", "19995550123", {kDest}, std::nullopt)
                .reason,
            Reason::kSignatureInvalid);
}

// RFC 8224's 428: a request needs an Identity header "without ppt or with a supported ppt", so a
// header whose ppt this verifier does not handle counts as absent for the call (ID-7, P21).
TEST_F(VerifierTest, UnsupportedPptHeadersCountAsAbsentForTheCall) {
  const std::string info = std::string(";info=<") + kX5u + ">";
  // div-o (RFC 8946 §5) and a private type: PASSporT types this verifier does not handle.
  const std::string rph = Sign(With(Header(), "ppt", "div-o"), Payload()) + info + ";ppt=div-o";
  const std::string rcd = Sign(Header(), Payload()) + info + ";alg=ES256;ppt=x-private";
  const std::string good = Identity(Sign(Header(), Payload()));
  const std::string bad_sig = Identity(Sign(Header(), Payload(), MemorySigner::Generate()->get()));
  const std::string no_info = Sign(Header(), Payload()) + ";ppt=shaken";
  CallInfo call{.from_tn = kOrig, .to_tns = {kDest}};

  // Only unsupported headers: 428 / No-TN-Validation; each keeps its own 438 verdict.
  for (const auto& headers : {std::vector<std::string>{rph}, std::vector<std::string>{rcd},
                              std::vector<std::string>{rph, rcd}}) {
    auto r = verifier_.Verify(headers, call);
    ASSERT_OK(r);
    EXPECT_FALSE(r->overall.passed);
    EXPECT_EQ(r->overall.sip_code, 428) << r->overall.detail;
    EXPECT_EQ(r->overall.reason, Reason::kNoIdentity);
    EXPECT_EQ(r->overall.verstat, Verstat::kNoValidation);
    EXPECT_EQ(r->overall.sip_reason, "Use Identity Header");
    EXPECT_THAT(r->overall.detail, HasSubstr("no Identity header with a supported ppt"));
    ASSERT_EQ(r->headers.size(), headers.size());
    for (const Verdict& h : r->headers) {
      EXPECT_EQ(h.reason, Reason::kPptUnsupported);
      EXPECT_EQ(h.sip_code, 438);
    }
  }
  auto r = verifier_.Verify({rph}, call);
  ASSERT_OK(r);
  EXPECT_THAT(r->overall.detail, HasSubstr("ppt=div-o"));

  // Next to shaken headers they are ignored: the shaken headers alone decide.
  r = verifier_.Verify({rph, no_info}, call);
  ASSERT_OK(r);
  EXPECT_EQ(r->overall.reason, Reason::kInfoMissing);  // every counted header is a 436
  EXPECT_EQ(r->headers[0].reason, Reason::kPptUnsupported);
  r = verifier_.Verify({rcd, bad_sig}, call);
  ASSERT_OK(r);
  EXPECT_EQ(r->overall.reason, Reason::kSignatureInvalid);
  r = verifier_.Verify({rph, good, rcd}, call);
  ASSERT_OK(r);
  EXPECT_TRUE(r->overall.passed);

  // The asynchronous path chooses the same way.
  std::optional<absl::StatusOr<VerifyResult>> async;
  verifier_.VerifyAsync({rph, rcd}, call, absl::InfiniteFuture(),
                        [&](absl::StatusOr<VerifyResult> res) { async = std::move(res); });
  ASSERT_TRUE(async.has_value());
  ASSERT_OK(*async);
  EXPECT_EQ((*async)->overall.sip_code, 428);
  verifier_.VerifyAsync({rph, no_info}, call, absl::InfiniteFuture(),
                        [&](absl::StatusOr<VerifyResult> res) { async = std::move(res); });
  ASSERT_OK(*async);
  EXPECT_EQ((*async)->overall.reason, Reason::kInfoMissing);

  // A div-o PASSporT under Identity ppt=shaken, or under no ppt parameter, is a header that
  // claims a supported type (or none): it counts, and it is invalid.
  for (const std::string& params : {info + ";ppt=shaken", info}) {
    r = verifier_.Verify({Sign(With(Header(), "ppt", "div-o"), Payload()) + params}, call);
    ASSERT_OK(r);
    EXPECT_EQ(r->overall.sip_code, 438) << params;
    EXPECT_EQ(r->overall.reason, Reason::kPptUnsupported);
  }
}

TEST_F(VerifierTest, MalformedRequestsAreErrorsNotVerdicts) {
  std::string good = Identity(Sign(Header(), Payload()));
  EXPECT_THAT(verifier_.Verify({good}, {.from_tn = "12a", .to_tns = {kDest}}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("from tn")));
  EXPECT_THAT(verifier_.Verify({good}, {.from_tn = kOrig, .to_tns = {"x"}}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("to tn")));
  std::vector<std::string> many(kMaxIdentityHeaders + 1, good);
  EXPECT_THAT(verifier_.Verify(many, {.from_tn = kOrig, .to_tns = {kDest}}),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST_F(VerifierTest, MutationsNeverCrashAndNeverPassWithOtherBytes) {
  // A small deterministic fuzz over mutations of a good header: every result is a verdict, a
  // failure always says why, and a mutation passes only if the signed JWS and the info URI are
  // untouched (only whitespace or extension parameters changed): strict base64url and byte-exact
  // verification leave no second encoding of a valid PASSporT.
  const std::string jws = Sign(Header(), Payload());
  std::string good = Identity(jws);
  int passed = 0;
  uint32_t x = 12345;
  for (int i = 0; i < 2000; ++i) {
    std::string m = good;
    int edits = 1 + i % 4;
    for (int e = 0; e < edits; ++e) {
      x = x * 1103515245 + 12345;
      size_t pos = (x >> 8) % m.size();
      switch ((x >> 4) % 3) {
        case 0:
          m[pos] = static_cast<char>(x >> 16);
          break;
        case 1:
          m.erase(pos, 1 + (x >> 20) % 8);
          break;
        default:
          m.insert(pos, 1, ";.=<>\"\\ "[(x >> 16) % 8]);
      }
      if (m.empty()) m = "x";
    }
    Verdict v = VerifyOne(m);
    if (!v.passed) {
      EXPECT_FALSE(v.detail.empty()) << m;
      continue;
    }
    ++passed;
    auto parsed = ParseIdentityHeader(m);
    ASSERT_OK(parsed);
    EXPECT_EQ(parsed->digest, jws) << m;
    EXPECT_EQ(parsed->info, std::optional<std::string>(kX5u)) << m;
  }
  EXPECT_LT(passed, 2000);  // the mutations do reach the checks
}

}  // namespace
}  // namespace shaken::stir
