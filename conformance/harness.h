// harness.h: what the conformance cases share (conformance/README.md): the runner's arguments,
// the in-process daemon with its STI PKI and x5u server, a second (untrusted) PKI, a TLS server
// nobody trusts, the RFC test vectors and the vector world; and the pieces a case is built from
// (its leaf certificate, what the x5u server answers, the fetcher and validator for its policy).
#ifndef SHAKEN_CONFORMANCE_HARNESS_H_
#define SHAKEN_CONFORMANCE_HARNESS_H_

#include <cstdint>
#include <map>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "shaken/client.h"
#include "stir/cert_validator.h"
#include "stir/json.h"
#include "stir/x5u_fetcher.h"
#include "tests/daemon_fixture.h"
#include "tests/testing/https_server.h"
#include "tests/testing/test_pki.h"

namespace shaken::conformance {

using stir::Json;

inline constexpr int64_t kVectorIat = 1443208345;  // V4's iat (docs/standards.md#test-vectors)
inline constexpr char kVectorX5u[] = "https://cert.example.org/passport.cer";

struct Args {
  std::string source_dir;
  std::string out;
  std::string secsipidx;  // empty: secsipidx is not installed, its comparisons are skipped
  std::string openssl = "/usr/bin/openssl";
  std::string only;
};

// Harness holds everything the cases share: the in-process daemon with its STI PKI and x5u
// server, a second (untrusted) PKI, a TLS server nobody trusts, the vector world, keys.
struct Harness {
  Args args;
  std::unique_ptr<testing::DaemonEnv> env;
  std::unique_ptr<client::Client> client;
  std::unique_ptr<testing::TempDir> dir;
  std::unique_ptr<testing::TestPki> other_pki;
  std::unique_ptr<testing::HttpsServer> rogue_tls;
  testing::TestCert default_leaf;
  stir::EvpPkeyPtr other_p256, p384, rsa;
  int refused_port = 0;
  std::string root_file;
  std::map<std::string, std::string> vectors;
  Json rfc_vectors;
  // The vector world: a PKI at V4's iat certifying K1, served at /vector/k1.pem.
  std::unique_ptr<testing::TestPki> vector_pki;
  std::string vector_root_file;
  stir::EvpPkeyPtr k1_private;
  testing::TestCert k1_leaf;
  std::map<std::string, std::shared_ptr<const stir::CertificateFetcher>> fetchers;
  std::map<std::string, std::shared_ptr<const stir::CertValidator>> validators;
};


// SetUp starts the daemon, the servers and the PKIs, and loads the vectors.
absl::Status SetUp(Harness* h);

// Str, Int, Bool: a member of a case's JSON object, or `fallback` when it is absent or of another
// type. Member: the member, or an empty value. LoadJsonFile: a whole JSON file.
std::string Str(const Json& obj, const char* name, std::string fallback = "");
int64_t Int(const Json& obj, const char* name, int64_t fallback = 0);
bool Bool(const Json& obj, const char* name, bool fallback = false);
const Json& Member(const Json& obj, const char* name);
absl::StatusOr<Json> LoadJsonFile(const std::string& path);

// Fetcher returns the libcurl fetcher for a fetch policy: "lab" (loopback allowed, any port,
// 1 s timeouts so slow cases stay short), "production" (the defaults: 443/8443, SSRF guard) or
// "production_any_port" (SSRF guard only); `vector` rewrites the vector x5u to its loopback route.
absl::StatusOr<std::shared_ptr<const stir::CertificateFetcher>> Fetcher(Harness* h,
                                                                         const std::string& policy,
                                                                         bool vector);
// Validator returns the validator trusting `root` under `policy` ("strict", "lenient"), with
// `crl_file` when not empty. Both are built once per distinct argument list.
absl::StatusOr<std::shared_ptr<const stir::CertValidator>> Validator(Harness* h,
                                                                     const std::string& root,
                                                                     const std::string& policy,
                                                                     const std::string& crl_file);

// IssueCaseLeaf issues the leaf a case's "cert" object describes.
absl::StatusOr<testing::TestCert> IssueCaseLeaf(Harness* h, const Json& spec);
// ChainFor is the x5u body for `chain`: "" (leaf, intermediate), "leaf_only" or "reversed".
std::string ChainFor(const testing::TestPki& pki, const testing::TestCert& leaf,
                     const std::string& chain);
// RouteFor is the HTTP response the x5u server gives for a case.
absl::StatusOr<testing::HttpResponse> RouteFor(const Json& behaviour_spec,
                                               const std::string& chain_pem,
                                               const testing::TestCert& leaf,
                                               const std::string& good_url);

}  // namespace shaken::conformance

#endif  // SHAKEN_CONFORMANCE_HARNESS_H_
