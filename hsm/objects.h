// objects.h: object search and attribute reading shared by the pool and key management. Not API.
#ifndef SHAKEN_HSM_OBJECTS_H_
#define SHAKEN_HSM_OBJECTS_H_

#include <p11-kit/pkcs11.h>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "hsm/pkcs11_uri.h"

namespace shaken::hsm::internal {

// DER of the P-256 curve OID 1.2.840.10045.3.1.7 as CKA_EC_PARAMS holds it (RFC 5480 §2.1.1.1).
inline constexpr absl::string_view kP256Params{"\x06\x08\x2a\x86\x48\xce\x3d\x03\x01\x07", 10};
inline constexpr absl::string_view kP384Params{"\x06\x05\x2b\x81\x04\x00\x22", 7};

// FindObjects returns every object of `session` matching `tmpl` (C_FindObjectsInit, C_FindObjects
// in batches, C_FindObjectsFinal).
absl::StatusOr<std::vector<CK_OBJECT_HANDLE>> FindObjects(const CK_FUNCTION_LIST* fl,
                                                          CK_SESSION_HANDLE session,
                                                          std::vector<CK_ATTRIBUTE> tmpl,
                                                          absl::string_view where);

// FindByUri finds the token objects (CKA_TOKEN true) of class `cls` that `uri`'s object/id
// attributes name.
absl::StatusOr<std::vector<CK_OBJECT_HANDLE>> FindByUri(const CK_FUNCTION_LIST* fl,
                                                        CK_SESSION_HANDLE session,
                                                        const Pkcs11Uri& uri, CK_OBJECT_CLASS cls);

// GetBytes reads a variable-length attribute. NOT_FOUND if the object has no such attribute,
// PERMISSION_DENIED if it is sensitive.
absl::StatusOr<std::string> GetBytes(const CK_FUNCTION_LIST* fl, CK_SESSION_HANDLE session,
                                     CK_OBJECT_HANDLE obj, CK_ATTRIBUTE_TYPE type,
                                     absl::string_view where);
// GetBool and GetUlong read fixed-size attributes; nullopt when the token does not have them.
std::optional<bool> GetBool(const CK_FUNCTION_LIST* fl, CK_SESSION_HANDLE session,
                            CK_OBJECT_HANDLE obj, CK_ATTRIBUTE_TYPE type);
std::optional<CK_ULONG> GetUlong(const CK_FUNCTION_LIST* fl, CK_SESSION_HANDLE session,
                                 CK_OBJECT_HANDLE obj, CK_ATTRIBUTE_TYPE type);

// CurveName names CKA_EC_PARAMS: "P-256", "P-384", or "" when unknown.
std::string CurveName(absl::string_view ec_params);
// KeyTypeName names a CKA_KEY_TYPE: "EC", "RSA", ...
std::string KeyTypeName(CK_ULONG key_type);

// FindSigningKey finds the one private key `uri` names and checks it can sign ES256: EC, on P-256,
// CKA_SIGN true. NOT_FOUND (no such key), FAILED_PRECONDITION (ambiguous URI, wrong key type or
// curve, no CKA_SIGN); messages name the URI.
absl::StatusOr<CK_OBJECT_HANDLE> FindSigningKey(const CK_FUNCTION_LIST* fl,
                                                CK_SESSION_HANDLE session, const Pkcs11Uri& uri);

// EcPointToUncompressed unwraps CKA_EC_POINT: PKCS#11 v2.40 §2.3.3 says DER OCTET STRING (SoftHSM2
// does this); some tokens return the raw point. Both give 0x04 || X || Y (65 bytes for P-256).
absl::StatusOr<std::string> EcPointToUncompressed(absl::string_view ec_point);

// Hex encodes bytes as lowercase hex.
std::string Hex(absl::string_view bytes);

}  // namespace shaken::hsm::internal

#endif  // SHAKEN_HSM_OBJECTS_H_
