// signer_checks.h: the authentication-service (AS) checks that conformance cases of kind "signer"
// name (conformance/cases/signer.json): stir's PassportSigner against the RFC 8588 / RFC 8225
// test vectors (docs/standards.md#test-vectors) and its refusals. One table, name -> check.
#ifndef SHAKEN_CONFORMANCE_SIGNER_CHECKS_H_
#define SHAKEN_CONFORMANCE_SIGNER_CHECKS_H_

#include <string>

#include "absl/status/status.h"
#include "conformance/harness.h"

namespace shaken::conformance {

// RunSignerCheck runs the check named `check` and says what it saw in `detail`. OK when the
// signer behaves as the vectors say, FAILED_PRECONDITION naming what differs, INVALID_ARGUMENT
// for a name the table does not have.
absl::Status RunSignerCheck(Harness* h, const std::string& check, std::string* detail);

}  // namespace shaken::conformance

#endif  // SHAKEN_CONFORMANCE_SIGNER_CHECKS_H_
