#include "hsm/token_admin.h"

#include <cstring>
#include <vector>

#include "absl/strings/str_cat.h"
#include "hsm/ck.h"
#include "stir/status_macros.h"

namespace shaken::hsm {
namespace {

std::string Trim32(const CK_UTF8CHAR* p, size_t n) {
  std::string s(reinterpret_cast<const char*>(p), n);
  while (!s.empty() && s.back() == ' ') s.pop_back();
  return s;
}

CK_UTF8CHAR_PTR PinPtr(const SecretString& s) {
  return reinterpret_cast<CK_UTF8CHAR_PTR>(const_cast<char*>(s.view().data()));
}

}  // namespace

absl::StatusOr<InitTokenResult> InitToken(Module& module, const InitTokenOptions& options,
                                          const PinSource& so_pin_source,
                                          const PinSource& user_pin_source) {
  if (options.label.empty() || options.label.size() > 32) {
    return absl::InvalidArgumentError("the token label must be 1 to 32 bytes");
  }
  ASSIGN_OR_RETURN(SecretString so_pin, so_pin_source.Read());
  ASSIGN_OR_RETURN(SecretString user_pin, user_pin_source.Read());
  const CK_FUNCTION_LIST* fl = module.functions();
  const std::string where = module.name();

  CK_ULONG count = 0;
  RETURN_IF_ERROR(CK_CALL(fl, C_GetSlotList, where, CK_TRUE, nullptr, &count));
  std::vector<CK_SLOT_ID> slots(count);
  RETURN_IF_ERROR(CK_CALL(fl, C_GetSlotList, where, CK_TRUE, slots.data(), &count));
  slots.resize(count);
  std::optional<CK_SLOT_ID> chosen;
  for (CK_SLOT_ID s : slots) {
    CK_TOKEN_INFO info;
    RETURN_IF_ERROR(CK_CALL(fl, C_GetTokenInfo, where, s, &info));
    const bool initialized = (info.flags & CKF_TOKEN_INITIALIZED) != 0;
    if (initialized && Trim32(info.label, sizeof(info.label)) == options.label) {
      return absl::AlreadyExistsError(absl::StrCat("a token labelled '", options.label,
                                                   "' already exists (slot ", s,
                                                   "); a token is never re-initialised here"));
    }
    if (options.slot.has_value()) {
      if (s == *options.slot) {
        if (initialized) {
          return absl::FailedPreconditionError(absl::StrCat(
              "slot ", s, " holds an initialised token; a token is never re-initialised here"));
        }
        chosen = s;
      }
    } else if (!initialized && !chosen.has_value()) {
      chosen = s;
    }
  }
  if (!chosen.has_value()) {
    return absl::NotFoundError(options.slot.has_value()
                                   ? absl::StrCat("no token present in slot ", *options.slot)
                                   : std::string("no free (uninitialised) token slot"));
  }
  CK_UTF8CHAR label[32];
  std::memset(label, ' ', sizeof(label));
  std::memcpy(label, options.label.data(), options.label.size());
  RETURN_IF_ERROR(CK_CALL(fl, C_InitToken, where, *chosen, PinPtr(so_pin),
                          static_cast<CK_ULONG>(so_pin.view().size()), label));
  CK_SESSION_HANDLE session = CK_INVALID_HANDLE;
  RETURN_IF_ERROR(CK_CALL(fl, C_OpenSession, where, *chosen, CKF_SERIAL_SESSION | CKF_RW_SESSION,
                          nullptr, nullptr, &session));
  absl::Status st = CK_CALL(fl, C_Login, where, session, CKU_SO, PinPtr(so_pin),
                            static_cast<CK_ULONG>(so_pin.view().size()));
  if (st.ok()) {
    st = CK_CALL(fl, C_InitPIN, where, session, PinPtr(user_pin),
                 static_cast<CK_ULONG>(user_pin.view().size()));
    (void)CK_RAW(fl, C_Logout, session);
  }
  (void)CK_RAW(fl, C_CloseSession, session);
  RETURN_IF_ERROR(st);
  InitTokenResult out{*chosen, ""};
  CK_TOKEN_INFO info;
  if (CK_RAW(fl, C_GetTokenInfo, *chosen, &info) == CKR_OK) {
    out.serial = Trim32(info.serialNumber, sizeof(info.serialNumber));
  }
  return out;
}

}  // namespace shaken::hsm
