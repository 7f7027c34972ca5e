// token_admin.h: token initialisation, for SoftHSM2 labs (shakenctl token init). Production
// tokens are initialised with the vendor's tools; this exists so a lab needs nothing else.
#ifndef SHAKEN_HSM_TOKEN_ADMIN_H_
#define SHAKEN_HSM_TOKEN_ADMIN_H_

#include <p11-kit/pkcs11.h>

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "hsm/module.h"
#include "hsm/secret.h"

namespace shaken::hsm {

struct InitTokenOptions {
  std::string label;                 // CKA_LABEL, 1..32 bytes
  std::optional<CK_SLOT_ID> slot;    // default: the first slot with an uninitialised token
};

struct InitTokenResult {
  CK_SLOT_ID slot = 0;
  std::string serial;
};

// InitToken initialises a token (C_InitToken with the SO PIN), then sets its user PIN
// (C_Login as SO + C_InitPIN). It never re-initialises a token: ALREADY_EXISTS when a token with
// the label exists, FAILED_PRECONDITION when the chosen slot holds an initialised token,
// NOT_FOUND when there is no free slot. Both PINs are read from their sources and wiped after
// use; errors never contain them.
absl::StatusOr<InitTokenResult> InitToken(Module& module, const InitTokenOptions& options,
                                          const PinSource& so_pin, const PinSource& user_pin);

}  // namespace shaken::hsm

#endif  // SHAKEN_HSM_TOKEN_ADMIN_H_
