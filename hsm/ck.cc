#include "hsm/ck.h"

#include <string>

#include "absl/strings/cord.h"
#include "absl/strings/string_view.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace shaken::hsm::internal {
namespace {

constexpr absl::string_view kCkrPayloadUrl = "type.shaken/pkcs11.ckr";

struct CkrEntry {
  CK_RV rv;
  absl::string_view name;
};

#define SHAKEN_CKR(x) {x, #x}
constexpr CkrEntry kCkrNames[] = {
    SHAKEN_CKR(CKR_OK),
    SHAKEN_CKR(CKR_CANCEL),
    SHAKEN_CKR(CKR_HOST_MEMORY),
    SHAKEN_CKR(CKR_SLOT_ID_INVALID),
    SHAKEN_CKR(CKR_GENERAL_ERROR),
    SHAKEN_CKR(CKR_FUNCTION_FAILED),
    SHAKEN_CKR(CKR_ARGUMENTS_BAD),
    SHAKEN_CKR(CKR_NO_EVENT),
    SHAKEN_CKR(CKR_NEED_TO_CREATE_THREADS),
    SHAKEN_CKR(CKR_CANT_LOCK),
    SHAKEN_CKR(CKR_ATTRIBUTE_READ_ONLY),
    SHAKEN_CKR(CKR_ATTRIBUTE_SENSITIVE),
    SHAKEN_CKR(CKR_ATTRIBUTE_TYPE_INVALID),
    SHAKEN_CKR(CKR_ATTRIBUTE_VALUE_INVALID),
    SHAKEN_CKR(CKR_ACTION_PROHIBITED),
    SHAKEN_CKR(CKR_DATA_INVALID),
    SHAKEN_CKR(CKR_DATA_LEN_RANGE),
    SHAKEN_CKR(CKR_DEVICE_ERROR),
    SHAKEN_CKR(CKR_DEVICE_MEMORY),
    SHAKEN_CKR(CKR_DEVICE_REMOVED),
    SHAKEN_CKR(CKR_FUNCTION_CANCELED),
    SHAKEN_CKR(CKR_FUNCTION_NOT_PARALLEL),
    SHAKEN_CKR(CKR_FUNCTION_NOT_SUPPORTED),
    SHAKEN_CKR(CKR_KEY_HANDLE_INVALID),
    SHAKEN_CKR(CKR_KEY_SIZE_RANGE),
    SHAKEN_CKR(CKR_KEY_TYPE_INCONSISTENT),
    SHAKEN_CKR(CKR_KEY_FUNCTION_NOT_PERMITTED),
    SHAKEN_CKR(CKR_MECHANISM_INVALID),
    SHAKEN_CKR(CKR_MECHANISM_PARAM_INVALID),
    SHAKEN_CKR(CKR_OBJECT_HANDLE_INVALID),
    SHAKEN_CKR(CKR_OPERATION_ACTIVE),
    SHAKEN_CKR(CKR_OPERATION_NOT_INITIALIZED),
    SHAKEN_CKR(CKR_PIN_INCORRECT),
    SHAKEN_CKR(CKR_PIN_INVALID),
    SHAKEN_CKR(CKR_PIN_LEN_RANGE),
    SHAKEN_CKR(CKR_PIN_EXPIRED),
    SHAKEN_CKR(CKR_PIN_LOCKED),
    SHAKEN_CKR(CKR_SESSION_CLOSED),
    SHAKEN_CKR(CKR_SESSION_COUNT),
    SHAKEN_CKR(CKR_SESSION_HANDLE_INVALID),
    SHAKEN_CKR(CKR_SESSION_PARALLEL_NOT_SUPPORTED),
    SHAKEN_CKR(CKR_SESSION_READ_ONLY),
    SHAKEN_CKR(CKR_SESSION_EXISTS),
    SHAKEN_CKR(CKR_SESSION_READ_ONLY_EXISTS),
    SHAKEN_CKR(CKR_SESSION_READ_WRITE_SO_EXISTS),
    SHAKEN_CKR(CKR_SIGNATURE_INVALID),
    SHAKEN_CKR(CKR_SIGNATURE_LEN_RANGE),
    SHAKEN_CKR(CKR_TEMPLATE_INCOMPLETE),
    SHAKEN_CKR(CKR_TEMPLATE_INCONSISTENT),
    SHAKEN_CKR(CKR_TOKEN_NOT_PRESENT),
    SHAKEN_CKR(CKR_TOKEN_NOT_RECOGNIZED),
    SHAKEN_CKR(CKR_TOKEN_WRITE_PROTECTED),
    SHAKEN_CKR(CKR_USER_ALREADY_LOGGED_IN),
    SHAKEN_CKR(CKR_USER_NOT_LOGGED_IN),
    SHAKEN_CKR(CKR_USER_PIN_NOT_INITIALIZED),
    SHAKEN_CKR(CKR_USER_TYPE_INVALID),
    SHAKEN_CKR(CKR_USER_ANOTHER_ALREADY_LOGGED_IN),
    SHAKEN_CKR(CKR_USER_TOO_MANY_TYPES),
    SHAKEN_CKR(CKR_DOMAIN_PARAMS_INVALID),
    SHAKEN_CKR(CKR_CURVE_NOT_SUPPORTED),
    SHAKEN_CKR(CKR_BUFFER_TOO_SMALL),
    SHAKEN_CKR(CKR_CRYPTOKI_NOT_INITIALIZED),
    SHAKEN_CKR(CKR_CRYPTOKI_ALREADY_INITIALIZED),
    SHAKEN_CKR(CKR_MUTEX_BAD),
    SHAKEN_CKR(CKR_MUTEX_NOT_LOCKED),
};
#undef SHAKEN_CKR

}  // namespace

absl::string_view CkrName(CK_RV rv) {
  for (const auto& e : kCkrNames) {
    if (e.rv == rv) return e.name;
  }
  return "CKR_unknown";
}

absl::StatusCode CkrToCode(CK_RV rv) {
  switch (rv) {
    case CKR_OK:
      return absl::StatusCode::kOk;
    case CKR_DEVICE_ERROR:
    case CKR_DEVICE_MEMORY:
    case CKR_DEVICE_REMOVED:
    case CKR_TOKEN_NOT_PRESENT:
    case CKR_TOKEN_NOT_RECOGNIZED:
    case CKR_SESSION_CLOSED:
    case CKR_SESSION_HANDLE_INVALID:
    case CKR_GENERAL_ERROR:
    case CKR_FUNCTION_FAILED:
    case CKR_CRYPTOKI_NOT_INITIALIZED:
    case CKR_FUNCTION_CANCELED:
      return absl::StatusCode::kUnavailable;
    case CKR_OBJECT_HANDLE_INVALID:
    case CKR_KEY_HANDLE_INVALID:
    case CKR_SLOT_ID_INVALID:
      return absl::StatusCode::kNotFound;
    case CKR_PIN_INCORRECT:
    case CKR_PIN_INVALID:
    case CKR_PIN_LEN_RANGE:
    case CKR_PIN_LOCKED:
    case CKR_ATTRIBUTE_SENSITIVE:
    case CKR_ACTION_PROHIBITED:
      return absl::StatusCode::kPermissionDenied;
    case CKR_USER_NOT_LOGGED_IN:
    case CKR_USER_PIN_NOT_INITIALIZED:
    case CKR_PIN_EXPIRED:
    case CKR_KEY_TYPE_INCONSISTENT:
    case CKR_KEY_FUNCTION_NOT_PERMITTED:
    case CKR_MECHANISM_INVALID:
    case CKR_OPERATION_ACTIVE:
    case CKR_OPERATION_NOT_INITIALIZED:
    case CKR_SESSION_READ_ONLY:
    case CKR_TOKEN_WRITE_PROTECTED:
    case CKR_USER_ANOTHER_ALREADY_LOGGED_IN:
    case CKR_CURVE_NOT_SUPPORTED:
      return absl::StatusCode::kFailedPrecondition;
    case CKR_ARGUMENTS_BAD:
    case CKR_ATTRIBUTE_READ_ONLY:
    case CKR_ATTRIBUTE_TYPE_INVALID:
    case CKR_ATTRIBUTE_VALUE_INVALID:
    case CKR_DATA_INVALID:
    case CKR_DATA_LEN_RANGE:
    case CKR_MECHANISM_PARAM_INVALID:
    case CKR_TEMPLATE_INCOMPLETE:
    case CKR_TEMPLATE_INCONSISTENT:
    case CKR_DOMAIN_PARAMS_INVALID:
    case CKR_KEY_SIZE_RANGE:
    case CKR_BUFFER_TOO_SMALL:
      return absl::StatusCode::kInvalidArgument;
    case CKR_HOST_MEMORY:
    case CKR_SESSION_COUNT:
      return absl::StatusCode::kResourceExhausted;
    case CKR_FUNCTION_NOT_SUPPORTED:
      return absl::StatusCode::kUnimplemented;
    default:
      return absl::StatusCode::kInternal;
  }
}

bool IsRecoverable(CK_RV rv) {
  switch (rv) {
    case CKR_SESSION_HANDLE_INVALID:
    case CKR_SESSION_CLOSED:
    case CKR_DEVICE_REMOVED:
    case CKR_TOKEN_NOT_PRESENT:
    case CKR_USER_NOT_LOGGED_IN:
    case CKR_DEVICE_ERROR:
    case CKR_OBJECT_HANDLE_INVALID:
    case CKR_KEY_HANDLE_INVALID:
    // A key that signed before cannot lose CKA_SIGN under a running pool by any legitimate path;
    // SoftHSM2 2.6.1 answers C_SignInit with this when the token's object store vanishes under
    // the session. Treated as a lost key handle: drop, reopen (which re-checks CKA_SIGN), retry.
    case CKR_KEY_FUNCTION_NOT_PERMITTED:
      return true;
    default:
      return false;
  }
}

absl::Status CkError(CK_RV rv, absl::string_view call, absl::string_view where) {
  absl::Status status(CkrToCode(rv), absl::StrFormat("%s: %s (0x%x) [%s]", call, CkrName(rv),
                                                     static_cast<unsigned long>(rv), where));
  status.SetPayload(kCkrPayloadUrl, absl::Cord(absl::StrCat(static_cast<unsigned long>(rv))));
  return status;
}

absl::Status WithCkr(absl::Status status, CK_RV rv) {
  status.SetPayload(kCkrPayloadUrl, absl::Cord(absl::StrCat(static_cast<unsigned long>(rv))));
  return status;
}

std::optional<CK_RV> CkrOf(const absl::Status& status) {
  auto payload = status.GetPayload(kCkrPayloadUrl);
  if (!payload) return std::nullopt;
  unsigned long v = 0;
  if (!absl::SimpleAtoi(std::string(*payload), &v)) return std::nullopt;
  return static_cast<CK_RV>(v);
}

}  // namespace shaken::hsm::internal
