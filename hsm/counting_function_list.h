// counting_function_list.h: a CK_FUNCTION_LIST that forwards every call to a real module and
// counts calls per function. Used by the tests (exactly two calls per signature) and by the
// benchmark; the daemon may use it for a shaken_pkcs11_calls_total metric.
#ifndef SHAKEN_HSM_COUNTING_FUNCTION_LIST_H_
#define SHAKEN_HSM_COUNTING_FUNCTION_LIST_H_

#include <p11-kit/pkcs11.h>

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace shaken::hsm {

// CountingFunctionList wraps a real function list. PKCS#11 entry points take no context argument,
// so the shims reach the wrapper through a process-wide pointer: at most one instance may exist at
// a time (Create fails with FAILED_PRECONDITION otherwise). Counting is thread-safe (relaxed
// atomics). The real list must outlive this object; this object must outlive every Module that
// wraps list().
class CountingFunctionList {
 public:
  static absl::StatusOr<std::unique_ptr<CountingFunctionList>> Create(const CK_FUNCTION_LIST* real);
  ~CountingFunctionList();
  CountingFunctionList(const CountingFunctionList&) = delete;
  CountingFunctionList& operator=(const CountingFunctionList&) = delete;

  // list is what to hand to Module::Wrap.
  const CK_FUNCTION_LIST* list() const { return &list_; }

  // Count returns the calls of one function ("C_Sign") since the last Reset.
  uint64_t Count(absl::string_view function) const;
  // Total returns all calls since the last Reset.
  uint64_t Total() const;
  // Snapshot returns the non-zero counts by function name.
  std::map<std::string, uint64_t> Snapshot() const;
  void Reset();

 private:
  CountingFunctionList() = default;
  CK_FUNCTION_LIST list_{};
};

}  // namespace shaken::hsm

#endif  // SHAKEN_HSM_COUNTING_FUNCTION_LIST_H_
