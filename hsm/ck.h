// ck.h: the one choke point between hsm/ and the PKCS#11 C API. Every C_* call made by hsm/ goes
// through CK_CALL, which turns its CK_RV into an absl::Status that names the call and the
// (pin-free) PKCS#11 URI it was made for. Not API: other folders never see PKCS#11 types.
#ifndef SHAKEN_HSM_CK_H_
#define SHAKEN_HSM_CK_H_

#include <p11-kit/pkcs11.h>

#include <optional>
#include <string_view>

#include "absl/base/optimization.h"
#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace shaken::hsm::internal {

// CkrName returns the PKCS#11 name of `rv` ("CKR_PIN_INCORRECT"), or "CKR_0x..." when unknown.
absl::string_view CkrName(CK_RV rv);

// CkrToCode maps a CK_RV to an absl::StatusCode (PKCS#11 v2.40 §5.1 lists the values):
//   device, token and session loss, general errors      -> kUnavailable
//   CKR_OBJECT_HANDLE_INVALID, CKR_KEY_HANDLE_INVALID,
//   CKR_SLOT_ID_INVALID                                 -> kNotFound
//   CKR_PIN_INCORRECT / _INVALID / _LEN_RANGE / _LOCKED -> kPermissionDenied
//   CKR_USER_NOT_LOGGED_IN, CKR_PIN_EXPIRED, key or
//   mechanism not usable for the operation              -> kFailedPrecondition
//   bad arguments, templates, lengths                   -> kInvalidArgument
//   CKR_HOST_MEMORY, CKR_SESSION_COUNT                  -> kResourceExhausted
//   CKR_FUNCTION_NOT_SUPPORTED                          -> kUnimplemented
//   anything else                                       -> kInternal
absl::StatusCode CkrToCode(CK_RV rv);

// IsRecoverable tells whether `rv` means the session (or the key handle cached for it) is lost,
// but a new session may work: hsm/README.md's list, plus CKR_KEY_FUNCTION_NOT_PERMITTED (what
// SoftHSM2 says when the token vanishes mid-signature). A pool drops the session and reconnects.
bool IsRecoverable(CK_RV rv);

// CkError builds the status for a failed call: "<call>: <CKR name> (0x..) [<where>]". The CK_RV
// is attached as a payload so that callers can recover it with CkrOf. `where` must never hold a
// PIN (pass Pkcs11Uri::redacted()).
absl::Status CkError(CK_RV rv, absl::string_view call, absl::string_view where);

// WithCkr attaches `rv` to a status built elsewhere (e.g. "no token matches" as
// CKR_TOKEN_NOT_PRESENT) so that recovery code can classify it with CkrOf.
absl::Status WithCkr(absl::Status status, CK_RV rv);

// CkrOf returns the CK_RV carried by a status made by CkError, or nullopt.
std::optional<CK_RV> CkrOf(const absl::Status& status);

// Check is CK_CALL's body: OK for CKR_OK (no allocation on that path), else CkError.
inline absl::Status Check(CK_RV rv, absl::string_view call, absl::string_view where) {
  if (ABSL_PREDICT_TRUE(rv == CKR_OK)) return absl::OkStatus();
  return CkError(rv, call, where);
}

}  // namespace shaken::hsm::internal

// CK_CALL(fl, C_Name, where, args...) calls fl->C_Name(args...) and returns its absl::Status.
// `fl` is a const CK_FUNCTION_LIST*; `where` a pin-free URI for the message.
#define CK_CALL(fl, name, where, ...) \
  ::shaken::hsm::internal::Check((fl)->name(__VA_ARGS__), #name, (where))

// CK_RAW(fl, C_Name, args...) calls fl->C_Name(args...) and returns its CK_RV, for the few callers
// that branch on a specific value (CKR_CRYPTOKI_ALREADY_INITIALIZED, CKR_USER_ALREADY_LOGGED_IN).
// Their non-OK results still leave hsm/ only through internal::Check.
#define CK_RAW(fl, name, ...) ((fl)->name(__VA_ARGS__))

#endif  // SHAKEN_HSM_CK_H_
