// lab_verifier.h: the verifier settings of a lab whose x5u server is a test HTTPS server on a
// loopback port (verifier.lab.allow_private_addresses and allow_any_port in shakend's terms).
#ifndef SHAKEN_TESTS_TESTING_LAB_VERIFIER_H_
#define SHAKEN_TESTS_TESTING_LAB_VERIFIER_H_

#include <string>

#include "stir/verification_stack.h"

namespace shaken::testing {

// LabVerifierSettings: strict SHAKEN profile under the trust anchors in `ca_file`, x5u fetched
// from loopback on any port over TLS trusted by `tls_ca_file`; every other setting the default.
inline stir::VerifierSettings LabVerifierSettings(const std::string& ca_file,
                                                  const std::string& tls_ca_file) {
  stir::VerifierSettings s;
  s.x5u_policy.allow_private_addresses = true;
  s.x5u_policy.allow_any_port = true;
  s.fetcher.tls_ca_file = tls_ca_file;
  s.validator.ca_file = ca_file;
  s.validator.strictness = stir::ProfileStrictness::kStrict;
  return s;
}

}  // namespace shaken::testing

#endif  // SHAKEN_TESTS_TESTING_LAB_VERIFIER_H_
