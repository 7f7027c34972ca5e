// Key management and start-up errors on a real SoftHSM2 token: generation with the ceremony's
// security attributes, a private key that cannot be extracted, duplicate labels, list, export,
// delete; wrong PIN, missing token, missing key, wrong key type give clear errors naming the URI
// and never the PIN.
#include <optional>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "hsm/key_manager.h"
#include "hsm/key_pool.h"
#include "hsm/module.h"
#include "hsm/open_signer.h"
#include "stir/openssl_util.h"
#include "tests/testing/softhsm_token.h"
#include "tests/testing/status_matchers.h"

namespace shaken::hsm {
namespace {

using ::shaken::testing::SoftHsmToken;
using ::shaken::testing::StatusIs;
using ::testing::AllOf;
using ::testing::HasSubstr;
using ::testing::Not;

std::shared_ptr<Module> LoadSoftHsm() {
  SoftHsmToken::Shared();
  auto m = Module::Load(SoftHsmToken::Shared().module_path());
  EXPECT_TRUE(m.ok()) << m.status();
  return *m;
}

std::shared_ptr<Token> OpenTestToken(const std::shared_ptr<Module>& module) {
  auto& t = SoftHsmToken::Shared();
  auto token = module->OpenToken(*Pkcs11Uri::Parse(t.TokenUri()), PinSource::FromFile(t.pin_file()));
  EXPECT_TRUE(token.ok()) << token.status();
  return *token;
}

Pkcs11Uri KeyUri(const std::string& label) {
  return *Pkcs11Uri::Parse(SoftHsmToken::Shared().KeyUri(label));
}

// A raw key pair of another type, made the way a careless operator might (test only).
void MakeRawKey(Token& token, const std::string& label, bool rsa) {
  const CK_FUNCTION_LIST* fl = token.functions();
  ASSERT_OK_AND_ASSIGN(CK_SESSION_HANDLE s, token.OpenSession(/*rw=*/true));
  CK_BBOOL yes = CK_TRUE;
  std::string lbl = label;
  CK_ULONG bits = 2048;
  std::string p384("\x06\x05\x2b\x81\x04\x00\x22", 7);
  std::vector<CK_ATTRIBUTE> pub = {{CKA_TOKEN, &yes, sizeof(yes)},
                                   {CKA_LABEL, lbl.data(), lbl.size()}};
  if (rsa) {
    pub.push_back({CKA_MODULUS_BITS, &bits, sizeof(bits)});
  } else {
    pub.push_back({CKA_EC_PARAMS, p384.data(), p384.size()});
  }
  CK_ATTRIBUTE priv[] = {{CKA_TOKEN, &yes, sizeof(yes)},
                         {CKA_PRIVATE, &yes, sizeof(yes)},
                         {CKA_SIGN, &yes, sizeof(yes)},
                         {CKA_LABEL, lbl.data(), lbl.size()}};
  CK_MECHANISM mech{rsa ? CKM_RSA_PKCS_KEY_PAIR_GEN : CKM_EC_KEY_PAIR_GEN, nullptr, 0};
  CK_OBJECT_HANDLE hpub, hpriv;
  EXPECT_EQ(fl->C_GenerateKeyPair(s, &mech, pub.data(), pub.size(), priv, 4, &hpub, &hpriv), CKR_OK);
  token.CloseSession(s);
}

TEST(HsmKeyTest, GeneratedKeyHasCeremonyAttributesAndCannotBeExtracted) {
  auto module = LoadSoftHsm();
  auto token = OpenTestToken(module);
  ASSERT_OK_AND_ASSIGN(KeyInfo info, GenerateP256Key(*token, {.label = "ceremony-key"}));
  EXPECT_EQ(info.label, "ceremony-key");
  EXPECT_EQ(info.id_hex.size(), 32u);  // 16 random bytes
  EXPECT_EQ(info.key_type, "EC");
  EXPECT_EQ(info.curve, "P-256");
  EXPECT_TRUE(info.token);
  EXPECT_TRUE(info.private_);
  EXPECT_TRUE(info.sensitive);
  EXPECT_FALSE(info.extractable);
  EXPECT_TRUE(info.always_sensitive);
  EXPECT_TRUE(info.never_extractable);
  EXPECT_TRUE(info.sign);
  EXPECT_TRUE(info.has_public_key);
  EXPECT_THAT(info.uri, AllOf(HasSubstr("token=shaken-test"), HasSubstr("object=ceremony-key"),
                              HasSubstr("type=private")));

  // PKCS#11 v2.40 §4.9: CKA_VALUE of a sensitive key is never revealed.
  const CK_FUNCTION_LIST* fl = token->functions();
  ASSERT_OK_AND_ASSIGN(CK_SESSION_HANDLE s, token->OpenSession());
  CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
  std::string label = "ceremony-key";
  CK_ATTRIBUTE tmpl[] = {{CKA_CLASS, &cls, sizeof(cls)}, {CKA_LABEL, label.data(), label.size()}};
  ASSERT_EQ(fl->C_FindObjectsInit(s, tmpl, 2), CKR_OK);
  CK_OBJECT_HANDLE key;
  CK_ULONG n = 0;
  ASSERT_EQ(fl->C_FindObjects(s, &key, 1, &n), CKR_OK);
  ASSERT_EQ(fl->C_FindObjectsFinal(s), CKR_OK);
  ASSERT_EQ(n, 1u);
  unsigned char value[128];
  CK_ATTRIBUTE a{CKA_VALUE, value, sizeof(value)};
  EXPECT_EQ(fl->C_GetAttributeValue(s, key, &a, 1), CKR_ATTRIBUTE_SENSITIVE);
  EXPECT_EQ(a.ulValueLen, CK_UNAVAILABLE_INFORMATION);
  // Nor can it be wrapped out or made extractable again.
  CK_BBOOL yes = CK_TRUE;
  CK_ATTRIBUTE make_extractable{CKA_EXTRACTABLE, &yes, sizeof(yes)};
  EXPECT_NE(fl->C_SetAttributeValue(s, key, &make_extractable, 1), CKR_OK);
  token->CloseSession(s);
}

// FindByLabel returns the one object of class `cls` labelled `label`.
CK_OBJECT_HANDLE FindByLabel(const CK_FUNCTION_LIST* fl, CK_SESSION_HANDLE s, CK_OBJECT_CLASS cls,
                             std::string label) {
  CK_ATTRIBUTE tmpl[] = {{CKA_CLASS, &cls, sizeof(cls)}, {CKA_LABEL, label.data(), label.size()}};
  CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
  CK_ULONG n = 0;
  EXPECT_EQ(fl->C_FindObjectsInit(s, tmpl, 2), CKR_OK);
  EXPECT_EQ(fl->C_FindObjects(s, &h, 1, &n), CKR_OK);
  EXPECT_EQ(fl->C_FindObjectsFinal(s), CKR_OK);
  EXPECT_EQ(n, 1u) << label;
  return h;
}

// BoolAttribute reads a CK_BBOOL attribute; nullopt if the token does not report it.
std::optional<bool> BoolAttribute(const CK_FUNCTION_LIST* fl, CK_SESSION_HANDLE s,
                                  CK_OBJECT_HANDLE h, CK_ATTRIBUTE_TYPE type) {
  CK_BBOOL v = CK_FALSE;
  CK_ATTRIBUTE a{type, &v, sizeof(v)};
  if (fl->C_GetAttributeValue(s, h, &a, 1) != CKR_OK) return std::nullopt;
  return v == CK_TRUE;
}

TEST(HsmKeyTest, GeneratedKeyPairCanOnlySignAndVerify) {
  auto module = LoadSoftHsm();
  auto token = OpenTestToken(module);
  ASSERT_OK(GenerateP256Key(*token, {.label = "sign-only-key"}));
  const CK_FUNCTION_LIST* fl = token->functions();
  ASSERT_OK_AND_ASSIGN(CK_SESSION_HANDLE s, token->OpenSession());
  CK_OBJECT_HANDLE priv = FindByLabel(fl, s, CKO_PRIVATE_KEY, "sign-only-key");
  CK_OBJECT_HANDLE pub = FindByLabel(fl, s, CKO_PUBLIC_KEY, "sign-only-key");
  EXPECT_EQ(BoolAttribute(fl, s, priv, CKA_SIGN), true);
  for (CK_ATTRIBUTE_TYPE t : {CKA_DECRYPT, CKA_UNWRAP, CKA_DERIVE, CKA_SIGN_RECOVER}) {
    EXPECT_EQ(BoolAttribute(fl, s, priv, t), false) << "private key attribute 0x" << std::hex << t;
  }
  EXPECT_EQ(BoolAttribute(fl, s, pub, CKA_VERIFY), true);
  for (CK_ATTRIBUTE_TYPE t : {CKA_ENCRYPT, CKA_WRAP, CKA_DERIVE, CKA_VERIFY_RECOVER}) {
    EXPECT_EQ(BoolAttribute(fl, s, pub, t), false) << "public key attribute 0x" << std::hex << t;
  }
  token->CloseSession(s);
}

TEST(HsmKeyTest, DuplicateLabelRefusedUnlessAsked) {
  auto module = LoadSoftHsm();
  auto token = OpenTestToken(module);
  ASSERT_OK_AND_ASSIGN(KeyInfo first, GenerateP256Key(*token, {.label = "dup-key"}));
  EXPECT_THAT(GenerateP256Key(*token, {.label = "dup-key"}),
              StatusIs(absl::StatusCode::kAlreadyExists, HasSubstr("dup-key")));
  ASSERT_OK_AND_ASSIGN(KeyInfo second,
                       GenerateP256Key(*token, {.label = "dup-key", .allow_duplicate_label = true}));
  EXPECT_NE(first.id_hex, second.id_hex);
  // Two keys under one label: a pool refuses the ambiguous URI, and accepts the id-qualified one.
  EXPECT_THAT(KeyPool::Create(token, KeyUri("dup-key")),
              StatusIs(absl::StatusCode::kFailedPrecondition, HasSubstr("object=dup-key")));
  ASSERT_OK_AND_ASSIGN(Pkcs11Uri by_id, Pkcs11Uri::Parse(second.uri));
  EXPECT_OK(KeyPool::Create(token, by_id, {.size = 1}).status());
}

// OpenSigner on a token key: a KeyPool, its public half exported from the token, a pin-free
// description.
TEST(HsmKeyTest, OpenSignerOnATokenKey) {
  auto module = LoadSoftHsm();
  auto token = OpenTestToken(module);
  ASSERT_OK(GenerateP256Key(*token, {.label = "opened-key"}));
  auto& t = SoftHsmToken::Shared();
  OpenSignerOptions options;
  options.module_path = t.module_path();
  options.pin = PinSource::FromFile(t.pin_file());
  options.pool.size = 1;
  ASSERT_OK_AND_ASSIGN(OpenedSigner opened, OpenSigner(t.KeyUri("opened-key"), options));
  ASSERT_NE(opened.pool, nullptr);
  EXPECT_EQ(opened.pool, opened.signer.get());
  EXPECT_THAT(opened.description, HasSubstr("object=opened-key"));
  EXPECT_THAT(opened.description, Not(HasSubstr(t.pin())));
  ASSERT_NE(opened.public_key, nullptr);
  const stir::Sha256Digest digest = stir::Sha256("open signer on a token");
  ASSERT_OK_AND_ASSIGN(stir::Es256Signature sig,
                       opened.signer->SignDigest(digest, absl::Now() + absl::Seconds(5)));
  EXPECT_OK(stir::VerifyEs256(opened.public_key.get(), digest, sig));

  options.export_public_key = false;
  ASSERT_OK_AND_ASSIGN(OpenedSigner without, OpenSigner(t.KeyUri("opened-key"), options));
  EXPECT_EQ(without.public_key, nullptr);
  EXPECT_THAT(OpenSigner(t.KeyUri("no-such-opened-key"), options),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("object=no-such-opened-key")));
}

TEST(HsmKeyTest, ListExportAndDelete) {
  auto module = LoadSoftHsm();
  auto token = OpenTestToken(module);
  ASSERT_OK_AND_ASSIGN(KeyInfo info, GenerateP256Key(*token, {.label = "listed-key"}));
  ASSERT_OK_AND_ASSIGN(std::vector<KeyInfo> keys, ListKeys(*token));
  bool found = false;
  for (const KeyInfo& k : keys) {
    if (k.id_hex == info.id_hex) {
      found = true;
      EXPECT_EQ(k.label, "listed-key");
      EXPECT_EQ(k.curve, "P-256");
      EXPECT_FALSE(k.extractable);
    }
  }
  EXPECT_TRUE(found);

  ASSERT_OK_AND_ASSIGN(PublicKey pub, ExportPublicKey(*token, KeyUri("listed-key")));
  EXPECT_THAT(pub.pem, HasSubstr("-----BEGIN PUBLIC KEY-----"));
  EXPECT_EQ(pub.uncompressed_point.size(), 65u);
  ASSERT_OK_AND_ASSIGN(stir::EvpPkeyPtr pkey, stir::ReadPublicKeyPem(pub.pem));
  EXPECT_TRUE(stir::IsP256Key(pkey.get()));
  const unsigned char* p = reinterpret_cast<const unsigned char*>(pub.der.data());
  stir::EvpPkeyPtr from_der(d2i_PUBKEY(nullptr, &p, pub.der.size()));
  EXPECT_NE(from_der, nullptr);

  ASSERT_OK_AND_ASSIGN(int destroyed, DeleteKey(*token, *Pkcs11Uri::Parse(
                                                             "pkcs11:token=shaken-test;object=listed-key")));
  EXPECT_EQ(destroyed, 2);  // both halves
  EXPECT_THAT(DeleteKey(*token, KeyUri("listed-key")), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(ExportPublicKey(*token, KeyUri("listed-key")), StatusIs(absl::StatusCode::kNotFound));
  EXPECT_THAT(KeyPool::Create(token, KeyUri("listed-key")),
              StatusIs(absl::StatusCode::kNotFound, HasSubstr("object=listed-key")));
  // A URI that names no object never deletes "everything".
  EXPECT_THAT(DeleteKey(*token, *Pkcs11Uri::Parse("pkcs11:token=shaken-test")),
              StatusIs(absl::StatusCode::kInvalidArgument));
}

TEST(HsmKeyTest, WrongPinNamesTheUriNeverThePin) {
  auto module = LoadSoftHsm();
  auto& t = SoftHsmToken::Shared();
  // Token 2 is logged in by no other test of this binary, so C_Login really runs.
  ASSERT_OK_AND_ASSIGN(auto token, module->OpenToken(*Pkcs11Uri::Parse(t.TokenUri("shaken-test-2")),
                                                     PinSource::FromValue("000000")));
  auto pool = KeyPool::Create(token, *Pkcs11Uri::Parse(t.KeyUri("any", "shaken-test-2")));
  EXPECT_THAT(pool, StatusIs(absl::StatusCode::kPermissionDenied,
                             AllOf(HasSubstr("C_Login"), HasSubstr("CKR_PIN_INCORRECT"),
                                   HasSubstr("token=shaken-test-2"), Not(HasSubstr("000000")),
                                   Not(HasSubstr(t.pin())))));
  EXPECT_TRUE(IsPinRefused(pool.status()));
  // The token refused the PIN once: no second C_Login, whoever asks (a pool reconnecting).
  absl::StatusOr<CK_SESSION_HANDLE> again = token->OpenSession();
  EXPECT_THAT(again, StatusIs(absl::StatusCode::kPermissionDenied,
                              AllOf(HasSubstr("CKR_PIN_INCORRECT"),
                                    HasSubstr("not logging in again"))));
  EXPECT_TRUE(IsPinRefused(again.status()));
  if (again.ok()) token->CloseSession(*again);
  EXPECT_FALSE(IsPinRefused(absl::UnavailableError("C_Login: CKR_DEVICE_ERROR")));
  // A refused PIN is never "unreachable": shakend must not retry the login in the background.
  EXPECT_FALSE(IsTokenUnreachable(pool.status()));
}

TEST(HsmKeyTest, MissingTokenNamesTheUri) {
  auto module = LoadSoftHsm();
  auto& t = SoftHsmToken::Shared();
  auto missing = module->OpenToken(*Pkcs11Uri::Parse("pkcs11:token=no-such-token;object=k"),
                                  PinSource::FromFile(t.pin_file()));
  EXPECT_THAT(missing, StatusIs(absl::StatusCode::kNotFound, HasSubstr("token=no-such-token")));
  // An absent token is an outage shakend waits out (pkcs11.require_token_at_start: false); a
  // module that does not load, or a plain error without a CK_RV, is a configuration error.
  EXPECT_TRUE(IsTokenUnreachable(missing.status()));
  EXPECT_FALSE(IsTokenUnreachable(Module::Load("/nonexistent/libnothing.so").status()));
  EXPECT_FALSE(IsTokenUnreachable(absl::NotFoundError("no private key matches pkcs11:object=k")));
  EXPECT_TRUE(IsTokenUnreachable(absl::UnavailableError("token down, reconnecting")));
  // Through the CLI path too, with a PIN in the URI that must not be echoed.
  auto pool = OpenKeyPool({.module_path = t.module_path(),
                           .key_uri = "pkcs11:token=no-such-token;object=k?pin-value=" + t.pin(),
                           .allow_pin_value = true});
  EXPECT_THAT(pool, StatusIs(absl::StatusCode::kNotFound,
                             AllOf(HasSubstr("token=no-such-token"), Not(HasSubstr(t.pin())))));
  // pin-value is refused unless allowed.
  EXPECT_THAT(OpenKeyPool({.module_path = t.module_path(),
                           .key_uri = t.KeyUri("k") + "?pin-value=" + t.pin()}),
              StatusIs(absl::StatusCode::kInvalidArgument, Not(HasSubstr(t.pin()))));
}

TEST(HsmKeyTest, MissingModuleAndMissingPinFile) {
  EXPECT_THAT(Module::Load("/nonexistent/libpkcs11.so"), StatusIs(absl::StatusCode::kNotFound));
  auto& t = SoftHsmToken::Shared();
  auto module = LoadSoftHsm();
  // A bad PIN file only matters when a login is needed; token 2 in this binary is not logged in
  // unless the wrong-PIN test ran first, which leaves it logged out.
  ASSERT_OK_AND_ASSIGN(auto token, module->OpenToken(*Pkcs11Uri::Parse(t.TokenUri("shaken-test-2")),
                                                     PinSource::FromFile("/nonexistent/pin")));
  EXPECT_THAT(token->OpenSession(), StatusIs(absl::StatusCode::kNotFound,
                                             AllOf(HasSubstr("token=shaken-test-2"),
                                                   HasSubstr("file:/nonexistent/pin"))));
}

TEST(HsmKeyTest, MissingKeyNamesTheUri) {
  auto module = LoadSoftHsm();
  auto token = OpenTestToken(module);
  EXPECT_THAT(KeyPool::Create(token, KeyUri("no-such-key")),
              StatusIs(absl::StatusCode::kNotFound,
                       AllOf(HasSubstr("object=no-such-key"), Not(HasSubstr(SoftHsmToken::Shared().pin())))));
}

TEST(HsmKeyTest, WrongKeyTypeNamesTheUri) {
  auto module = LoadSoftHsm();
  auto token = OpenTestToken(module);
  MakeRawKey(*token, "rsa-key", /*rsa=*/true);
  MakeRawKey(*token, "p384-key", /*rsa=*/false);
  EXPECT_THAT(KeyPool::Create(token, KeyUri("rsa-key")),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       AllOf(HasSubstr("object=rsa-key"), HasSubstr("RSA"), HasSubstr("P-256"))));
  EXPECT_THAT(KeyPool::Create(token, KeyUri("p384-key")),
              StatusIs(absl::StatusCode::kFailedPrecondition,
                       AllOf(HasSubstr("object=p384-key"), HasSubstr("P-384"))));
  EXPECT_THAT(ExportPublicKey(*token, KeyUri("p384-key")),
              StatusIs(absl::StatusCode::kFailedPrecondition));
  EXPECT_THAT(KeyPool::Create(token, *Pkcs11Uri::Parse("pkcs11:token=shaken-test;object=rsa-key;type=public")),
              StatusIs(absl::StatusCode::kInvalidArgument, HasSubstr("type=private")));
}

}  // namespace
}  // namespace shaken::hsm
