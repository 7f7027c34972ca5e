#include "stir/ca_list.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <set>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "stir/openssl_util.h"
#include "stir/pem_chain.h"
#include "stir/status_macros.h"

namespace shaken::stir {

absl::StatusOr<CaList> ParseCaList(std::string_view body, absl::Time now,
                                   const CaListLimits& limits) {
  absl::StatusOr<std::vector<X509Ptr>> certs =
      ParsePemChain(body, limits.max_certs, limits.max_bytes);
  if (!certs.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "the CA list is not a PEM bundle of at most ", limits.max_certs, " certificates and ",
        limits.max_bytes, " bytes: ", certs.status().message()));
  }
  CaList out;
  std::set<std::string> seen;
  for (size_t i = 0; i < certs->size(); ++i) {
    X509* cert = (*certs)[i].get();
    const std::string subject = NameText(X509_get_subject_name(cert));
    const std::string which = absl::StrCat("certificate ", i + 1, " (", subject, ")");
    // X509_check_ca also caches the extensions; 1: a CA by basicConstraints (keyUsage, when
    // present, allowing keyCertSign).
    if (X509_check_ca(cert) != 1 || (X509_get_extension_flags(cert) & EXFLAG_BCONS) == 0) {
      return absl::InvalidArgumentError(
          absl::StrCat("the CA list holds ", which, ", which is not a CA certificate "
                       "(basicConstraints cA and keyCertSign): the list is refused"));
    }
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    if (X509_digest(cert, EVP_sha256(), md, &md_len) != 1) {
      return OpenSslError(absl::StatusCode::kInternal, "X509_digest");
    }
    std::string fingerprint =
        absl::BytesToHexString(absl::string_view(reinterpret_cast<const char*>(md), md_len));
    if (!seen.insert(fingerprint).second) continue;
    const absl::Time not_before = Asn1TimeToTime(X509_get0_notBefore(cert));
    const absl::Time not_after = Asn1TimeToTime(X509_get0_notAfter(cert));
    if (now < not_before || now > not_after) {
      out.dropped.push_back(
          absl::StrCat(subject, ": ", now < not_before ? "not yet valid" : "expired"));
      continue;
    }
    BIO* bio = BIO_new(BIO_s_mem());
    if (bio == nullptr || PEM_write_bio_X509(bio, cert) != 1) {
      BIO_free(bio);
      return OpenSslError(absl::StatusCode::kInternal, "PEM_write_bio_X509");
    }
    char* data = nullptr;
    const long n = BIO_get_mem_data(bio, &data);
    out.pem.append(data, static_cast<size_t>(n));
    BIO_free(bio);
    out.fingerprints.push_back(std::move(fingerprint));
    out.subjects.push_back(subject);
  }
  if (out.fingerprints.empty()) {
    return absl::InvalidArgumentError(
        "the CA list holds no certificate valid now: the list is refused");
  }
  return out;
}

}  // namespace shaken::stir
