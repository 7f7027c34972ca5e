// cmd_ca.cc: `shakenctl ca`: init | issue-intermediate | issue-sp-ca | issue | self-issue | crl.
// Every signature goes through stir::Signer (cli/x509.h), so a CA key may live in a token or, for
// labs, in a file.
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include <iostream>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "cli/acme_cli.h"
#include "cli/commands.h"
#include "cli/pki_common.h"
#include "cli/sp_cert.h"
#include "cli/x509.h"
#include "stir/absl_compat.h"
#include "stir/cert_profile.h"
#include "stir/status_macros.h"
#include "stir/tn_auth_list.h"

namespace shaken::cli {
namespace {

using namespace pki;  // NOLINT: the PKI commands' shared flags and helpers

struct CaFlags {
  std::string key;          // signing key (the new root's own key for ca init)
  std::string ca_cert;
  std::string subject_key;  // the key being certified
  SubjectFlags subject;
  ValidityFlags validity;
  OutFlags out;
  int path_len = -1;
  bool no_crl_sign = false;
  std::vector<std::string> policies;
  std::string crl_url;
  TokenOptions token;
  TnAuthFlags tn;  // issue-sp-ca: the scope the SP-CA may delegate
};

absl::Status AddCaExtensions(X509* cert, X509* issuer, const CaFlags& f, bool root) {
  std::string bc = "critical,CA:TRUE";
  if (f.path_len >= 0) absl::StrAppend(&bc, ",pathlen:", f.path_len);
  RETURN_IF_ERROR(AddConfExtension(cert, issuer, NID_basic_constraints, bc));
  RETURN_IF_ERROR(AddConfExtension(cert, issuer, NID_key_usage,
                                   f.no_crl_sign ? "critical,keyCertSign"
                                                 : "critical,keyCertSign,cRLSign"));
  RETURN_IF_ERROR(AddConfExtension(cert, issuer, NID_subject_key_identifier, "hash"));
  if (!root) {
    RETURN_IF_ERROR(AddConfExtension(cert, issuer, NID_authority_key_identifier, "keyid:always"));
    if (!f.policies.empty()) {
      RETURN_IF_ERROR(AddPolicies(cert, f.policies));
    }
    if (!f.crl_url.empty()) {
      RETURN_IF_ERROR(AddCrlDistributionPoint(cert, f.crl_url, X509_get_subject_name(issuer)));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<stir::X509Ptr> CaInit(const CaFlags& f) {
  ASSIGN_OR_RETURN(LoadedKey key, LoadSigningKey(f.key, f.token));
  ASSIGN_OR_RETURN(X509NamePtr subject, SubjectFrom(f.subject));
  std::string cn = stir::NameEntry(subject.get(), NID_commonName);
  if (cn.find("ROOT") == std::string::npos) {
    Note("note: ATIS-1000080 expects a root CN that includes \"ROOT\"");
  }
  ASSIGN_OR_RETURN(auto window, Window(f.validity, nullptr));
  ASSIGN_OR_RETURN(stir::X509Ptr cert,
                   NewCertificate(subject.get(), subject.get(), key.public_key.get(), window));
  RETURN_IF_ERROR(AddCaExtensions(cert.get(), cert.get(), f, /*root=*/true));
  return SignCertificate(cert.get(), *key.signer, key.public_key.get());
}

// CaIssueIntermediate issues an STI-CA intermediate, or with `sp_ca` an SP-CA: a CA operated by
// a service provider whose TNAuthList (its SPC and/or TNs and ranges) is the scope it may
// delegate to end-entity certificates (RFC 9060; ATIS-1000092).
absl::StatusOr<stir::X509Ptr> CaIssueIntermediate(const CaFlags& f, bool sp_ca = false) {
  std::vector<stir::TnAuthEntry> scope;
  std::string tn_der;
  if (sp_ca) {
    ASSIGN_OR_RETURN(scope, TnAuthEntries(f.tn));  // refuses an empty scope
    ASSIGN_OR_RETURN(tn_der, stir::EncodeTnAuthList(scope));
  }
  ASSIGN_OR_RETURN(Issuer issuer, LoadIssuer(f.ca_cert, f.key, f.token));
  if (sp_ca) RETURN_IF_ERROR(CheckIssuerScope(issuer.cert.get(), scope));
  ASSIGN_OR_RETURN(stir::EvpPkeyPtr subject_key, LoadPublicKey(f.subject_key, f.token));
  if (!stir::IsP256Key(subject_key.get())) {
    return absl::InvalidArgumentError(absl::StrCat(f.subject_key, " is not an EC P-256 key"));
  }
  ASSIGN_OR_RETURN(X509NamePtr subject, SubjectFrom(f.subject));
  ASSIGN_OR_RETURN(auto window, Window(f.validity, issuer.cert.get()));
  ASSIGN_OR_RETURN(stir::X509Ptr cert,
                   NewCertificate(subject.get(), X509_get_subject_name(issuer.cert.get()),
                                  subject_key.get(), window));
  RETURN_IF_ERROR(AddCaExtensions(cert.get(), issuer.cert.get(), f, /*root=*/false));
  if (sp_ca) RETURN_IF_ERROR(AddRawExtension(cert.get(), stir::kTnAuthListOid, tn_der, false));
  return SignCertificate(cert.get(), *issuer.key.signer, issuer.key.public_key.get());
}

// CaSelfIssue: a self-issued certificate (issuer = subject = the CA's name) binding another key
// (RFC 4210 §4.4 key rollover: NewWithOld when the new key is certified by the old one).
absl::StatusOr<stir::X509Ptr> CaSelfIssue(const CaFlags& f) {
  ASSIGN_OR_RETURN(Issuer issuer, LoadIssuer(f.ca_cert, f.key, f.token));
  ASSIGN_OR_RETURN(stir::EvpPkeyPtr subject_key, LoadPublicKey(f.subject_key, f.token));
  if (!stir::IsP256Key(subject_key.get())) {
    return absl::InvalidArgumentError(absl::StrCat(f.subject_key, " is not an EC P-256 key"));
  }
  if (SameKey(subject_key.get(), issuer.key.public_key.get())) {
    return absl::InvalidArgumentError(
        "--subject-key is the CA's own key: a self-issued rollover certificate binds another key");
  }
  ASSIGN_OR_RETURN(auto window, Window(f.validity, issuer.cert.get()));
  const X509_NAME* name = X509_get_subject_name(issuer.cert.get());
  ASSIGN_OR_RETURN(stir::X509Ptr cert, NewCertificate(name, name, subject_key.get(), window));
  CaFlags ext = f;
  ext.policies.clear();
  ext.crl_url.clear();
  RETURN_IF_ERROR(AddCaExtensions(cert.get(), issuer.cert.get(), ext, /*root=*/false));
  return SignCertificate(cert.get(), *issuer.key.signer, issuer.key.public_key.get());
}

struct IssueFlags {
  std::string ca_cert;
  std::string ca_key;
  std::string csr;
  SpIssueOptions sp = {.policies = {stir::kShakenPolicyV13}};
  OutFlags out;
  TokenOptions token;
};

absl::StatusOr<stir::X509Ptr> CaIssue(const IssueFlags& f) {
  ASSIGN_OR_RETURN(std::string data, ReadInput(f.csr));
  absl::StatusOr<X509ReqPtr> req_or = ReadRequest(data, f.csr);
  if (!req_or.ok()) return absl::InvalidArgumentError(absl::StrCat("malformed CSR: ", req_or.status().message()));
  X509ReqPtr req = *std::move(req_or);
  // The CSR is checked before the CA key (maybe in a token) is opened.
  ASSIGN_OR_RETURN(std::string tn_der, CheckSpRequest(req.get(), f.sp, f.csr));
  ASSIGN_OR_RETURN(Issuer issuer, LoadIssuer(f.ca_cert, f.ca_key, f.token));
  ASSIGN_OR_RETURN(std::vector<stir::TnAuthEntry> entries, stir::ParseTnAuthList(tn_der));
  RETURN_IF_ERROR(CheckIssuerScope(issuer.cert.get(), entries));
  return IssueSpCertificate(req.get(), tn_der, issuer, f.sp);
}

struct CrlFlags {
  std::string ca_cert;
  std::string ca_key;
  std::vector<std::string> serials;
  std::vector<std::string> revoke_certs;
  int64_t days = 7;
  std::optional<int64_t> this_update;
  std::optional<int64_t> crl_number;
  OutFlags out;
  TokenOptions token;
};

absl::StatusOr<X509CrlPtr> CaCrl(const CrlFlags& f) {
  std::vector<stir::BignumPtr> serials;
  for (const std::string& s : f.serials) {
    ASSIGN_OR_RETURN(stir::BignumPtr bn, ParseSerial(s));
    serials.push_back(std::move(bn));
  }
  for (const std::string& path : f.revoke_certs) {
    ASSIGN_OR_RETURN(stir::X509Ptr cert, ReadOneCertificate(path));
    serials.emplace_back(ASN1_INTEGER_to_BN(X509_get0_serialNumber(cert.get()), nullptr));
  }
  ASSIGN_OR_RETURN(Issuer issuer, LoadIssuer(f.ca_cert, f.ca_key, f.token));
  absl::Time now = f.this_update.has_value() ? absl::FromUnixSeconds(*f.this_update) : absl::Now();
  X509CrlPtr crl(X509_CRL_new());
  Asn1TimePtr last(ASN1_TIME_set(nullptr, static_cast<time_t>(absl::ToUnixSeconds(now))));
  Asn1TimePtr next(ASN1_TIME_set(
      nullptr, static_cast<time_t>(absl::ToUnixSeconds(now + absl::Hours(24 * f.days)))));
  if (!crl || !last || !next || !X509_CRL_set_version(crl.get(), 1) ||
      !X509_CRL_set_issuer_name(crl.get(), X509_get_subject_name(issuer.cert.get())) ||
      !X509_CRL_set1_lastUpdate(crl.get(), last.get()) ||
      !X509_CRL_set1_nextUpdate(crl.get(), next.get())) {
    return stir::OpenSslError(absl::StatusCode::kInternal, "CRL fields");
  }
  for (const stir::BignumPtr& bn : serials) {
    RevokedPtr rev(X509_REVOKED_new());
    Asn1IntPtr serial(BN_to_ASN1_INTEGER(bn.get(), nullptr));
    if (!rev || !serial || !X509_REVOKED_set_serialNumber(rev.get(), serial.get()) ||
        !X509_REVOKED_set_revocationDate(rev.get(), last.get()) ||
        !X509_CRL_add0_revoked(crl.get(), rev.get())) {
      return stir::OpenSslError(absl::StatusCode::kInternal, "revoked entry");
    }
    rev.release();  // owned by the CRL now
  }
  X509_CRL_sort(crl.get());
  // RFC 5280 §5.2.1 AKI and §5.2.3 CRL number.
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer.cert.get(), nullptr, nullptr, crl.get(), 0);
  X509ExtPtr aki(X509V3_EXT_conf_nid(nullptr, &ctx, NID_authority_key_identifier, "keyid:always"));
  if (!aki || !X509_CRL_add_ext(crl.get(), aki.get(), -1)) {
    return stir::OpenSslError(absl::StatusCode::kInternal, "CRL AKI");
  }
  Asn1IntPtr number(ASN1_INTEGER_new());
  ASN1_INTEGER_set_int64(number.get(), f.crl_number.value_or(absl::ToUnixSeconds(now)));
  if (!X509_CRL_add1_ext_i2d(crl.get(), NID_crl_number, number.get(), 0, X509V3_ADD_DEFAULT)) {
    return stir::OpenSslError(absl::StatusCode::kInternal, "CRL number");
  }
  return SignCrl(crl.get(), *issuer.key.signer, issuer.key.public_key.get());
}

}  // namespace

void AddCaCommands(CLI::App& root, Registry& registry) {
  CLI::App* ca = root.add_subcommand("ca", "STI certification authority operations");
  ca->require_subcommand(1);

  auto init = std::make_shared<CaFlags>();
  CLI::App* c_init = ca->add_subcommand("init", "Create a self-signed root CA certificate");
  c_init->add_option("--key", init->key, "the root's key: pkcs11: URI or PEM file")->required();
  AddSubjectFlags(c_init, &init->subject);
  AddValidityFlags(c_init, &init->validity, 7300);
  c_init->add_option("--path-len", init->path_len, "BasicConstraints pathLenConstraint");
  c_init->add_flag("--no-crl-sign", init->no_crl_sign,
                   "KeyUsage keyCertSign only (ATIS-1000080 v005); the CA then cannot sign CRLs");
  AddOutFlags(c_init, &init->out, "certificate file (PEM)");
  AddTokenFlags(c_init, &init->token);
  c_init->footer(Examples(
      {"shakenctl key generate --key root.key.pem",
       "shakenctl ca init --key root.key.pem --cn 'Example STI ROOT' --org 'Example STI-PA' -o "
       "root.pem",
       "shakenctl ca init --key 'pkcs11:token=ca;object=root' --pin-source file:/etc/ca.pin "
       "--cn 'Example STI ROOT' -o root.pem"}));
  registry.push_back({c_init, Runner(init, [](const CaFlags& f) { return MadeCert(CaInit(f)); })});

  auto inter = std::make_shared<CaFlags>();
  inter->path_len = 0;
  inter->policies = {stir::kShakenPolicyV13};
  CLI::App* c_inter =
      ca->add_subcommand("issue-intermediate", "Issue an intermediate (STI-CA) certificate");
  c_inter->add_option("--ca-cert", inter->ca_cert, "issuing CA certificate (PEM)")->required();
  c_inter->add_option("--ca-key", inter->key, "issuing CA key: pkcs11: URI or PEM file")
      ->required();
  c_inter->add_option("--subject-key", inter->subject_key,
                      "the intermediate's key: pkcs11: URI, PEM private or public key")
      ->required();
  AddSubjectFlags(c_inter, &inter->subject);
  AddValidityFlags(c_inter, &inter->validity, 3650);
  c_inter->add_option("--path-len", inter->path_len, "pathLenConstraint (-1: none)")
      ->capture_default_str();
  c_inter->add_option("--policy", inter->policies, "certificate policy OIDs")->allow_extra_args(false)
      ->capture_default_str();
  c_inter->add_option("--crl-url", inter->crl_url, "CRL distribution point URL");
  c_inter->add_flag("--no-crl-sign", inter->no_crl_sign, "KeyUsage keyCertSign only");
  AddOutFlags(c_inter, &inter->out, "certificate file (PEM)");
  AddTokenFlags(c_inter, &inter->token);
  c_inter->footer(Examples(
      {"shakenctl key generate --key ica.key.pem",
       "shakenctl ca issue-intermediate --ca-cert root.pem --ca-key root.key.pem --subject-key "
       "ica.key.pem --cn 'Example STI-CA' --org 'Example STI-CA' -o ica.pem"}));
  registry.push_back(
      {c_inter, Runner(inter, [](const CaFlags& f) { return MadeCert(CaIssueIntermediate(f)); })});

  auto spca = std::make_shared<CaFlags>();
  spca->path_len = 0;
  spca->policies = {stir::kShakenPolicyV13};
  CLI::App* c_spca = ca->add_subcommand(
      "issue-sp-ca",
      "Issue an SP-CA certificate: a CA run by a service provider, whose TNAuthList is the scope "
      "it may delegate to delegate certificates (RFC 9060, ATIS-1000092)");
  c_spca->add_option("--ca-cert", spca->ca_cert, "issuing CA certificate (PEM): the STI-CA")
      ->required();
  c_spca->add_option("--ca-key", spca->key, "issuing CA key: pkcs11: URI or PEM file")->required();
  c_spca->add_option("--subject-key", spca->subject_key,
                     "the SP-CA's key: pkcs11: URI, PEM private or public key")
      ->required();
  AddTnAuthFlags(c_spca, &spca->tn, "scope");
  AddSubjectFlags(c_spca, &spca->subject);
  AddValidityFlags(c_spca, &spca->validity, 1825);
  c_spca->add_option("--path-len", spca->path_len,
                     "pathLenConstraint (0: issues end-entity certificates only; -1: none)")
      ->capture_default_str();
  c_spca->add_option("--policy", spca->policies, "certificate policy OIDs")
      ->allow_extra_args(false)
      ->capture_default_str();
  c_spca->add_option("--crl-url", spca->crl_url, "CRL distribution point URL");
  c_spca->add_flag("--no-crl-sign", spca->no_crl_sign, "KeyUsage keyCertSign only");
  AddOutFlags(c_spca, &spca->out, "certificate file (PEM)");
  AddTokenFlags(c_spca, &spca->token);
  c_spca->footer(Examples(
      {"shakenctl ca issue-sp-ca --ca-cert ica.pem --ca-key ica.key.pem --subject-key "
       "spca.key.pem \\",
       "    --cn 'Example SP-CA 709J' --org 'Example Carrier' --spc 709J -o spca.pem",
       "shakenctl ca issue-sp-ca ... --tn-range 12155550100:50 --tn 12155551000 -o spca.pem",
       "shakenctl ca issue --ca-cert spca.pem --ca-key spca.key.pem --csr ent.csr "
       "--allow-delegate -o ent.pem"}));
  registry.push_back({c_spca, Runner(spca, [](const CaFlags& f) {
                        return MadeCert(CaIssueIntermediate(f, /*sp_ca=*/true));
                      })});

  auto issue = std::make_shared<IssueFlags>();
  CLI::App* c_issue = ca->add_subcommand(
      "issue", "Issue an SP (end-entity) SHAKEN certificate from a CSR (ATIS-1000080 profile)");
  c_issue->add_option("--ca-cert", issue->ca_cert, "issuing CA certificate (PEM)")->required();
  c_issue->add_option("--ca-key", issue->ca_key, "issuing CA key: pkcs11: URI or PEM file")
      ->required();
  c_issue->add_option("--csr", issue->csr, "the SP's CSR (PEM or DER)")->required();
  c_issue->add_option("--spc", issue->sp.spc, "expected SPC: the CSR's TNAuthList must be exactly it");
  c_issue->add_option("--crl-url", issue->sp.crl_url, "CRL distribution point URL (CE-9)");
  c_issue->add_option("--crl-issuer", issue->sp.crl_issuer,
                      "cRLIssuer DN (default: the issuing CA's subject)");
  c_issue->add_flag("--no-crl-issuer", issue->sp.no_crl_issuer, "omit cRLIssuer");
  c_issue->add_option("--policy", issue->sp.policies, "certificate policy OIDs")->allow_extra_args(false)
      ->capture_default_str();
  c_issue->add_flag("--allow-delegate", issue->sp.allow_delegate,
                    "accept TN / TN-range entries (delegate certificate) instead of one SPC");
  AddValidityFlags(c_issue, &issue->sp.validity, 365);
  AddOutFlags(c_issue, &issue->out, "certificate file (PEM)");
  AddTokenFlags(c_issue, &issue->token);
  c_issue->footer(Examples(
      {"shakenctl ca issue --ca-cert ica.pem --ca-key ica.key.pem --csr sp.csr --spc 709J \\",
       "    --crl-url http://crl.example.net/sti.crl --days 365 -o sp.pem",
       "cat sp.pem ica.pem > sp-chain.pem   # the x5u body: leaf first"}));
  registry.push_back(
      {c_issue, Runner(issue, [](const IssueFlags& f) { return MadeCert(CaIssue(f)); })});

  auto self = std::make_shared<CaFlags>();
  CLI::App* c_self = ca->add_subcommand(
      "self-issue",
      "Issue a self-issued CA certificate (issuer = subject) binding another key: key rollover "
      "(RFC 4210 §4.4 NewWithOld / OldWithNew)");
  c_self->add_option("--ca-cert", self->ca_cert, "the CA certificate whose name is kept")
      ->required();
  c_self->add_option("--ca-key", self->key, "the key that signs (that CA certificate's key)")
      ->required();
  c_self->add_option("--subject-key", self->subject_key, "the other key to certify")->required();
  AddValidityFlags(c_self, &self->validity, 3650);
  AddOutFlags(c_self, &self->out, "certificate file (PEM)");
  AddTokenFlags(c_self, &self->token);
  c_self->footer(Examples(
      {"shakenctl ca self-issue --ca-cert root-old.pem --ca-key root-old.key.pem --subject-key "
       "root-new.key.pem -o new-with-old.pem"}));
  registry.push_back(
      {c_self, Runner(self, [](const CaFlags& f) { return MadeCert(CaSelfIssue(f)); })});

  auto crl = std::make_shared<CrlFlags>();
  CLI::App* c_crl = ca->add_subcommand("crl", "Issue a CRL revoking the given serials");
  c_crl->add_option("--ca-cert", crl->ca_cert, "CA certificate (PEM)")->required();
  c_crl->add_option("--ca-key", crl->ca_key, "CA key: pkcs11: URI or PEM file")->required();
  c_crl->add_option("--revoke", crl->serials, "serial to revoke (hex), repeatable")->allow_extra_args(false);
  c_crl->add_option("--revoke-cert", crl->revoke_certs, "certificate to revoke, repeatable")->allow_extra_args(false);
  c_crl->add_option("--days", crl->days, "nextUpdate in days")->capture_default_str()->check(
      CLI::Range(int64_t{1}, int64_t{3650}));
  c_crl->add_option("--this-update", crl->this_update, "thisUpdate as a Unix time (default now)");
  c_crl->add_option("--crl-number", crl->crl_number, "CRL number (default: the Unix time)");
  AddOutFlags(c_crl, &crl->out, "CRL file (PEM)");
  AddTokenFlags(c_crl, &crl->token);
  c_crl->footer(Examples({"shakenctl ca crl --ca-cert ica.pem --ca-key ica.key.pem --revoke-cert "
                          "sp-old.pem --revoke 5A3F09C1D2E3F40011 -o ica.crl"}));
  registry.push_back({c_crl, Runner(crl, [](const CrlFlags& f) -> absl::StatusOr<Made> {
                        absl::StatusOr<X509CrlPtr> c = CaCrl(f);
                        if (!c.ok()) return c.status();
                        nlohmann::json s = {
                            {"issuer", stir::NameText(X509_CRL_get_issuer(c->get()))},
                            {"revoked", sk_X509_REVOKED_num(X509_CRL_get_REVOKED(c->get()))},
                            {"next_update",
                             TimeText(stir::Asn1TimeToTime(X509_CRL_get0_nextUpdate(c->get())))}};
                        return Made{CrlPem(c->get()), s};
                      })});
  AddCaServeCommand(ca, registry);
}

}  // namespace shaken::cli
