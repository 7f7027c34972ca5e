// delegate_scope_test.cc: delegate certificates (RFC 9060; DL-2, DL-3 in docs/standards.md): what
// a TNAuthList scope encompasses (EntriesOutsideScope), the signer's orig check
// (CheckOrigInScope), and the chain rule under both policies (CertValidator, the DL-3 row of the
// profile table).
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "stir/cert_validator.h"
#include "stir/tn_auth_list.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/test_pki.h"

namespace shaken::stir {
namespace {

using ::shaken::testing::LeafOptions;
using ::shaken::testing::StatusIs;
using ::shaken::testing::TempDir;
using ::shaken::testing::TestCert;
using ::shaken::testing::TestPki;
using ::testing::HasSubstr;
using ::testing::IsEmpty;
using Kind = TnAuthEntry::Kind;

const absl::Time kNow = absl::FromUnixSeconds(1767225600);  // 2026-01-01T00:00:00Z

TnAuthEntry Spc(std::string v) { return {Kind::kSpc, std::move(v), 0}; }
TnAuthEntry One(std::string v) { return {Kind::kOne, std::move(v), 0}; }
TnAuthEntry Range(std::string v, uint64_t n) { return {Kind::kRange, std::move(v), n}; }

// The scope of the brief's example: 12155550100-12155550149 and 12155551000.
const std::vector<TnAuthEntry> kScope = {Range("12155550100", 50), One("12155551000")};

TEST(TnAuthScopeTextTest, RangesAsFirstAndLastNumber) {
  EXPECT_EQ(TnAuthScopeText(kScope), "12155550100-12155550149, 12155551000");
  EXPECT_EQ(TnAuthScopeText({Spc("709J"), Range("0001", 5)}), "SPC 709J, 0001-0005");
  // A range running past the numbers of its length stops at 99...9.
  EXPECT_EQ(TnAuthScopeText({Range("995", 10)}), "995-999");
  EXPECT_EQ(TnAuthScopeText({Range("*67", 2)}), "*67 +2");
}

TEST(EntriesOutsideScopeTest, TnsAndRangesMustLieWithinTheScopeNumbers) {
  EXPECT_THAT(EntriesOutsideScope(kScope, {One("12155550100"), One("12155550149"),
                                           One("12155551000"), Range("12155550110", 40)}),
              IsEmpty());
  // One past either end, and a range straddling the end.
  std::vector<TnAuthEntry> outside = EntriesOutsideScope(
      kScope, {One("12155550099"), One("12155550150"), Range("12155550140", 11),
               One("12155551001"), Range("12155550100", 50)});
  EXPECT_EQ(TnAuthScopeText(outside),
            "12155550099, 12155550150, 12155550140-12155550150, 12155551001");
  // Equal digits but another length are other numbers.
  EXPECT_EQ(EntriesOutsideScope(kScope, {One("2155550100")}).size(), 1u);
  EXPECT_EQ(EntriesOutsideScope(kScope, {One("121555501000")}).size(), 1u);
  // An SPC of the subordinate needs the same SPC in the scope.
  EXPECT_EQ(EntriesOutsideScope(kScope, {Spc("709J")}).size(), 1u);
  EXPECT_THAT(EntriesOutsideScope({Spc("709J")}, {Spc("709J")}), IsEmpty());
  EXPECT_EQ(EntriesOutsideScope({Spc("709J")}, {Spc("123A")}).size(), 1u);
}

TEST(EntriesOutsideScopeTest, AdjacentRangesAndTnsJoin) {
  // 100-104 and 105-109 together encompass 102-108; the TN 110 extends them to 111.
  const std::vector<TnAuthEntry> scope = {Range("12155550105", 5), One("12155550110"),
                                          Range("12155550100", 5)};
  EXPECT_THAT(EntriesOutsideScope(scope, {Range("12155550102", 7), Range("12155550100", 11)}),
              IsEmpty());
  EXPECT_EQ(EntriesOutsideScope(scope, {Range("12155550100", 12)}).size(), 1u);
  // A gap: 100-104 and 106-109 do not encompass 103-107.
  EXPECT_EQ(EntriesOutsideScope({Range("12155550100", 5), Range("12155550106", 4)},
                                {Range("12155550103", 5)})
                .size(),
            1u);
}

TEST(EntriesOutsideScopeTest, HugeRangesAndSymbols) {
  // count up to 2^63 with 15 digits: no overflow, the range stops at 999999999999999.
  const std::vector<TnAuthEntry> all15 = {Range("100000000000000", uint64_t{1} << 63)};
  EXPECT_THAT(EntriesOutsideScope(all15, {Range("999999999999990", uint64_t{1} << 63)}),
              IsEmpty());
  EXPECT_EQ(EntriesOutsideScope(all15, {One("099999999999999")}).size(), 1u);
  // '#' and '*' are matched as written.
  EXPECT_THAT(EntriesOutsideScope({One("*67"), Range("#1", 5)}, {One("*67"), Range("#1", 3)}),
              IsEmpty());
  EXPECT_EQ(EntriesOutsideScope({Range("#1", 5)}, {Range("#2", 2)}).size(), 1u);
}

TEST(EntriesOutsideScopeTest, AnSpcScopeEncompassesNumbers) {
  // The numbers of an SPC are not in the certificate: the issuing CA vouches for them (SH-13).
  EXPECT_THAT(EntriesOutsideScope({Spc("709J")}, {One("12155550100"), Range("12155550200", 9)}),
              IsEmpty());
  EXPECT_THAT(EntriesOutsideScope({Spc("709J"), One("1")}, {One("19995550000")}), IsEmpty());
}

TEST(CheckOrigInScopeTest, DelegateCertificatesSignTheirNumbersOnly) {
  EXPECT_OK(CheckOrigInScope(kScope, "12155550149", "X"));
  EXPECT_OK(CheckOrigInScope(kScope, "+1 (215) 555-1000", "X"));  // canonicalized first
  const absl::Status outside = CheckOrigInScope(kScope, "12155550199", "profile X");
  EXPECT_THAT(outside, StatusIs(absl::StatusCode::kFailedPrecondition,
                                "orig 12155550199 is outside the delegate certificate's "
                                "TNAuthList (12155550100-12155550149, 12155551000) of profile X"));
  EXPECT_TRUE(IsOrigOutsideScope(outside));
  EXPECT_FALSE(IsOrigOutsideScope(absl::FailedPreconditionError(outside.message())));
  const absl::Status bad = CheckOrigInScope(kScope, "not a number", "X");
  EXPECT_THAT(bad, StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("orig tn")));
  EXPECT_FALSE(IsOrigOutsideScope(bad));
  // An SPC-only certificate scopes nothing.
  EXPECT_OK(CheckOrigInScope({Spc("709J")}, "19995550123", "X"));
}

// DL-3 through the validator: root -> STI-CA -> SP-CA (TNAuthList) -> delegate leaf.
class DelegateChainTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(pki_, TestPki::Create(kNow));
    ca_file_ = dir_.Write("ca.pem", pki_->root().cert_pem);
  }

  CertificateResult Validate(const std::vector<TnAuthEntry>& sp_ca_scope,
                             const std::vector<TnAuthEntry>& leaf_entries,
                             ProfileStrictness strictness) {
    auto sp_ca = pki_->IssueSpCa("Example SP-CA", EncodeTnAuthListUnchecked(sp_ca_scope));
    EXPECT_TRUE(sp_ca.ok()) << sp_ca.status();
    LeafOptions o;
    o.common_name = "Example Enterprise";
    o.tn_auth_entries = leaf_entries;
    o.issuer = &*sp_ca;
    auto leaf = pki_->IssueLeaf(o);
    EXPECT_TRUE(leaf.ok()) << leaf.status();
    CertValidatorOptions options;
    options.ca_file = ca_file_;
    options.strictness = strictness;
    auto validator = CertValidator::New(options);
    EXPECT_TRUE(validator.ok()) << validator.status();
    return (*validator)->ValidatePem(pki_->ChainPem(*leaf), kNow);
  }

  TempDir dir_;
  std::unique_ptr<TestPki> pki_;
  std::string ca_file_;
};

TEST_F(DelegateChainTest, ScopeWithinTheSpCaPassesBothPolicies) {
  for (ProfileStrictness strictness : {ProfileStrictness::kLenient, ProfileStrictness::kStrict}) {
    CertificateResult r = Validate(kScope, {Range("12155550120", 10), One("12155551000")},
                                   strictness);
    ASSERT_TRUE(r.ok()) << ReasonName(r.reason) << ": " << r.detail;
    EXPECT_EQ(r.cert->info.tn_auth_list.size(), 2u);
    // An SP-CA holding an SPC may delegate numbers (see EntriesOutsideScope).
    r = Validate({Spc("709J")}, {One("12155550120")}, strictness);
    ASSERT_TRUE(r.ok()) << ReasonName(r.reason) << ": " << r.detail;
  }
}

TEST_F(DelegateChainTest, ScopeBeyondTheSpCaFailsBothPolicies) {
  for (ProfileStrictness strictness : {ProfileStrictness::kLenient, ProfileStrictness::kStrict}) {
    CertificateResult r = Validate(kScope, {Range("12155550140", 20)}, strictness);
    EXPECT_EQ(r.reason, Reason::kCertScopeExceeded) << r.detail;
    EXPECT_EQ(ReasonSipCode(r.reason), 437);
    EXPECT_THAT(r.detail, HasSubstr("holds 12155550140-12155550159, outside the TNAuthList of "
                                    "its issuer, the CA certificate at depth 1"));
    EXPECT_THAT(r.detail, HasSubstr("12155550100-12155550149, 12155551000"));
    r = Validate({Spc("709J")}, {Spc("123A")}, strictness);
    // Strict: an SPC leaf under a CA with a TNAuthList is refused by CE-10 first.
    EXPECT_EQ(r.reason, strictness == ProfileStrictness::kStrict ? Reason::kCertInvalid
                                                                : Reason::kCertScopeExceeded)
        << r.detail;
  }
}

TEST_F(DelegateChainTest, MalformedCaScopeIsRefused) {
  auto sp_ca = pki_->IssueSpCa("Example SP-CA", std::string("\x30\x03\xa2\x01", 4));
  ASSERT_TRUE(sp_ca.ok()) << sp_ca.status();
  LeafOptions o;
  o.tn_auth_entries = {One("12155550120")};
  o.issuer = &*sp_ca;
  ASSERT_OK_AND_ASSIGN(TestCert leaf, pki_->IssueLeaf(o));
  CertValidatorOptions options;
  options.ca_file = ca_file_;
  ASSERT_OK_AND_ASSIGN(auto validator, CertValidator::New(options));
  CertificateResult r = validator->ValidatePem(pki_->ChainPem(leaf), kNow);
  EXPECT_EQ(r.reason, Reason::kCertInvalid);
  EXPECT_THAT(r.detail, HasSubstr("is malformed"));
}

}  // namespace
}  // namespace shaken::stir
