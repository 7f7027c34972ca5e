#include "stir/cert_validator.h"

#include <atomic>
#include <string>
#include <thread>

#include "absl/strings/escaping.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/test_pki.h"

namespace shaken::stir {
namespace {

using ::shaken::testing::LeafOptions;
using ::shaken::testing::StatusIs;
using ::shaken::testing::TempDir;
using ::shaken::testing::TestCert;
using ::shaken::testing::TestPki;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

const absl::Time kNow = absl::FromUnixSeconds(1767225600);  // 2026-01-01T00:00:00Z

std::string Bytes(std::initializer_list<int> b) {
  std::string out;
  for (int x : b) out.push_back(static_cast<char>(x));
  return out;
}

class CertValidatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(pki_, TestPki::Create(kNow));
    ca_file_ = dir_.Write("ca.pem", pki_->root().cert_pem);
  }

  std::unique_ptr<CertValidator> Validator(
      ProfileStrictness strictness = ProfileStrictness::kLenient,
      std::vector<std::string> crls = {}) {
    CertValidatorOptions options;
    options.ca_file = ca_file_;
    options.strictness = strictness;
    options.crl_files = std::move(crls);
    auto v = CertValidator::New(options);
    EXPECT_TRUE(v.ok()) << v.status();
    return v.ok() ? *std::move(v) : nullptr;
  }

  CertificateResult Validate(const LeafOptions& leaf_options,
                             ProfileStrictness strictness = ProfileStrictness::kLenient) {
    auto leaf = pki_->IssueLeaf(leaf_options);
    EXPECT_TRUE(leaf.ok()) << leaf.status();
    return Validator(strictness)->ValidatePem(pki_->ChainPem(*leaf), kNow);
  }

  TempDir dir_;
  std::unique_ptr<TestPki> pki_;
  std::string ca_file_;
};

TEST_F(CertValidatorTest, GoodChainPasses) {
  ASSERT_OK_AND_ASSIGN(TestCert leaf, pki_->IssueLeaf());
  for (ProfileStrictness strictness : {ProfileStrictness::kLenient, ProfileStrictness::kStrict}) {
    CertificateResult r = Validator(strictness)->ValidatePem(pki_->ChainPem(leaf), kNow);
    ASSERT_TRUE(r.ok()) << ReasonName(r.reason) << ": " << r.detail;
    EXPECT_EQ(r.cert->info.spc, "709J");
    ASSERT_EQ(r.cert->info.tn_auth_list.size(), 1u);
    EXPECT_EQ(r.cert->info.tn_auth_list[0].kind, TnAuthEntry::Kind::kSpc);
    EXPECT_THAT(r.cert->info.policy_oids, ElementsAre("2.16.840.1.114569.1.1.3"));
    EXPECT_THAT(r.cert->info.profile_warnings, IsEmpty());
    EXPECT_THAT(r.cert->info.subject, HasSubstr("CN=SHAKEN 709J"));
    EXPECT_THAT(r.cert->info.issuer, HasSubstr("STI-CA"));
    EXPECT_FALSE(r.cert->info.serial_hex.empty());
    EXPECT_EQ(r.cert->info.not_after,
              absl::FromUnixSeconds(absl::ToUnixSeconds(kNow + absl::Hours(24 * 90))));
    EXPECT_EQ(r.cert->valid_until, r.cert->info.not_after);  // leaf expires before the CAs
    EXPECT_EQ(r.cert->valid_from, kNow - absl::Hours(1));    // the leaf's notBefore is latest
    EXPECT_TRUE(IsP256Key(r.cert->public_key.get()));
  }
}

TEST_F(CertValidatorTest, CaDirectoryOfHashedNames) {
  std::string ca_dir = dir_.path() + "/certs";
  ASSERT_OK(testing::WriteHashedCaDir(ca_dir, {pki_->root().cert.get()}));
  CertValidatorOptions options;
  options.ca_dir = ca_dir;
  ASSERT_OK_AND_ASSIGN(auto validator, CertValidator::New(options));
  ASSERT_OK_AND_ASSIGN(TestCert leaf, pki_->IssueLeaf());
  CertificateResult r = validator->ValidatePem(pki_->ChainPem(leaf), kNow);
  EXPECT_TRUE(r.ok()) << r.detail;
}

TEST_F(CertValidatorTest, ConfigErrorsAreClear) {
  CertValidatorOptions options;
  EXPECT_THAT(CertValidator::New(options),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("no trust anchors")));
  options.ca_file = dir_.path() + "/missing.pem";
  EXPECT_THAT(CertValidator::New(options),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("cannot load trust anchors")));
  options.ca_file.clear();
  options.ca_dir = dir_.path() + "/missing";
  EXPECT_THAT(CertValidator::New(options),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("does not exist")));
  options.ca_dir.clear();
  options.ca_file = ca_file_;
  options.crl_files = {dir_.Write("junk.crl", "not a crl")};
  EXPECT_THAT(CertValidator::New(options),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("holds no PEM or DER CRL")));
}

TEST_F(CertValidatorTest, NotPem) {
  auto v = Validator();
  ASSERT_OK_AND_ASSIGN(TestCert leaf, pki_->IssueLeaf());
  for (const std::string& body :
       {std::string(""), std::string("   \n"), std::string("<html>hello</html>"),
        std::string("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"),
        std::string("-----BEGIN CERTIFICATE-----\nMIIB"), "junk before\n" + leaf.cert_pem,
        leaf.cert_pem + "junk after", leaf.key_pem + leaf.cert_pem, std::string(70000, 'A')}) {
    CertificateResult r = v->ValidatePem(body, kNow);
    EXPECT_EQ(r.reason, Reason::kFetchNotPem) << body.substr(0, 40) << " -> " << r.detail;
  }
}

TEST_F(CertValidatorTest, ChainCertificateCountIsCapped) {
  ASSERT_OK_AND_ASSIGN(TestCert leaf, pki_->IssueLeaf());
  std::string body = leaf.cert_pem;
  for (int i = 0; i < 8; ++i) body += pki_->intermediate().cert_pem;
  CertificateResult r = Validator()->ValidatePem(body, kNow);
  EXPECT_EQ(r.reason, Reason::kFetchNotPem);
  EXPECT_THAT(r.detail, HasSubstr("more than 8"));
}

TEST_F(CertValidatorTest, MissingIntermediateIsUntrusted) {
  ASSERT_OK_AND_ASSIGN(TestCert leaf, pki_->IssueLeaf());
  CertificateResult r = Validator()->ValidatePem(leaf.cert_pem, kNow);
  EXPECT_EQ(r.reason, Reason::kCertUntrusted) << r.detail;
}

TEST_F(CertValidatorTest, OtherPkiIsUntrusted) {
  ASSERT_OK_AND_ASSIGN(auto other, TestPki::Create(kNow));
  ASSERT_OK_AND_ASSIGN(TestCert leaf, other->IssueLeaf());
  CertificateResult r = Validator()->ValidatePem(other->ChainPem(leaf), kNow);
  EXPECT_EQ(r.reason, Reason::kCertUntrusted) << r.detail;
  // The right leaf with the wrong intermediate.
  ASSERT_OK_AND_ASSIGN(TestCert good, pki_->IssueLeaf());
  r = Validator()->ValidatePem(good.cert_pem + other->intermediate().cert_pem, kNow);
  EXPECT_EQ(r.reason, Reason::kCertUntrusted) << r.detail;
}

TEST_F(CertValidatorTest, SelfSignedIsUntrusted) {
  LeafOptions o;
  o.self_signed = true;
  EXPECT_EQ(Validate(o).reason, Reason::kCertUntrusted);
}

TEST_F(CertValidatorTest, ExpiredAndNotYetValid) {
  LeafOptions expired;
  expired.not_before_offset = -absl::Hours(24 * 30);
  expired.not_after_offset = -absl::Hours(24);
  EXPECT_EQ(Validate(expired).reason, Reason::kCertExpired);
  LeafOptions future;
  future.not_before_offset = absl::Hours(24);
  EXPECT_EQ(Validate(future).reason, Reason::kCertNotYetValid);
  // Validation happens at the given time, not the wall clock.
  ASSERT_OK_AND_ASSIGN(TestCert leaf, pki_->IssueLeaf());
  auto v = Validator();
  EXPECT_TRUE(v->ValidatePem(pki_->ChainPem(leaf), kNow + absl::Hours(24 * 89)).ok());
  EXPECT_EQ(v->ValidatePem(pki_->ChainPem(leaf), kNow + absl::Hours(24 * 91)).reason,
            Reason::kCertExpired);
  EXPECT_EQ(v->ValidatePem(pki_->ChainPem(leaf), kNow - absl::Hours(2)).reason,
            Reason::kCertNotYetValid);
}

TEST_F(CertValidatorTest, NoTnAuthList) {
  LeafOptions o;
  o.tn_auth_list = false;
  CertificateResult r = Validate(o);
  EXPECT_EQ(r.reason, Reason::kCertNoTnAuthList);
  EXPECT_THAT(r.detail, HasSubstr("1.3.6.1.5.5.7.1.26"));
}

TEST_F(CertValidatorTest, MalformedTnAuthListIsRejected) {
  LeafOptions o;
  o.tn_auth_list_der = Bytes({0x30, 0x08, 0xA0, 0x06, 0x16, 0x04, 0x37, 0x30});  // truncated
  CertificateResult r = Validate(o);
  EXPECT_EQ(r.reason, Reason::kCertInvalid);
  EXPECT_THAT(r.detail, HasSubstr("TNAuthList"));
}

TEST_F(CertValidatorTest, PolicyStrictVsLenient) {
  LeafOptions v1;
  v1.policy_oids = {"2.16.840.1.114569.1.1.1"};
  CertificateResult lenient = Validate(v1, ProfileStrictness::kLenient);
  ASSERT_TRUE(lenient.ok()) << lenient.detail;
  EXPECT_THAT(lenient.cert->info.profile_warnings, ElementsAre(HasSubstr("considered invalid")));
  EXPECT_EQ(Validate(v1, ProfileStrictness::kStrict).reason, Reason::kCertPolicy);

  LeafOptions v4;
  v4.policy_oids = {"2.16.840.1.114569.1.1.4"};
  EXPECT_TRUE(Validate(v4, ProfileStrictness::kStrict).ok());

  LeafOptions other;
  other.policy_oids = {"1.2.3.4"};
  EXPECT_EQ(Validate(other, ProfileStrictness::kLenient).reason, Reason::kCertPolicy);
  LeafOptions none;
  none.policy_oids = {};
  EXPECT_EQ(Validate(none, ProfileStrictness::kLenient).reason, Reason::kCertPolicy);
  LeafOptions two;
  two.policy_oids = {"2.16.840.1.114569.1.1.3", "1.2.3.4"};
  EXPECT_TRUE(Validate(two, ProfileStrictness::kLenient).ok());
  EXPECT_EQ(Validate(two, ProfileStrictness::kStrict).reason, Reason::kCertPolicy);
}

TEST_F(CertValidatorTest, KeyUsage) {
  LeafOptions cert_sign;
  cert_sign.key_usage = LeafOptions::KeyUsage::kKeyCertSign;
  EXPECT_EQ(Validate(cert_sign).reason, Reason::kCertKeyUsage);
  LeafOptions absent;
  absent.key_usage = LeafOptions::KeyUsage::kAbsent;
  CertificateResult lenient = Validate(absent);
  ASSERT_TRUE(lenient.ok()) << lenient.detail;
  EXPECT_THAT(lenient.cert->info.profile_warnings, ElementsAre(HasSubstr("KeyUsage is absent")));
  EXPECT_EQ(Validate(absent, ProfileStrictness::kStrict).reason, Reason::kCertKeyUsage);
}

TEST_F(CertValidatorTest, KeyType) {
  LeafOptions p384;
  p384.key_type = LeafOptions::KeyType::kP384;
  EXPECT_EQ(Validate(p384).reason, Reason::kCertKeyType);
  LeafOptions rsa;
  rsa.key_type = LeafOptions::KeyType::kRsa2048;
  EXPECT_EQ(Validate(rsa).reason, Reason::kCertKeyType);
}

TEST_F(CertValidatorTest, CaLeafIsInvalid) {
  LeafOptions o;
  o.ca = true;
  EXPECT_EQ(Validate(o).reason, Reason::kCertInvalid);
}

TEST_F(CertValidatorTest, SpcRulesStrictVsLenient) {
  LeafOptions lower;
  lower.spc = "709j";
  CertificateResult lenient = Validate(lower);
  ASSERT_TRUE(lenient.ok()) << lenient.detail;
  EXPECT_THAT(lenient.cert->info.profile_warnings, ElementsAre(HasSubstr("upper-case")));
  EXPECT_EQ(Validate(lower, ProfileStrictness::kStrict).reason, Reason::kCertInvalid);

  LeafOptions two;  // SPC + one TN
  two.tn_auth_list_der = Bytes({0x30, 0x0F, 0xA0, 0x06, 0x16, 0x04, '7', '0', '9', 'J', 0xA2, 0x05,
                                0x16, 0x03, '1', '2', '3'});
  lenient = Validate(two);
  ASSERT_TRUE(lenient.ok()) << lenient.detail;
  EXPECT_EQ(lenient.cert->info.spc, "709J");
  EXPECT_EQ(lenient.cert->info.tn_auth_list.size(), 2u);
  EXPECT_EQ(Validate(two, ProfileStrictness::kStrict).reason, Reason::kCertNoTnAuthList);
}

// RFC 9060 / ATIS-1000092: a delegate certificate (TNs and ranges, no SPC) is a SHAKEN profile
// of its own, accepted under both policies without warnings; the verifier then checks orig.tn
// against its numbers (verifier_test). Mixing an SPC with TNs is neither profile.
TEST_F(CertValidatorTest, DelegateCertificatesPassBothPolicies) {
  LeafOptions o;
  o.common_name = "delegate 12155550100";
  o.tn_auth_entries = {{TnAuthEntry::Kind::kOne, "12155550100", 0},
                       {TnAuthEntry::Kind::kRange, "12155550200", 100}};
  for (ProfileStrictness strictness : {ProfileStrictness::kLenient, ProfileStrictness::kStrict}) {
    CertificateResult r = Validate(o, strictness);
    ASSERT_TRUE(r.ok()) << ReasonName(r.reason) << ": " << r.detail;
    EXPECT_EQ(r.cert->info.spc, "");
    ASSERT_EQ(r.cert->info.tn_auth_list.size(), 2u);
    EXPECT_EQ(r.cert->info.tn_auth_list[0].kind, TnAuthEntry::Kind::kOne);
    EXPECT_EQ(r.cert->info.tn_auth_list[1].kind, TnAuthEntry::Kind::kRange);
    EXPECT_EQ(r.cert->info.tn_auth_list[1].count, 100u);
    EXPECT_THAT(r.cert->info.profile_warnings, IsEmpty());
  }
  LeafOptions mixed;
  mixed.tn_auth_entries = {{TnAuthEntry::Kind::kSpc, "709J", 0},
                           {TnAuthEntry::Kind::kOne, "12155550100", 0}};
  CertificateResult strict = Validate(mixed, ProfileStrictness::kStrict);
  EXPECT_EQ(strict.reason, Reason::kCertNoTnAuthList);
  EXPECT_THAT(strict.detail, HasSubstr("delegate"));
  LeafOptions two_spcs;
  two_spcs.tn_auth_entries = {{TnAuthEntry::Kind::kSpc, "709J", 0},
                              {TnAuthEntry::Kind::kSpc, "123A", 0}};
  EXPECT_EQ(Validate(two_spcs, ProfileStrictness::kStrict).reason, Reason::kCertNoTnAuthList);
}

TEST(TnAuthListCoversTest, OnesAndRanges) {
  using Kind = TnAuthEntry::Kind;
  const std::vector<TnAuthEntry> list = {{Kind::kSpc, "709J", 0},
                                         {Kind::kOne, "12155550100", 0},
                                         {Kind::kOne, "*67#", 0},
                                         {Kind::kRange, "12155550190", 20},
                                         {Kind::kRange, "999999999999990", 1ull << 63}};
  EXPECT_TRUE(TnAuthListHasTns(list));
  EXPECT_FALSE(TnAuthListHasTns({{Kind::kSpc, "709J", 0}}));
  EXPECT_TRUE(TnAuthListCovers(list, "12155550100"));
  EXPECT_TRUE(TnAuthListCovers(list, "*67#"));
  EXPECT_TRUE(TnAuthListCovers(list, "12155550190"));
  EXPECT_TRUE(TnAuthListCovers(list, "12155550209"));   // start + count - 1
  EXPECT_FALSE(TnAuthListCovers(list, "12155550210"));  // start + count
  EXPECT_FALSE(TnAuthListCovers(list, "12155550189"));
  EXPECT_FALSE(TnAuthListCovers(list, "1215555019"));    // shorter
  EXPECT_FALSE(TnAuthListCovers(list, "121555501900"));  // longer
  EXPECT_FALSE(TnAuthListCovers(list, "1215555019#"));
  EXPECT_FALSE(TnAuthListCovers(list, "709J"));  // an SPC is not a number
  EXPECT_FALSE(TnAuthListCovers(list, ""));
  EXPECT_TRUE(TnAuthListCovers(list, "999999999999999"));  // no overflow on a huge count
  EXPECT_FALSE(TnAuthListCovers(list, "999999999999989"));
}

TEST_F(CertValidatorTest, RevokedViaCrl) {
  ASSERT_OK_AND_ASSIGN(TestCert leaf, pki_->IssueLeaf());
  ASSERT_OK_AND_ASSIGN(TestCert other, pki_->IssueLeaf());
  ASSERT_OK_AND_ASSIGN(std::string crl, pki_->CrlPem({leaf.cert.get()}, /*issuer_is_root=*/false));
  auto v = Validator(ProfileStrictness::kLenient, {dir_.Write("sti.crl", crl)});
  CertificateResult r = v->ValidatePem(pki_->ChainPem(leaf), kNow);
  EXPECT_EQ(r.reason, Reason::kCertRevoked) << r.detail;
  r = v->ValidatePem(pki_->ChainPem(other), kNow);
  ASSERT_TRUE(r.ok()) << r.detail;
  // The cached validation must not outlive the CRL.
  EXPECT_EQ(r.cert->valid_until, kNow + absl::Hours(24 * 7));
}

TEST_F(CertValidatorTest, RevokedIntermediateViaRootCrl) {
  ASSERT_OK_AND_ASSIGN(TestCert leaf, pki_->IssueLeaf());
  ASSERT_OK_AND_ASSIGN(std::string crl,
                       pki_->CrlPem({pki_->intermediate().cert.get()}, /*issuer_is_root=*/true));
  auto v = Validator(ProfileStrictness::kLenient, {dir_.Write("root.crl", crl)});
  EXPECT_EQ(v->ValidatePem(pki_->ChainPem(leaf), kNow).reason, Reason::kCertRevoked);
}

TEST_F(CertValidatorTest, RequireCrl) {
  ASSERT_OK_AND_ASSIGN(TestCert leaf, pki_->IssueLeaf());
  ASSERT_OK_AND_ASSIGN(std::string crl, pki_->CrlPem({}, /*issuer_is_root=*/true));
  CertValidatorOptions options;
  options.ca_file = ca_file_;
  options.crl_files = {dir_.Write("root.crl", crl)};
  options.require_crl = true;  // the intermediate's CRL is missing
  ASSERT_OK_AND_ASSIGN(auto v, CertValidator::New(options));
  CertificateResult r = v->ValidatePem(pki_->ChainPem(leaf), kNow);
  EXPECT_EQ(r.reason, Reason::kCertUntrusted);
  EXPECT_THAT(r.detail, HasSubstr("CRL"));
  options.require_crl = false;
  ASSERT_OK(v->Reload(options));
  EXPECT_TRUE(v->ValidatePem(pki_->ChainPem(leaf), kNow).ok());
}

TEST_F(CertValidatorTest, ReloadSwapsTrustAnchors) {
  ASSERT_OK_AND_ASSIGN(auto other, TestPki::Create(kNow));
  ASSERT_OK_AND_ASSIGN(TestCert leaf, other->IssueLeaf());
  auto v = Validator();
  const uint64_t gen = v->generation();
  EXPECT_EQ(v->ValidatePem(other->ChainPem(leaf), kNow).reason, Reason::kCertUntrusted);
  // SIGHUP: the operator replaced the CA file.
  dir_.Write("ca.pem", other->root().cert_pem);
  ASSERT_OK(v->Reload());
  EXPECT_GT(v->generation(), gen);
  EXPECT_TRUE(v->ValidatePem(other->ChainPem(leaf), kNow).ok());
  // A failed reload keeps the previous configuration.
  dir_.Write("ca.pem", "garbage");
  EXPECT_FALSE(v->Reload().ok());
  EXPECT_TRUE(v->ValidatePem(other->ChainPem(leaf), kNow).ok());
}

TEST_F(CertValidatorTest, ConcurrentValidateAndReload) {
  ASSERT_OK_AND_ASSIGN(TestCert leaf, pki_->IssueLeaf());
  auto v = Validator();
  std::string chain = pki_->ChainPem(leaf);
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 50; ++i) {
        if (!v->ValidatePem(chain, kNow).ok()) failures++;
      }
    });
  }
  for (int i = 0; i < 20; ++i) ASSERT_OK(v->Reload());
  for (auto& t : threads) t.join();
  EXPECT_EQ(failures.load(), 0);
}

TEST(ParsePemChainTest, TooLarge) {
  EXPECT_THAT(ParsePemChain(std::string(100, ' '), 8, 50),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("limit")));
}

}  // namespace
}  // namespace shaken::stir
