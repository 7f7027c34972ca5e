#include "cli/sp_cert.h"

#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "absl/strings/str_cat.h"
#include "stir/absl_compat.h"
#include "stir/cert_profile.h"
#include "stir/status_macros.h"
#include "stir/tn_auth_list.h"

namespace shaken::cli {

using pki::ExtStackPtr;
using pki::FreeExts;

absl::StatusOr<X509ReqPtr> BuildShakenCsr(const std::vector<stir::TnAuthEntry>& tn_entries,
                                          const X509_NAME* subject, const LoadedKey& key,
                                          SpCertKind kind) {
  ASSIGN_OR_RETURN(std::string tn_der, stir::EncodeTnAuthList(tn_entries));
  X509ReqPtr req(X509_REQ_new());
  if (!req || !X509_REQ_set_version(req.get(), 0) ||
      !X509_REQ_set_subject_name(req.get(), subject) ||
      !X509_REQ_set_pubkey(req.get(), key.public_key.get())) {
    return stir::OpenSslError(absl::StatusCode::kInternal, "CSR fields");
  }
  ExtStackPtr exts(sk_X509_EXTENSION_new_null(), FreeExts);
  // RFC 8226 §9: TNAuthList, non-critical; BasicConstraints critical (CE-10, CE-5).
  ASSIGN_OR_RETURN(X509ExtPtr tn_ext, MakeRawExtension(stir::kTnAuthListOid, tn_der, false));
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, nullptr, nullptr, req.get(), nullptr, 0);
  X509ExtPtr bc(X509V3_EXT_conf_nid(
      nullptr, &ctx, NID_basic_constraints,
      kind == SpCertKind::kSpCa ? "critical,CA:TRUE" : "critical,CA:FALSE"));
  if (!bc) return stir::OpenSslError(absl::StatusCode::kInternal, "BasicConstraints");
  sk_X509_EXTENSION_push(exts.get(), bc.release());
  sk_X509_EXTENSION_push(exts.get(), tn_ext.release());
  if (!X509_REQ_add_extensions(req.get(), exts.get())) {
    return stir::OpenSslError(absl::StatusCode::kInternal, "CSR extensions");
  }
  return SignRequest(req.get(), *key.signer);
}

absl::StatusOr<std::string> CheckSpRequest(X509_REQ* req, const SpIssueOptions& f,
                                           std::string_view what) {
  EVP_PKEY* pub = X509_REQ_get0_pubkey(req);
  if (pub == nullptr || X509_REQ_verify(req, pub) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError(absl::StrCat("malformed CSR ", ToAbsl(what),
                                                   ": its signature does not verify with its key"));
  }
  if (!stir::IsP256Key(pub)) {
    return absl::InvalidArgumentError("the CSR key is not EC P-256 (ATIS-1000080 §6.4.1)");
  }
  std::string csr_der;
  ASSIGN_OR_RETURN(std::vector<stir::TnAuthEntry> entries, pki::CsrTnAuthList(req, &csr_der));
  const bool single_spc = entries.size() == 1 && entries[0].kind == stir::TnAuthEntry::Kind::kSpc;
  if (!single_spc && !f.allow_delegate) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the CSR's TNAuthList is ", pki::TnAuthText(entries),
        "; a SHAKEN certificate holds exactly one SPC (ATIS-1000080 v005); use --allow-delegate "
        "for a delegate certificate"));
  }
  if (single_spc) RETURN_IF_ERROR(stir::ValidateSpc(entries[0].value));
  if (!f.spc.empty() && (!single_spc || entries[0].value != f.spc)) {
    return absl::FailedPreconditionError(absl::StrCat("the CSR asks for ", pki::TnAuthText(entries),
                                                      ", not SPC ", f.spc, " (--spc)"));
  }
  const X509_NAME* subject = X509_REQ_get_subject_name(req);
  if (single_spc) {
    std::string cn = stir::NameEntry(subject, NID_commonName);
    if (cn != absl::StrCat("SHAKEN ", entries[0].value)) {
      return absl::FailedPreconditionError(absl::StrCat("the CSR subject CN is \"", cn,
                                                        "\"; ATIS-1000080 v004+ requires \"SHAKEN ",
                                                        entries[0].value, "\""));
    }
  }
  if (stir::NameEntry(subject, NID_countryName).empty() ||
      stir::NameEntry(subject, NID_organizationName).empty()) {
    return absl::FailedPreconditionError("the CSR subject lacks C or O (ATIS-1000080 v004+)");
  }
  // Re-encoded canonically (ParseTnAuthList also accepts implicit tags some tools produce).
  return stir::EncodeTnAuthList(entries);
}

absl::Status CheckIssuerScope(const X509* issuer, const std::vector<stir::TnAuthEntry>& entries) {
  absl::StatusOr<stir::CertificateInfo> info = stir::DescribeCertificate(issuer);
  if (!info.ok()) {
    return absl::FailedPreconditionError(
        absl::StrCat("the issuing CA certificate: ", info.status().message()));
  }
  if (info->tn_auth_list.empty()) return absl::OkStatus();
  const std::vector<stir::TnAuthEntry> outside =
      stir::EntriesOutsideScope(info->tn_auth_list, entries);
  if (outside.empty()) return absl::OkStatus();
  return absl::FailedPreconditionError(absl::StrCat(
      "the requested TNAuthList holds ", stir::TnAuthScopeText(outside),
      ", outside the issuing CA's TNAuthList (", stir::TnAuthScopeText(info->tn_auth_list),
      "; RFC 9060): ask only for numbers within it, or issue from a CA whose scope covers them"));
}

absl::StatusOr<stir::X509Ptr> IssueSpCertificate(X509_REQ* req, std::string_view tn_der,
                                                 const pki::Issuer& issuer,
                                                 const SpIssueOptions& f, SpCertKind kind) {
  const X509_NAME* subject = X509_REQ_get_subject_name(req);
  ASSIGN_OR_RETURN(auto window, pki::Window(f.validity, issuer.cert.get()));
  ASSIGN_OR_RETURN(stir::X509Ptr cert,
                   pki::NewCertificate(subject, X509_get_subject_name(issuer.cert.get()),
                                       X509_REQ_get0_pubkey(req), window));
  X509* c = cert.get();
  X509* iss = issuer.cert.get();
  const bool ca = kind == SpCertKind::kSpCa;
  RETURN_IF_ERROR(AddConfExtension(c, iss, NID_basic_constraints,
                                   ca ? "critical,CA:TRUE,pathlen:0" : "critical,CA:FALSE"));
  RETURN_IF_ERROR(AddConfExtension(
      c, iss, NID_key_usage, ca ? "critical,keyCertSign,cRLSign" : "critical,digitalSignature"));
  RETURN_IF_ERROR(AddConfExtension(c, iss, NID_subject_key_identifier, "hash"));
  RETURN_IF_ERROR(AddConfExtension(c, iss, NID_authority_key_identifier, "keyid:always"));
  if (!f.policies.empty()) {
    RETURN_IF_ERROR(AddPolicies(c, f.policies));
  }
  if (!f.crl_url.empty()) {
    X509NamePtr crl_issuer;
    if (!f.crl_issuer.empty()) {
      ASSIGN_OR_RETURN(crl_issuer, ParseName(f.crl_issuer));
    } else if (!f.no_crl_issuer) {
      crl_issuer.reset(X509_NAME_dup(X509_get_subject_name(iss)));
    }
    RETURN_IF_ERROR(AddCrlDistributionPoint(c, f.crl_url, crl_issuer.get()));
  } else {
    Note("note: no --crl-url: the certificate has no CRL distribution point (CE-9)");
  }
  RETURN_IF_ERROR(AddRawExtension(c, stir::kTnAuthListOid, tn_der, false));
  return SignCertificate(c, *issuer.key.signer, issuer.key.public_key.get());
}

}  // namespace shaken::cli
