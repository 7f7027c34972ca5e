// module.h: a loaded PKCS#11 module (Module) and a logged-in token on it (Token).
//
// A process loads each module once (Module::Load caches by path) and logs in to each token once
// (Module::OpenToken caches by slot): several signing profiles on one or more tokens share them.
// PKCS#11 v2.40 §5.6: login state belongs to the application, not to a session, so one C_Login
// serves every session; it is lost only when the last session of the token closes.
#ifndef SHAKEN_HSM_MODULE_H_
#define SHAKEN_HSM_MODULE_H_

#include <p11-kit/pkcs11.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "hsm/pkcs11_uri.h"
#include "hsm/secret.h"

namespace shaken::hsm {

// ModuleQuirks are the known misbehaviours of a PKCS#11 module, as named switches (never #ifdefs).
// Signing always uses CKM_ECDSA over a SHA-256 digest computed in process: hashed ECDSA mechanisms
// (CKM_ECDSA_SHA256) are missing or unreliable on several tokens, SoftHSM2 2.6.1 among them
// (CKR_MECHANISM_INVALID), and stir::Signer hands us a digest anyway.
struct ModuleQuirks {
  // finalize_on_unload: call C_Finalize (and dlclose) when the last Module reference goes.
  // SoftHSM2 2.6.1 crashes when de-initialised late (atexit ordering): false for it.
  bool finalize_on_unload = true;
  // close_pooled_sessions: close a pool's sessions when the pool drops or destroys them.
  // SoftHSM2 2.6.1 has crashed under concurrent session open/close: false for it; a dropped
  // session is abandoned (it is already invalid in every recoverable case) and the module frees
  // it at process exit. Opening and closing are serialised per module in every case.
  bool close_pooled_sessions = true;
  // reinitialize_on_token_loss: when a token cannot be reached again after a loss (not found, or
  // CKR_GENERAL_ERROR / CKR_TOKEN_NOT_PRESENT / CKR_DEVICE_* when opening or logging in), pause
  // every pool on the module, C_Finalize + C_Initialize it, and let the pools reconnect.
  // SoftHSM2 2.6.1 marks a token whose directory vanished invalid for the life of the process
  // (C_GetTokenInfo -> CKR_GENERAL_ERROR even after the directory is back) and reloads it only at
  // C_Initialize (in a new slot): true for it. It briefly disrupts other tokens on the module.
  bool reinitialize_on_token_loss = false;

  friend bool operator==(const ModuleQuirks&, const ModuleQuirks&) = default;

  // SoftHsm2 is the setting for SoftHSM2 2.6.x.
  static ModuleQuirks SoftHsm2() {
    return {.finalize_on_unload = false,
            .close_pooled_sessions = false,
            .reinitialize_on_token_loss = true};
  }
  // ForPath guesses the quirks from the module's file name (libsofthsm2.so -> SoftHsm2()).
  static ModuleQuirks ForPath(absl::string_view path);
  // ForInfo names the quirks of the implementation that C_GetInfo describes (manufacturerID
  // "SoftHSM" -> SoftHsm2()), or nullopt for an implementation without known quirks. It sees
  // through a module that wraps another and forwards C_GetInfo (the tests' fault injector).
  static std::optional<ModuleQuirks> ForInfo(const CK_INFO& info);
};

class Token;

// Module is a PKCS#11 module, initialised with CKF_OS_LOCKING_OK (the module may be called from
// any thread; PKCS#11 v2.40 §5.4). Thread-safe. Shared by shared_ptr; Tokens keep it alive.
// Never fork() after loading one (PKCS#11 v2.40 §6.7.1: a child may not use the parent's state).
class Module : public std::enable_shared_from_this<Module> {
 public:
  // Load dlopens `path`, gets its function list and calls C_Initialize. A module already loaded by
  // this process is returned again (one Load per path). Fails with NOT_FOUND (no such file),
  // FAILED_PRECONDITION (not a PKCS#11 module) or the mapped C_Initialize error.
  // CKR_CRYPTOKI_ALREADY_INITIALIZED (another library in the process initialised it) is accepted;
  // then this Module never finalizes it.
  static absl::StatusOr<std::shared_ptr<Module>> Load(const std::string& path,
                                                      const ModuleQuirks& quirks);
  // Load without quirks chooses them once the module is initialised: ModuleQuirks::ForInfo of its
  // C_GetInfo, else ModuleQuirks::ForPath(path).
  static absl::StatusOr<std::shared_ptr<Module>> Load(const std::string& path);

  // Wrap uses a function list the caller already has: a wrapper around a module (call counting,
  // tracing). The caller keeps `functions` alive longer than the Module. `name` is for messages.
  static absl::StatusOr<std::shared_ptr<Module>> Wrap(const CK_FUNCTION_LIST* functions,
                                                      const ModuleQuirks& quirks,
                                                      std::string name);

  ~Module();
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  // OpenToken finds the token that `uri`'s token attributes name (the first present one that
  // matches) and returns it; the same token asked twice gives the same Token (one login per
  // token). `pin` is read at each login and wiped after C_Login. NOT_FOUND when no token matches
  // (message names the URI). The login itself happens with the first session.
  absl::StatusOr<std::shared_ptr<Token>> OpenToken(const Pkcs11Uri& uri, const PinSource& pin);

  const CK_FUNCTION_LIST* functions() const { return fl_; }
  const ModuleQuirks& quirks() const { return quirks_; }
  const std::string& name() const { return name_; }

  // Quiescer is a user of the module's sessions (a KeyPool) that a re-initialisation must pause:
  // Pause returns once the participant has no PKCS#11 call in flight and has forgotten its
  // sessions (bounded wait); Resume lets it reconnect.
  class Quiescer {
   public:
    virtual ~Quiescer() = default;
    virtual void Pause() = 0;
    virtual void Resume() = 0;
  };
  void Register(Quiescer* q);
  void Unregister(Quiescer* q);

  // Reinitialize does C_Finalize + C_Initialize with every registered Quiescer paused, unless
  // another caller already did since `seen_epoch` (then it returns OK at once). Invalidates every
  // session and handle of the module; slots may change. Thread-safe.
  absl::Status Reinitialize(uint64_t seen_epoch);
  uint64_t epoch() const;

  // lifecycle_mu serialises C_OpenSession / C_CloseSession on this module (see ModuleQuirks).
  absl::Mutex& lifecycle_mu() const ABSL_LOCK_RETURNED(lifecycle_mu_) { return lifecycle_mu_; }

 private:
  Module(const CK_FUNCTION_LIST* fl, void* dl, const ModuleQuirks& quirks, std::string name)
      : fl_(fl), dl_(dl), quirks_(quirks), name_(std::move(name)) {}
  static absl::Status Initialize(Module& m);
  static absl::StatusOr<std::shared_ptr<Module>> LoadImpl(const std::string& path,
                                                          const std::optional<ModuleQuirks>& quirks);

  const CK_FUNCTION_LIST* fl_;
  void* dl_;  // dlopen handle, or nullptr for Wrap
  ModuleQuirks quirks_;
  std::string name_;
  bool initialized_by_us_ = false;
  mutable absl::Mutex lifecycle_mu_;
  mutable absl::Mutex reinit_mu_;
  std::vector<Quiescer*> quiescers_ ABSL_GUARDED_BY(reinit_mu_);
  uint64_t epoch_ ABSL_GUARDED_BY(reinit_mu_) = 0;
  absl::Mutex tokens_mu_;
  std::map<CK_SLOT_ID, std::weak_ptr<Token>> tokens_ ABSL_GUARDED_BY(tokens_mu_);
};

// Token is one token on a Module, with its login state. Thread-safe. Created by Module::OpenToken.
class Token {
 public:
  ~Token();
  // OpenSession opens a session (read-write when `rw`) and makes sure the user is logged in:
  // C_GetSessionInfo tells whether the application is already logged in to the token; if not, one
  // thread reads the PIN, calls C_Login and wipes the PIN. If the slot vanished (token removed and
  // re-inserted), the slot is looked up again by URI once. Errors name the URI, never the PIN:
  // PERMISSION_DENIED for a wrong or locked PIN, UNAVAILABLE for a device problem, NOT_FOUND when
  // the token is gone. Once the token refused the PIN (IsPinRefused), this Token never calls
  // C_Login again: every later call returns that refusal at once (HSMs lock or zeroise after a
  // few wrong attempts; a pool reconnecting after an outage must not spend them). The caller owns the session: CloseSession it (or abandon it per quirks).
  absl::StatusOr<CK_SESSION_HANDLE> OpenSession(bool rw = false);

  // CloseSession closes `session` (serialised with other opens and closes on the module).
  void CloseSession(CK_SESSION_HANDLE session);

  // where is the token's pin-free URI for messages.
  const std::string& where() const { return where_; }
  Module& module() const { return *module_; }
  const CK_FUNCTION_LIST* functions() const { return module_->functions(); }
  CK_SLOT_ID slot() const;

  // SupportsEcdsaSign checks that the token offers CKM_ECDSA for signing with 256-bit keys.
  absl::Status CheckEcdsaSupport() const;

 private:
  friend class Module;
  Token(std::shared_ptr<Module> module, CK_SLOT_ID slot, Pkcs11Uri uri, PinSource pin);
  absl::Status EnsureLoggedIn(CK_SESSION_HANDLE session);
  absl::StatusOr<CK_SLOT_ID> Resolve() const;

  std::shared_ptr<Module> module_;
  Pkcs11Uri uri_;
  PinSource pin_;
  std::string where_;
  mutable absl::Mutex mu_;
  CK_SLOT_ID slot_ ABSL_GUARDED_BY(mu_);
  absl::Mutex login_mu_;
  // anchor_ is an idle session opened right after each successful C_Login and kept for the
  // Token's lifetime: PKCS#11 v2.40 §5.6 drops the login when the last session of the token
  // closes, so without it a short key-management session would log every pool out.
  CK_SESSION_HANDLE anchor_ ABSL_GUARDED_BY(login_mu_) = CK_INVALID_HANDLE;
  // The token's refusal of the PIN, once it happened (then no C_Login is attempted again).
  absl::Status pin_refused_ ABSL_GUARDED_BY(login_mu_);
};

// IsPinRefused tells whether `status` (from this library, or a copy that kept its payloads) is
// the token refusing the user PIN: CKR_PIN_INCORRECT, _INVALID, _LEN_RANGE, _LOCKED or _EXPIRED.
// shakend exits with its own code for it and systemd does not restart it.
bool IsPinRefused(const absl::Status& status);

// IsTokenUnreachable tells whether `status` (from this library, or a copy that kept its payloads)
// says the token could not be reached rather than that the configuration is wrong: UNAVAILABLE,
// or a CK_RV of an absent or failing device (CKR_TOKEN_NOT_PRESENT, CKR_TOKEN_NOT_RECOGNIZED,
// CKR_DEVICE_ERROR, _MEMORY, _REMOVED, CKR_GENERAL_ERROR: what network HSM clients return while
// their appliance cannot be reached). A module file that cannot be loaded, a key not on the
// token or a refused PIN are not.
bool IsTokenUnreachable(const absl::Status& status);

namespace internal {
// FindSlot returns the first slot with a present token that `uri` matches. NOT_FOUND names the
// URI and how many tokens were seen.
absl::StatusOr<CK_SLOT_ID> FindSlot(const CK_FUNCTION_LIST* fl, const Pkcs11Uri& uri);
}  // namespace internal

}  // namespace shaken::hsm

#endif  // SHAKEN_HSM_MODULE_H_
