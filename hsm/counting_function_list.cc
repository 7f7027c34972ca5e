#include "hsm/counting_function_list.h"

#include <atomic>

#include "absl/status/status.h"

namespace shaken::hsm {
namespace {

// Every member of CK_FUNCTION_LIST after `version` (PKCS#11 v2.40 §5.2), in order.
#define SHAKEN_CK_FUNCTIONS(X)                                                                   \
  X(C_Initialize) X(C_Finalize) X(C_GetInfo) X(C_GetFunctionList) X(C_GetSlotList)              \
  X(C_GetSlotInfo) X(C_GetTokenInfo) X(C_GetMechanismList) X(C_GetMechanismInfo) X(C_InitToken) \
  X(C_InitPIN) X(C_SetPIN) X(C_OpenSession) X(C_CloseSession) X(C_CloseAllSessions)             \
  X(C_GetSessionInfo) X(C_GetOperationState) X(C_SetOperationState) X(C_Login) X(C_Logout)      \
  X(C_CreateObject) X(C_CopyObject) X(C_DestroyObject) X(C_GetObjectSize)                       \
  X(C_GetAttributeValue) X(C_SetAttributeValue) X(C_FindObjectsInit) X(C_FindObjects)           \
  X(C_FindObjectsFinal) X(C_EncryptInit) X(C_Encrypt) X(C_EncryptUpdate) X(C_EncryptFinal)      \
  X(C_DecryptInit) X(C_Decrypt) X(C_DecryptUpdate) X(C_DecryptFinal) X(C_DigestInit)            \
  X(C_Digest) X(C_DigestUpdate) X(C_DigestKey) X(C_DigestFinal) X(C_SignInit) X(C_Sign)         \
  X(C_SignUpdate) X(C_SignFinal) X(C_SignRecoverInit) X(C_SignRecover) X(C_VerifyInit)          \
  X(C_Verify) X(C_VerifyUpdate) X(C_VerifyFinal) X(C_VerifyRecoverInit) X(C_VerifyRecover)      \
  X(C_DigestEncryptUpdate) X(C_DecryptDigestUpdate) X(C_SignEncryptUpdate)                      \
  X(C_DecryptVerifyUpdate) X(C_GenerateKey) X(C_GenerateKeyPair) X(C_WrapKey) X(C_UnwrapKey)    \
  X(C_DeriveKey) X(C_SeedRandom) X(C_GenerateRandom) X(C_GetFunctionStatus) X(C_CancelFunction) \
  X(C_WaitForSlotEvent)

enum Fn : int {
#define SHAKEN_ENUM(name) k##name,
  SHAKEN_CK_FUNCTIONS(SHAKEN_ENUM)
#undef SHAKEN_ENUM
  kFnCount
};

constexpr const char* kFnNames[] = {
#define SHAKEN_NAME(name) #name,
    SHAKEN_CK_FUNCTIONS(SHAKEN_NAME)
#undef SHAKEN_NAME
};

std::atomic<uint64_t> g_counts[kFnCount];
std::atomic<const CK_FUNCTION_LIST*> g_real{nullptr};
std::atomic<CountingFunctionList*> g_instance{nullptr};

}  // namespace

absl::StatusOr<std::unique_ptr<CountingFunctionList>> CountingFunctionList::Create(
    const CK_FUNCTION_LIST* real) {
  if (real == nullptr) return absl::InvalidArgumentError("CountingFunctionList: null list");
  std::unique_ptr<CountingFunctionList> self(new CountingFunctionList());
  CountingFunctionList* expected = nullptr;
  if (!g_instance.compare_exchange_strong(expected, self.get())) {
    return absl::FailedPreconditionError("only one CountingFunctionList may exist at a time");
  }
  g_real.store(real);
  self->list_.version = real->version;
  // Each shim is a captureless generic lambda: its conversion to the member's function-pointer
  // type deduces the parameter types from pkcs11.h.
#define SHAKEN_SHIM(name)                                                 \
  self->list_.name = [](auto... args) -> CK_RV {                          \
    g_counts[k##name].fetch_add(1, std::memory_order_relaxed);            \
    return g_real.load(std::memory_order_relaxed)->name(args...);         \
  };
  SHAKEN_CK_FUNCTIONS(SHAKEN_SHIM)
#undef SHAKEN_SHIM
  self->list_.C_GetFunctionList = [](CK_FUNCTION_LIST_PTR_PTR out) -> CK_RV {
    g_counts[kC_GetFunctionList].fetch_add(1, std::memory_order_relaxed);
    if (out == nullptr) return CKR_ARGUMENTS_BAD;
    *out = &g_instance.load()->list_;
    return CKR_OK;
  };
  self->Reset();
  return self;
}

CountingFunctionList::~CountingFunctionList() {
  g_real.store(nullptr);
  g_instance.store(nullptr);
}

uint64_t CountingFunctionList::Count(absl::string_view function) const {
  for (int i = 0; i < kFnCount; ++i) {
    if (function == kFnNames[i]) return g_counts[i].load(std::memory_order_relaxed);
  }
  return 0;
}

uint64_t CountingFunctionList::Total() const {
  uint64_t total = 0;
  for (int i = 0; i < kFnCount; ++i) total += g_counts[i].load(std::memory_order_relaxed);
  return total;
}

std::map<std::string, uint64_t> CountingFunctionList::Snapshot() const {
  std::map<std::string, uint64_t> out;
  for (int i = 0; i < kFnCount; ++i) {
    if (uint64_t n = g_counts[i].load(std::memory_order_relaxed)) out[kFnNames[i]] = n;
  }
  return out;
}

void CountingFunctionList::Reset() {
  for (auto& c : g_counts) c.store(0, std::memory_order_relaxed);
}

}  // namespace shaken::hsm
