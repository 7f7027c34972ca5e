// ppt_test.cc: rph PASSporTs (RFC 8443) and rich call data (RFC 9795): signing, typing, and what
// the verifier reports (verstat_priority, RcdResult), with rcdi content served by a test fetcher.
#include <atomic>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "stir/base64url.h"
#include "stir/identity_header.h"
#include "stir/memory_signer.h"
#include "stir/openssl_util.h"
#include "stir/passport.h"
#include "stir/rcd.h"
#include "stir/rph.h"
#include "stir/verifier.h"
#include "tests/testing/fixed_cert_source.h"
#include "tests/testing/status_matchers.h"

namespace shaken::stir {
namespace {

using ::shaken::testing::FixedCertificateSource;
using ::shaken::testing::StatusIs;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

constexpr char kX5u[] = "https://cert.example.org/sp.pem";
constexpr char kIcon[] = "https://brand.example.org/logo.png";
constexpr char kCard[] = "https://brand.example.org/card.json";
constexpr int64_t kNow = 1700000000;
constexpr char kA[] = "12155550121";
constexpr char kB[] = "12155550131";

// ContentFetcher serves fixed bodies by URL (404 otherwise) and counts the fetches.
class ContentFetcher : public CertificateFetcher {
 public:
  FetchResult Fetch(std::string_view url) const override {
    ++fetches;
    auto it = bodies.find(std::string(url));
    if (it == bodies.end()) {
      FetchResult r = FetchResult::Failure(Reason::kFetchHttpStatus, "HTTP 404");
      r.http_status = 404;
      return r;
    }
    FetchResult r;
    r.http_status = 200;
    r.body = it->second;
    return r;
  }
  std::map<std::string, std::string> bodies;
  mutable std::atomic<int> fetches{0};
};

Json Payload(std::string_view jws) {
  const size_t a = jws.find('.'), b = jws.rfind('.');
  return Json::parse(*Base64UrlDecode(jws.substr(a + 1, b - a - 1)));
}

class PptTest : public ::testing::Test {
 public:
  void SetUp() override {
    auto s = MemorySigner::Generate();
    ASSERT_OK(s);
    signer_ = *std::move(s);
    certs_.AddKey(kX5u, signer_->key());
    auto ps = PassportSigner::Create(signer_.get(), kX5u, &clock_);
    ASSERT_OK(ps);
    passports_ = *std::move(ps);
    content_.bodies[kIcon] = "\x89PNG fake icon bytes";
    content_.bodies[kCard] = R"(["vcard",[["version",{},"text","4.0"],["fn",{},"text","Acme"]]])";
  }

  std::string Shaken(RcdSigning rcd = {}) {
    auto sp = passports_->Sign({.attest = "A", .orig_tn = kA, .dest_tns = {kB}, .rcd = rcd});
    EXPECT_OK(sp);
    return sp.ok() ? sp->identity : "";
  }
  std::string Rph(std::vector<std::string> auth, std::optional<std::string> sph = {}) {
    auto sp = passports_->SignRph({.orig_tn = kA, .dest_tns = {kB}, .auth = auth, .sph = sph});
    EXPECT_OK(sp);
    return sp.ok() ? sp->identity : "";
  }
  // Forged signs any payload under any ppt with the test key (claims the signer would refuse).
  std::string Forged(std::string_view ppt, const Json& payload) {
    std::string h = CanonicalHeader(ppt, kX5u), p;
    EXPECT_OK(AppendCanonicalJson(payload, &p));
    std::string input = Base64UrlEncode(h) + "." + Base64UrlEncode(p);
    auto sig = signer_->SignDigest(Sha256(input), absl::InfiniteFuture());
    EXPECT_OK(sig);
    return BuildIdentityHeader(
        input + "." +
            Base64UrlEncode(std::string_view(reinterpret_cast<const char*>(sig->data()), 64)),
        kX5u, ppt);
  }
  RcdSigning Brand() {
    RcdSigning rcd{.nam = "Acme Pharmacy", .icn = kIcon, .jcl = kCard, .crn = "Prescription ready"};
    EXPECT_OK(ComputeRcdi(content_, rcd));
    return rcd;
  }
  VerifyResult Verify(const std::vector<std::string>& headers,
                      std::vector<std::string> rp = {}) {
    auto r = verifier_.Verify(headers, {.from_tn = kA, .to_tns = {kB}, .resource_priority = rp});
    EXPECT_OK(r);
    return r.ok() ? *std::move(r) : VerifyResult();
  }

  FixedClock clock_{absl::FromUnixSeconds(kNow)};
  FixedCertificateSource certs_;
  ContentFetcher content_;
  std::unique_ptr<MemorySigner> signer_;
  std::unique_ptr<PassportSigner> passports_;
  Verifier verifier_{&certs_, &clock_, {}, &content_};
};

TEST(RphTest, ResourcePriorityGrammar) {
  EXPECT_TRUE(IsResourcePriorityValue("ets.0"));
  EXPECT_TRUE(IsResourcePriorityValue("wps.4"));
  EXPECT_TRUE(IsResourcePriorityValue("esnet.0"));
  EXPECT_FALSE(IsResourcePriorityValue("ets"));
  EXPECT_FALSE(IsResourcePriorityValue("ets."));
  EXPECT_FALSE(IsResourcePriorityValue(".0"));
  EXPECT_FALSE(IsResourcePriorityValue("ets.0.1"));
  EXPECT_FALSE(IsResourcePriorityValue("ets 0"));
  auto values = ParseResourcePriority({"ets.0 , wps.4", "dsn.flash"});
  ASSERT_OK(values);
  EXPECT_THAT(*values, ElementsAre("ets.0", "wps.4", "dsn.flash"));
  EXPECT_THAT(ParseResourcePriority({"ets.0,"}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("RFC 4412")));
  std::string missing;
  EXPECT_TRUE(RphCovers({"ETS.0", "wps.1"}, {"ets.0"}, &missing));
  EXPECT_FALSE(RphCovers({"ets.0"}, {"ets.0", "wps.1"}, &missing));
  EXPECT_EQ(missing, "wps.1");
  EXPECT_FALSE(RphCovers({"ets.0"}, {}, &missing));
}

TEST_F(PptTest, SignsACanonicalRphPassport) {
  auto sp = passports_->SignRph(
      {.orig_tn = "+1 215 555 0121", .dest_tns = {kB}, .auth = {"ets.0, wps.1"},
       .sph = "psap-callback"});
  ASSERT_OK(sp);
  auto header = ParseIdentityHeader(sp->identity);
  ASSERT_OK(header);
  EXPECT_EQ(header->ppt, "rph");
  const std::string jws = sp->jws;
  EXPECT_EQ(*Base64UrlDecode(jws.substr(0, jws.find('.'))),
            absl::StrCat(R"({"alg":"ES256","ppt":"rph","typ":"passport","x5u":")", kX5u, "\"}"));
  const size_t a = jws.find('.'), b = jws.rfind('.');
  EXPECT_EQ(*Base64UrlDecode(jws.substr(a + 1, b - a - 1)),
            absl::StrCat(R"({"dest":{"tn":["12155550131"]},"iat":)", kNow,
                         R"(,"orig":{"tn":"12155550121"},"rph":{"auth":["ets.0","wps.1"]},)"
                         R"("sph":"psap-callback"})"));
  EXPECT_TRUE(sp->origid.empty());
}

TEST_F(PptTest, RefusesBadRphClaims) {
  EXPECT_THAT(passports_->SignRph({.orig_tn = kA, .dest_tns = {kB}, .auth = {"ets"}}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("auth: \"ets\"")));
  EXPECT_THAT(passports_->SignRph({.orig_tn = kA, .dest_tns = {kB}, .auth = {}}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("auth needs")));
  EXPECT_THAT(passports_->SignRph({.orig_tn = kA, .dest_tns = {kB}, .auth = {"ets.0"},
                                   .sph = "psap callback"}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("sph")));
  EXPECT_THAT(passports_->SignRph({.orig_tn = "x", .dest_tns = {kB}, .auth = {"ets.0"}}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("orig tn")));
}

TEST_F(PptTest, VerifiesRphAgainstTheResourcePriorityHeader) {
  const std::string shaken = Shaken();
  const std::string rph = Rph({"ets.0", "wps.1"});
  VerifyResult r = Verify({shaken, rph}, {"ets.0"});
  EXPECT_TRUE(r.overall.passed);
  EXPECT_EQ(r.overall.ppt, "shaken");
  EXPECT_EQ(r.verstat_priority, PriorityVerstat::kPassed);
  EXPECT_EQ(PriorityVerstatName(r.verstat_priority), "RPH-Validation-Passed");
  ASSERT_EQ(r.headers.size(), 2u);
  EXPECT_TRUE(r.headers[1].passed);
  EXPECT_THAT(r.headers[1].rph_auth, ElementsAre("ets.0", "wps.1"));

  // The request asks for a priority the rph PASSporT does not vouch for.
  r = Verify({shaken, rph}, {"ets.0, dsn.flash"});
  EXPECT_TRUE(r.overall.passed);  // the caller's identity still verifies
  EXPECT_EQ(r.verstat_priority, PriorityVerstat::kFailed);
  EXPECT_EQ(r.headers[1].reason, Reason::kRphMismatch);
  EXPECT_THAT(r.headers[1].detail, HasSubstr("dsn.flash"));

  // No Resource-Priority header at all.
  r = Verify({shaken, rph});
  EXPECT_EQ(r.headers[1].reason, Reason::kRphMismatch);
  EXPECT_EQ(r.verstat_priority, PriorityVerstat::kFailed);

  // No rph header: nothing validated.
  r = Verify({shaken}, {"ets.0"});
  EXPECT_EQ(r.verstat_priority, PriorityVerstat::kNone);
  EXPECT_EQ(PriorityVerstatName(r.verstat_priority), "");

  // A malformed Resource-Priority value is a malformed request.
  EXPECT_THAT(verifier_.Verify({shaken}, {.from_tn = kA, .to_tns = {kB},
                                          .resource_priority = {"ets"}}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("resource_priority")));
}

TEST_F(PptTest, AnRphPassportAloneDecidesTheCallWhenNothingElseIsThere) {
  VerifyResult r = Verify({Rph({"ets.0"})}, {"ets.0"});
  EXPECT_TRUE(r.overall.passed);
  EXPECT_EQ(r.overall.ppt, "rph");
  // With a shaken header, the shaken verdict speaks for the call, whatever the order.
  r = Verify({Rph({"ets.0"}), Shaken()}, {"ets.0"});
  EXPECT_EQ(r.overall.ppt, "shaken");
}

TEST_F(PptTest, RphClaimsAreTyped) {
  const Json base = {{"dest", {{"tn", {kB}}}}, {"iat", kNow}, {"orig", {{"tn", kA}}}};
  Json extra = base;
  extra["rph"] = {{"auth", {"ets.0"}}, {"foo", 1}};
  EXPECT_EQ(Verify({Forged("rph", extra)}, {"ets.0"}).headers[0].reason, Reason::kClaimInvalid);
  Json bad = base;
  bad["rph"] = {{"auth", {"ets"}}};
  EXPECT_EQ(Verify({Forged("rph", bad)}, {"ets.0"}).headers[0].reason, Reason::kClaimInvalid);
  Json none = base;
  EXPECT_EQ(Verify({Forged("rph", none)}, {"ets.0"}).headers[0].reason, Reason::kClaimMissing);
  // An rph PASSporT must say so in its Identity header.
  std::string identity = Rph({"ets.0"});
  identity = identity.substr(0, identity.rfind(";ppt=rph"));
  EXPECT_EQ(Verify({identity}, {"ets.0"}).headers[0].reason, Reason::kPptMismatch);
}

TEST(RcdiTest, DigestForm) {
  // SHA-256 of the empty string.
  EXPECT_EQ(RcdiDigest(""), "sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=");
  EXPECT_TRUE(RcdiDigestMatches("sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=", ""));
  EXPECT_TRUE(RcdiDigestMatches("sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU", ""));
  EXPECT_TRUE(RcdiDigestMatches("sha256-47DEQpj8HBSa-_TImW-5JCeuQeRkm5NMpJWZG3hSuFU", ""));
  EXPECT_FALSE(RcdiDigestMatches("sha256-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=", "x"));
  EXPECT_FALSE(RcdiDigestMatches("sha384-47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=", ""));
  EXPECT_FALSE(RcdiDigestMatches("sha256-", ""));
}

TEST_F(PptTest, SignsRcdWithRcdiDigestsOfTheFetchedContent) {
  RcdSigning rcd = Brand();
  EXPECT_EQ(content_.fetches.load(), 2);
  auto sp = passports_->SignRcd({.orig_tn = kA, .dest_tns = {kB}, .rcd = rcd});
  ASSERT_OK(sp);
  EXPECT_EQ(ParseIdentityHeader(sp->identity)->ppt, "rcd");
  Json p = Payload(sp->jws);
  EXPECT_EQ(p["rcd"]["nam"], "Acme Pharmacy");
  EXPECT_EQ(p["rcd"]["icn"], kIcon);
  EXPECT_EQ(p["rcdi"]["/icn"], RcdiDigest(content_.bodies[kIcon]));
  EXPECT_EQ(p["rcdi"]["/jcl"], RcdiDigest(content_.bodies[kCard]));
  EXPECT_EQ(p["crn"], "Prescription ready");
  EXPECT_FALSE(p.contains("attest"));
  // Canonical: the payload as signed is the canonical serialization of itself.
  std::string canonical;
  ASSERT_OK(AppendCanonicalJson(p, &canonical));
  const std::string jws = sp->jws;
  const size_t a = jws.find('.'), b = jws.rfind('.');
  EXPECT_EQ(*Base64UrlDecode(jws.substr(a + 1, b - a - 1)), canonical);
}

TEST_F(PptTest, RefusesRcdThatVerifiersWouldDrop) {
  RcdSigning no_digest{.nam = "Acme", .icn = kIcon};
  EXPECT_THAT(passports_->SignRcd({.orig_tn = kA, .dest_tns = {kB}, .rcd = no_digest}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("icn: content by reference")));
  RcdSigning http{.icn = "http://brand.example.org/logo.png"};
  EXPECT_THAT(passports_->SignRcd({.orig_tn = kA, .dest_tns = {kB}, .rcd = http}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("icn: verifiers would not")));
  RcdSigning gone{.icn = "https://brand.example.org/gone.png"};
  EXPECT_THAT(ComputeRcdi(content_, gone),
              StatusIs(absl::StatusCode::kUnavailable, HasSubstr("fetch_http_status")));
  RcdSigning card{.jcd = "{\"fn\":\"x\"}"};
  EXPECT_THAT(passports_->SignRcd({.orig_tn = kA, .dest_tns = {kB}, .rcd = card}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("jcd")));
  EXPECT_THAT(passports_->SignRcd({.orig_tn = kA, .dest_tns = {kB}, .rcd = {.crn = "x"}}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("at least one")));
  EXPECT_THAT(passports_->SignRcd({.orig_tn = kA, .dest_tns = {kB}, .rcd = {.nam = ""}}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("nam: is empty")));
}

TEST_F(PptTest, ReportsVerifiedRichCallDataOnly) {
  const std::string identity = Shaken(Brand());
  content_.fetches = 0;
  VerifyResult r = Verify({identity});
  EXPECT_TRUE(r.overall.passed);
  EXPECT_EQ(content_.fetches.load(), 2);
  ASSERT_EQ(r.rcds.size(), 1u);
  EXPECT_TRUE(r.rcds[0].passed);
  EXPECT_EQ(r.rcds[0].nam, "Acme Pharmacy");
  EXPECT_EQ(r.rcds[0].icn, kIcon);
  EXPECT_EQ(r.rcds[0].crn, "Prescription ready");

  // The icon changed since it was signed: nothing is shown, the call still verifies.
  content_.bodies[kIcon] = "another icon";
  r = Verify({identity});
  EXPECT_TRUE(r.overall.passed);
  ASSERT_EQ(r.rcds.size(), 1u);
  EXPECT_FALSE(r.rcds[0].passed);
  EXPECT_EQ(r.rcds[0].reason, Reason::kRcdiMismatch);
  EXPECT_THAT(r.rcds[0].detail, HasSubstr("/icn"));
  EXPECT_EQ(r.rcds[0].nam, "");
  EXPECT_EQ(r.rcds[0].crn, "");

  // The icon is gone.
  content_.bodies.erase(kIcon);
  r = Verify({identity});
  EXPECT_EQ(r.rcds[0].reason, Reason::kFetchHttpStatus);

  // A PASSporT that does not verify shows nothing and fetches nothing.
  content_.fetches = 0;
  auto rr = verifier_.Verify({identity}, {.from_tn = "12155550199", .to_tns = {kB}});
  ASSERT_OK(rr);
  ASSERT_EQ(rr->rcds.size(), 1u);
  EXPECT_EQ(rr->rcds[0].reason, Reason::kOrigMismatch);
  EXPECT_EQ(rr->rcds[0].nam, "");
  EXPECT_EQ(content_.fetches.load(), 0);
}

TEST_F(PptTest, RichCallDataByReferenceNeedsItsDigest) {
  const Json base = {{"dest", {{"tn", {kB}}}}, {"iat", kNow}, {"orig", {{"tn", kA}}}};
  Json p = base;
  p["rcd"] = {{"nam", "Acme"}, {"icn", kIcon}};
  VerifyResult r = Verify({Forged("rcd", p)});
  EXPECT_TRUE(r.overall.passed);
  ASSERT_EQ(r.rcds.size(), 1u);
  EXPECT_EQ(r.rcds[0].reason, Reason::kRcdiMissing);
  EXPECT_EQ(r.rcds[0].nam, "");
  // An rcdi pointer naming nothing fetchable.
  p["rcdi"] = {{"/icn", RcdiDigest(content_.bodies[kIcon])}, {"/nam", RcdiDigest("Acme")}};
  r = Verify({Forged("rcd", p)});
  EXPECT_EQ(r.rcds[0].reason, Reason::kRcdiMismatch);
  // Inline only: nothing to fetch, shown.
  Json inline_only = base;
  inline_only["rcd"] = {{"nam", "Acme"}, {"jcd", Json::array({"vcard", Json::array()})}};
  r = Verify({Forged("rcd", inline_only)});
  ASSERT_EQ(r.rcds.size(), 1u);
  EXPECT_TRUE(r.rcds[0].passed);
  EXPECT_EQ(r.rcds[0].jcd, R"(["vcard",[]])");
  // Typed: rcd must be an object.
  Json bad = base;
  bad["rcd"] = "Acme";
  EXPECT_EQ(Verify({Forged("rcd", bad)}).headers[0].reason, Reason::kClaimInvalid);
  EXPECT_EQ(Verify({Forged("rcd", base)}).headers[0].reason, Reason::kClaimMissing);
}

TEST_F(PptTest, AsyncVerificationFetchesRichCallDataToo) {
  const std::string identity = Shaken(Brand());
  std::optional<absl::StatusOr<VerifyResult>> got;
  verifier_.VerifyAsync({identity, Rph({"ets.0"})},
                        {.from_tn = kA, .to_tns = {kB}, .resource_priority = {"ets.0"}},
                        absl::InfiniteFuture(),
                        [&got](absl::StatusOr<VerifyResult> r) { got = std::move(r); });
  ASSERT_TRUE(got.has_value());
  ASSERT_OK(*got);
  EXPECT_TRUE((*got)->overall.passed);
  EXPECT_EQ((*got)->verstat_priority, PriorityVerstat::kPassed);
  ASSERT_EQ((*got)->rcds.size(), 1u);
  EXPECT_TRUE((*got)->rcds[0].passed);
  EXPECT_EQ((*got)->rcds[0].nam, "Acme Pharmacy");
}

// Several Identity headers of every kind in one diverted call: a shaken PASSporT with its rph and
// rcd companions, a div forwarding the call, and a div-o header this verifier does not handle.
TEST_F(PptTest, EveryKindInOneDivertedCall) {
  constexpr char kC[] = "12155550141";
  const std::string shaken = Shaken();
  const std::string rph = Rph({"ets.0"});
  auto rcd = passports_->SignRcd({.orig_tn = kA, .dest_tns = {kB}, .rcd = {.nam = "Acme"}});
  ASSERT_OK(rcd);
  auto div = passports_->SignDiv({.original = shaken, .dest_tns = {kC}});
  ASSERT_OK(div);
  const std::string div_o = shaken.substr(0, shaken.find(';')) + ";info=<" + kX5u + ">;ppt=div-o";
  // The div first: it may come in any order, and must link to the shaken PASSporT, not the rph
  // or rcd one with the same dest.
  auto r = verifier_.Verify({div->identity, rph, rcd->identity, div_o, shaken},
                            {.from_tn = kA, .to_tns = {kC}, .resource_priority = {"ets.0"}});
  ASSERT_OK(r);
  EXPECT_TRUE(r->overall.passed) << r->overall.detail;
  EXPECT_EQ(r->overall.ppt, "shaken");
  std::vector<Reason> reasons;
  for (const Verdict& v : r->headers) reasons.push_back(v.reason);
  EXPECT_THAT(reasons, ElementsAre(Reason::kPassed, Reason::kPassed, Reason::kPassed,
                                   Reason::kPptUnsupported, Reason::kPassed));
  EXPECT_EQ(r->headers[0].diverts, 4u);
  ASSERT_EQ(r->divs.size(), 1u);
  EXPECT_TRUE(r->divs[0].passed);
  EXPECT_EQ(r->verstat_priority, PriorityVerstat::kPassed);
  ASSERT_EQ(r->rcds.size(), 1u);
  EXPECT_TRUE(r->rcds[0].passed);
  EXPECT_EQ(r->rcds[0].header, 2u);
  // An rph PASSporT for another call does not ride along.
  auto other = passports_->SignRph({.orig_tn = kA, .dest_tns = {"12155550199"}, .auth = {"ets.0"}});
  ASSERT_OK(other);
  r = verifier_.Verify({shaken, div->identity, other->identity},
                       {.from_tn = kA, .to_tns = {kC}, .resource_priority = {"ets.0"}});
  ASSERT_OK(r);
  EXPECT_TRUE(r->overall.passed);
  EXPECT_EQ(r->headers[2].reason, Reason::kDestMismatch);
  EXPECT_EQ(r->verstat_priority, PriorityVerstat::kFailed);
}

// A content server slower than the caller's deadline: the answer comes at the deadline with the
// rich call data dropped (fetch_timeout), and the late fetch changes nothing.
TEST_F(PptTest, ContentFetchesEndAtTheDeadline) {
  class HeldFetcher : public ContentFetcher {
   public:
    void FetchAsync(std::string_view url, absl::Time, FetchDone done) const override {
      absl::MutexLock lock(&mu);
      held.emplace_back(std::string(url), std::move(done));
    }
    mutable absl::Mutex mu;
    mutable std::vector<std::pair<std::string, FetchDone>> held;
  };
  HeldFetcher slow;
  slow.bodies = content_.bodies;
  Verifier verifier(&certs_, &clock_, {}, &slow);
  const std::string identity = Shaken(Brand());
  absl::Notification done;
  std::optional<absl::StatusOr<VerifyResult>> got;
  const absl::Time start = absl::Now();
  verifier.VerifyAsync({identity}, {.from_tn = kA, .to_tns = {kB}},
                       start + absl::Milliseconds(100), [&](absl::StatusOr<VerifyResult> r) {
                         got = std::move(r);
                         done.Notify();
                       });
  ASSERT_TRUE(done.WaitForNotificationWithTimeout(absl::Seconds(10)));
  EXPECT_GE(absl::Now() - start, absl::Milliseconds(90));
  ASSERT_OK(*got);
  EXPECT_TRUE((*got)->overall.passed);
  ASSERT_EQ((*got)->rcds.size(), 1u);
  EXPECT_EQ((*got)->rcds[0].reason, Reason::kFetchTimeout);
  EXPECT_EQ((*got)->rcds[0].nam, "");
  absl::MutexLock lock(&slow.mu);
  ASSERT_EQ(slow.held.size(), 2u);
  for (auto& [url, fetch_done] : slow.held) std::move(fetch_done)(slow.Fetch(url));
}

}  // namespace
}  // namespace shaken::stir
