// fault_pkcs11.cc: shaken_fault_pkcs11, a PKCS#11 module that forwards to a real one and injects
// latency and faults. Keys, environment and files are documented in fault_pkcs11.h.
//
// PKCS#11 entry points take no context argument, so the state is process-wide: one instance of
// this module per process (dlopen returns the same handle to every loader). Globals are leaked,
// never destroyed: the polling thread and late callers may outlive static destruction at exit.
#include "tests/testing/fault_pkcs11.h"

#include <dlfcn.h>
#include <p11-kit/pkcs11.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#define SHAKEN_FAULT_EXPORT extern "C" __attribute__((visibility("default")))

namespace {

constexpr char kDefaultTarget[] = "/usr/lib/softhsm/libsofthsm2.so";  // Debian's softhsm2

// --- configuration ---

enum class Kind { kUint, kRv, kBool };
struct Key {
  const char* name;
  Kind kind;
  std::atomic<uint64_t> value;
};
Key g_keys[] = {
    {"sign_delay_us", Kind::kUint, {0}},
    {"sign_init_delay_us", Kind::kUint, {0}},
    {"open_session_delay_us", Kind::kUint, {0}},
    {"login_delay_us", Kind::kUint, {0}},
    {"sign_fail_every", Kind::kUint, {0}},
    {"sign_fail_rv", Kind::kRv, {CKR_DEVICE_ERROR}},
    {"token_gone", Kind::kBool, {0}},
};
enum KeyIndex {
  kSignDelay,
  kSignInitDelay,
  kOpenSessionDelay,
  kLoginDelay,
  kSignFailEvery,
  kSignFailRv,
  kTokenGone,
  kKeyCount
};
static_assert(sizeof(g_keys) / sizeof(g_keys[0]) == kKeyCount);

uint64_t Get(KeyIndex k) { return g_keys[k].value.load(std::memory_order_relaxed); }

struct RvName {
  const char* name;
  CK_RV rv;
};
constexpr RvName kRvNames[] = {
    {"CKR_DEVICE_ERROR", CKR_DEVICE_ERROR},
    {"CKR_DEVICE_MEMORY", CKR_DEVICE_MEMORY},
    {"CKR_DEVICE_REMOVED", CKR_DEVICE_REMOVED},
    {"CKR_TOKEN_NOT_PRESENT", CKR_TOKEN_NOT_PRESENT},
    {"CKR_SESSION_HANDLE_INVALID", CKR_SESSION_HANDLE_INVALID},
    {"CKR_SESSION_CLOSED", CKR_SESSION_CLOSED},
    {"CKR_GENERAL_ERROR", CKR_GENERAL_ERROR},
    {"CKR_FUNCTION_FAILED", CKR_FUNCTION_FAILED},
    {"CKR_FUNCTION_CANCELED", CKR_FUNCTION_CANCELED},
    {"CKR_HOST_MEMORY", CKR_HOST_MEMORY},
    {"CKR_KEY_HANDLE_INVALID", CKR_KEY_HANDLE_INVALID},
    {"CKR_KEY_FUNCTION_NOT_PERMITTED", CKR_KEY_FUNCTION_NOT_PERMITTED},
    {"CKR_USER_NOT_LOGGED_IN", CKR_USER_NOT_LOGGED_IN},
    {"CKR_OPERATION_NOT_INITIALIZED", CKR_OPERATION_NOT_INITIALIZED},
};

std::string_view Trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t' || s.front() == '\r')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t' || s.back() == '\r')) s.remove_suffix(1);
  return s;
}

bool ParseUint(std::string_view s, uint64_t* out) {
  std::string str(s);
  if (str.empty() || str[0] == '-') return false;
  char* end = nullptr;
  errno = 0;
  unsigned long long v = std::strtoull(str.c_str(), &end, 0);  // decimal or 0x hex
  if (errno != 0 || end == str.c_str() || *end != '\0') return false;
  *out = v;
  return true;
}

bool ParseValue(Kind kind, std::string_view s, uint64_t* out) {
  if (kind == Kind::kRv) {
    for (const RvName& n : kRvNames) {
      if (s == n.name) {
        *out = n.rv;
        return true;
      }
    }
  }
  if (!ParseUint(s, out)) return false;
  return kind != Kind::kBool || *out <= 1;
}

// Counters (fault_pkcs11.h: ShakenFaultP11Stats).
std::atomic<uint64_t> g_sign_calls{0}, g_sign_init_calls{0}, g_open_session_calls{0},
    g_login_calls{0}, g_injected_failures{0}, g_gone_refusals{0}, g_sign_in_flight{0},
    g_sign_max_in_flight{0}, g_control_loads{0};
// g_fail_count counts signing C_Sign calls for sign_fail_every; restarted when the key is applied.
std::atomic<uint64_t> g_fail_count{0};

// Apply parses key=value lines and applies them all, or none when one is bad (then -1, with a
// message on stderr naming `origin`).
int Apply(std::string_view text, const char* origin) {
  std::vector<std::pair<int, uint64_t>> pending;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    text.remove_prefix(nl == std::string_view::npos ? text.size() : nl + 1);
    if (size_t hash = line.find('#'); hash != std::string_view::npos) line = line.substr(0, hash);
    line = Trim(line);
    if (line.empty()) continue;
    size_t eq = line.find('=');
    std::string_view name = Trim(line.substr(0, eq));
    std::string_view value = eq == std::string_view::npos ? "" : Trim(line.substr(eq + 1));
    int index = -1;
    for (int i = 0; i < kKeyCount; ++i) {
      if (name == g_keys[i].name) index = i;
    }
    uint64_t v = 0;
    if (eq == std::string_view::npos || index < 0 || !ParseValue(g_keys[index].kind, value, &v)) {
      std::fprintf(stderr, "shaken_fault_pkcs11: %s: bad line \"%.*s\" (nothing applied)\n", origin,
                   static_cast<int>(line.size()), line.data());
      return -1;
    }
    pending.emplace_back(index, v);
  }
  for (const auto& [index, v] : pending) {
    g_keys[index].value.store(v, std::memory_order_relaxed);
    if (index == kSignFailEvery) g_fail_count.store(0, std::memory_order_relaxed);
  }
  g_control_loads.fetch_add(1, std::memory_order_relaxed);
  return static_cast<int>(pending.size());
}

void ApplyEnvironment() {
  std::string lines;
  for (const Key& k : g_keys) {
    std::string env = "SHAKEN_FAULT_P11_";
    for (const char* p = k.name; *p != '\0'; ++p) env += static_cast<char>(std::toupper(*p));
    if (const char* v = std::getenv(env.c_str())) lines += std::string(k.name) + "=" + v + "\n";
  }
  if (!lines.empty()) Apply(lines, "environment");
}

// --- the control and stats files ---

std::string* g_control_path = nullptr;
std::string* g_stats_path = nullptr;

void Snapshot(ShakenFaultP11Stats* s) {
  s->sign_calls = g_sign_calls.load(std::memory_order_relaxed);
  s->sign_init_calls = g_sign_init_calls.load(std::memory_order_relaxed);
  s->open_session_calls = g_open_session_calls.load(std::memory_order_relaxed);
  s->login_calls = g_login_calls.load(std::memory_order_relaxed);
  s->injected_failures = g_injected_failures.load(std::memory_order_relaxed);
  s->gone_refusals = g_gone_refusals.load(std::memory_order_relaxed);
  s->sign_in_flight = g_sign_in_flight.load(std::memory_order_relaxed);
  s->sign_max_in_flight = g_sign_max_in_flight.load(std::memory_order_relaxed);
  s->control_loads = g_control_loads.load(std::memory_order_relaxed);
}

bool SameStats(const ShakenFaultP11Stats& a, const ShakenFaultP11Stats& b) {
  return std::memcmp(&a, &b, sizeof(a)) == 0;  // all uint64_t: no padding
}

void WriteStats(const std::string& path, const ShakenFaultP11Stats& s) {
  char buf[1024];
  int n = std::snprintf(
      buf, sizeof(buf),
      "sign_calls=%llu\nsign_init_calls=%llu\nopen_session_calls=%llu\nlogin_calls=%llu\n"
      "injected_failures=%llu\ngone_refusals=%llu\nsign_in_flight=%llu\nsign_max_in_flight=%llu\n"
      "control_loads=%llu\n",
      static_cast<unsigned long long>(s.sign_calls), static_cast<unsigned long long>(s.sign_init_calls),
      static_cast<unsigned long long>(s.open_session_calls),
      static_cast<unsigned long long>(s.login_calls),
      static_cast<unsigned long long>(s.injected_failures),
      static_cast<unsigned long long>(s.gone_refusals),
      static_cast<unsigned long long>(s.sign_in_flight),
      static_cast<unsigned long long>(s.sign_max_in_flight),
      static_cast<unsigned long long>(s.control_loads));
  const std::string tmp = path + ".tmp." + std::to_string(getpid());
  FILE* f = std::fopen(tmp.c_str(), "w");
  if (f == nullptr) return;
  bool ok = std::fwrite(buf, 1, static_cast<size_t>(n), f) == static_cast<size_t>(n);
  ok = std::fclose(f) == 0 && ok;
  if (!ok || std::rename(tmp.c_str(), path.c_str()) != 0) std::remove(tmp.c_str());
}

struct FileId {
  ino_t ino = 0;
  off_t size = -1;
  timespec mtime = {0, 0};
  bool operator==(const FileId& o) const {
    return ino == o.ino && size == o.size && mtime.tv_sec == o.mtime.tv_sec &&
           mtime.tv_nsec == o.mtime.tv_nsec;
  }
};

void CheckControl(FileId* seen) {
  struct stat st;
  FileId now;
  if (::stat(g_control_path->c_str(), &st) == 0) {
    now = {st.st_ino, st.st_size, st.st_mtim};
  }
  if (now == *seen) return;
  *seen = now;
  if (now.size < 0) return;  // removed: keep the current configuration
  FILE* f = std::fopen(g_control_path->c_str(), "r");
  if (f == nullptr) return;
  std::string text;
  char buf[4096];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof(buf), f)) > 0) text.append(buf, n);
  std::fclose(f);
  Apply(text, g_control_path->c_str());
}

// Poll runs for the life of the process (the module is never unloaded: -z nodelete).
void Poll(FileId control_seen) {
  ShakenFaultP11Stats written;
  std::memset(&written, 0xff, sizeof(written));  // differs from any snapshot: first write happens
  auto last_write = std::chrono::steady_clock::time_point();
  while (true) {
    if (g_control_path != nullptr) CheckControl(&control_seen);
    if (g_stats_path != nullptr &&
        std::chrono::steady_clock::now() - last_write >= std::chrono::milliseconds(5)) {
      ShakenFaultP11Stats s;
      Snapshot(&s);
      if (!SameStats(s, written)) {
        WriteStats(*g_stats_path, s);
        written = s;
        last_write = std::chrono::steady_clock::now();
      }
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
}

// --- the forwarding list ---

CK_FUNCTION_LIST g_list{};
const CK_FUNCTION_LIST* g_real = nullptr;
CK_RV g_init_rv = CKR_OK;

bool Gone() { return Get(kTokenGone) != 0; }

CK_RV Refuse(CK_RV rv) {
  g_gone_refusals.fetch_add(1, std::memory_order_relaxed);
  return rv;
}

void Delay(KeyIndex k) {
  if (uint64_t us = Get(k)) std::this_thread::sleep_for(std::chrono::microseconds(us));
}

// InFlight counts a C_Sign from entry to return and keeps the maximum.
class InFlight {
 public:
  InFlight() {
    uint64_t now = g_sign_in_flight.fetch_add(1, std::memory_order_relaxed) + 1;
    uint64_t max = g_sign_max_in_flight.load(std::memory_order_relaxed);
    while (now > max &&
           !g_sign_max_in_flight.compare_exchange_weak(max, now, std::memory_order_relaxed)) {
    }
  }
  ~InFlight() { g_sign_in_flight.fetch_sub(1, std::memory_order_relaxed); }
};

// Functions forwarded as they are.
#define SHAKEN_FAULT_PLAIN(X) \
  X(C_Initialize) X(C_Finalize) X(C_GetInfo) X(C_CloseSession) X(C_CloseAllSessions) \
  X(C_WaitForSlotEvent)
// Functions about a slot's token: CKR_TOKEN_NOT_PRESENT while it is gone.
#define SHAKEN_FAULT_TOKEN(X) X(C_GetTokenInfo) X(C_GetMechanismList) X(C_GetMechanismInfo) X(C_InitToken)
// Functions on a session (first argument): CKR_DEVICE_REMOVED while the token is gone. C_Login,
// C_SignInit and C_Sign have their own shims below.
#define SHAKEN_FAULT_SESSION(X)                                                                   \
  X(C_InitPIN) X(C_SetPIN) X(C_GetSessionInfo) X(C_GetOperationState) X(C_SetOperationState)      \
  X(C_Logout) X(C_CreateObject) X(C_CopyObject) X(C_DestroyObject) X(C_GetObjectSize)             \
  X(C_GetAttributeValue) X(C_SetAttributeValue) X(C_FindObjectsInit) X(C_FindObjects)             \
  X(C_FindObjectsFinal) X(C_EncryptInit) X(C_Encrypt) X(C_EncryptUpdate) X(C_EncryptFinal)        \
  X(C_DecryptInit) X(C_Decrypt) X(C_DecryptUpdate) X(C_DecryptFinal) X(C_DigestInit) X(C_Digest)  \
  X(C_DigestUpdate) X(C_DigestKey) X(C_DigestFinal) X(C_SignUpdate) X(C_SignFinal)                \
  X(C_SignRecoverInit) X(C_SignRecover) X(C_VerifyInit) X(C_Verify) X(C_VerifyUpdate)             \
  X(C_VerifyFinal) X(C_VerifyRecoverInit) X(C_VerifyRecover) X(C_DigestEncryptUpdate)             \
  X(C_DecryptDigestUpdate) X(C_SignEncryptUpdate) X(C_DecryptVerifyUpdate) X(C_GenerateKey)       \
  X(C_GenerateKeyPair) X(C_WrapKey) X(C_UnwrapKey) X(C_DeriveKey) X(C_SeedRandom)                 \
  X(C_GenerateRandom) X(C_GetFunctionStatus) X(C_CancelFunction)

CK_RV GetFunctionListShim(CK_FUNCTION_LIST_PTR_PTR out);

void BuildList() {
  // Each shim is a captureless generic lambda: its conversion to the member's function-pointer
  // type deduces the parameter types from pkcs11.h.
#define SHAKEN_PLAIN_SHIM(name) \
  g_list.name = [](auto... args) -> CK_RV { return g_real->name(args...); };
  SHAKEN_FAULT_PLAIN(SHAKEN_PLAIN_SHIM)
#undef SHAKEN_PLAIN_SHIM
#define SHAKEN_TOKEN_SHIM(name)                                   \
  g_list.name = [](CK_SLOT_ID slot, auto... args) -> CK_RV {      \
    if (Gone()) return Refuse(CKR_TOKEN_NOT_PRESENT);             \
    return g_real->name(slot, args...);                           \
  };
  SHAKEN_FAULT_TOKEN(SHAKEN_TOKEN_SHIM)
#undef SHAKEN_TOKEN_SHIM
#define SHAKEN_SESSION_SHIM(name)                                     \
  g_list.name = [](CK_SESSION_HANDLE session, auto... args) -> CK_RV { \
    if (Gone()) return Refuse(CKR_DEVICE_REMOVED);                    \
    return g_real->name(session, args...);                            \
  };
  SHAKEN_FAULT_SESSION(SHAKEN_SESSION_SHIM)
#undef SHAKEN_SESSION_SHIM

  g_list.C_GetFunctionList = &GetFunctionListShim;
  g_list.C_GetSlotList = [](CK_BBOOL token_present, CK_SLOT_ID_PTR list, CK_ULONG_PTR count) -> CK_RV {
    if (token_present && Gone()) {
      if (count == nullptr) return CKR_ARGUMENTS_BAD;
      *count = 0;  // no slot has a token
      return CKR_OK;
    }
    return g_real->C_GetSlotList(token_present, list, count);
  };
  g_list.C_GetSlotInfo = [](CK_SLOT_ID slot, CK_SLOT_INFO_PTR info) -> CK_RV {
    CK_RV rv = g_real->C_GetSlotInfo(slot, info);
    if (rv == CKR_OK && info != nullptr && Gone()) info->flags &= ~CKF_TOKEN_PRESENT;
    return rv;
  };
  g_list.C_OpenSession = [](CK_SLOT_ID slot, CK_FLAGS flags, void* app, CK_NOTIFY notify,
                            CK_SESSION_HANDLE_PTR session) -> CK_RV {
    g_open_session_calls.fetch_add(1, std::memory_order_relaxed);
    if (Gone()) return Refuse(CKR_TOKEN_NOT_PRESENT);
    Delay(kOpenSessionDelay);
    return g_real->C_OpenSession(slot, flags, app, notify, session);
  };
  g_list.C_Login = [](CK_SESSION_HANDLE session, CK_USER_TYPE user, CK_UTF8CHAR_PTR pin,
                      CK_ULONG pin_len) -> CK_RV {
    g_login_calls.fetch_add(1, std::memory_order_relaxed);
    if (Gone()) return Refuse(CKR_DEVICE_REMOVED);
    Delay(kLoginDelay);
    return g_real->C_Login(session, user, pin, pin_len);
  };
  g_list.C_SignInit = [](CK_SESSION_HANDLE session, CK_MECHANISM_PTR mech, CK_OBJECT_HANDLE key) -> CK_RV {
    g_sign_init_calls.fetch_add(1, std::memory_order_relaxed);
    if (Gone()) return Refuse(CKR_DEVICE_REMOVED);
    Delay(kSignInitDelay);
    return g_real->C_SignInit(session, mech, key);
  };
  g_list.C_Sign = [](CK_SESSION_HANDLE session, CK_BYTE_PTR data, CK_ULONG data_len,
                     CK_BYTE_PTR sig, CK_ULONG_PTR sig_len) -> CK_RV {
    g_sign_calls.fetch_add(1, std::memory_order_relaxed);
    InFlight in_flight;
    if (Gone()) return Refuse(CKR_DEVICE_REMOVED);
    Delay(kSignDelay);
    CK_RV rv = g_real->C_Sign(session, data, data_len, sig, sig_len);
    if (uint64_t every = Get(kSignFailEvery); every > 0 && sig != nullptr) {
      if ((g_fail_count.fetch_add(1, std::memory_order_relaxed) + 1) % every == 0) {
        g_injected_failures.fetch_add(1, std::memory_order_relaxed);
        return static_cast<CK_RV>(Get(kSignFailRv));
      }
    }
    return rv;
  };
}

void Init() {
  ApplyEnvironment();
  const char* target = std::getenv("SHAKEN_FAULT_P11_TARGET");
  if (target == nullptr || *target == '\0') target = kDefaultTarget;
  void* dl = dlopen(target, RTLD_NOW | RTLD_LOCAL);
  auto get = dl == nullptr ? nullptr
                           : reinterpret_cast<CK_C_GetFunctionList>(dlsym(dl, "C_GetFunctionList"));
  CK_FUNCTION_LIST* real = nullptr;
  if (get == nullptr || get(&real) != CKR_OK || real == nullptr) {
    const char* err = dlerror();
    std::fprintf(stderr, "shaken_fault_pkcs11: cannot use the target module %s: %s\n", target,
                 err != nullptr ? err : "no function list");
    g_init_rv = CKR_GENERAL_ERROR;
    return;
  }
  g_real = real;
  // The 2.40 list is all this module implements, whatever the target offers beyond it.
  g_list.version = {CRYPTOKI_VERSION_MAJOR, CRYPTOKI_VERSION_MINOR};
  BuildList();
  // Every member after `version` is a function pointer: a missing shim is a bug here.
  constexpr size_t kFunctions = (sizeof(CK_FUNCTION_LIST) - offsetof(CK_FUNCTION_LIST, C_Initialize)) /
                                sizeof(void (*)());
  auto* fns = reinterpret_cast<void (**)()>(&g_list.C_Initialize);
  for (size_t i = 0; i < kFunctions; ++i) {
    if (fns[i] == nullptr) {
      std::fprintf(stderr, "shaken_fault_pkcs11: function %zu of CK_FUNCTION_LIST not wrapped\n", i);
      std::abort();
    }
  }
  if (const char* p = std::getenv("SHAKEN_FAULT_P11_CONTROL"); p != nullptr && *p != '\0') {
    g_control_path = new std::string(p);
  }
  if (const char* p = std::getenv("SHAKEN_FAULT_P11_STATS"); p != nullptr && *p != '\0') {
    g_stats_path = new std::string(p);
  }
  if (g_control_path != nullptr || g_stats_path != nullptr) {
    FileId seen;
    // Applied before the first call, not a poll period later.
    if (g_control_path != nullptr) CheckControl(&seen);
    std::thread(Poll, seen).detach();
  }
}

CK_RV GetFunctionListShim(CK_FUNCTION_LIST_PTR_PTR out) {
  static std::once_flag once;
  std::call_once(once, Init);
  if (g_init_rv != CKR_OK) return g_init_rv;
  if (out == nullptr) return CKR_ARGUMENTS_BAD;
  *out = &g_list;
  return CKR_OK;
}

}  // namespace

SHAKEN_FAULT_EXPORT CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR out) {
  return GetFunctionListShim(out);
}

SHAKEN_FAULT_EXPORT void shaken_fault_p11_stats(ShakenFaultP11Stats* out) {
  if (out != nullptr) Snapshot(out);
}

SHAKEN_FAULT_EXPORT void shaken_fault_p11_reset(void) {
  for (auto* c : {&g_sign_calls, &g_sign_init_calls, &g_open_session_calls, &g_login_calls,
                  &g_injected_failures, &g_gone_refusals, &g_control_loads, &g_fail_count}) {
    c->store(0, std::memory_order_relaxed);
  }
  g_sign_max_in_flight.store(g_sign_in_flight.load(std::memory_order_relaxed),
                             std::memory_order_relaxed);
}

SHAKEN_FAULT_EXPORT int shaken_fault_p11_configure(const char* lines) {
  if (lines == nullptr) return -1;
  return Apply(lines, "shaken_fault_p11_configure");
}
