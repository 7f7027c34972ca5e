// pki_common.h: what the STI PKI commands (cmd_ca.cc, cmd_csr.cc, cmd_cert.cc, cmd_ca_dir.cc)
// share: output, validity and subject flags, the issuer (a CA certificate with its key), the
// TNAuthList a command line or a CSR asks for, and how a command that makes a PEM object emits it.
#ifndef SHAKEN_CLI_PKI_COMMON_H_
#define SHAKEN_CLI_PKI_COMMON_H_

#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "cli/common.h"
#include "cli/x509.h"
#include "nlohmann/json.hpp"
#include "stir/cert_source.h"
#include "stir/openssl_util.h"

namespace shaken::cli::pki {

using X509CrlPtr = stir::X509CrlPtr;
using RevokedPtr = stir::X509RevokedPtr;
using Asn1IntPtr = stir::Asn1IntegerPtr;
using Asn1TimePtr = stir::Asn1TimePtr;
using ExtStackPtr = std::unique_ptr<STACK_OF(X509_EXTENSION), void (*)(STACK_OF(X509_EXTENSION)*)>;

inline void FreeExts(STACK_OF(X509_EXTENSION) * s) {
  sk_X509_EXTENSION_pop_free(s, X509_EXTENSION_free);
}


struct OutFlags {
  std::string out;
  bool force = false;
  bool json = false;
};

struct ValidityFlags {
  int64_t days = 0;
  std::optional<int64_t> not_before;
};

// Issuer is a CA certificate with its signing key, checked to belong together.
struct Issuer {
  stir::X509Ptr cert;
  LoadedKey key;
};

struct SubjectFlags {
  std::string subject;
  std::string cn;
  std::string org;
  std::string country = "US";
};

struct TnAuthFlags {
  std::string spc;
  std::vector<std::string> tns;
  std::vector<std::string> ranges;  // START:COUNT
};

struct Made {
  std::string pem;
  nlohmann::json summary;
};

// TimeText is RFC 3339 UTC ("2026-01-01T00:00:00Z").
std::string TimeText(absl::Time t);

void AddOutFlags(CLI::App* app, OutFlags* f, const char* what);
void AddValidityFlags(CLI::App* app, ValidityFlags* f, int64_t default_days);
void AddSubjectFlags(CLI::App* app, SubjectFlags* f);
// AddTnAuthFlags adds --spc, --tn and --tn-range (repeatable): a TNAuthList, described as
// `role` ("" for an SP's certificate request, "scope" for the SP-CA's delegable numbers).
void AddTnAuthFlags(CLI::App* app, TnAuthFlags* f, const std::string& role);

// CheckOut fails when --out names a file that exists and --force is not given.
absl::Status CheckOut(const OutFlags& f);
// Emit writes `pem` to --out (atomically) or stdout and prints the JSON summary when asked.
int Emit(const OutFlags& f, const std::string& pem, nlohmann::json summary);

// CertSummary is the JSON a command prints for a certificate it made.
nlohmann::json CertSummary(const X509* cert);
// ReadOneCertificate reads the first certificate of a file (PEM or DER; - for stdin).
absl::StatusOr<stir::X509Ptr> ReadOneCertificate(const std::string& path);
// LoadIssuer reads a CA certificate and its key and checks that they belong together.
absl::StatusOr<Issuer> LoadIssuer(const std::string& cert_path, const std::string& key,
                                  const TokenOptions& token);
// Window computes notBefore/notAfter; a certificate never outlives its issuer (clipped, with a
// note).
absl::StatusOr<std::pair<absl::Time, absl::Time>> Window(const ValidityFlags& v,
                                                         const X509* issuer);
// NewCertificate is an unsigned v3 certificate with a random serial (CE-2) and `window`.
absl::StatusOr<stir::X509Ptr> NewCertificate(const X509_NAME* subject, const X509_NAME* issuer,
                                             const EVP_PKEY* public_key,
                                             std::pair<absl::Time, absl::Time> window);
// SubjectFrom is --subject, or C / O / CN from the other flags.
absl::StatusOr<X509NamePtr> SubjectFrom(const SubjectFlags& f);

// TnAuthEntries checks the TNAuthList flags (--spc, --tn, --tn-range) and returns the entries.
absl::StatusOr<std::vector<stir::TnAuthEntry>> TnAuthEntries(const TnAuthFlags& f);
nlohmann::json TnAuthJson(const std::vector<stir::TnAuthEntry>& entries);
std::string TnAuthText(const std::vector<stir::TnAuthEntry>& entries);
// CsrTnAuthList reads and parses the TNAuthList a CSR requests.
absl::StatusOr<std::vector<stir::TnAuthEntry>> CsrTnAuthList(X509_REQ* req, std::string* der);

// Runner makes the command function of a command that makes a PEM object: check --out, make it
// from the flags, emit it.
template <typename T, typename F>
std::function<int()> Runner(std::shared_ptr<T> flags, F make) {
  return [flags, make]() -> int {
    if (absl::Status st = CheckOut(flags->out); !st.ok()) return Fail(st);
    auto result = make(*flags);
    if (!result.ok()) return Fail(result.status());
    return Emit(flags->out, result->pem, result->summary);
  };
}


// MadeCert is the PEM and summary of a certificate just made.
absl::StatusOr<Made> MadeCert(absl::StatusOr<stir::X509Ptr> cert);

}  // namespace shaken::cli::pki

#endif  // SHAKEN_CLI_PKI_COMMON_H_
