// interop.h: interoperability with an independent implementation (secsipidx, Debian package
// `secsipidx`) both ways, and OpenSSL cross-checks of signatures and certificates.
#ifndef SHAKEN_CONFORMANCE_INTEROP_H_
#define SHAKEN_CONFORMANCE_INTEROP_H_

#include <string>

#include "absl/status/status.h"
#include "conformance/runner.h"
#include "shaken/client.h"
#include "tests/daemon_fixture.h"
#include "tests/testing/test_pki.h"

namespace shaken::conformance {

struct InteropDeps {
  testing::DaemonEnv* env = nullptr;       // its SoftHSM2 token key, file key, PKI and x5u server
  client::Client* client = nullptr;        // Verify RPC client of the daemon
  testing::TempDir* dir = nullptr;         // scratch files
  const testing::TestPki* untrusted_pki = nullptr;
  std::string secsipidx;
  std::string openssl;
};

// RunInterop appends the interop tallies to report->interop:
//   shakend -> secsipidx: 100 Identity headers signed by stir's PassportSigner (50 with the
//     daemon's file key, 50 with its SoftHSM2 token key through hsm::OpenKeyPool), each checked
//     by `secsipidx -check` with the certificate file and with the x5u URL over HTTPS on loopback
//     (SSL_CERT_FILE = the test TLS CA), and by OpenSSL (EVP over r||s -> DER; 10 with the
//     `openssl dgst` CLI);
//   secsipidx -> shakend: 100 headers made by `secsipidx -sign-full` with the file key, verified
//     by stir's Verifier (real x5u fetch and chain validation) and by the daemon's Verify RPC;
//   secsipidx -> shakend, div: 10 ppt=div PASSporTs made by `secsipidx -sign` (custom header and
//     payload), each diverting a shaken PASSporT of stir's, verified as a pair by stir and the
//     daemon (secsipidx -check refuses ppt=div, so there is no other direction);
//   certificates: `openssl verify` agrees with shakend on the token, file and an untrusted leaf.
// Errors only for set-up failures; individual mismatches are counted.
absl::Status RunInterop(const InteropDeps& deps, Report* report);

}  // namespace shaken::conformance

#endif  // SHAKEN_CONFORMANCE_INTEROP_H_
