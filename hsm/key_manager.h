// key_manager.h: key management for the key ceremony (shakenctl key generate/list/export/delete):
// generate an EC P-256 key pair inside the token, list keys with their security attributes,
// export a public key, delete a key. Nothing here ever reads a private key's value.
#ifndef SHAKEN_HSM_KEY_MANAGER_H_
#define SHAKEN_HSM_KEY_MANAGER_H_

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "hsm/module.h"
#include "hsm/pkcs11_uri.h"

namespace shaken::hsm {

// KeyInfo describes one private key on a token (its public half has the same label and id).
struct KeyInfo {
  std::string label;     // CKA_LABEL
  std::string id_hex;    // CKA_ID, lowercase hex
  std::string key_type;  // "EC", "RSA", ...
  std::string curve;     // "P-256", "P-384", or "" (not EC, or unknown curve)
  std::string uri;       // pkcs11:token=...;object=...;id=...;type=private (no PIN)
  // Security attributes of the private key (PKCS#11 v2.40 §4.9).
  bool token = false;
  bool private_ = false;
  bool sensitive = false;
  bool extractable = true;
  bool always_sensitive = false;
  bool never_extractable = false;
  bool sign = false;
  bool copyable = true;  // CKA_COPYABLE (v2.40); absent means true
  bool has_public_key = false;
};

struct GenerateKeyOptions {
  std::string label;  // CKA_LABEL of both halves; required, at most 255 bytes
  // allow_duplicate_label creates the key even if a private key with this label exists (the two
  // are then told apart by id). Off: ALREADY_EXISTS.
  bool allow_duplicate_label = false;
};

// GenerateP256Key generates an EC P-256 key pair in `token` (C_GenerateKeyPair,
// CKM_EC_KEY_PAIR_GEN) with a random 16-byte CKA_ID. The private key: CKA_TOKEN, CKA_PRIVATE,
// CKA_SENSITIVE, CKA_SIGN true; CKA_EXTRACTABLE, CKA_DERIVE false. The public key: CKA_TOKEN,
// CKA_VERIFY true. Errors: INVALID_ARGUMENT (label), ALREADY_EXISTS (label taken), and the mapped
// PKCS#11 errors naming the token URI. Thread-safe (opens its own read-write session).
absl::StatusOr<KeyInfo> GenerateP256Key(Token& token, const GenerateKeyOptions& options);

// ListKeys lists the private keys of `token`, in the token's order.
absl::StatusOr<std::vector<KeyInfo>> ListKeys(Token& token);

// PublicKey is a P-256 public key as SubjectPublicKeyInfo (RFC 5480), DER and PEM.
struct PublicKey {
  std::string der;
  std::string pem;
  std::string uncompressed_point;  // 0x04 || X || Y
};

// ExportPublicKey returns the public key of the key pair `key_uri` names (by object/id; the
// type= attribute is ignored): from the public key object's CKA_EC_POINT (DER OCTET STRING as
// PKCS#11 v2.40 §2.3.3 says, or a raw point as some tokens return). NOT_FOUND when there is no
// such public key, FAILED_PRECONDITION when it is not a P-256 key or more than one matches.
absl::StatusOr<PublicKey> ExportPublicKey(Token& token, const Pkcs11Uri& key_uri);

// DeleteKey destroys the objects `key_uri` names: with type=private or type=public only that half,
// without type= both halves of the pair. The URI must name an object or id (never "everything").
// NOT_FOUND when nothing matches. Returns how many objects were destroyed.
absl::StatusOr<int> DeleteKey(Token& token, const Pkcs11Uri& key_uri);

}  // namespace shaken::hsm

#endif  // SHAKEN_HSM_KEY_MANAGER_H_
