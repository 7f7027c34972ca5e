// cmd_pki.cc: the STI PKI commands: ca init | issue-intermediate | issue | self-issue | crl,
// csr create | show, cert show | check, ca-dir add | list. Every signature goes through
// stir::Signer (cli/x509.h), so a CA or SP key may live in a token or, for labs, in a file.
#include <dirent.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <algorithm>
#include <iostream>
#include <memory>
#include <regex>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "cli/commands.h"
#include "cli/lint.h"
#include "cli/x509.h"
#include "stir/absl_compat.h"
#include "stir/cert_validator.h"
#include "stir/status_macros.h"
#include "stir/tn.h"

namespace shaken::cli {
namespace {

using X509CrlPtr = stir::X509CrlPtr;
using RevokedPtr = stir::X509RevokedPtr;
using Asn1IntPtr = stir::Asn1IntegerPtr;
using Asn1TimePtr = stir::Asn1TimePtr;
using ExtStackPtr = std::unique_ptr<STACK_OF(X509_EXTENSION), void (*)(STACK_OF(X509_EXTENSION)*)>;

void FreeExts(STACK_OF(X509_EXTENSION) * s) { sk_X509_EXTENSION_pop_free(s, X509_EXTENSION_free); }

std::string TimeText(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", t, absl::UTCTimeZone());
}

// ---------------------------------------------------------------------------------------------
// Shared flags and helpers.

struct OutFlags {
  std::string out;
  bool force = false;
  bool json = false;
};

void AddOutFlags(CLI::App* app, OutFlags* f, const char* what) {
  app->add_option("--out,-o", f->out, std::string(what) + " (default: stdout)");
  app->add_flag("--force", f->force, "replace an existing output file");
  app->add_flag("--json", f->json, "print JSON (the PEM is in the \"pem\" member)");
}

struct ValidityFlags {
  int64_t days = 0;
  std::optional<int64_t> not_before;
};

void AddValidityFlags(CLI::App* app, ValidityFlags* f, int64_t default_days) {
  f->days = default_days;
  app->add_option("--days", f->days, "validity in days")->capture_default_str()->check(
      CLI::Range(int64_t{1}, int64_t{36500}));
  app->add_option("--not-before", f->not_before,
                  "notBefore as a Unix time (default: now); for test vectors");
}

absl::Status CheckOut(const OutFlags& f) {
  if (f.out.empty() || f.out == "-") return absl::OkStatus();
  return CheckWritable(f.out, f.force);
}

// Emit writes `pem` to --out (atomically) or stdout and prints the JSON summary when asked.
int Emit(const OutFlags& f, const std::string& pem, nlohmann::json summary) {
  const bool to_stdout = f.out.empty() || f.out == "-";
  if (!to_stdout) {
    if (absl::Status st = WriteFileAtomic(f.out, pem, {.force = f.force}); !st.ok()) {
      return Fail(st);
    }
    summary["file"] = f.out;
  }
  if (f.json) {
    summary["pem"] = pem;
    PrintJson(summary);
  } else if (to_stdout) {
    std::cout << pem;
  } else {
    std::string line;
    for (auto it = summary.begin(); it != summary.end(); ++it) {
      if (it.value().is_string()) absl::StrAppend(&line, it.key(), ": ", it.value().get<std::string>(), "\n");
    }
    std::cout << line;
  }
  return kExitOk;
}

nlohmann::json CertSummary(const X509* cert) {
  const std::string der = stir::CertificateDer(cert);
  return {{"subject", stir::NameText(X509_get_subject_name(cert))},
          {"issuer", stir::NameText(X509_get_issuer_name(cert))},
          {"serial", stir::SerialHex(X509_get0_serialNumber(cert))},
          {"not_before", TimeText(stir::Asn1TimeToTime(X509_get0_notBefore(cert)))},
          {"not_after", TimeText(stir::Asn1TimeToTime(X509_get0_notAfter(cert)))},
          {"sha256", Sha256Fingerprint(der)}};
}

absl::StatusOr<stir::X509Ptr> ReadOneCertificate(const std::string& path) {
  ASSIGN_OR_RETURN(std::string data, ReadInput(path));
  ASSIGN_OR_RETURN(std::vector<stir::X509Ptr> certs, ReadCertificates(data, path));
  return std::move(certs.front());
}

// Issuer is a CA certificate with its signing key, checked to belong together.
struct Issuer {
  stir::X509Ptr cert;
  LoadedKey key;
};

absl::StatusOr<Issuer> LoadIssuer(const std::string& cert_path, const std::string& key,
                                  const TokenOptions& token) {
  Issuer out;
  ASSIGN_OR_RETURN(out.cert, ReadOneCertificate(cert_path));
  if (X509_check_ca(out.cert.get()) == 0) {
    return absl::FailedPreconditionError(
        absl::StrCat(cert_path, " is not a CA certificate (BasicConstraints CA:TRUE)"));
  }
  ASSIGN_OR_RETURN(out.key, LoadSigningKey(key, token));
  if (!SameKey(X509_get0_pubkey(out.cert.get()), out.key.public_key.get())) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the CA key ", out.key.where, " does not match the CA certificate ", cert_path));
  }
  return out;
}

// Window computes notBefore/notAfter; a certificate never outlives its issuer (clipped, with a
// note).
absl::StatusOr<std::pair<absl::Time, absl::Time>> Window(const ValidityFlags& v,
                                                         const X509* issuer) {
  absl::Time nb = v.not_before.has_value() ? absl::FromUnixSeconds(*v.not_before) : absl::Now();
  nb = absl::FromUnixSeconds(absl::ToUnixSeconds(nb));
  absl::Time na = nb + absl::Hours(24 * v.days);
  if (issuer != nullptr) {
    absl::Time limit = stir::Asn1TimeToTime(X509_get0_notAfter(issuer));
    if (na > limit) {
      Note(absl::StrCat("note: notAfter clipped to the issuer's notAfter ", TimeText(limit)));
      na = limit;
    }
    if (na <= nb) return absl::FailedPreconditionError("the issuer certificate has expired");
  }
  return std::make_pair(nb, na);
}

absl::StatusOr<stir::X509Ptr> NewCertificate(const X509_NAME* subject, const X509_NAME* issuer,
                                             const EVP_PKEY* public_key,
                                             std::pair<absl::Time, absl::Time> window) {
  stir::X509Ptr cert(X509_new());
  if (!cert || !X509_set_version(cert.get(), X509_VERSION_3) ||
      !X509_set_subject_name(cert.get(), subject) || !X509_set_issuer_name(cert.get(), issuer) ||
      !X509_set_pubkey(cert.get(), const_cast<EVP_PKEY*>(public_key))) {
    return stir::OpenSslError(absl::StatusCode::kInternal, "certificate fields");
  }
  RETURN_IF_ERROR(SetRandomSerial(cert.get()));
  RETURN_IF_ERROR(SetValidity(cert.get(), window.first, window.second));
  return cert;
}

struct SubjectFlags {
  std::string subject;
  std::string cn;
  std::string org;
  std::string country = "US";
};

void AddSubjectFlags(CLI::App* app, SubjectFlags* f) {
  app->add_option("--subject", f->subject, "full subject DN, e.g. 'C=US,O=Example,CN=...'");
  app->add_option("--cn", f->cn, "subject common name");
  app->add_option("--org,-O", f->org, "subject organization");
  app->add_option("--country", f->country, "subject country (ISO 3166)")->capture_default_str();
}

absl::StatusOr<X509NamePtr> SubjectFrom(const SubjectFlags& f) {
  if (!f.subject.empty()) return ParseName(f.subject);
  if (f.cn.empty()) return absl::InvalidArgumentError("give --cn (or --subject)");
  return ShakenSubject(f.country, f.org.empty() ? f.cn : f.org, f.cn);
}

// ---------------------------------------------------------------------------------------------
// ca init / issue-intermediate / self-issue.

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

absl::StatusOr<stir::X509Ptr> CaIssueIntermediate(const CaFlags& f) {
  ASSIGN_OR_RETURN(Issuer issuer, LoadIssuer(f.ca_cert, f.key, f.token));
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

// ---------------------------------------------------------------------------------------------
// TNAuthList from flags.

struct TnAuthFlags {
  std::string spc;
  std::vector<std::string> tns;
  std::vector<std::string> ranges;  // START:COUNT
};

absl::StatusOr<std::vector<stir::TnAuthEntry>> TnAuthEntries(const TnAuthFlags& f) {
  std::vector<stir::TnAuthEntry> out;
  if (!f.spc.empty()) {
    RETURN_IF_ERROR(stir::ValidateSpc(f.spc));
    out.push_back({stir::TnAuthEntry::Kind::kSpc, f.spc, 0});
  }
  for (const std::string& tn : f.tns) {
    absl::StatusOr<std::string> c = stir::CanonicalizeTn(tn);
    if (!c.ok()) return absl::InvalidArgumentError(absl::StrCat("bad --tn: ", c.status().message()));
    out.push_back({stir::TnAuthEntry::Kind::kOne, *c, 0});
  }
  for (const std::string& r : f.ranges) {
    std::vector<std::string> parts = absl::StrSplit(r, ':');
    if (parts.size() != 2) {
      return absl::InvalidArgumentError(
          absl::StrCat("bad --tn-range '", r, "': expected START:COUNT"));
    }
    absl::StatusOr<std::string> c = stir::CanonicalizeTn(parts[0]);
    absl::StatusOr<int64_t> count = ParseInt64(parts[1], "--tn-range count");
    if (!c.ok()) return absl::InvalidArgumentError(absl::StrCat("bad --tn-range: ", c.status().message()));
    if (!count.ok()) return count.status();
    if (*count < 2) return absl::InvalidArgumentError("a --tn-range count must be 2 or more");
    out.push_back({stir::TnAuthEntry::Kind::kRange, *c, static_cast<uint64_t>(*count)});
  }
  if (out.empty()) {
    return absl::InvalidArgumentError(
        "missing SPC: give --spc <SPC> (or --tn / --tn-range for a delegate certificate)");
  }
  return out;
}

nlohmann::json TnAuthJson(const std::vector<stir::TnAuthEntry>& entries) {
  nlohmann::json arr = nlohmann::json::array();
  for (const stir::TnAuthEntry& e : entries) {
    switch (e.kind) {
      case stir::TnAuthEntry::Kind::kSpc:
        arr.push_back({{"spc", e.value}});
        break;
      case stir::TnAuthEntry::Kind::kOne:
        arr.push_back({{"tn", e.value}});
        break;
      case stir::TnAuthEntry::Kind::kRange:
        arr.push_back({{"range", {{"start", e.value}, {"count", e.count}}}});
        break;
    }
  }
  return arr;
}

std::string TnAuthText(const std::vector<stir::TnAuthEntry>& entries) {
  std::vector<std::string> parts;
  for (const stir::TnAuthEntry& e : entries) {
    switch (e.kind) {
      case stir::TnAuthEntry::Kind::kSpc:
        parts.push_back(absl::StrCat("SPC ", e.value));
        break;
      case stir::TnAuthEntry::Kind::kOne:
        parts.push_back(absl::StrCat("TN ", e.value));
        break;
      case stir::TnAuthEntry::Kind::kRange:
        parts.push_back(absl::StrCat("TN range ", e.value, " +", e.count));
        break;
    }
  }
  return absl::StrJoin(parts, ", ");
}

// ---------------------------------------------------------------------------------------------
// csr create / show.

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
  ASSIGN_OR_RETURN(std::string tn_der, stir::EncodeTnAuthList(entries));
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
  X509ReqPtr req(X509_REQ_new());
  if (!req || !X509_REQ_set_version(req.get(), 0) ||
      !X509_REQ_set_subject_name(req.get(), subject.get()) ||
      !X509_REQ_set_pubkey(req.get(), key.public_key.get())) {
    return stir::OpenSslError(absl::StatusCode::kInternal, "CSR fields");
  }
  ExtStackPtr exts(sk_X509_EXTENSION_new_null(), FreeExts);
  // RFC 8226 §9: TNAuthList, non-critical; BasicConstraints CA:FALSE, critical (CE-10, CE-5).
  ASSIGN_OR_RETURN(X509ExtPtr tn_ext, MakeRawExtension(stir::kTnAuthListOid, tn_der, false));
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, nullptr, nullptr, req.get(), nullptr, 0);
  X509ExtPtr bc(X509V3_EXT_conf_nid(nullptr, &ctx, NID_basic_constraints, "critical,CA:FALSE"));
  if (!bc) return stir::OpenSslError(absl::StatusCode::kInternal, "BasicConstraints");
  sk_X509_EXTENSION_push(exts.get(), bc.release());
  sk_X509_EXTENSION_push(exts.get(), tn_ext.release());
  if (!X509_REQ_add_extensions(req.get(), exts.get())) {
    return stir::OpenSslError(absl::StatusCode::kInternal, "CSR extensions");
  }
  return SignRequest(req.get(), *key.signer);
}

// CsrTnAuthList reads and parses the TNAuthList a CSR requests.
absl::StatusOr<std::vector<stir::TnAuthEntry>> CsrTnAuthList(X509_REQ* req, std::string* der) {
  ExtStackPtr exts(X509_REQ_get_extensions(req), FreeExts);
  ERR_clear_error();
  std::optional<std::string> value = FindExtensionDer(exts.get(), stir::kTnAuthListOid);
  if (!value.has_value()) {
    return absl::InvalidArgumentError(
        "the CSR requests no TNAuthList (RFC 8226): missing SPC; make it with `shakenctl csr "
        "create --spc <SPC>`");
  }
  if (der != nullptr) *der = *value;
  absl::StatusOr<std::vector<stir::TnAuthEntry>> entries = stir::ParseTnAuthList(*value);
  if (!entries.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("the CSR's TNAuthList is malformed: ", entries.status().message()));
  }
  return entries;
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

// ---------------------------------------------------------------------------------------------
// ca issue: the SP end-entity certificate from a CSR.

struct IssueFlags {
  std::string ca_cert;
  std::string ca_key;
  std::string csr;
  std::string spc;
  std::string crl_url;
  std::string crl_issuer;
  bool no_crl_issuer = false;
  std::vector<std::string> policies = {stir::kShakenPolicyV13};
  bool allow_delegate = false;
  ValidityFlags validity;
  OutFlags out;
  TokenOptions token;
};

absl::StatusOr<stir::X509Ptr> CaIssue(const IssueFlags& f) {
  ASSIGN_OR_RETURN(std::string data, ReadInput(f.csr));
  absl::StatusOr<X509ReqPtr> req_or = ReadRequest(data, f.csr);
  if (!req_or.ok()) return absl::InvalidArgumentError(absl::StrCat("malformed CSR: ", req_or.status().message()));
  X509ReqPtr req = *std::move(req_or);
  EVP_PKEY* pub = X509_REQ_get0_pubkey(req.get());
  if (pub == nullptr || X509_REQ_verify(req.get(), pub) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError(
        absl::StrCat("malformed CSR ", f.csr, ": its signature does not verify with its key"));
  }
  if (!stir::IsP256Key(pub)) {
    return absl::InvalidArgumentError("the CSR key is not EC P-256 (ATIS-1000080 §6.4.1)");
  }
  std::string csr_der;
  ASSIGN_OR_RETURN(std::vector<stir::TnAuthEntry> entries, CsrTnAuthList(req.get(), &csr_der));
  const bool single_spc = entries.size() == 1 && entries[0].kind == stir::TnAuthEntry::Kind::kSpc;
  if (!single_spc && !f.allow_delegate) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the CSR's TNAuthList is ", TnAuthText(entries),
        "; a SHAKEN certificate holds exactly one SPC (ATIS-1000080 v005); use --allow-delegate "
        "for a delegate certificate"));
  }
  if (single_spc) RETURN_IF_ERROR(stir::ValidateSpc(entries[0].value));
  if (!f.spc.empty() && (!single_spc || entries[0].value != f.spc)) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the CSR asks for ", TnAuthText(entries), ", not SPC ", f.spc, " (--spc)"));
  }
  // Re-encoded canonically (ParseTnAuthList also accepts implicit tags some tools produce).
  ASSIGN_OR_RETURN(std::string tn_der, stir::EncodeTnAuthList(entries));
  const X509_NAME* subject = X509_REQ_get_subject_name(req.get());
  if (single_spc) {
    std::string cn = stir::NameEntry(subject, NID_commonName);
    if (cn != absl::StrCat("SHAKEN ", entries[0].value)) {
      return absl::FailedPreconditionError(absl::StrCat(
          "the CSR subject CN is \"", cn, "\"; ATIS-1000080 v004+ requires \"SHAKEN ",
          entries[0].value, "\""));
    }
  }
  if (stir::NameEntry(subject, NID_countryName).empty() ||
      stir::NameEntry(subject, NID_organizationName).empty()) {
    return absl::FailedPreconditionError("the CSR subject lacks C or O (ATIS-1000080 v004+)");
  }
  ASSIGN_OR_RETURN(Issuer issuer, LoadIssuer(f.ca_cert, f.ca_key, f.token));
  ASSIGN_OR_RETURN(auto window, Window(f.validity, issuer.cert.get()));
  ASSIGN_OR_RETURN(stir::X509Ptr cert,
                   NewCertificate(subject, X509_get_subject_name(issuer.cert.get()), pub, window));
  X509* c = cert.get();
  X509* iss = issuer.cert.get();
  RETURN_IF_ERROR(AddConfExtension(c, iss, NID_basic_constraints, "critical,CA:FALSE"));
  RETURN_IF_ERROR(AddConfExtension(c, iss, NID_key_usage, "critical,digitalSignature"));
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

// ---------------------------------------------------------------------------------------------
// ca crl.

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

// ---------------------------------------------------------------------------------------------
// cert show / check.

struct CertFlags {
  std::string in;
  std::string role = "auto";
  std::optional<int64_t> at;
  bool json = false;
};

nlohmann::json CertJson(const X509* cert) {
  nlohmann::json j = CertSummary(cert);
  EVP_PKEY* key = X509_get0_pubkey(cert);
  j["key"] = key == nullptr ? "?" : stir::IsP256Key(key) ? "EC P-256" : EVP_PKEY_get0_type_name(key);
  j["signature_algorithm"] = OBJ_nid2ln(X509_get_signature_nid(cert));
  j["ca"] = X509_check_ca(const_cast<X509*>(cert)) != 0;
  if (key != nullptr) j["spki_sha256"] = Sha256Fingerprint(stir::PublicKeyToDer(key).value_or(""));
  absl::StatusOr<stir::CertificateInfo> info = stir::DescribeCertificate(cert);
  if (info.ok()) {
    j["tn_auth_list"] = TnAuthJson(info->tn_auth_list);
    j["spc"] = info->spc;
    j["policies"] = info->policy_oids;
  } else {
    j["error"] = std::string(info.status().message());
  }
  STACK_OF(DIST_POINT)* dps = static_cast<STACK_OF(DIST_POINT)*>(
      X509_get_ext_d2i(cert, NID_crl_distribution_points, nullptr, nullptr));
  ERR_clear_error();
  nlohmann::json urls = nlohmann::json::array();
  for (int i = 0; dps && i < sk_DIST_POINT_num(dps); ++i) {
    DIST_POINT* dp = sk_DIST_POINT_value(dps, i);
    if (dp->distpoint == nullptr || dp->distpoint->type != 0) continue;
    for (int k = 0; k < sk_GENERAL_NAME_num(dp->distpoint->name.fullname); ++k) {
      GENERAL_NAME* g = sk_GENERAL_NAME_value(dp->distpoint->name.fullname, k);
      if (g->type == GEN_URI) {
        urls.push_back(std::string(
            reinterpret_cast<const char*>(ASN1_STRING_get0_data(g->d.uniformResourceIdentifier)),
            static_cast<size_t>(ASN1_STRING_length(g->d.uniformResourceIdentifier))));
      }
    }
  }
  if (dps) sk_DIST_POINT_pop_free(dps, DIST_POINT_free);
  j["crl_urls"] = urls;
  return j;
}

int CertShow(const CertFlags& f) {
  absl::StatusOr<std::string> data = ReadInput(f.in);
  if (!data.ok()) return Fail(data.status());
  absl::StatusOr<std::vector<stir::X509Ptr>> certs = ReadCertificates(*data, f.in);
  if (!certs.ok()) return Fail(certs.status());
  nlohmann::json arr = nlohmann::json::array();
  for (const stir::X509Ptr& c : *certs) arr.push_back(CertJson(c.get()));
  if (f.json) {
    PrintJson(arr);
    return kExitOk;
  }
  for (size_t i = 0; i < arr.size(); ++i) {
    const nlohmann::json& j = arr[i];
    if (i) std::cout << "\n";
    std::cout << "certificate " << i << (j["ca"].get<bool>() ? " (CA)" : "") << "\n";
    for (const char* k : {"subject", "issuer", "serial", "not_before", "not_after", "key",
                          "signature_algorithm", "spki_sha256", "sha256", "spc", "error"}) {
      if (j.contains(k)) std::cout << absl::StrFormat("  %-20s %s\n", k, j[k].get<std::string>());
    }
    if (j.contains("tn_auth_list") && !j["tn_auth_list"].empty()) {
      std::cout << absl::StrFormat("  %-20s %s\n", "tn_auth_list", j["tn_auth_list"].dump());
    }
    if (j.contains("policies") && !j["policies"].empty()) {
      std::cout << absl::StrFormat("  %-20s %s\n", "policies", j["policies"].dump());
    }
    if (!j["crl_urls"].empty()) {
      std::cout << absl::StrFormat("  %-20s %s\n", "crl_urls", j["crl_urls"].dump());
    }
  }
  return kExitOk;
}

int CertCheck(const CertFlags& f) {
  absl::StatusOr<std::string> data = ReadInput(f.in);
  if (!data.ok()) return Fail(data.status());
  absl::StatusOr<std::vector<stir::X509Ptr>> certs = ReadCertificates(*data, f.in);
  if (!certs.ok()) return Fail(certs.status());
  absl::Time now = f.at.has_value() ? absl::FromUnixSeconds(*f.at) : absl::Now();
  bool failed = false;
  nlohmann::json arr = nlohmann::json::array();
  for (size_t i = 0; i < certs->size(); ++i) {
    X509* c = (*certs)[i].get();
    CertRole role = RoleOf(c);
    if (i == 0 && f.role == "ee") role = CertRole::kEndEntity;
    if (i == 0 && f.role == "intermediate") role = CertRole::kIntermediate;
    if (i == 0 && f.role == "root") role = CertRole::kRoot;
    std::vector<LintRow> rows = LintCertificate(c, role, now);
    failed |= HasFailure(rows);
    if (f.json) {
      nlohmann::json jr = nlohmann::json::array();
      for (const LintRow& r : rows) {
        jr.push_back({{"id", r.id},
                      {"item", r.item},
                      {"status", std::string(LintStatusName(r.status))},
                      {"detail", r.detail}});
      }
      arr.push_back({{"subject", stir::NameText(X509_get_subject_name(c))},
                     {"role", std::string(CertRoleName(role))},
                     {"passed", !HasFailure(rows)},
                     {"checks", jr}});
      continue;
    }
    if (i) std::cout << "\n";
    std::cout << stir::NameText(X509_get_subject_name(c)) << " (" << CertRoleName(role) << ")\n";
    std::cout << absl::StrFormat("  %-6s %-4s %-44s %s\n", "ID", "", "REQUIREMENT", "FOUND");
    for (const LintRow& r : rows) {
      std::cout << absl::StrFormat("  %-6s %-4s %-44s %s\n", r.id, LintStatusName(r.status),
                                   r.item, r.detail);
    }
    std::cout << "  => " << (HasFailure(rows) ? "FAIL" : "PASS") << "\n";
  }
  if (f.json) PrintJson({{"passed", !failed}, {"certificates", arr}});
  return failed ? kExitLintFailed : kExitOk;
}

// ---------------------------------------------------------------------------------------------
// ca-dir add / list.

struct CaDirFlags {
  std::string dir;
  std::vector<std::string> certs;
  bool allow_non_ca = false;
  bool json = false;
};

int CaDirAdd(const CaDirFlags& f) {
  std::vector<stir::X509Ptr> all;
  for (const std::string& path : f.certs) {
    absl::StatusOr<std::string> data = ReadInput(path);
    if (!data.ok()) return Fail(data.status());
    absl::StatusOr<std::vector<stir::X509Ptr>> certs = ReadCertificates(*data, path);
    if (!certs.ok()) return Fail(certs.status());
    for (stir::X509Ptr& c : *certs) {
      if (!f.allow_non_ca && X509_check_ca(c.get()) == 0) {
        return Fail(absl::InvalidArgumentError(absl::StrCat(
            path, " holds a certificate that is not a CA (",
            stir::NameText(X509_get_subject_name(c.get())), "); use --allow-non-ca to add it anyway")));
      }
      all.push_back(std::move(c));
    }
  }
  struct stat st;
  if (::stat(f.dir.c_str(), &st) != 0) {
    if (::mkdir(f.dir.c_str(), 0755) != 0) {
      return Fail(absl::PermissionDeniedError(absl::StrCat("cannot create ", f.dir)));
    }
  } else if (!S_ISDIR(st.st_mode)) {
    return Fail(absl::InvalidArgumentError(absl::StrCat(f.dir, " is not a directory")));
  }
  nlohmann::json out = nlohmann::json::array();
  for (const stir::X509Ptr& c : all) {
    // c_rehash layout: <subject hash, 8 hex>.<n>, n counting collisions (X509_LOOKUP_hash_dir).
    const unsigned long hash = X509_subject_name_hash(c.get());
    const std::string der = stir::CertificateDer(c.get());
    std::string name, status = "added";
    for (int n = 0;; ++n) {
      name = absl::StrFormat("%s/%08lx.%d", f.dir, hash, n);
      absl::StatusOr<std::string> existing = ReadInput(name);
      if (!existing.ok()) break;  // free slot
      absl::StatusOr<std::vector<stir::X509Ptr>> ex = ReadCertificates(*existing, name);
      if (ex.ok() && stir::CertificateDer(ex->front().get()) == der) {
        status = "already present";
        break;
      }
    }
    if (status == "added") {
      if (absl::Status w = WriteFileAtomic(name, CertificatePem(c.get()), {}); !w.ok()) {
        return Fail(w);
      }
    }
    out.push_back({{"file", name},
                   {"subject", stir::NameText(X509_get_subject_name(c.get()))},
                   {"status", status}});
  }
  if (f.json) {
    PrintJson(out);
  } else {
    for (const auto& e : out) {
      std::cout << e["file"].get<std::string>() << "  " << e["status"].get<std::string>() << "  "
                << e["subject"].get<std::string>() << "\n";
    }
  }
  return kExitOk;
}

int CaDirList(const CaDirFlags& f) {
  DIR* d = ::opendir(f.dir.c_str());
  if (d == nullptr) {
    return Fail(absl::NotFoundError(absl::StrCat("cannot open the directory ", f.dir)));
  }
  std::vector<std::string> names;
  static const std::regex kHashed("^[0-9a-f]{8}\\.[0-9]+$");
  while (dirent* e = ::readdir(d)) {
    if (std::regex_match(e->d_name, kHashed)) names.push_back(e->d_name);
  }
  ::closedir(d);
  std::sort(names.begin(), names.end());
  nlohmann::json out = nlohmann::json::array();
  for (const std::string& n : names) {
    std::string path = absl::StrCat(f.dir, "/", n);
    absl::StatusOr<std::string> data = ReadInput(path);
    absl::StatusOr<std::vector<stir::X509Ptr>> certs =
        data.ok() ? ReadCertificates(*data, path)
                  : absl::StatusOr<std::vector<stir::X509Ptr>>(data.status());
    if (!certs.ok()) {
      out.push_back({{"file", n}, {"error", std::string(certs.status().message())}});
      continue;
    }
    X509* c = certs->front().get();
    const bool name_ok = absl::StrFormat("%08lx", X509_subject_name_hash(c)) == n.substr(0, 8);
    nlohmann::json j = CertSummary(c);
    j["file"] = n;
    j["hash_matches"] = name_ok;
    out.push_back(j);
  }
  if (f.json) {
    PrintJson(out);
    return kExitOk;
  }
  for (const auto& e : out) {
    if (e.contains("error")) {
      std::cout << e["file"].get<std::string>() << "  ERROR " << e["error"].get<std::string>() << "\n";
      continue;
    }
    std::cout << e["file"].get<std::string>() << "  " << e["subject"].get<std::string>()
              << "  not after " << e["not_after"].get<std::string>()
              << (e["hash_matches"].get<bool>() ? "" : "  (name does not match the subject hash)")
              << "\n";
  }
  return kExitOk;
}

template <typename T, typename F>
std::function<int()> Runner(std::shared_ptr<T> flags, F make) {
  return [flags, make]() -> int {
    if (absl::Status st = CheckOut(flags->out); !st.ok()) return Fail(st);
    auto result = make(*flags);
    if (!result.ok()) return Fail(result.status());
    return Emit(flags->out, result->pem, result->summary);
  };
}

struct Made {
  std::string pem;
  nlohmann::json summary;
};

absl::StatusOr<Made> MadeCert(absl::StatusOr<stir::X509Ptr> cert) {
  if (!cert.ok()) return cert.status();
  return Made{CertificatePem(cert->get()), CertSummary(cert->get())};
}

}  // namespace

void AddPkiCommands(CLI::App& root, Registry& registry) {
  // --- ca ---
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

  auto issue = std::make_shared<IssueFlags>();
  CLI::App* c_issue = ca->add_subcommand(
      "issue", "Issue an SP (end-entity) SHAKEN certificate from a CSR (ATIS-1000080 profile)");
  c_issue->add_option("--ca-cert", issue->ca_cert, "issuing CA certificate (PEM)")->required();
  c_issue->add_option("--ca-key", issue->ca_key, "issuing CA key: pkcs11: URI or PEM file")
      ->required();
  c_issue->add_option("--csr", issue->csr, "the SP's CSR (PEM or DER)")->required();
  c_issue->add_option("--spc", issue->spc, "expected SPC: the CSR's TNAuthList must be exactly it");
  c_issue->add_option("--crl-url", issue->crl_url, "CRL distribution point URL (CE-9)");
  c_issue->add_option("--crl-issuer", issue->crl_issuer,
                      "cRLIssuer DN (default: the issuing CA's subject)");
  c_issue->add_flag("--no-crl-issuer", issue->no_crl_issuer, "omit cRLIssuer");
  c_issue->add_option("--policy", issue->policies, "certificate policy OIDs")->allow_extra_args(false)
      ->capture_default_str();
  c_issue->add_flag("--allow-delegate", issue->allow_delegate,
                    "accept TN / TN-range entries (delegate certificate) instead of one SPC");
  AddValidityFlags(c_issue, &issue->validity, 365);
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

  // --- csr ---
  CLI::App* csr = root.add_subcommand("csr", "Certificate signing requests");
  csr->require_subcommand(1);
  auto cc = std::make_shared<CsrFlags>();
  CLI::App* c_create = csr->add_subcommand(
      "create",
      "Create a CSR signed by the token key (or a file key) carrying TNAuthList (RFC 8226) and "
      "subject C / O / CN \"SHAKEN <SPC>\"");
  c_create->add_option("--key", cc->key, "SP key: pkcs11: URI or PEM file")->required();
  c_create->add_option("--spc", cc->tn.spc, "Service Provider Code (OCN), digits/upper-case");
  c_create->add_option("--tn", cc->tn.tns, "delegate: a single TN entry, repeatable")->allow_extra_args(false);
  c_create->add_option("--tn-range", cc->tn.ranges, "delegate: START:COUNT, repeatable")->allow_extra_args(false);
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

  // --- cert ---
  CLI::App* cert = root.add_subcommand("cert", "Inspect certificates");
  cert->require_subcommand(1);
  auto show = std::make_shared<CertFlags>();
  CLI::App* c_cshow = cert->add_subcommand("show", "Human summary of each certificate in a file");
  c_cshow->add_option("file", show->in, "PEM (one or more) or DER certificate, - for stdin")
      ->required();
  c_cshow->add_flag("--json", show->json, "print JSON");
  c_cshow->footer(Examples({"shakenctl cert show sp-chain.pem"}));
  registry.push_back({c_cshow, [show] { return CertShow(*show); }});

  auto check = std::make_shared<CertFlags>();
  CLI::App* c_check = cert->add_subcommand(
      "check",
      "SHAKEN profile lint (CE-* items of ATIS-1000080 §6.4.1) as a PASS/FAIL table; exit 8 "
      "when an item fails");
  c_check->add_option("file", check->in, "certificate file; each certificate is checked")
      ->required();
  c_check->add_option("--role", check->role, "role of the first certificate")
      ->check(CLI::IsMember({"auto", "ee", "intermediate", "root"}))
      ->capture_default_str();
  c_check->add_option("--at", check->at, "check validity at this Unix time (default now)");
  c_check->add_flag("--json", check->json, "print JSON");
  c_check->footer(Examples({"shakenctl cert check sp.pem", "shakenctl cert check --json root.pem"}));
  registry.push_back({c_check, [check] { return CertCheck(*check); }});

  // --- ca-dir ---
  CLI::App* cadir = root.add_subcommand(
      "ca-dir", "Trust directories of CA certificates under OpenSSL subject-hash names");
  cadir->require_subcommand(1);
  auto da = std::make_shared<CaDirFlags>();
  CLI::App* d_add = cadir->add_subcommand(
      "add", "Add CA certificates as <hash>.N (c_rehash layout, .1, .2 on hash collisions)");
  d_add->add_option("--dir", da->dir, "the trust directory (created if missing)")->required();
  d_add->add_option("certs", da->certs, "certificate files")->required();
  d_add->add_flag("--allow-non-ca", da->allow_non_ca, "also add non-CA certificates");
  d_add->add_flag("--json", da->json, "print JSON");
  d_add->footer(Examples({"shakenctl ca-dir add --dir /etc/shaken/sti-ca root.pem",
                          "shakenctl passport verify --ca-dir /etc/shaken/sti-ca ..."}));
  registry.push_back({d_add, [da] { return CaDirAdd(*da); }});
  auto dl = std::make_shared<CaDirFlags>();
  CLI::App* d_list = cadir->add_subcommand("list", "List a trust directory");
  d_list->add_option("--dir", dl->dir, "the trust directory")->required();
  d_list->add_flag("--json", dl->json, "print JSON");
  d_list->footer(Examples({"shakenctl ca-dir list --dir /etc/shaken/sti-ca"}));
  registry.push_back({d_list, [dl] { return CaDirList(*dl); }});
}

}  // namespace shaken::cli
