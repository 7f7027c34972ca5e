// cmd_csr.cc: `shakenctl csr create | show`: a CSR signed by the SP key (in the token, or a
// file) carrying the TNAuthList (RFC 8226) the certificate is to hold.
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include <iostream>
#include <memory>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
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

struct CsrFlags {
  std::string key;
  TnAuthFlags tn;
  SubjectFlags subject;
  OutFlags out;
  std::string in;
  TokenOptions token;
};

absl::StatusOr<X509ReqPtr> CsrCreate(const CsrFlags& f) {
  ASSIGN_OR_RETURN(std::vector<stir::TnAuthEntry> entries, TnAuthEntries(f.tn));
  RETURN_IF_ERROR(stir::EncodeTnAuthList(entries).status());  // bad entries before the key
  X509NamePtr subject;
  if (!f.subject.subject.empty()) {
    ASSIGN_OR_RETURN(subject, ParseName(f.subject.subject));
  } else {
    std::string cn = f.subject.cn;
    if (cn.empty()) {
      if (f.tn.spc.empty()) {
        return absl::InvalidArgumentError("a delegate CSR (no SPC) needs --cn");
      }
      cn = absl::StrCat("SHAKEN ", f.tn.spc);  // ATIS-1000080 v004+
    }
    if (f.subject.org.empty()) {
      return absl::InvalidArgumentError("give the subject organization with --org");
    }
    ASSIGN_OR_RETURN(subject, ShakenSubject(f.subject.country, f.subject.org, cn));
  }
  ASSIGN_OR_RETURN(LoadedKey key, LoadSigningKey(f.key, f.token));
  return BuildShakenCsr(entries, subject.get(), key);
}

int CsrShow(const CsrFlags& f) {
  absl::StatusOr<std::string> data = ReadInput(f.in);
  if (!data.ok()) return Fail(data.status());
  absl::StatusOr<X509ReqPtr> req = ReadRequest(*data, f.in);
  if (!req.ok()) return Fail(req.status());
  EVP_PKEY* pub = X509_REQ_get0_pubkey(req->get());
  const bool sig_ok = pub != nullptr && X509_REQ_verify(req->get(), pub) == 1;
  ERR_clear_error();
  std::string tn_der;
  absl::StatusOr<std::vector<stir::TnAuthEntry>> tn = CsrTnAuthList(req->get(), &tn_der);
  std::string pub_der;
  if (pub != nullptr) pub_der = stir::PublicKeyToDer(pub).value_or("");
  ExtStackPtr exts(X509_REQ_get_extensions(req->get()), FreeExts);
  ERR_clear_error();
  std::vector<std::string> ext_names;
  for (int i = 0; exts && i < sk_X509_EXTENSION_num(exts.get()); ++i) {
    X509_EXTENSION* e = sk_X509_EXTENSION_value(exts.get(), i);
    ext_names.push_back(absl::StrCat(stir::OidText(X509_EXTENSION_get_object(e), /*numeric=*/false),
                                     X509_EXTENSION_get_critical(e) ? " (critical)" : ""));
  }
  const std::string subject = stir::NameText(X509_REQ_get_subject_name(req->get()));
  const bool p256 = pub != nullptr && stir::IsP256Key(pub);
  if (f.out.json) {
    nlohmann::json j = {{"subject", subject},
                        {"signature_valid", sig_ok},
                        {"key_p256", p256},
                        {"spki_sha256", Sha256Fingerprint(pub_der)},
                        {"extensions", ext_names}};
    if (tn.ok()) {
      j["tn_auth_list"] = TnAuthJson(*tn);
      j["tn_auth_list_der_hex"] = absl::BytesToHexString(tn_der);
    } else {
      j["tn_auth_list_error"] = std::string(tn.status().message());
    }
    PrintJson(j);
  } else {
    std::cout << "subject:     " << subject << "\n"
              << "signature:   " << (sig_ok ? "valid" : "INVALID") << "\n"
              << "key:         " << (p256 ? "EC P-256" : "not EC P-256") << "\n"
              << "spki-sha256: " << Sha256Fingerprint(pub_der) << "\n"
              << "extensions:  " << absl::StrJoin(ext_names, ", ") << "\n"
              << "TNAuthList:  "
              << (tn.ok() ? absl::StrCat(TnAuthText(*tn), " (DER ", absl::BytesToHexString(tn_der), ")")
                          : std::string(tn.status().message()))
              << "\n";
  }
  return sig_ok ? kExitOk : kExitError;
}

}  // namespace

void AddCsrCommands(CLI::App& root, Registry& registry) {
  CLI::App* csr = root.add_subcommand("csr", "Certificate signing requests");
  csr->require_subcommand(1);
  auto cc = std::make_shared<CsrFlags>();
  CLI::App* c_create = csr->add_subcommand(
      "create",
      "Create a CSR signed by the token key (or a file key) carrying TNAuthList (RFC 8226) and "
      "subject C / O / CN \"SHAKEN <SPC>\"");
  c_create->add_option("--key", cc->key, "SP key: pkcs11: URI or PEM file")->required();
  AddTnAuthFlags(c_create, &cc->tn, "");
  AddSubjectFlags(c_create, &cc->subject);
  AddOutFlags(c_create, &cc->out, "CSR file (PEM)");
  AddTokenFlags(c_create, &cc->token);
  c_create->footer(Examples(
      {"shakenctl csr create --key 'pkcs11:token=shaken;object=sp-2024' --pin-source "
       "file:/etc/shaken/pin \\",
       "    --spc 709J --org 'Example Telecom' -o sp.csr",
       "openssl req -in sp.csr -noout -verify"}));
  registry.push_back({c_create, Runner(cc, [](const CsrFlags& f) -> absl::StatusOr<Made> {
                        absl::StatusOr<X509ReqPtr> r = CsrCreate(f);
                        if (!r.ok()) return r.status();
                        return Made{RequestPem(r->get()),
                                    {{"subject", stir::NameText(X509_REQ_get_subject_name(r->get()))}}};
                      })});

  auto cs = std::make_shared<CsrFlags>();
  CLI::App* c_show = csr->add_subcommand("show", "Describe a CSR and check its signature");
  c_show->add_option("csr", cs->in, "CSR file (PEM or DER), - for stdin")->required();
  c_show->add_flag("--json", cs->out.json, "print JSON");
  c_show->footer(Examples({"shakenctl csr show sp.csr --json"}));
  registry.push_back({c_show, [cs] { return CsrShow(*cs); }});
}

}  // namespace shaken::cli
