// cmd_acme.cc: `shakenctl acme order | renew`: the SP side of RFC 8555 with the TNAuthList
// identifier and tkauth-01 (RFC 9447, RFC 9448). The account key and the SHAKEN key are separate
// (either may be in the PKCS#11 token); the CSR is signed by the SHAKEN key; the issued chain is
// checked (path to --ca-file, the leaf's key is the SHAKEN key, the `cert check` profile, the
// TNAuthList asked for) before it is written for x5u hosting. A DNS identifier (for a check
// against pebble, any RFC 8555 server) skips the SHAKEN checks.
#include <openssl/err.h>

#include <algorithm>
#include <iostream>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "cli/acme/authority_token.h"
#include "cli/acme/client.h"
#include "cli/acme/problem.h"
#include "cli/acme_cli.h"
#include "cli/lint.h"
#include "cli/pki_common.h"
#include "cli/sp_cert.h"
#include "stir/absl_compat.h"
#include "stir/pem_chain.h"
#include "stir/status_macros.h"
#include "stir/tn_auth_list.h"

namespace shaken::cli {
namespace {

struct OrderFlags {
  std::string directory;
  std::string account_key;
  std::string key;  // the certificate (SHAKEN) key
  std::string spc;
  bool sp_ca = false;  // an SP-CA certificate (RFC 9060) instead of an end-entity one
  std::string identifier;      // "dns:NAME" (not SHAKEN: for RFC 8555 checks against other servers)
  std::string pa_token;        // file holding the Authority Token
  std::string pa_key, pa_x5u;  // or: run the lab PA (pa token) with these
  std::string eab_kid, eab_key_source;
  std::string tls_ca_file;
  std::string ca_file;  // trust anchors the issued chain must reach
  pki::SubjectFlags subject;
  int64_t poll_timeout = 120;
  std::string out;
  bool force = false;
  bool json = false;
  TokenOptions token;
  // renew
  std::string cert;
  int64_t within_days = 30;
};

struct X509StackFree {
  void operator()(STACK_OF(X509) * s) const { sk_X509_free(s); }  // not the certificates
};

// VerifyChain checks that `chain` (leaf first) reaches an anchor of `ca_file` now.
absl::Status VerifyChain(const std::vector<stir::X509Ptr>& chain, const std::string& ca_file) {
  ASSIGN_OR_RETURN(std::string pem, ReadInput(ca_file));
  ASSIGN_OR_RETURN(std::vector<stir::X509Ptr> anchors, ReadCertificates(pem, ca_file));
  stir::X509StorePtr store(X509_STORE_new());
  for (const stir::X509Ptr& a : anchors) X509_STORE_add_cert(store.get(), a.get());
  std::unique_ptr<STACK_OF(X509), X509StackFree> untrusted(sk_X509_new_null());
  for (size_t i = 1; i < chain.size(); ++i) sk_X509_push(untrusted.get(), chain[i].get());
  stir::X509StoreCtxPtr ctx(X509_STORE_CTX_new());
  if (!ctx || X509_STORE_CTX_init(ctx.get(), store.get(), chain[0].get(), untrusted.get()) != 1) {
    return stir::OpenSslError(absl::StatusCode::kInternal, "X509_STORE_CTX_init");
  }
  const bool ok = X509_verify_cert(ctx.get()) == 1;
  const int err = X509_STORE_CTX_get_error(ctx.get());
  ERR_clear_error();
  if (!ok) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the issued chain does not verify to ", ca_file, ": ", X509_verify_cert_error_string(err)));
  }
  return absl::OkStatus();
}

// IsDnsName: RFC 1123 host name characters only (the name goes into an OpenSSL configuration
// string for the subjectAltName).
bool IsDnsName(std::string_view name) {
  return !name.empty() && name.size() <= 253 && std::all_of(name.begin(), name.end(), [](char c) {
    return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.';
  });
}

// DnsCsr is a plain CSR for a DNS name (CN and subjectAltName), for non-SHAKEN orders.
absl::StatusOr<X509ReqPtr> DnsCsr(const std::string& name, const LoadedKey& key) {
  X509ReqPtr req(X509_REQ_new());
  X509NamePtr subject(X509_NAME_new());
  if (!req || !subject ||
      !X509_NAME_add_entry_by_txt(subject.get(), "CN", MBSTRING_UTF8,
                                  reinterpret_cast<const unsigned char*>(name.c_str()), -1, -1,
                                  0) ||
      !X509_REQ_set_version(req.get(), 0) || !X509_REQ_set_subject_name(req.get(), subject.get()) ||
      !X509_REQ_set_pubkey(req.get(), key.public_key.get())) {
    return stir::OpenSslError(absl::StatusCode::kInternal, "CSR fields");
  }
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, nullptr, nullptr, req.get(), nullptr, 0);
  X509ExtPtr san(
      X509V3_EXT_conf_nid(nullptr, &ctx, NID_subject_alt_name, absl::StrCat("DNS:", name).c_str()));
  if (!san) return absl::InvalidArgumentError(absl::StrCat("bad DNS name: ", name));
  pki::ExtStackPtr exts(sk_X509_EXTENSION_new_null(), pki::FreeExts);
  sk_X509_EXTENSION_push(exts.get(), san.release());
  if (!X509_REQ_add_extensions(req.get(), exts.get())) {
    return stir::OpenSslError(absl::StatusCode::kInternal, "CSR extensions");
  }
  return SignRequest(req.get(), *key.signer);
}

std::string Der(X509_REQ* req) {
  unsigned char* p = nullptr;
  int n = i2d_X509_REQ(req, &p);
  stir::OpenSslMallocPtr<unsigned char> owned(p);
  return n > 0 ? std::string(reinterpret_cast<char*>(p), n) : std::string();
}

// CheckIssued applies what an SP checks before publishing (docs/acme.md): the chain, the key,
// and for a SHAKEN order the profile and the TNAuthList.
absl::Status CheckIssued(const std::vector<stir::X509Ptr>& chain, const OrderFlags& f,
                         const LoadedKey& key, const std::string& tn_der) {
  X509* leaf = chain[0].get();
  if (!SameKey(X509_get0_pubkey(leaf), key.public_key.get())) {
    return absl::FailedPreconditionError(
        absl::StrCat("the issued certificate's key is not ", key.where));
  }
  if ((X509_check_ca(leaf) != 0) != f.sp_ca) {
    return absl::FailedPreconditionError(
        f.sp_ca ? "the CA issued an end-entity certificate, not the SP-CA certificate ordered"
                : "the CA issued a CA certificate for an end-entity order");
  }
  if (!f.ca_file.empty()) RETURN_IF_ERROR(VerifyChain(chain, f.ca_file));
  if (tn_der.empty()) return absl::OkStatus();
  std::optional<std::string> got =
      FindExtensionDer(X509_get0_extensions(leaf), stir::kTnAuthListOid);
  if (!got.has_value() || *got != tn_der) {
    return absl::FailedPreconditionError(
        "the issued certificate's TNAuthList is not the one ordered");
  }
  std::vector<LintRow> rows =
      LintCertificate(leaf, f.sp_ca ? CertRole::kIntermediate : CertRole::kEndEntity, absl::Now());
  std::vector<std::string> failed;
  for (const LintRow& r : rows) {
    // An SP-CA carries the TNAuthList it may delegate (RFC 9060, checked equal to the order
    // above), which the ATIS-1000080 profile's CE-10 forbids on a CA: the two profiles differ
    // there (docs/standards.md, delegate certificates).
    if (f.sp_ca && r.id == "CE-10") continue;
    if (r.status == LintStatus::kFail) {
      failed.push_back(absl::StrCat(r.id, " ", r.item, ": ", r.detail));
    }
  }
  if (!failed.empty()) {
    return absl::FailedPreconditionError(
        absl::StrCat("the issued certificate fails the SHAKEN profile (cert check): ",
                     absl::StrJoin(failed, "; ")));
  }
  return absl::OkStatus();
}

absl::StatusOr<nlohmann::json> Order(const OrderFlags& f) {
  const bool dns = !f.identifier.empty();
  if (dns == !f.spc.empty())
    return absl::InvalidArgumentError("give --spc SPC or --identifier dns:NAME");
  std::string dns_name;
  if (dns) {
    absl::string_view id = f.identifier;
    if (!absl::ConsumePrefix(&id, "dns:") || id.empty()) {
      return absl::InvalidArgumentError(
          "--identifier must be dns:NAME (TNAuthList orders use --spc)");
    }
    dns_name = std::string(id);
    if (!IsDnsName(dns_name)) {
      return absl::InvalidArgumentError(absl::StrCat("not a DNS name: ", dns_name));
    }
    if (f.sp_ca) return absl::InvalidArgumentError("--sp-ca is for TNAuthList (--spc) orders");
  } else {
    RETURN_IF_ERROR(stir::ValidateSpc(f.spc));
    if (f.ca_file.empty()) {
      return absl::InvalidArgumentError(
          "a SHAKEN order needs --ca-file: the STI-CA roots the issued chain must reach");
    }
    if (f.pa_token.empty() == f.pa_key.empty()) {
      return absl::InvalidArgumentError(
          "give the Authority Token with --pa-token FILE, or --pa-key and --pa-x5u to have the lab "
          "PA sign one");
    }
    if (f.subject.org.empty() && f.subject.subject.empty()) {
      return absl::InvalidArgumentError("give the subject organization with --org");
    }
  }
  // RFC 8555 §6.1: ACME runs over HTTPS; plain http only to this host (tests, a local proxy).
  if (!absl::StartsWith(f.directory, "https://") &&
      !absl::StartsWith(f.directory, "http://127.0.0.1:") &&
      !absl::StartsWith(f.directory, "http://localhost:") &&
      !absl::StartsWith(f.directory, "http://[::1]:")) {
    return absl::InvalidArgumentError("--directory must be an https:// URL (RFC 8555 §6.1)");
  }
  RETURN_IF_ERROR(CheckWritable(f.out, f.force));
  ASSIGN_OR_RETURN(LoadedKey account, LoadSigningKey(f.account_key, f.token));
  ASSIGN_OR_RETURN(LoadedKey key, LoadSigningKey(f.key, f.token));
  if (SameKey(account.public_key.get(), key.public_key.get())) {
    return absl::InvalidArgumentError(
        "--account-key and --key are the same key: use a separate ACME account key");
  }
  std::optional<acme::Eab> eab;
  if (!f.eab_kid.empty()) {
    if (f.eab_key_source.empty())
      return absl::InvalidArgumentError("--eab-kid needs --eab-key-source");
    ASSIGN_OR_RETURN(std::string b64, ReadSecretFrom(f.eab_key_source, "EAB key"));
    std::string mac;
    if (!absl::WebSafeBase64Unescape(absl::StripAsciiWhitespace(b64), &mac) || mac.empty()) {
      return absl::InvalidArgumentError("the EAB key must be base64url, as the CA handed it out");
    }
    eab = acme::Eab{f.eab_kid, mac};
  }
  std::string tn_der;
  stir::Json identifiers;
  if (dns) {
    identifiers = stir::Json::array({{{"type", "dns"}, {"value", dns_name}}});
  } else {
    ASSIGN_OR_RETURN(tn_der, stir::EncodeTnAuthList({{stir::TnAuthEntry::Kind::kSpc, f.spc}}));
    identifiers =
        stir::Json::array({{{"type", "TNAuthList"}, {"value", acme::TnAuthListValue(tn_der)}}});
  }
  acme::ClientOptions co;
  co.tls_ca_file = f.tls_ca_file;
  co.poll_timeout = absl::Seconds(f.poll_timeout);
  ASSIGN_OR_RETURN(
      std::unique_ptr<acme::AcmeClient> client,
      acme::AcmeClient::Connect(f.directory, account.signer.get(), account.public_key.get(), co));
  ASSIGN_OR_RETURN(std::string account_url, client->NewAccount(eab));
  Note(absl::StrCat("account ", account_url));
  ASSIGN_OR_RETURN(acme::AcmeClient::Order order, client->NewOrder(identifiers));
  Note(absl::StrCat("order ", order.url));
  for (const stir::Json& az : acme::ArrayMember(order.body, "authorizations")) {
    if (!az.is_string())
      return absl::InvalidArgumentError("the order lists a non-string authorization");
    const std::string authz_url = az.get<std::string>();
    ASSIGN_OR_RETURN(stir::Json authz, client->PostAsGet(authz_url));
    if (acme::StringMember(authz, "status") == "valid") continue;
    const char* want = dns ? "http-01" : "tkauth-01";
    std::string chall_url;
    for (const stir::Json& c : acme::ArrayMember(authz, "challenges")) {
      if (acme::StringMember(c, "type") == want) chall_url = acme::StringMember(c, "url");
    }
    if (chall_url.empty()) {
      return absl::FailedPreconditionError(
          absl::StrCat(authz_url, " offers no ", want, " challenge"));
    }
    stir::Json answer = stir::Json::object();
    if (!dns) {
      std::string token;
      if (!f.pa_token.empty()) {
        ASSIGN_OR_RETURN(token, ReadInput(f.pa_token, 16 * 1024));
        token = std::string(absl::StripAsciiWhitespace(token));
      } else {
        PaTokenRequest pr;
        pr.pa_key = f.pa_key;
        pr.x5u = f.pa_x5u;
        pr.spc = f.spc;
        pr.account_key = f.account_key;
        pr.ca = f.sp_ca;
        pr.token = f.token;
        ASSIGN_OR_RETURN(token, MakePaToken(pr));
      }
      answer["atc"] = token;  // RFC 9447 §5
    }
    RETURN_IF_ERROR(client->Respond(chall_url, answer).status());
    RETURN_IF_ERROR(client->WaitFor(authz_url, {"valid"}).status());
  }
  ASSIGN_OR_RETURN(stir::Json ready, client->WaitFor(order.url, {"ready", "valid"}));
  X509ReqPtr csr;
  if (dns) {
    ASSIGN_OR_RETURN(csr, DnsCsr(dns_name, key));
  } else {
    pki::SubjectFlags s = f.subject;
    if (s.cn.empty()) s.cn = absl::StrCat("SHAKEN ", f.spc);  // ATIS-1000080 v004+
    ASSIGN_OR_RETURN(X509NamePtr subject, pki::SubjectFrom(s));
    const SpCertKind kind = f.sp_ca ? SpCertKind::kSpCa : SpCertKind::kEndEntity;
    ASSIGN_OR_RETURN(csr, BuildShakenCsr({{stir::TnAuthEntry::Kind::kSpc, f.spc}}, subject.get(),
                                         key, kind));
  }
  if (acme::StringMember(ready, "status") == "ready") {
    RETURN_IF_ERROR(
        client->Finalize(acme::StringMember(ready, "finalize"), Der(csr.get())).status());
  }
  ASSIGN_OR_RETURN(stir::Json done, client->WaitFor(order.url, {"valid"}));
  ASSIGN_OR_RETURN(std::string pem,
                   client->DownloadCertificate(acme::StringMember(done, "certificate")));
  absl::StatusOr<std::vector<stir::X509Ptr>> chain = stir::ParsePemChain(pem);
  if (!chain.ok()) return stir::WithPrefix(chain.status(), "the downloaded chain: ");
  RETURN_IF_ERROR(CheckIssued(*chain, f, key, tn_der));
  RETURN_IF_ERROR(WriteFileAtomic(f.out, pem, {.force = f.force}));
  nlohmann::json summary = pki::CertSummary((*chain)[0].get());
  summary["chain_length"] = chain->size();
  summary["out"] = f.out;
  summary["account"] = account_url;
  summary["order"] = order.url;
  return summary;
}

int RunOrder(const OrderFlags& f) {
  absl::StatusOr<nlohmann::json> s = Order(f);
  if (!s.ok()) return Fail(s.status());
  if (f.json) {
    PrintJson(*s);
  } else {
    Note(absl::StrCat("wrote ", f.out, ": ", s->value("subject", ""), ", serial ",
                      s->value("serial", ""), ", not after ", s->value("not_after", "")));
  }
  return kExitOk;
}

int RunRenew(OrderFlags f) {
  const std::string current = f.cert.empty() ? f.out : f.cert;
  absl::StatusOr<stir::X509Ptr> cert = pki::ReadOneCertificate(current);
  if (!cert.ok()) return Fail(cert.status());
  const absl::Time not_after = stir::Asn1TimeToTime(X509_get0_notAfter(cert->get()));
  const absl::Duration left = not_after - absl::Now();
  if (left > absl::Hours(24 * f.within_days)) {
    Note(absl::StrCat("not due: ", current, " expires ", pki::TimeText(not_after), ", more than ",
                      f.within_days, " days from now"));
    return kExitOk;
  }
  if (f.spc.empty() && f.identifier.empty()) {
    std::optional<std::string> der =
        FindExtensionDer(X509_get0_extensions(cert->get()), stir::kTnAuthListOid);
    absl::StatusOr<std::vector<stir::TnAuthEntry>> entries =
        der.has_value() ? stir::ParseTnAuthList(*der)
                        : absl::StatusOr<std::vector<stir::TnAuthEntry>>(absl::NotFoundError(""));
    if (!entries.ok() || stir::FirstSpc(*entries).empty()) {
      return Fail(absl::InvalidArgumentError(
          absl::StrCat(current, " holds no SPC: give --spc or --identifier")));
    }
    f.spc = stir::FirstSpc(*entries);
  }
  // An SP-CA certificate is renewed as one (its Authority Token must again allow it).
  if (X509_check_ca(cert->get()) != 0) f.sp_ca = true;
  if (f.out.empty()) f.out = current;
  f.force = true;  // renewing replaces the chain (atomically)
  Note(absl::StrCat("renewing ", current, " (expires ", pki::TimeText(not_after), ")"));
  return RunOrder(f);
}

void AddOrderFlags(CLI::App* c, OrderFlags* f) {
  c->add_option("--directory", f->directory, "the CA's ACME directory URL")->required();
  c->add_option("--account-key", f->account_key,
                "ACME account key (pkcs11: URI or PEM file), not the SHAKEN key")
      ->required();
  c->add_option("--key", f->key, "the certificate's (SHAKEN) key: pkcs11: URI or PEM file")
      ->required();
  c->add_option("--spc", f->spc, "the SPC to certify (TNAuthList identifier)");
  c->add_flag("--sp-ca", f->sp_ca,
              "order an SP-CA certificate (RFC 9060: CA:TRUE, the SPC as the scope it may "
              "delegate); the Authority Token must carry atc \"ca\": true");
  c->add_option("--identifier", f->identifier,
                "dns:NAME instead of --spc: a plain RFC 8555 order (no SHAKEN checks)");
  c->add_option("--pa-token", f->pa_token, "file holding the STI-PA Authority Token");
  c->add_option("--pa-key", f->pa_key, "lab: sign the token here with this PA key (pa token)");
  c->add_option("--pa-x5u", f->pa_x5u, "lab: the PA certificate URL for --pa-key");
  c->add_option("--eab-kid", f->eab_kid, "External Account Binding key id");
  c->add_option("--eab-key-source", f->eab_key_source,
                "where the EAB MAC key (base64url) is: file:/path or env:VARIABLE");
  c->add_option("--tls-ca-file", f->tls_ca_file, "CA bundle for the ACME server's TLS certificate");
  c->add_option("--ca-file", f->ca_file, "STI roots the issued chain must reach");
  c->add_option("--org", f->subject.org, "subject O of the CSR");
  c->add_option("--country", f->subject.country, "subject C of the CSR")->capture_default_str();
  c->add_option("--poll-timeout", f->poll_timeout, "seconds to wait for each status")
      ->capture_default_str();
  c->add_flag("--json", f->json, "print a JSON summary");
  AddTokenFlags(c, &f->token);
}

}  // namespace

void AddAcmeCommands(CLI::App& root, Registry& registry) {
  CLI::App* acme = root.add_subcommand("acme", "Obtain SHAKEN certificates over ACME (RFC 8555)");
  acme->require_subcommand(1);
  auto of = std::make_shared<OrderFlags>();
  CLI::App* o = acme->add_subcommand(
      "order",
      "Order a certificate: account, order, tkauth-01 with the PA token, CSR signed by "
      "--key, finalize, download, check, write the x5u chain");
  AddOrderFlags(o, of.get());
  o->add_option("--out,-o", of->out, "chain file to write (leaf first: the x5u body)")->required();
  o->add_flag("--force", of->force, "replace an existing output file");
  o->footer(
      Examples({"shakenctl acme order --directory https://ca.lab:8555/acme/directory --tls-ca-file "
                "tls-ca.pem \\",
                "    --account-key 'pkcs11:token=shaken;object=acme' --key "
                "'pkcs11:token=shaken;object=sp' \\",
                "    --pin-source file:/etc/shaken/pin --spc 709J --org 'Lab Telecom' --pa-token "
                "709J.atc \\",
                "    --ca-file sti-root.pem -o sp-chain.pem"}));
  registry.push_back({o, [of] { return RunOrder(*of); }});

  auto rf = std::make_shared<OrderFlags>();
  CLI::App* r = acme->add_subcommand(
      "renew",
      "Renew a certificate when it expires within --within-days (else do nothing, exit 0)");
  AddOrderFlags(r, rf.get());
  r->add_option("--cert", rf->cert, "the current chain (default: --out)");
  r->add_option("--out,-o", rf->out, "chain file to write (default: --cert)");
  r->add_option("--within-days", rf->within_days, "renew when fewer days than this are left")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{0}, int64_t{3650}));
  r->footer(
      Examples({"shakenctl acme renew --cert /var/www/x5u/sp-chain.pem --directory ... \\",
                "    --account-key ... --key ... --pa-token 709J.atc --ca-file sti-root.pem"}));
  registry.push_back({r, [rf] {
                        if (rf->cert.empty() && rf->out.empty())
                          return UsageError("give --cert or --out");
                        return RunRenew(*rf);
                      }});
}

}  // namespace shaken::cli
