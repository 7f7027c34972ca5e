// cmd_ca_serve.cc: `shakenctl ca serve`: the demo STI-CA as an ACME server (RFC 8555) with the
// TNAuthList identifier and the tkauth-01 challenge (RFC 9447, RFC 9448). The protocol engine
// is cli/acme/ (engine, SQLite store, worker queue behind shaken::http::Server); this file binds
// it to the CA's own issuing code (sp_cert.h) and key opener, and runs until SIGINT / SIGTERM.
#include <signal.h>
#include <openssl/x509v3.h>

#include <iostream>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "cli/acme/engine.h"
#include "cli/acme/jws.h"
#include "cli/acme/server.h"
#include "cli/acme/store.h"
#include "cli/acme_cli.h"
#include "cli/pki_common.h"
#include "cli/sp_cert.h"
#include "stir/absl_compat.h"
#include "stir/cert_profile.h"
#include "stir/status_macros.h"
#include "stir/tn_auth_list.h"
#include "stir/x5u_fetcher.h"

namespace shaken::cli {
namespace {

struct ServeFlags {
  std::string listen = "127.0.0.1:8555";
  std::string external_url;
  std::string tls_cert;
  std::string tls_key;
  std::string ca_cert;
  std::string ca_key;
  std::string chain;  // intermediates served after the leaf; default: --ca-cert
  std::string state;
  std::string pa_trust;
  std::string x5u_tls_ca_file;
  bool allow_private_x5u = false;
  std::string eab_keys;
  bool eab_required = false;
  std::string port_file;
  int workers = 2;
  SpIssueOptions sp = {.policies = {stir::kShakenPolicyV13}};
  TokenOptions token;
};

// ReadEabKeys reads "KID BASE64URL-KEY" lines ('#' comments): the MAC keys the CA handed out.
absl::StatusOr<std::map<std::string, std::string>> ReadEabKeys(const std::string& path) {
  ASSIGN_OR_RETURN(std::string text, stir::ReadFile(path, 64 * 1024));
  std::map<std::string, std::string> out;
  int n = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++n;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line[0] == '#') continue;
    std::vector<std::string> parts = absl::StrSplit(line, ' ', absl::SkipEmpty());
    std::string key;
    if (parts.size() != 2 || !absl::WebSafeBase64Unescape(parts[1], &key) || key.size() < 16) {
      return absl::InvalidArgumentError(absl::StrCat(
          path, ":", n, ": expected \"KID KEY\" with KEY the base64url of at least 16 bytes"));
    }
    out[parts[0]] = key;
  }
  return out;
}

int Serve(const ServeFlags& f) {
  // Signals are taken by sigwait below: block them before any thread starts.
  sigset_t stop;
  sigemptyset(&stop);
  sigaddset(&stop, SIGINT);
  sigaddset(&stop, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &stop, nullptr);

  absl::StatusOr<pki::Issuer> issuer_or = pki::LoadIssuer(f.ca_cert, f.ca_key, f.token);
  if (!issuer_or.ok()) return Fail(issuer_or.status());
  auto issuer = std::make_shared<pki::Issuer>(*std::move(issuer_or));
  absl::StatusOr<std::string> chain = ReadInput(f.chain.empty() ? f.ca_cert : f.chain);
  if (!chain.ok()) return Fail(chain.status());
  absl::StatusOr<std::vector<stir::X509Ptr>> chain_certs = ReadCertificates(*chain, "--chain");
  if (!chain_certs.ok()) return Fail(chain_certs.status());
  std::string chain_pem;
  for (const stir::X509Ptr& c : *chain_certs) chain_pem += CertificatePem(c.get());

  absl::StatusOr<std::string> anchors_pem = ReadInput(f.pa_trust);
  if (!anchors_pem.ok()) return Fail(anchors_pem.status());
  absl::StatusOr<std::vector<stir::X509Ptr>> anchors = ReadCertificates(*anchors_pem, "--pa-trust");
  if (!anchors.ok()) return Fail(anchors.status());
  stir::X509StorePtr store(X509_STORE_new());
  for (const stir::X509Ptr& a : *anchors) X509_STORE_add_cert(store.get(), a.get());

  stir::X5uFetcherOptions fo;
  fo.tls_ca_file = f.x5u_tls_ca_file;
  if (f.allow_private_x5u) {
    fo.allow_private_addresses = true;
    fo.allow_any_port = true;
    fo.allow_http = true;
  }
  absl::StatusOr<std::unique_ptr<stir::X5uFetcher>> fetcher = stir::X5uFetcher::New(fo);
  if (!fetcher.ok()) return Fail(fetcher.status());

  acme::EngineConfig config;
  config.pa_anchors = store.get();
  config.fetcher = fetcher->get();
  config.eab_required = f.eab_required;
  if (!f.eab_keys.empty()) {
    absl::StatusOr<std::map<std::string, std::string>> keys = ReadEabKeys(f.eab_keys);
    if (!keys.ok()) return Fail(keys.status());
    config.eab_keys = *std::move(keys);
  }
  if (f.eab_required && config.eab_keys.empty()) {
    return UsageError("--eab-required needs --eab-keys FILE");
  }
  const SpIssueOptions sp = f.sp;
  config.issue = [issuer, sp, chain_pem](
                     X509_REQ* csr, std::string_view order_der,
                     bool ca) -> absl::StatusOr<acme::IssuedCertificate> {
    ASSIGN_OR_RETURN(std::string csr_der, CheckSpRequest(csr, sp, "in finalize"));
    // Both sides re-encoded canonically before they are compared.
    absl::StatusOr<std::vector<stir::TnAuthEntry>> ordered = stir::ParseTnAuthList(order_der);
    std::string order_canonical =
        ordered.ok() ? stir::EncodeTnAuthList(*ordered).value_or("") : std::string();
    if (csr_der != order_canonical) {
      return absl::InvalidArgumentError(absl::StrCat(
          "the CSR's TNAuthList (", absl::BytesToHexString(csr_der),
          ") is not the order's identifier (", absl::BytesToHexString(order_canonical), ")"));
    }
    // An SP-CA (the engine checked that the order's Authority Token allows it) needs an issuer
    // whose path length allows one more CA below it.
    if (ca && X509_get_pathlen(issuer->cert.get()) == 0) {
      return absl::FailedPreconditionError(
          "this STI-CA's certificate has pathLenConstraint 0: it cannot certify an SP-CA whose "
          "delegate certificates would verify");
    }
    // Under an issuer that is itself an SP-CA, the certificate stays within its scope (RFC 9060).
    ASSIGN_OR_RETURN(std::vector<stir::TnAuthEntry> entries, stir::ParseTnAuthList(csr_der));
    RETURN_IF_ERROR(CheckIssuerScope(issuer->cert.get(), entries));
    ASSIGN_OR_RETURN(stir::X509Ptr cert,
                     IssueSpCertificate(csr, csr_der, *issuer, sp,
                                        ca ? SpCertKind::kSpCa : SpCertKind::kEndEntity));
    return acme::IssuedCertificate{CertificatePem(cert.get()) + chain_pem,
                                   stir::SerialHex(X509_get0_serialNumber(cert.get()))};
  };

  absl::StatusOr<std::unique_ptr<acme::Store>> db = acme::Store::Open(f.state);
  if (!db.ok()) return Fail(db.status());
  if (absl::Status st = (*db)->Prune(absl::Now()); !st.ok()) return Fail(st);

  acme::AcmeServerOptions so;
  so.http.address = f.listen;
  so.workers = f.workers;
  so.external_base_url = f.external_url;
  // An access line per answer on stderr: method, path, status and, for a refusal, the problem
  // type (never a body: tokens and CSRs stay out of logs).
  so.on_answer = [](const http::Request& req, const http::Response& resp) {
    std::string problem;
    for (const auto& [k, v] : resp.headers) {
      if (k == "Content-Type" && v == "application/problem+json") {
        problem = " " + acme::StringMember(acme::Json::parse(resp.body, nullptr, false), "type");
      }
    }
    Note(absl::StrCat(req.peer, " ", req.method, " ", req.path, " ", resp.status, problem));
  };
  http::TlsFiles tls;
  absl::StatusOr<std::string> tls_cert = ReadInput(f.tls_cert);
  if (!tls_cert.ok()) return Fail(tls_cert.status());
  absl::StatusOr<std::string> tls_key = stir::ReadFile(f.tls_key, 64 * 1024);
  if (!tls_key.ok()) return Fail(tls_key.status());
  tls.cert_pem = *std::move(tls_cert);
  tls.key_pem = *std::move(tls_key);  // the server wipes its copy when it stops
  so.http.tls = std::move(tls);
  absl::StatusOr<std::unique_ptr<acme::AcmeServer>> server =
      acme::AcmeServer::Start(std::move(so), std::move(config), db->get());
  if (!server.ok()) return Fail(server.status());
  if (!f.port_file.empty()) {
    absl::Status st =
        WriteFileAtomic(f.port_file, absl::StrCat((*server)->port(), "\n"), {.force = true});
    if (!st.ok()) return Fail(st);
  }
  Note(absl::StrCat("shakenctl ca serve: ACME directory ", (*server)->directory_url(), " (state ",
                    f.state, ")"));
  int sig = 0;
  sigwait(&stop, &sig);
  Note(absl::StrCat("shakenctl ca serve: signal ", sig, ", stopping"));
  (*server)->Stop();
  return kExitOk;
}

}  // namespace

void AddCaServeCommand(CLI::App* ca, Registry& registry) {
  auto f = std::make_shared<ServeFlags>();
  CLI::App* s = ca->add_subcommand(
      "serve",
      "Run a demo STI-CA as an ACME server (RFC 8555) over HTTPS: TNAuthList identifiers, the "
      "tkauth-01 challenge checked against STI-PA trust anchors, SHAKEN SP certificates");
  s->add_option("--listen", f->listen, "host:port to listen on")->capture_default_str();
  s->add_option("--external-url", f->external_url,
                "base URL clients use (default: https://<listen host>:<port>)");
  s->add_option("--tls-cert", f->tls_cert, "HTTPS server certificate chain (PEM)")->required();
  s->add_option("--tls-key", f->tls_key, "its private key (PEM file)")->required();
  s->add_option("--ca-cert", f->ca_cert, "issuing CA certificate (PEM)")->required();
  s->add_option("--ca-key", f->ca_key, "issuing CA key: pkcs11: URI or PEM file")->required();
  s->add_option("--chain", f->chain, "certificates served after the leaf (default: --ca-cert)");
  s->add_option("--state", f->state, "SQLite database holding the CA's ACME state")->required();
  s->add_option("--pa-trust", f->pa_trust,
                "STI-PA trust anchors (PEM): Authority Token certificates must chain to one")
      ->required();
  s->add_option("--x5u-tls-ca-file", f->x5u_tls_ca_file,
                "TLS trust for fetching token x5u URLs (default: the system store)");
  s->add_flag("--allow-private-x5u", f->allow_private_x5u,
              "lab: token x5u may be http, any port, on loopback");
  s->add_option("--eab-keys", f->eab_keys, "External Account Binding keys: lines \"KID KEY\"");
  s->add_flag("--eab-required", f->eab_required, "refuse new accounts without EAB");
  s->add_option("--crl-url", f->sp.crl_url, "CRL distribution point of issued certificates");
  s->add_option("--policy", f->sp.policies, "certificate policy OIDs")
      ->allow_extra_args(false)
      ->capture_default_str();
  pki::AddValidityFlags(s, &f->sp.validity, 365);
  s->add_option("--workers", f->workers, "worker threads")
      ->capture_default_str()
      ->check(CLI::Range(1, 16));
  s->add_option("--port-file", f->port_file, "write the bound port here (for --listen :0)");
  AddTokenFlags(s, &f->token);
  s->footer(Examples(
      {"shakenctl ca serve --listen 127.0.0.1:8555 --tls-cert tls.pem --tls-key tls.key.pem \\",
       "    --ca-cert ica.pem --ca-key ica.key.pem --state /var/lib/shaken-ca/acme.db \\",
       "    --pa-trust pa-root.pem --crl-url http://crl.lab/sti.crl",
       "# directory: https://127.0.0.1:8555/acme/directory"}));
  registry.push_back({s, [f] { return Serve(*f); }});
}

}  // namespace shaken::cli
