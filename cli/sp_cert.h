// sp_cert.h: the two halves of an SP (end-entity) SHAKEN certificate, shared by the offline
// commands (`csr create`, `ca issue`) and the ACME ones (`acme order`, `ca serve`): the CSR an
// SP signs with its key (in the token, or a file), and the certificate an STI-CA issues from it
// under the ATIS-1000080 profile.
#ifndef SHAKEN_CLI_SP_CERT_H_
#define SHAKEN_CLI_SP_CERT_H_

#include <openssl/x509.h>

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "cli/common.h"
#include "cli/pki_common.h"
#include "cli/x509.h"
#include "stir/cert_source.h"

namespace shaken::cli {

// SpCertKind: an SP's end-entity SHAKEN certificate, or an SP-CA certificate (RFC 9060: a CA
// operated by the SP whose TNAuthList is the scope it may delegate; ATIS-1000092).
enum class SpCertKind { kEndEntity, kSpCa };

// BuildShakenCsr makes a CSR for `subject` carrying `tn_entries` as TNAuthList (RFC 8226,
// non-critical) and BasicConstraints (critical) CA:FALSE, or CA:TRUE for an SP-CA, signed by
// `key` (CE-10, CE-5).
absl::StatusOr<X509ReqPtr> BuildShakenCsr(const std::vector<stir::TnAuthEntry>& tn_entries,
                                          const X509_NAME* subject, const LoadedKey& key,
                                          SpCertKind kind = SpCertKind::kEndEntity);

// SpIssueOptions are the CA's choices for an SP certificate (`ca issue` flags, `ca serve`).
struct SpIssueOptions {
  std::string spc;  // when set, the CSR's TNAuthList must be exactly this SPC
  std::string crl_url;
  std::string crl_issuer;  // DN; empty: the issuing CA's subject
  bool no_crl_issuer = false;
  std::vector<std::string> policies;
  bool allow_delegate = false;
  pki::ValidityFlags validity;
};

// CheckSpRequest checks a CSR before any CA key is touched: its signature, a P-256 key, a
// well-formed TNAuthList with exactly one SPC (digits and upper case; TN entries only with
// allow_delegate), equal to options.spc when set, and a subject with C, O and CN "SHAKEN <SPC>"
// (ATIS-1000080 v004+). Returns the TNAuthList re-encoded canonically (explicit tags).
// INVALID_ARGUMENT / FAILED_PRECONDITION say what to fix; `what` names the CSR in messages.
absl::StatusOr<std::string> CheckSpRequest(X509_REQ* req, const SpIssueOptions& options,
                                           std::string_view what);

// CheckIssuerScope refuses (FAILED_PRECONDITION) to certify `entries` under an issuer whose own
// TNAuthList (an SP-CA's scope, RFC 9060) does not encompass them (stir::EntriesOutsideScope,
// the rule the verifier applies as DL-3). An issuer without a TNAuthList (an STI-CA) limits
// nothing.
absl::Status CheckIssuerScope(const X509* issuer, const std::vector<stir::TnAuthEntry>& entries);

// IssueSpCertificate issues the ATIS-1000080 end-entity certificate for a CSR that passed
// CheckSpRequest (`tn_der` is what it returned): BC CA:FALSE critical, KU digitalSignature
// critical, SKI, AKI, the policies, the CRL DP (with cRLIssuer unless told not to), TNAuthList;
// validity from options.validity clipped to the issuer. Signed through the issuer's Signer and
// checked with the issuer's key. kSpCa issues an SP-CA instead: BC CA:TRUE with pathlen 0 and KU
// keyCertSign, cRLSign (both critical); its TNAuthList is the scope it may delegate.
absl::StatusOr<stir::X509Ptr> IssueSpCertificate(X509_REQ* req, std::string_view tn_der,
                                                 const pki::Issuer& issuer,
                                                 const SpIssueOptions& options,
                                                 SpCertKind kind = SpCertKind::kEndEntity);

}  // namespace shaken::cli

#endif  // SHAKEN_CLI_SP_CERT_H_
