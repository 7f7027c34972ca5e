#include "stir/openssl_util.h"

#include <openssl/pem.h>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "stir/memory_signer.h"
#include "tests/testing/status_matchers.h"

namespace shaken::stir {
namespace {

using ::shaken::testing::IsOkAndHolds;
using ::shaken::testing::StatusIs;
using ::testing::HasSubstr;

Es256Signature Filled(uint8_t r0, uint8_t s0, size_t r_zeros = 0) {
  Es256Signature sig;
  for (size_t i = 0; i < 64; ++i) sig[i] = static_cast<uint8_t>(i * 7 + 1);
  sig[0] = r0;
  sig[32] = s0;
  for (size_t i = 0; i < r_zeros; ++i) sig[i] = 0;
  return sig;
}

TEST(EcdsaEncodingTest, RoundTripsEdgeCases) {
  // High bit set (DER adds a 0x00), leading zeros (DER drops them), small values.
  for (const Es256Signature& sig :
       {Filled(0x80, 0xff), Filled(0x01, 0x7f), Filled(0x00, 0x80, 1), Filled(0, 0x10, 31)}) {
    auto der = EcdsaRawToDer(sig);
    ASSERT_OK(der);
    EXPECT_THAT(EcdsaDerToRaw(*der), IsOkAndHolds(sig));
  }
}

TEST(EcdsaEncodingTest, RejectsMalformedDer) {
  std::string good = *EcdsaRawToDer(Filled(0x12, 0x34));
  std::vector<std::string> bad = {
      "", "\x30", good.substr(0, good.size() - 1), good + "x",
      std::string("\x31") + good.substr(1),                          // not a SEQUENCE
      std::string("\x30\x06\x02\x01\x80\x02\x01\x01", 8),            // negative r
      std::string("\x30\x07\x02\x02\x00\x01\x02\x01\x01", 9),        // non-minimal r
      std::string("\x30\x06\x02\x00\x02\x02\x01\x01", 8),            // empty r
  };
  for (const std::string& d : bad) {
    EXPECT_THAT(EcdsaDerToRaw(d), StatusIs(absl::StatusCode::kInvalidArgument)) << d.size();
  }
  // 33 significant bytes do not fit P-256.
  std::string big = std::string("\x30\x26\x02\x21\x01", 5) + std::string(32, '\x11') +
                    std::string("\x02\x01\x01", 3);
  EXPECT_THAT(EcdsaDerToRaw(big), StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(VerifyEs256Test, CachedContextsFollowTheKey) {
  // Alternate among more keys than the per-thread cache holds: each signature verifies only with
  // its own key.
  std::vector<std::unique_ptr<MemorySigner>> signers;
  for (int i = 0; i < 12; ++i) signers.push_back(*MemorySigner::Generate());
  const Sha256Digest digest = Sha256("cache");
  for (int round = 0; round < 3; ++round) {
    for (size_t i = 0; i < signers.size(); ++i) {
      auto sig = signers[i]->SignDigest(digest, absl::InfiniteFuture());
      ASSERT_OK(sig);
      EXPECT_OK(VerifyEs256(signers[i]->key(), digest, *sig));
      EXPECT_FALSE(VerifyEs256(signers[(i + 1) % signers.size()]->key(), digest, *sig).ok());
    }
  }
}

TEST(PrivateKeyPemTest, EncryptedKeysNeedTheirPassphraseAndNeverPrompt) {
  EvpPkeyPtr key(EVP_EC_gen("P-256"));
  ASSERT_NE(key, nullptr);
  ASSERT_OK_AND_ASSIGN(std::string plain, PrivateKeyToPem(key.get()));
  EXPECT_THAT(plain, HasSubstr("-----BEGIN PRIVATE KEY-----"));
  EXPECT_FALSE(IsEncryptedPrivateKeyPem(plain));
  ASSERT_OK_AND_ASSIGN(std::string sealed, PrivateKeyToPem(key.get(), "correct horse"));
  EXPECT_THAT(sealed, HasSubstr("-----BEGIN ENCRYPTED PRIVATE KEY-----"));
  EXPECT_TRUE(IsEncryptedPrivateKeyPem(sealed));

  ASSERT_OK_AND_ASSIGN(EvpPkeyPtr back, ReadPrivateKeyPem(sealed, "correct horse"));
  EXPECT_EQ(EVP_PKEY_eq(back.get(), key.get()), 1);
  ASSERT_OK_AND_ASSIGN(EvpPkeyPtr unsealed, ReadPrivateKeyPem(plain, "ignored"));
  EXPECT_EQ(EVP_PKEY_eq(unsealed.get(), key.get()), 1);

  EXPECT_THAT(ReadPrivateKeyPem(sealed),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("give its passphrase")));
  EXPECT_THAT(ReadPrivateKeyPem(sealed, "wrong horse"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("wrong passphrase")));
  EXPECT_THAT(ReadPrivateKeyPem("not a key"),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not a PEM private key")));
  EXPECT_THAT(PrivateKeyToPem(key.get(), ""), StatusIs(absl::StatusCode::kInvalidArgument));

  // openssl's own reader takes it with the same passphrase.
  BioPtr bio(BIO_new_mem_buf(sealed.data(), static_cast<int>(sealed.size())));
  EvpPkeyPtr by_openssl(
      PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, const_cast<char*>("correct horse")));
  ASSERT_NE(by_openssl, nullptr);
  EXPECT_EQ(EVP_PKEY_eq(by_openssl.get(), key.get()), 1);

  ASSERT_OK_AND_ASSIGN(auto signer, MemorySigner::FromPem(sealed, "correct horse"));
  EXPECT_THAT(MemorySigner::FromPem(sealed), StatusIs(absl::StatusCode::kInvalidArgument));
}

}  // namespace
}  // namespace shaken::stir
