// cert_profile_test.cc: the one SHAKEN profile table: its ids are the CE-* items, a good leaf meets
// every rule, and each defect yields the finding whose enforcement makes a strict validation
// reject, a lenient one warn or ignore, and the lint fail, as docs/standards.md has it.
#include "stir/cert_profile.h"

#include <set>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/test_pki.h"

namespace shaken::stir {
namespace {

using shaken::testing::LeafOptions;
using shaken::testing::TestCert;

// The profile does not depend on the time, but the test PKI and the VALID rule read one.
const absl::Time kNow = absl::FromUnixSeconds(1767225600);  // 2026-01-01T00:00:00Z

class CertProfileTest : public ::testing::Test {
 protected:
  void SetUp() override { ASSERT_OK_AND_ASSIGN(pki_, shaken::testing::TestPki::Create(kNow)); }

  TestCert Leaf(const LeafOptions& options = {}) {
    absl::StatusOr<TestCert> leaf = pki_->IssueLeaf(options);
    EXPECT_TRUE(leaf.ok()) << leaf.status();
    return leaf.ok() ? *std::move(leaf) : TestCert{};
  }

  // The findings of rule `id` for `cert` as an end entity.
  std::vector<ProfileFinding> Findings(const X509* cert, std::string_view id) {
    ProfileSubject s = MakeProfileSubject(cert, CertRole::kEndEntity, nullptr, kNow);
    for (const ProfileRule& rule : ShakenProfileRules()) {
      if (rule.id == id) return rule.check(s).findings;
    }
    ADD_FAILURE() << "no rule " << id;
    return {};
  }

  Reason Validate(const X509* cert, ProfileStrictness strictness, CertificateInfo* info,
                  std::string* detail) {
    return ValidateProfile(MakeProfileSubject(cert, CertRole::kEndEntity, nullptr, kNow),
                           strictness, info, detail);
  }

  std::unique_ptr<shaken::testing::TestPki> pki_;
};

TEST_F(CertProfileTest, TableHoldsEachCeItemOnceInOrder) {
  std::vector<std::string> ids;
  std::set<std::string> unique;
  for (const ProfileRule& rule : ShakenProfileRules()) {
    ids.emplace_back(rule.id);
    unique.emplace(rule.id);
    EXPECT_NE(rule.check, nullptr) << rule.id;
  }
  EXPECT_EQ(unique.size(), ids.size());
  EXPECT_THAT(ids, ::testing::ElementsAre("EXT", "CE-1", "CE-2", "CE-3", "CE-4", "CE-5", "CE-6", "CE-7",
                               "CE-8", "CE-9", "CE-10", "DL-3", "CE-11", "VALID", "CE-14"));
}

TEST_F(CertProfileTest, GoodLeafMeetsEveryRuleAndFillsInfo) {
  TestCert leaf = Leaf();
  ProfileSubject s = MakeProfileSubject(leaf.cert.get(), CertRole::kEndEntity, nullptr, kNow);
  for (const ProfileRule& rule : ShakenProfileRules()) {
    RuleResult r = rule.check(s);
    for (const ProfileFinding& f : r.findings) {
      // The test PKI's leaf has no SHA-1 SKI check and an HTTPS CRLDP without cRLIssuer; none of
      // that is a validation's business.
      EXPECT_THAT(f.enforcement, ::testing::AnyOf(Enforcement::kFullProfile, Enforcement::kAdvice))
          << rule.id << ": " << f.detail;
    }
  }
  for (ProfileStrictness strictness : {ProfileStrictness::kLenient, ProfileStrictness::kStrict}) {
    CertificateInfo info;
    std::string detail;
    EXPECT_EQ(Validate(leaf.cert.get(), strictness, &info, &detail), Reason::kPassed) << detail;
    EXPECT_THAT(info.profile_warnings, ::testing::IsEmpty());
    EXPECT_EQ(info.spc, "709J");
    EXPECT_THAT(info.policy_oids, ::testing::ElementsAre(kShakenPolicyV13));
    ASSERT_EQ(info.tn_auth_list.size(), 1u);
  }
}

TEST_F(CertProfileTest, KeyUsageAbsentIsStrictRejectionLenientWarning) {
  TestCert leaf = Leaf({.key_usage = LeafOptions::KeyUsage::kAbsent});
  std::vector<ProfileFinding> f = Findings(leaf.cert.get(), "CE-6");
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].enforcement, Enforcement::kStrict);
  EXPECT_EQ(Judge(f[0], ProfileStrictness::kStrict), Judgement::kReject);
  EXPECT_EQ(Judge(f[0], ProfileStrictness::kLenient), Judgement::kWarn);

  CertificateInfo info;
  std::string detail;
  EXPECT_EQ(Validate(leaf.cert.get(), ProfileStrictness::kStrict, &info, &detail),
            Reason::kCertKeyUsage);
  EXPECT_THAT(detail, ::testing::HasSubstr("critical and digitalSignature only"));
  EXPECT_EQ(Validate(leaf.cert.get(), ProfileStrictness::kLenient, &info, &detail),
            Reason::kPassed);
  EXPECT_THAT(info.profile_warnings, ::testing::ElementsAre("KeyUsage is absent"));
}

TEST_F(CertProfileTest, MissingTnAuthListIsRejectedByEveryPolicy) {
  TestCert leaf = Leaf({.tn_auth_list = false});
  std::vector<ProfileFinding> f = Findings(leaf.cert.get(), "CE-10");
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].enforcement, Enforcement::kAlways);
  EXPECT_EQ(f[0].reason, Reason::kCertNoTnAuthList);
  EXPECT_THAT(f[0].detail, ::testing::HasSubstr(kTnAuthListOid));
}

TEST_F(CertProfileTest, DelegateListPassesValidationButNotTheFullProfile) {
  TestCert leaf = Leaf({.tn_auth_entries = {{TnAuthEntry::Kind::kOne, "12155550121", 0}},
                        .common_name = "SHAKEN delegate"});
  std::vector<ProfileFinding> f = Findings(leaf.cert.get(), "CE-10");
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].enforcement, Enforcement::kFullProfile);
  CertificateInfo info;
  std::string detail;
  EXPECT_EQ(Validate(leaf.cert.get(), ProfileStrictness::kStrict, &info, &detail), Reason::kPassed)
      << detail;
  EXPECT_EQ(info.spc, "");
}

TEST_F(CertProfileTest, PolicyFindingsFollowTheCp) {
  TestCert old = Leaf({.policy_oids = {kShakenPolicyV1}});
  std::vector<ProfileFinding> f = Findings(old.cert.get(), "CE-8");
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].enforcement, Enforcement::kStrict);
  EXPECT_THAT(f[0].note, ::testing::HasSubstr("considered invalid"));

  TestCert two = Leaf({.policy_oids = {kShakenPolicyV13, kShakenPolicyV14}});
  f = Findings(two.cert.get(), "CE-8");
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].enforcement, Enforcement::kStrictOnly);
  EXPECT_EQ(f[0].reason, Reason::kCertPolicy);

  TestCert none = Leaf({.policy_oids = {"1.2.3.4"}});
  f = Findings(none.cert.get(), "CE-8");
  ASSERT_EQ(f.size(), 1u);
  EXPECT_EQ(f[0].enforcement, Enforcement::kAlways);
  EXPECT_THAT(f[0].detail, ::testing::HasSubstr("found [1.2.3.4]"));
}

TEST_F(CertProfileTest, ValidationStopsAtTheFirstRejectedRuleInTableOrder) {
  // A P-384 key (CE-3, always) and no TNAuthList (CE-10, always): CE-3 comes first.
  TestCert leaf = Leaf({.tn_auth_list = false, .key_type = LeafOptions::KeyType::kP384});
  CertificateInfo info;
  std::string detail;
  EXPECT_EQ(Validate(leaf.cert.get(), ProfileStrictness::kLenient, &info, &detail),
            Reason::kCertKeyType);
}

TEST_F(CertProfileTest, CaRolesHaveTheirOwnRequirements) {
  const X509* root = pki_->root().cert.get();
  EXPECT_EQ(RoleOf(root), CertRole::kRoot);
  EXPECT_EQ(RoleOf(pki_->intermediate().cert.get()), CertRole::kIntermediate);
  ProfileSubject s = MakeProfileSubject(root, CertRole::kRoot, nullptr, kNow);
  for (const ProfileRule& rule : ShakenProfileRules()) {
    if (rule.id != "CE-5" && rule.id != "CE-10") continue;
    RuleResult r = rule.check(s);
    EXPECT_THAT(r.findings, ::testing::IsEmpty()) << rule.id << ": " << r.observed;
  }
}

}  // namespace
}  // namespace shaken::stir
