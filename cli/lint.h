// lint.h: the SHAKEN certificate profile lint of `shakenctl cert check`: every rule of the one
// profile table (stir/cert_profile.h: the CE-* items of docs/standards.md) as a PASS / FAIL /
// WARN / INFO row, for an end-entity, an intermediate or a root certificate.
#ifndef SHAKEN_CLI_LINT_H_
#define SHAKEN_CLI_LINT_H_

#include <openssl/x509.h>

#include <string>
#include <string_view>
#include <vector>

#include "absl/time/time.h"
#include "stir/cert_profile.h"

namespace shaken::cli {

using stir::CertRole;
using stir::CertRoleName;
using stir::RoleOf;

enum class LintStatus { kPass, kFail, kWarn, kInfo };
std::string_view LintStatusName(LintStatus s);  // "PASS", "FAIL", "WARN", "INFO"

struct LintRow {
  std::string id;       // "CE-1", ...
  std::string item;     // short name of the requirement
  LintStatus status;
  std::string detail;   // what was found
};

// LintCertificate applies every rule of stir::ShakenProfileRules() to `cert` in `role` at time
// `now` and reports each: FAIL when a finding is a requirement (whatever a validation enforces),
// WARN when only advice, INFO for information, else PASS. Never fails: a malformed extension is a
// FAIL row. Pure function of its inputs; thread-safe.
std::vector<LintRow> LintCertificate(const X509* cert, CertRole role, absl::Time now);

// HasFailure tells whether any row is a FAIL.
bool HasFailure(const std::vector<LintRow>& rows);

}  // namespace shaken::cli

#endif  // SHAKEN_CLI_LINT_H_
