// cmd_ca_dir.cc: `shakenctl ca-dir add | list`: trust directories of CA certificates under
// OpenSSL subject-hash names (the c_rehash layout that CertValidatorOptions::ca_dir reads).
#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <regex>

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

}  // namespace

void AddCaDirCommands(CLI::App& root, Registry& registry) {
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
