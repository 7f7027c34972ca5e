// file_cert_source.h: the CertificateSource of `passport verify --cert FILE` and
// `--no-path-check`: the chain comes from a file (or from a fetcher), never from the network
// when a file is given, and is validated with stir::CertValidator (or, without a path check, only
// parsed so that the signature can be checked with the leaf's key).
#ifndef SHAKEN_CLI_FILE_CERT_SOURCE_H_
#define SHAKEN_CLI_FILE_CERT_SOURCE_H_

#include <memory>
#include <string>
#include <string_view>

#include "stir/cert_source.h"
#include "stir/cert_validator.h"
#include "stir/x5u_fetcher.h"

namespace shaken::cli {

// ChainCertificateSource answers every Lookup with one PEM chain: `pem` when set, otherwise the
// body `fetcher` returns for the x5u. With a `validator` the chain is validated (ValidatePem at
// `now`); without one (no path check) only the leaf is parsed: an EC P-256 key is required and
// its TNAuthList is read, but neither trust, validity nor profile is checked. Thread-safe.
class ChainCertificateSource final : public stir::CertificateSource {
 public:
  ChainCertificateSource(std::string pem, std::shared_ptr<const stir::CertificateFetcher> fetcher,
                         std::shared_ptr<const stir::CertValidator> validator)
      : pem_(std::move(pem)), fetcher_(std::move(fetcher)), validator_(std::move(validator)) {}

  stir::CertificateResult Lookup(std::string_view x5u, absl::Time now) override;

 private:
  const std::string pem_;
  const std::shared_ptr<const stir::CertificateFetcher> fetcher_;
  const std::shared_ptr<const stir::CertValidator> validator_;
};

// LeafOnly parses the first certificate of `pem` without any chain or profile check.
stir::CertificateResult LeafOnly(std::string_view pem);

}  // namespace shaken::cli

#endif  // SHAKEN_CLI_FILE_CERT_SOURCE_H_
