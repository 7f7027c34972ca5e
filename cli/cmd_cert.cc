// cmd_cert.cc: `shakenctl cert show | check`: describe certificates, and lint them against the
// SHAKEN profile (cli/lint.h, over stir's one profile table).
#include "cli/lint.h"
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include <iostream>
#include <memory>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "cli/commands.h"
#include "cli/pki_common.h"
#include "cli/x509.h"
#include "stir/absl_compat.h"
#include "stir/cert_profile.h"
#include "stir/status_macros.h"
#include "stir/tn_auth_list.h"

namespace shaken::cli {
namespace {

using namespace pki;  // NOLINT: the PKI commands' shared flags and helpers

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

}  // namespace

void AddCertCommands(CLI::App& root, Registry& registry) {
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
}

}  // namespace shaken::cli
