#include "hsm/open_signer.h"

#include <openssl/evp.h>

#include <cstdlib>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "stir/memory_signer.h"
#include "tests/testing/status_matchers.h"
#include "tests/testing/test_pki.h"

namespace shaken::hsm {
namespace {

using ::shaken::testing::StatusIs;
using ::shaken::testing::TempDir;
using ::testing::AllOf;
using ::testing::HasSubstr;

// Signs a digest with `opened` and checks it with its public key.
void ExpectSignsWithItsPublicKey(const OpenedSigner& opened) {
  ASSERT_NE(opened.public_key, nullptr);
  const stir::Sha256Digest digest = stir::Sha256("open signer test");
  ASSERT_OK_AND_ASSIGN(stir::Es256Signature sig,
                       opened.signer->SignDigest(digest, absl::Now() + absl::Seconds(5)));
  EXPECT_OK(stir::VerifyEs256(opened.public_key.get(), digest, sig));
}

PassphraseFor Fixed(std::string value, int* calls) {
  return [value, calls](const std::string&) -> absl::StatusOr<SecretString> {
    ++*calls;
    return SecretString(value);
  };
}

class OpenSignerFileTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_OK_AND_ASSIGN(auto key, stir::MemorySigner::Generate());
    ASSERT_OK_AND_ASSIGN(std::string plain, stir::PrivateKeyToPem(key->key()));
    ASSERT_OK_AND_ASSIGN(std::string sealed, stir::PrivateKeyToPem(key->key(), "lab pass"));
    plain_ = dir_.Write("plain.key", plain);
    sealed_ = dir_.Write("sealed.key", sealed);
  }
  TempDir dir_;
  std::string plain_, sealed_;
};

TEST_F(OpenSignerFileTest, PlainKeyFile) {
  int calls = 0;
  ASSERT_OK_AND_ASSIGN(OpenedSigner opened,
                       OpenSigner("file:" + plain_, {.passphrase = Fixed("unused", &calls)}));
  ExpectSignsWithItsPublicKey(opened);
  EXPECT_EQ(opened.description, "file:" + plain_);
  EXPECT_EQ(opened.pool, nullptr);
  EXPECT_EQ(calls, 0);  // the passphrase is asked for only when the file is encrypted
}

TEST_F(OpenSignerFileTest, EncryptedKeyFileAsksForItsPassphraseOnce) {
  int calls = 0;
  ASSERT_OK_AND_ASSIGN(OpenedSigner opened,
                       OpenSigner("file:" + sealed_, {.passphrase = Fixed("lab pass", &calls)}));
  ExpectSignsWithItsPublicKey(opened);
  EXPECT_EQ(calls, 1);
  EXPECT_THAT(OpenSigner("file:" + sealed_, {.passphrase = Fixed("not it", &calls)}),
              StatusIs(absl::StatusCode::kInvalidArgument,
                       AllOf(HasSubstr("key file " + sealed_), HasSubstr("wrong passphrase"))));
  // No way to get a passphrase: said so, naming the file.
  EXPECT_THAT(OpenSigner("file:" + sealed_, {}),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       HasSubstr("key file " + sealed_ + " is encrypted")));
  // The front end's own refusal comes back as it is.
  PassphraseFor refuse = [](const std::string& path) -> absl::StatusOr<SecretString> {
    return absl::InvalidArgumentError(path + ": set key_passphrase_source");
  };
  EXPECT_THAT(OpenSigner("file:" + sealed_, {.passphrase = refuse}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("set key_passphrase_source")));
}

TEST_F(OpenSignerFileTest, RefusesWhatIsNotAP256KeyFile) {
  stir::EvpPkeyPtr p384(EVP_EC_gen("P-384"));
  ASSERT_NE(p384, nullptr);
  ASSERT_OK_AND_ASSIGN(std::string pem, stir::PrivateKeyToPem(p384.get()));
  const std::string path = dir_.Write("p384.key", pem);
  EXPECT_THAT(OpenSigner("file:" + path, {}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("not an EC P-256 key")));
  const std::string junk = dir_.Write("junk.key", "not a key\n");
  EXPECT_THAT(OpenSigner("file:" + junk, {}),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("key file " + junk)));
  EXPECT_THAT(OpenSigner("file:" + dir_.path() + "/missing.key", {}),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("cannot open")));
}

TEST(OpenSignerTest, UnknownFormsSayWhatIsUnderstood) {
  for (const char* key : {"", "file:", "/etc/shaken/sp.key", "PKCS11:token=t"}) {
    EXPECT_THAT(OpenSigner(key, {}), StatusIs(absl::StatusCode::kInvalidArgument,
                                              HasSubstr("pkcs11:token=...;object=...")))
        << key;
  }
}

}  // namespace
}  // namespace shaken::hsm
