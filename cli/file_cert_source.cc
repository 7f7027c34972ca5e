#include "cli/file_cert_source.h"

#include "absl/strings/str_cat.h"
#include "cli/x509.h"

namespace shaken::cli {

stir::CertificateResult LeafOnly(std::string_view pem) {
  absl::StatusOr<std::vector<stir::X509Ptr>> certs = stir::ParsePemChain(pem);
  if (!certs.ok()) {
    return stir::CertificateResult::Failure(stir::Reason::kFetchNotPem,
                                            std::string(certs.status().message()));
  }
  X509* leaf = (*certs)[0].get();
  EVP_PKEY* key = X509_get0_pubkey(leaf);
  if (key == nullptr || !stir::IsP256Key(key)) {
    return stir::CertificateResult::Failure(stir::Reason::kCertKeyType,
                                            "the signing certificate's key is not EC P-256");
  }
  absl::StatusOr<stir::CertificateInfo> info = stir::DescribeCertificate(leaf);
  if (!info.ok()) {
    return stir::CertificateResult::Failure(stir::Reason::kCertInvalid,
                                            std::string(info.status().message()));
  }
  auto verified = std::make_shared<stir::VerifiedCertificate>();
  verified->public_key.reset(X509_get_pubkey(leaf));
  verified->info = *std::move(info);
  verified->info.profile_warnings.push_back("no path check: chain, validity and profile unchecked");
  verified->valid_from = absl::InfinitePast();
  verified->valid_until = absl::InfiniteFuture();
  stir::CertificateResult out;
  out.cert = std::move(verified);
  return out;
}

stir::CertificateResult ChainCertificateSource::Lookup(std::string_view x5u, absl::Time now) {
  std::string fetched;
  std::string_view pem = pem_;
  if (pem_.empty()) {
    if (fetcher_ == nullptr) {
      return stir::CertificateResult::Failure(stir::Reason::kFetchFailed,
                                              "no certificate file and no fetcher");
    }
    stir::FetchResult r = fetcher_->Fetch(x5u);
    if (!r.ok()) return stir::CertificateResult::Failure(r.reason, std::move(r.detail));
    fetched = std::move(r.body);
    pem = fetched;
  }
  if (validator_ == nullptr) return LeafOnly(pem);
  return validator_->ValidatePem(pem, now);
}

}  // namespace shaken::cli
