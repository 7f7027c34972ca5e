// status_macros.h: RETURN_IF_ERROR and ASSIGN_OR_RETURN, which Debian's abseil 20220623 lacks,
// and WithPrefix.
// Part of the stir_signer target: the one piece of stir/ that hsm/ may include.
#ifndef SHAKEN_STIR_STATUS_MACROS_H_
#define SHAKEN_STIR_STATUS_MACROS_H_

#include <utility>

#include "absl/base/optimization.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

// RETURN_IF_ERROR(expr) returns the absl::Status of `expr` from the enclosing function when it is
// not OK.
#define RETURN_IF_ERROR(expr)                                   \
  do {                                                          \
    ::absl::Status shaken_status_ = (expr);                     \
    if (ABSL_PREDICT_FALSE(!shaken_status_.ok())) return shaken_status_; \
  } while (0)

// ASSIGN_OR_RETURN(lhs, expr) evaluates the absl::StatusOr `expr`; on error it returns the status,
// otherwise it moves the value into `lhs` (which may be a declaration: `auto x`).
#define ASSIGN_OR_RETURN(lhs, expr) \
  SHAKEN_ASSIGN_OR_RETURN_IMPL_(SHAKEN_STATUS_CONCAT_(shaken_statusor_, __LINE__), lhs, expr)

#define SHAKEN_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, expr)                   \
  auto tmp = (expr);                                                  \
  if (ABSL_PREDICT_FALSE(!tmp.ok())) return std::move(tmp).status(); \
  lhs = std::move(tmp).value()

#define SHAKEN_STATUS_CONCAT_INNER_(a, b) a##b
#define SHAKEN_STATUS_CONCAT_(a, b) SHAKEN_STATUS_CONCAT_INNER_(a, b)

namespace shaken::stir {

// WithPrefix is `status` with `prefix` put before its message (context such as "profile x: "),
// same code, and every payload kept: callers classify errors by payload (hsm's CK_RV, read by
// hsm::IsPinRefused), which a status rebuilt from code and message alone would lose.
inline absl::Status WithPrefix(const absl::Status& status, absl::string_view prefix) {
  absl::Status out(status.code(), absl::StrCat(prefix, status.message()));
  status.ForEachPayload(
      [&](absl::string_view url, const absl::Cord& payload) { out.SetPayload(url, payload); });
  return out;
}

}  // namespace shaken::stir

#endif  // SHAKEN_STIR_STATUS_MACROS_H_
