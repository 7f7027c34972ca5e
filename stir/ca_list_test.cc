#include "stir/ca_list.h"

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "stir/cert_validator.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/test_pki.h"

namespace shaken::stir {
namespace {

using ::shaken::testing::TestPki;
using ::testing::HasSubstr;

const absl::Time kNow = absl::FromUnixSeconds(1767225600);  // 2026-01-01

class CaListTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(pki1_, TestPki::Create(kNow));
    ASSERT_OK_AND_ASSIGN(pki2_, TestPki::Create(kNow));
  }
  std::unique_ptr<TestPki> pki1_, pki2_;
};

TEST_F(CaListTest, AcceptsCaCertificatesInOrderWithoutDuplicates) {
  const std::string body = pki1_->root().cert_pem + "\n" + pki2_->root().cert_pem +
                           pki1_->intermediate().cert_pem + pki1_->root().cert_pem;
  ASSERT_OK_AND_ASSIGN(CaList list, ParseCaList(body, kNow));
  EXPECT_EQ(list.fingerprints.size(), 3u);
  EXPECT_EQ(list.subjects.size(), 3u);
  EXPECT_TRUE(list.dropped.empty());
  EXPECT_EQ(list.fingerprints[0].size(), 64u);  // SHA-256, hex
  // The kept anchors are PEM that parses back to the same list.
  ASSERT_OK_AND_ASSIGN(CaList again, ParseCaList(list.pem, kNow));
  EXPECT_EQ(again.fingerprints, list.fingerprints);
}

TEST_F(CaListTest, AnEndEntityCertificateRefusesTheWholeList) {
  ASSERT_OK_AND_ASSIGN(auto leaf, pki1_->IssueLeaf());
  auto list = ParseCaList(pki1_->root().cert_pem + leaf.cert_pem, kNow);
  EXPECT_THAT(list, testing::StatusIs(absl::StatusCode::kInvalidArgument,
                                      ::testing::AllOf(HasSubstr("certificate 2"),
                                                       HasSubstr("not a CA certificate"))));
}

TEST_F(CaListTest, OutOfValidityCertificatesAreDroppedAndAnEmptyListRefused) {
  // TestPki roots are valid for 10 years from kNow - 1 day.
  const absl::Time later = kNow + absl::Hours(24 * 365 * 11);
  auto list = ParseCaList(pki1_->root().cert_pem, later);
  EXPECT_THAT(list, testing::StatusIs(absl::StatusCode::kInvalidArgument,
                                      HasSubstr("no certificate valid now")));
  ASSERT_OK_AND_ASSIGN(auto young, TestPki::Create(kNow + absl::Hours(24 * 365 * 5)));
  ASSERT_OK_AND_ASSIGN(CaList kept,
                       ParseCaList(pki1_->root().cert_pem + young->root().cert_pem, later));
  EXPECT_EQ(kept.fingerprints.size(), 1u);
  ASSERT_EQ(kept.dropped.size(), 1u);
  EXPECT_THAT(kept.dropped[0], HasSubstr("expired"));
}

TEST_F(CaListTest, NotAPemBundleIsRefused) {
  for (const std::string& body : {std::string(""), std::string("<html>no</html>"),
                                 pki1_->root().cert_pem + "trailing text"}) {
    EXPECT_THAT(ParseCaList(body, kNow),
                testing::StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("PEM bundle")))
        << body.substr(0, 40);
  }
  EXPECT_THAT(ParseCaList(pki1_->root().cert_pem + pki2_->root().cert_pem, kNow,
                          {.max_bytes = 1 << 20, .max_certs = 1}),
              testing::StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("at most 1")));
}

// The validator trusts listed anchors like ca_file ones, and may start with none.
TEST_F(CaListTest, ListedAnchorsAreTrustAnchorsOfTheValidator) {
  ASSERT_OK_AND_ASSIGN(auto leaf, pki2_->IssueLeaf());
  const std::string chain = pki2_->ChainPem(leaf);
  EXPECT_THAT(CertValidator::New({}), testing::StatusIs(absl::StatusCode::kInvalidArgument,
                                                        HasSubstr("no trust anchors")));
  ASSERT_OK_AND_ASSIGN(auto validator, CertValidator::New({.anchors_may_be_empty = true}));
  EXPECT_EQ(validator->ValidatePem(chain, kNow).reason, Reason::kCertUntrusted);
  ASSERT_OK_AND_ASSIGN(CaList list, ParseCaList(pki2_->root().cert_pem, kNow));
  CertValidatorOptions options = validator->options();
  options.listed_anchors_pem = list.pem;
  ASSERT_OK(validator->Reload(options));
  const CertificateResult r = validator->ValidatePem(chain, kNow);
  EXPECT_TRUE(r.ok()) << ReasonName(r.reason) << ": " << r.detail;
}

}  // namespace
}  // namespace shaken::stir
