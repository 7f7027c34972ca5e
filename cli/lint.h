// lint.h: the SHAKEN certificate profile lint of `shakenctl cert check`: the CE-* items of
// docs/standards.md (ATIS-1000080 §6.4.1, SHAKEN CP v1.3/v1.4, RFC 8226) as a table of
// PASS / FAIL / WARN / INFO rows, for an end-entity, an intermediate or a root certificate.
#ifndef SHAKEN_CLI_LINT_H_
#define SHAKEN_CLI_LINT_H_

#include <openssl/x509.h>

#include <string>
#include <string_view>
#include <vector>

#include "absl/time/time.h"

namespace shaken::cli {

enum class CertRole { kEndEntity, kIntermediate, kRoot };
std::string_view CertRoleName(CertRole role);  // "end-entity", "intermediate", "root"

// RoleOf guesses the role: BasicConstraints CA:TRUE and self-issued (issuer name = subject
// name: a root, or a rollover certificate) -> root, CA:TRUE -> intermediate, else end-entity.
CertRole RoleOf(const X509* cert);

enum class LintStatus { kPass, kFail, kWarn, kInfo };
std::string_view LintStatusName(LintStatus s);  // "PASS", "FAIL", "WARN", "INFO"

struct LintRow {
  std::string id;       // "CE-1", ...
  std::string item;     // short name of the requirement
  LintStatus status;
  std::string detail;   // what was found
};

// LintCertificate checks `cert` against the profile for `role` at time `now`. Never fails: a
// malformed extension is a FAIL row. Pure function of its inputs; thread-safe.
std::vector<LintRow> LintCertificate(const X509* cert, CertRole role, absl::Time now);

// HasFailure tells whether any row is a FAIL.
bool HasFailure(const std::vector<LintRow>& rows);

}  // namespace shaken::cli

#endif  // SHAKEN_CLI_LINT_H_
