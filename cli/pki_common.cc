#include "cli/pki_common.h"

#include <openssl/err.h>

#include <iostream>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "stir/absl_compat.h"
#include "stir/status_macros.h"
#include "stir/tn.h"
#include "stir/tn_auth_list.h"

namespace shaken::cli::pki {

std::string TimeText(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%SZ", t, absl::UTCTimeZone());
}


void AddOutFlags(CLI::App* app, OutFlags* f, const char* what) {
  app->add_option("--out,-o", f->out, std::string(what) + " (default: stdout)");
  app->add_flag("--force", f->force, "replace an existing output file");
  app->add_flag("--json", f->json, "print JSON (the PEM is in the \"pem\" member)");
}


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


void AddTnAuthFlags(CLI::App* app, TnAuthFlags* f, const std::string& role) {
  const std::string prefix = role.empty() ? "" : role + ": ";
  app->add_option("--spc", f->spc, prefix + "Service Provider Code (OCN), digits/upper-case");
  app->add_option("--tn", f->tns, prefix + "a single TN entry (delegate), repeatable")
      ->allow_extra_args(false);
  app->add_option("--tn-range", f->ranges, prefix + "START:COUNT (delegate), repeatable")
      ->allow_extra_args(false);
}

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


absl::StatusOr<Made> MadeCert(absl::StatusOr<stir::X509Ptr> cert) {
  if (!cert.ok()) return cert.status();
  return Made{CertificatePem(cert->get()), CertSummary(cert->get())};
}

}  // namespace shaken::cli::pki
