#include "hsm/objects.h"

#include "absl/status/status.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "hsm/ck.h"
#include "stir/status_macros.h"

namespace shaken::hsm::internal {

absl::StatusOr<std::vector<CK_OBJECT_HANDLE>> FindObjects(const CK_FUNCTION_LIST* fl,
                                                          CK_SESSION_HANDLE session,
                                                          std::vector<CK_ATTRIBUTE> tmpl,
                                                          absl::string_view where) {
  RETURN_IF_ERROR(CK_CALL(fl, C_FindObjectsInit, where, session, tmpl.data(), tmpl.size()));
  std::vector<CK_OBJECT_HANDLE> out;
  absl::Status st;
  for (;;) {
    CK_OBJECT_HANDLE batch[32];
    CK_ULONG n = 0;
    st = CK_CALL(fl, C_FindObjects, where, session, batch, 32, &n);
    if (!st.ok() || n == 0) break;
    out.insert(out.end(), batch, batch + n);
  }
  absl::Status fin = CK_CALL(fl, C_FindObjectsFinal, where, session);
  RETURN_IF_ERROR(st);
  RETURN_IF_ERROR(fin);
  return out;
}

absl::StatusOr<std::vector<CK_OBJECT_HANDLE>> FindByUri(const CK_FUNCTION_LIST* fl,
                                                        CK_SESSION_HANDLE session,
                                                        const Pkcs11Uri& uri, CK_OBJECT_CLASS cls) {
  std::vector<CK_ATTRIBUTE> tmpl;
  tmpl.push_back({CKA_CLASS, &cls, sizeof(cls)});
  // Session objects (a pool's key copies, visible to every session of the application) are not
  // what a URI names: only token objects.
  CK_BBOOL on_token = CK_TRUE;
  tmpl.push_back({CKA_TOKEN, &on_token, sizeof(on_token)});
  std::string label, id;
  if (uri.object_label()) {
    label = *uri.object_label();
    tmpl.push_back({CKA_LABEL, label.data(), label.size()});
  }
  if (uri.object_id()) {
    id = *uri.object_id();
    tmpl.push_back({CKA_ID, id.data(), id.size()});
  }
  return FindObjects(fl, session, std::move(tmpl), uri.redacted());
}

absl::StatusOr<std::string> GetBytes(const CK_FUNCTION_LIST* fl, CK_SESSION_HANDLE session,
                                     CK_OBJECT_HANDLE obj, CK_ATTRIBUTE_TYPE type,
                                     absl::string_view where) {
  CK_ATTRIBUTE a{type, nullptr, 0};
  RETURN_IF_ERROR(CK_CALL(fl, C_GetAttributeValue, where, session, obj, &a, 1));
  if (a.ulValueLen == CK_UNAVAILABLE_INFORMATION) {
    return absl::NotFoundError(absl::StrCat(where, ": attribute 0x", absl::Hex(type), " unavailable"));
  }
  std::string value(a.ulValueLen, '\0');
  a.pValue = value.data();
  RETURN_IF_ERROR(CK_CALL(fl, C_GetAttributeValue, where, session, obj, &a, 1));
  value.resize(a.ulValueLen);
  return value;
}

std::optional<bool> GetBool(const CK_FUNCTION_LIST* fl, CK_SESSION_HANDLE session,
                            CK_OBJECT_HANDLE obj, CK_ATTRIBUTE_TYPE type) {
  CK_BBOOL v = CK_FALSE;
  CK_ATTRIBUTE a{type, &v, sizeof(v)};
  if (!CK_CALL(fl, C_GetAttributeValue, "", session, obj, &a, 1).ok()) return std::nullopt;
  return v == CK_TRUE;
}

std::optional<CK_ULONG> GetUlong(const CK_FUNCTION_LIST* fl, CK_SESSION_HANDLE session,
                                 CK_OBJECT_HANDLE obj, CK_ATTRIBUTE_TYPE type) {
  CK_ULONG v = 0;
  CK_ATTRIBUTE a{type, &v, sizeof(v)};
  if (!CK_CALL(fl, C_GetAttributeValue, "", session, obj, &a, 1).ok()) return std::nullopt;
  return v;
}

std::string CurveName(absl::string_view ec_params) {
  if (ec_params == kP256Params) return "P-256";
  if (ec_params == kP384Params) return "P-384";
  return "";
}

std::string KeyTypeName(CK_ULONG key_type) {
  switch (key_type) {
    case CKK_EC:
      return "EC";
    case CKK_RSA:
      return "RSA";
    case CKK_DSA:
      return "DSA";
    case CKK_EC_EDWARDS:
      return "EC_EDWARDS";
    default:
      return absl::StrCat("CKK_0x", absl::Hex(key_type));
  }
}

absl::StatusOr<CK_OBJECT_HANDLE> FindSigningKey(const CK_FUNCTION_LIST* fl,
                                                CK_SESSION_HANDLE session, const Pkcs11Uri& uri) {
  const std::string& where = uri.redacted();
  if (uri.object_class() && *uri.object_class() != CKO_PRIVATE_KEY) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": a signing key URI needs type=private"));
  }
  if (!uri.object_label() && !uri.object_id()) {
    return absl::InvalidArgumentError(absl::StrCat(where, ": names no key (object= or id=)"));
  }
  ASSIGN_OR_RETURN(std::vector<CK_OBJECT_HANDLE> keys, FindByUri(fl, session, uri, CKO_PRIVATE_KEY));
  if (keys.empty()) {
    return absl::NotFoundError(absl::StrCat("no private key matches ", where));
  }
  if (keys.size() > 1) {
    return absl::FailedPreconditionError(absl::StrCat(
        where, " matches ", keys.size(), " private keys; add id= to pick one"));
  }
  CK_OBJECT_HANDLE key = keys[0];
  std::optional<CK_ULONG> type = GetUlong(fl, session, key, CKA_KEY_TYPE);
  if (!type || *type != CKK_EC) {
    return absl::FailedPreconditionError(absl::StrCat(
        where, " is a ", type ? KeyTypeName(*type) : "?", " key; ES256 needs an EC P-256 key"));
  }
  absl::StatusOr<std::string> params = GetBytes(fl, session, key, CKA_EC_PARAMS, where);
  if (!params.ok() || *params != kP256Params) {
    std::string curve = params.ok() ? CurveName(*params) : "";
    return absl::FailedPreconditionError(absl::StrCat(
        where, " is an EC key on ", curve.empty() ? "an unknown curve" : curve,
        "; ES256 needs P-256 (RFC 7518 §3.4)"));
  }
  if (GetBool(fl, session, key, CKA_SIGN) != true) {
    return absl::FailedPreconditionError(absl::StrCat(where, " has CKA_SIGN false"));
  }
  return key;
}

absl::StatusOr<std::string> EcPointToUncompressed(absl::string_view p) {
  if (p.size() == 65 && p[0] == 0x04) return std::string(p);
  // DER OCTET STRING, short-form length 65: 04 41 04 X Y.
  if (p.size() == 67 && p[0] == 0x04 && static_cast<unsigned char>(p[1]) == 65 && p[2] == 0x04) {
    return std::string(p.substr(2));
  }
  return absl::InvalidArgumentError(
      absl::StrCat("CKA_EC_POINT is neither a DER OCTET STRING nor an uncompressed P-256 point (",
                   p.size(), " bytes)"));
}

std::string Hex(absl::string_view bytes) { return absl::BytesToHexString(bytes); }

}  // namespace shaken::hsm::internal
