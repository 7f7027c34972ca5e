#include "hsm/module.h"

#include <dlfcn.h>

#include <algorithm>

#include <vector>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "hsm/ck.h"
#include "stir/status_macros.h"

namespace shaken::hsm {
namespace {

using internal::Check;

// One Module per path per process: a second C_Initialize would fail, and two Modules would each
// log in (PKCS#11 login state is per application).
absl::Mutex g_modules_mu(absl::kConstInit);
std::map<std::string, std::weak_ptr<Module>>& Modules() ABSL_EXCLUSIVE_LOCKS_REQUIRED(g_modules_mu) {
  static auto* m = new std::map<std::string, std::weak_ptr<Module>>();
  return *m;
}

std::string Unpad(const unsigned char* p, size_t n) {
  while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\0')) --n;
  return std::string(reinterpret_cast<const char*>(p), n);
}

// RFC 7512 §2.3: pk11-pchar escapes everything but unreserved and a few sub-delims.
std::string PctEncode(absl::string_view s) {
  std::string out;
  for (unsigned char c : s) {
    if (absl::ascii_isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~' || c == ':' ||
        c == '[' || c == ']' || c == '@' || c == '!' || c == '$' || c == '\'' || c == '(' ||
        c == ')' || c == '*' || c == '+' || c == ',' || c == '=' || c == '&') {
      out.push_back(static_cast<char>(c));
    } else {
      absl::StrAppendFormat(&out, "%%%02X", c);
    }
  }
  return out;
}

}  // namespace

ModuleQuirks ModuleQuirks::ForPath(absl::string_view path) {
  if (path.find("softhsm") != absl::string_view::npos) return SoftHsm2();
  return ModuleQuirks{};
}

std::optional<ModuleQuirks> ModuleQuirks::ForInfo(const CK_INFO& info) {
  // SoftHSM2 2.6.1 reports manufacturerID "SoftHSM" (blank-padded, PKCS#11 v2.40 §3.1).
  if (Unpad(info.manufacturerID, sizeof(info.manufacturerID)) == "SoftHSM") return SoftHsm2();
  return std::nullopt;
}

absl::Status Module::Initialize(Module& m) {
  CK_C_INITIALIZE_ARGS args{};
  args.flags = CKF_OS_LOCKING_OK;
  CK_RV rv = CK_RAW(m.fl_, C_Initialize, &args);
  if (rv == CKR_CRYPTOKI_ALREADY_INITIALIZED) {
    m.initialized_by_us_ = false;  // someone else's; never finalize it
    return absl::OkStatus();
  }
  RETURN_IF_ERROR(Check(rv, "C_Initialize", m.name_));
  m.initialized_by_us_ = true;
  return absl::OkStatus();
}

absl::StatusOr<std::shared_ptr<Module>> Module::Load(const std::string& path,
                                                     const ModuleQuirks& quirks) {
  return LoadImpl(path, quirks);
}

absl::StatusOr<std::shared_ptr<Module>> Module::Load(const std::string& path) {
  return LoadImpl(path, std::nullopt);
}

absl::StatusOr<std::shared_ptr<Module>> Module::LoadImpl(const std::string& path,
                                                         const std::optional<ModuleQuirks>& quirks) {
  absl::MutexLock lock(&g_modules_mu);
  if (auto it = Modules().find(path); it != Modules().end()) {
    if (auto m = it->second.lock()) return m;
  }
  void* dl = dlopen(path.c_str(), RTLD_NOW | RTLD_LOCAL);
  if (dl == nullptr) {
    const char* err = dlerror();
    return absl::NotFoundError(
        absl::StrCat("cannot load PKCS#11 module ", path, ": ", err ? err : "dlopen failed"));
  }
  auto get = reinterpret_cast<CK_C_GetFunctionList>(dlsym(dl, "C_GetFunctionList"));
  if (get == nullptr) {
    dlclose(dl);
    return absl::FailedPreconditionError(
        absl::StrCat(path, " is not a PKCS#11 module (no C_GetFunctionList)"));
  }
  CK_FUNCTION_LIST* fl = nullptr;
  if (absl::Status st = Check(get(&fl), "C_GetFunctionList", path); !st.ok() || fl == nullptr) {
    dlclose(dl);
    return st.ok() ? absl::FailedPreconditionError(absl::StrCat(path, ": null function list")) : st;
  }
  std::shared_ptr<Module> m(new Module(fl, dl, quirks.value_or(ModuleQuirks{}), path));
  if (absl::Status st = Initialize(*m); !st.ok()) {
    m->dl_ = nullptr;
    dlclose(dl);
    return st;
  }
  if (!quirks) {
    CK_INFO info{};
    std::optional<ModuleQuirks> known;
    if (CK_RAW(fl, C_GetInfo, &info) == CKR_OK) known = ModuleQuirks::ForInfo(info);
    m->quirks_ = known.value_or(ModuleQuirks::ForPath(path));
  }
  Modules()[path] = m;
  return m;
}

absl::StatusOr<std::shared_ptr<Module>> Module::Wrap(const CK_FUNCTION_LIST* functions,
                                                     const ModuleQuirks& quirks, std::string name) {
  if (functions == nullptr) return absl::InvalidArgumentError("Module::Wrap: null function list");
  std::shared_ptr<Module> m(new Module(functions, nullptr, quirks, std::move(name)));
  RETURN_IF_ERROR(Initialize(*m));
  return m;
}

Module::~Module() {
  if (quirks_.finalize_on_unload && initialized_by_us_) {
    CK_RAW(fl_, C_Finalize, nullptr);
    if (dl_ != nullptr) dlclose(dl_);
  }
  // Otherwise the module stays mapped and initialised until exit: see ModuleQuirks.
}

void Module::Register(Quiescer* q) {
  absl::MutexLock lock(&reinit_mu_);
  quiescers_.push_back(q);
}

void Module::Unregister(Quiescer* q) {
  absl::MutexLock lock(&reinit_mu_);
  quiescers_.erase(std::remove(quiescers_.begin(), quiescers_.end(), q), quiescers_.end());
}

uint64_t Module::epoch() const {
  absl::MutexLock lock(&reinit_mu_);
  return epoch_;
}

absl::Status Module::Reinitialize(uint64_t seen_epoch) {
  absl::MutexLock lock(&reinit_mu_);
  if (epoch_ != seen_epoch) return absl::OkStatus();  // someone else just did it
  for (Quiescer* q : quiescers_) q->Pause();
  absl::Status st;
  {
    absl::MutexLock lifecycle(&lifecycle_mu_);
    (void)CK_CALL(fl_, C_Finalize, name_, nullptr);
    st = Initialize(*this);
  }
  ++epoch_;
  for (Quiescer* q : quiescers_) q->Resume();
  return st;
}

absl::StatusOr<std::shared_ptr<Token>> Module::OpenToken(const Pkcs11Uri& uri,
                                                         const PinSource& pin) {
  ASSIGN_OR_RETURN(CK_SLOT_ID slot, internal::FindSlot(fl_, uri));
  absl::MutexLock lock(&tokens_mu_);
  if (auto it = tokens_.find(slot); it != tokens_.end()) {
    if (auto t = it->second.lock()) return t;
  }
  std::shared_ptr<Token> t(new Token(shared_from_this(), slot, uri, pin));
  CK_TOKEN_INFO info{};
  RETURN_IF_ERROR(CK_CALL(fl_, C_GetTokenInfo, uri.redacted(), slot, &info));
  t->where_ = absl::StrCat("pkcs11:token=", PctEncode(Unpad(info.label, sizeof(info.label))));
  tokens_[slot] = t;
  return t;
}

namespace internal {

absl::StatusOr<CK_SLOT_ID> FindSlot(const CK_FUNCTION_LIST* fl, const Pkcs11Uri& uri) {
  const std::string& where = uri.redacted();
  CK_ULONG n = 0;
  RETURN_IF_ERROR(CK_CALL(fl, C_GetSlotList, where, CK_TRUE, nullptr, &n));
  std::vector<CK_SLOT_ID> slots(n);
  if (n > 0) RETURN_IF_ERROR(CK_CALL(fl, C_GetSlotList, where, CK_TRUE, slots.data(), &n));
  slots.resize(n);
  std::optional<CK_SLOT_ID> want = uri.slot_id();
  for (CK_SLOT_ID s : slots) {
    if (want && *want != s) continue;
    CK_TOKEN_INFO info{};
    if (!CK_CALL(fl, C_GetTokenInfo, where, s, &info).ok()) continue;
    if ((info.flags & CKF_TOKEN_INITIALIZED) == 0) continue;
    if (uri.MatchesToken(info)) return s;
  }
  return internal::WithCkr(absl::NotFoundError(absl::StrFormat(
                               "no token matches %s (%d initialised tokens present)", where,
                               slots.size())),
                           CKR_TOKEN_NOT_PRESENT);
}

}  // namespace internal

Token::Token(std::shared_ptr<Module> module, CK_SLOT_ID slot, Pkcs11Uri uri, PinSource pin)
    : module_(std::move(module)), uri_(std::move(uri)), pin_(std::move(pin)), slot_(slot) {}

CK_SLOT_ID Token::slot() const {
  absl::MutexLock lock(&mu_);
  return slot_;
}

absl::StatusOr<CK_SLOT_ID> Token::Resolve() const { return internal::FindSlot(functions(), uri_); }

absl::StatusOr<CK_SESSION_HANDLE> Token::OpenSession(bool rw) {
  const CK_FUNCTION_LIST* fl = functions();
  CK_FLAGS flags = CKF_SERIAL_SESSION | (rw ? CKF_RW_SESSION : 0);
  CK_SESSION_HANDLE h = CK_INVALID_HANDLE;
  CK_SLOT_ID slot = this->slot();
  absl::Status st;
  {
    absl::MutexLock lock(&module_->lifecycle_mu());
    st = CK_CALL(fl, C_OpenSession, where_, slot, flags, nullptr, nullptr, &h);
  }
  if (!st.ok()) {
    std::optional<CK_RV> rv = internal::CkrOf(st);
    if (!rv || (*rv != CKR_SLOT_ID_INVALID && *rv != CKR_TOKEN_NOT_PRESENT &&
                *rv != CKR_DEVICE_REMOVED && *rv != CKR_TOKEN_NOT_RECOGNIZED)) {
      return st;
    }
    // The token may be back in another slot: look it up again by URI, once.
    ASSIGN_OR_RETURN(slot, Resolve());
    {
      absl::MutexLock lock(&mu_);
      slot_ = slot;
    }
    absl::MutexLock lock(&module_->lifecycle_mu());
    RETURN_IF_ERROR(CK_CALL(fl, C_OpenSession, where_, slot, flags, nullptr, nullptr, &h));
  }
  if (absl::Status login = EnsureLoggedIn(h); !login.ok()) {
    CloseSession(h);
    return login;
  }
  return h;
}

void Token::CloseSession(CK_SESSION_HANDLE session) {
  absl::MutexLock lock(&module_->lifecycle_mu());
  // A failure here means the session is already gone; nothing to recover.
  (void)CK_CALL(functions(), C_CloseSession, where_, session);
}

absl::Status Token::EnsureLoggedIn(CK_SESSION_HANDLE session) {
  const CK_FUNCTION_LIST* fl = functions();
  auto logged_in = [&]() -> absl::StatusOr<bool> {
    CK_SESSION_INFO info{};
    RETURN_IF_ERROR(CK_CALL(fl, C_GetSessionInfo, where_, session, &info));
    return info.state == CKS_RO_USER_FUNCTIONS || info.state == CKS_RW_USER_FUNCTIONS;
  };
  ASSIGN_OR_RETURN(bool in, logged_in());
  if (in) return absl::OkStatus();
  // One thread logs in; the others find the token logged in when they get the lock.
  absl::MutexLock lock(&login_mu_);
  ASSIGN_OR_RETURN(in, logged_in());
  if (in) return absl::OkStatus();
  if (!pin_refused_.ok()) {
    // Never again: each wrong attempt counts toward the HSM's lockout (or zeroisation).
    return internal::WithCkr(
        absl::Status(pin_refused_.code(),
                     absl::StrCat(pin_refused_.message(),
                                  "; not logging in again until restarted with a correct PIN")),
        *internal::CkrOf(pin_refused_));
  }
  absl::StatusOr<SecretString> pin = pin_.Read();
  if (!pin.ok()) {
    return absl::Status(pin.status().code(),
                        absl::StrCat(where_, ": cannot read the user PIN: ", pin.status().message()));
  }
  CK_RV rv = CK_RAW(fl, C_Login, session, CKU_USER,
                    reinterpret_cast<CK_UTF8CHAR*>(const_cast<char*>(pin->view().data())),
                    pin->view().size());
  pin = absl::StatusOr<SecretString>();  // wipes the PIN now, not at scope end
  absl::Status st = internal::Check(rv == CKR_USER_ALREADY_LOGGED_IN ? CKR_OK : rv, "C_Login", where_);
  if (!st.ok()) {
    st = internal::WithCkr(
        absl::Status(st.code(), absl::StrCat(st.message(), " (PIN from ", pin_.Describe(), ")")), rv);
    if (IsPinRefused(st)) pin_refused_ = st;
    return st;
  }
  // Keep the login alive independently of the callers' sessions (see anchor_). A previous anchor
  // is gone if we had to log in again.
  CK_SESSION_HANDLE anchor = CK_INVALID_HANDLE;
  absl::MutexLock lifecycle(&module_->lifecycle_mu());
  if (CK_CALL(fl, C_OpenSession, where_, slot(), CKF_SERIAL_SESSION, nullptr, nullptr, &anchor).ok()) {
    anchor_ = anchor;
  }
  return absl::OkStatus();
}

Token::~Token() {
  absl::MutexLock lock(&login_mu_);
  if (anchor_ != CK_INVALID_HANDLE && module_->quirks().close_pooled_sessions) {
    CloseSession(anchor_);
  }
}

bool IsPinRefused(const absl::Status& status) {
  const std::optional<CK_RV> rv = internal::CkrOf(status);
  if (!rv) return false;
  switch (*rv) {
    case CKR_PIN_INCORRECT:
    case CKR_PIN_INVALID:
    case CKR_PIN_LEN_RANGE:
    case CKR_PIN_LOCKED:
    case CKR_PIN_EXPIRED:
      return true;
    default:
      return false;
  }
}

bool IsTokenUnreachable(const absl::Status& status) {
  if (status.ok() || IsPinRefused(status)) return false;
  const std::optional<CK_RV> rv = internal::CkrOf(status);
  if (!rv) return status.code() == absl::StatusCode::kUnavailable;
  switch (*rv) {
    case CKR_TOKEN_NOT_PRESENT:
    case CKR_TOKEN_NOT_RECOGNIZED:
    case CKR_DEVICE_ERROR:
    case CKR_DEVICE_MEMORY:
    case CKR_DEVICE_REMOVED:
    case CKR_GENERAL_ERROR:
      return true;
    default:
      return status.code() == absl::StatusCode::kUnavailable;
  }
}

absl::Status Token::CheckEcdsaSupport() const {
  CK_MECHANISM_INFO info{};
  absl::Status st = CK_CALL(functions(), C_GetMechanismInfo, where_, slot(), CKM_ECDSA, &info);
  if (!st.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat(where_, " does not support CKM_ECDSA: ", st.message()));
  }
  if ((info.flags & CKF_SIGN) == 0) {
    return absl::FailedPreconditionError(
        absl::StrCat(where_, ": CKM_ECDSA cannot sign on this token (no CKF_SIGN)"));
  }
  return absl::OkStatus();
}

}  // namespace shaken::hsm
