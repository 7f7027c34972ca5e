#include "hsm/key_manager.h"

#include <openssl/rand.h>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_cat.h"
#include "hsm/ck.h"
#include "hsm/objects.h"
#include "stir/openssl_util.h"
#include "stir/status_macros.h"

namespace shaken::hsm {
namespace {

using internal::GetBool;
using internal::GetBytes;
using internal::GetUlong;

// A read-write session for one key-management operation, closed at scope end. Key management is
// never concurrent with a pool's own open/close on the module (Token serialises them).
class ScopedSession {
 public:
  static absl::StatusOr<ScopedSession> Open(Token& token) {
    ASSIGN_OR_RETURN(CK_SESSION_HANDLE h, token.OpenSession(/*rw=*/true));
    return ScopedSession(token, h);
  }
  ScopedSession(ScopedSession&& o) noexcept : token_(o.token_), h_(o.h_) { o.h_ = CK_INVALID_HANDLE; }
  ScopedSession(const ScopedSession&) = delete;
  ~ScopedSession() {
    if (h_ != CK_INVALID_HANDLE) token_.CloseSession(h_);
  }
  CK_SESSION_HANDLE get() const { return h_; }

 private:
  ScopedSession(Token& token, CK_SESSION_HANDLE h) : token_(token), h_(h) {}
  Token& token_;
  CK_SESSION_HANDLE h_;
};

// RFC 7512 §2.3 percent-encoding for the object= and id= attributes of a URI we print.
std::string Pct(absl::string_view s, bool all) {
  std::string out;
  for (unsigned char c : s) {
    if (!all && (absl::ascii_isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~')) {
      out.push_back(static_cast<char>(c));
    } else {
      absl::StrAppendFormat(&out, "%%%02X", c);
    }
  }
  return out;
}

KeyInfo Describe(const Token& token, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key) {
  const CK_FUNCTION_LIST* fl = token.functions();
  KeyInfo info;
  info.label = GetBytes(fl, s, key, CKA_LABEL, token.where()).value_or("");
  std::string id = GetBytes(fl, s, key, CKA_ID, token.where()).value_or("");
  info.id_hex = internal::Hex(id);
  std::optional<CK_ULONG> type = GetUlong(fl, s, key, CKA_KEY_TYPE);
  info.key_type = type ? internal::KeyTypeName(*type) : "";
  if (type == CKK_EC) {
    info.curve = internal::CurveName(GetBytes(fl, s, key, CKA_EC_PARAMS, token.where()).value_or(""));
  }
  info.token = GetBool(fl, s, key, CKA_TOKEN).value_or(false);
  info.private_ = GetBool(fl, s, key, CKA_PRIVATE).value_or(false);
  info.sensitive = GetBool(fl, s, key, CKA_SENSITIVE).value_or(false);
  info.extractable = GetBool(fl, s, key, CKA_EXTRACTABLE).value_or(true);
  info.always_sensitive = GetBool(fl, s, key, CKA_ALWAYS_SENSITIVE).value_or(false);
  info.never_extractable = GetBool(fl, s, key, CKA_NEVER_EXTRACTABLE).value_or(false);
  info.sign = GetBool(fl, s, key, CKA_SIGN).value_or(false);
  info.copyable = GetBool(fl, s, key, CKA_COPYABLE).value_or(true);
  info.uri = absl::StrCat(token.where(), ";object=", Pct(info.label, false), ";id=", Pct(id, true),
                          ";type=private");
  CK_OBJECT_CLASS pub = CKO_PUBLIC_KEY;
  std::vector<CK_ATTRIBUTE> tmpl = {{CKA_CLASS, &pub, sizeof(pub)}, {CKA_ID, id.data(), id.size()}};
  auto pubs = internal::FindObjects(fl, s, tmpl, token.where());
  info.has_public_key = pubs.ok() && !pubs->empty();
  return info;
}

}  // namespace

absl::StatusOr<KeyInfo> GenerateP256Key(Token& token, const GenerateKeyOptions& options) {
  if (options.label.empty() || options.label.size() > 255) {
    return absl::InvalidArgumentError("key label must be 1..255 bytes");
  }
  const CK_FUNCTION_LIST* fl = token.functions();
  const std::string& where = token.where();
  ASSIGN_OR_RETURN(ScopedSession s, ScopedSession::Open(token));

  std::string label = options.label;
  if (!options.allow_duplicate_label) {
    CK_OBJECT_CLASS priv = CKO_PRIVATE_KEY;
    ASSIGN_OR_RETURN(std::vector<CK_OBJECT_HANDLE> existing,
                     internal::FindObjects(fl, s.get(),
                                           {{CKA_CLASS, &priv, sizeof(priv)},
                                            {CKA_LABEL, label.data(), label.size()}},
                                           where));
    if (!existing.empty()) {
      return absl::AlreadyExistsError(absl::StrCat(where, " already has a private key labelled \"",
                                                   label, "\"; choose another label"));
    }
  }
  unsigned char id[16];
  if (RAND_bytes(id, sizeof(id)) != 1) {
    return stir::OpenSslError(absl::StatusCode::kInternal, "RAND_bytes for CKA_ID");
  }
  std::string params(internal::kP256Params);
  CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
  // A signing key does one thing. Tokens default the other usages to true (SoftHSM2 gives an EC
  // private key CKA_DECRYPT, CKA_UNWRAP and CKA_SIGN_RECOVER), so each is set false explicitly:
  // an unwrap-capable key can import attacker-chosen keys, a decrypt-capable one is an oracle.
  CK_ATTRIBUTE pub_tmpl[] = {
      {CKA_TOKEN, &yes, sizeof(yes)},
      {CKA_PRIVATE, &no, sizeof(no)},
      {CKA_VERIFY, &yes, sizeof(yes)},
      {CKA_VERIFY_RECOVER, &no, sizeof(no)},
      {CKA_ENCRYPT, &no, sizeof(no)},
      {CKA_WRAP, &no, sizeof(no)},
      {CKA_DERIVE, &no, sizeof(no)},
      {CKA_EC_PARAMS, params.data(), params.size()},
      {CKA_LABEL, label.data(), label.size()},
      {CKA_ID, id, sizeof(id)},
  };
  CK_ATTRIBUTE priv_tmpl[] = {
      {CKA_TOKEN, &yes, sizeof(yes)},
      {CKA_PRIVATE, &yes, sizeof(yes)},
      {CKA_SENSITIVE, &yes, sizeof(yes)},
      {CKA_EXTRACTABLE, &no, sizeof(no)},
      {CKA_SIGN, &yes, sizeof(yes)},
      {CKA_SIGN_RECOVER, &no, sizeof(no)},
      {CKA_DECRYPT, &no, sizeof(no)},
      {CKA_UNWRAP, &no, sizeof(no)},
      {CKA_DERIVE, &no, sizeof(no)},
      {CKA_LABEL, label.data(), label.size()},
      {CKA_ID, id, sizeof(id)},
  };
  CK_MECHANISM mech{CKM_EC_KEY_PAIR_GEN, nullptr, 0};
  CK_OBJECT_HANDLE pub = CK_INVALID_HANDLE, priv = CK_INVALID_HANDLE;
  RETURN_IF_ERROR(CK_CALL(fl, C_GenerateKeyPair, where, s.get(), &mech, pub_tmpl,
                          std::size(pub_tmpl), priv_tmpl, std::size(priv_tmpl), &pub, &priv));
  return Describe(token, s.get(), priv);
}

absl::StatusOr<std::vector<KeyInfo>> ListKeys(Token& token) {
  ASSIGN_OR_RETURN(ScopedSession s, ScopedSession::Open(token));
  CK_OBJECT_CLASS priv = CKO_PRIVATE_KEY;
  ASSIGN_OR_RETURN(std::vector<CK_OBJECT_HANDLE> keys,
                   internal::FindObjects(token.functions(), s.get(),
                                         {{CKA_CLASS, &priv, sizeof(priv)}}, token.where()));
  std::vector<KeyInfo> out;
  for (CK_OBJECT_HANDLE k : keys) {
    // Session objects (a pool's key copies) are not keys of the token.
    if (GetBool(token.functions(), s.get(), k, CKA_TOKEN) != true) continue;
    out.push_back(Describe(token, s.get(), k));
  }
  return out;
}

absl::StatusOr<PublicKey> ExportPublicKey(Token& token, const Pkcs11Uri& key_uri) {
  const std::string& where = key_uri.redacted();
  if (!key_uri.object_label() && !key_uri.object_id()) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": names no key (object= or id=)"));
  }
  ASSIGN_OR_RETURN(ScopedSession s, ScopedSession::Open(token));
  const CK_FUNCTION_LIST* fl = token.functions();
  ASSIGN_OR_RETURN(std::vector<CK_OBJECT_HANDLE> pubs,
                   internal::FindByUri(fl, s.get(), key_uri, CKO_PUBLIC_KEY));
  if (pubs.empty()) return absl::NotFoundError(absl::StrCat("no public key matches ", where));
  if (pubs.size() > 1) {
    return absl::FailedPreconditionError(
        absl::StrCat(where, " matches ", pubs.size(), " public keys; add id= to pick one"));
  }
  ASSIGN_OR_RETURN(std::string params, GetBytes(fl, s.get(), pubs[0], CKA_EC_PARAMS, where));
  if (params != internal::kP256Params) {
    return absl::FailedPreconditionError(absl::StrCat(where, " is not an EC P-256 public key"));
  }
  ASSIGN_OR_RETURN(std::string ec_point, GetBytes(fl, s.get(), pubs[0], CKA_EC_POINT, where));
  PublicKey out;
  ASSIGN_OR_RETURN(out.uncompressed_point, internal::EcPointToUncompressed(ec_point));
  ASSIGN_OR_RETURN(stir::EvpPkeyPtr pkey, stir::PublicKeyFromP256Point(out.uncompressed_point));
  ASSIGN_OR_RETURN(out.der, stir::PublicKeyToDer(pkey.get()));
  ASSIGN_OR_RETURN(out.pem, stir::PublicKeyToPem(pkey.get()));
  return out;
}

absl::StatusOr<int> DeleteKey(Token& token, const Pkcs11Uri& key_uri) {
  const std::string& where = key_uri.redacted();
  if (!key_uri.object_label() && !key_uri.object_id()) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": names no key (object= or id=)"));
  }
  ASSIGN_OR_RETURN(ScopedSession s, ScopedSession::Open(token));
  const CK_FUNCTION_LIST* fl = token.functions();
  std::vector<CK_OBJECT_CLASS> classes;
  if (key_uri.object_class()) {
    classes = {*key_uri.object_class()};
  } else {
    classes = {CKO_PRIVATE_KEY, CKO_PUBLIC_KEY};
  }
  std::vector<CK_OBJECT_HANDLE> doomed;
  for (CK_OBJECT_CLASS c : classes) {
    ASSIGN_OR_RETURN(std::vector<CK_OBJECT_HANDLE> found, internal::FindByUri(fl, s.get(), key_uri, c));
    for (CK_OBJECT_HANDLE h : found) {
      if (GetBool(fl, s.get(), h, CKA_TOKEN) == true) doomed.push_back(h);
    }
  }
  if (doomed.empty()) return absl::NotFoundError(absl::StrCat("no key matches ", where));
  for (CK_OBJECT_HANDLE h : doomed) {
    RETURN_IF_ERROR(CK_CALL(fl, C_DestroyObject, where, s.get(), h));
  }
  return static_cast<int>(doomed.size());
}

}  // namespace shaken::hsm
