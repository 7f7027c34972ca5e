// fixed_cert_source.h: a CertificateSource that answers from a table set up by the test, for
// unit tests of the verifier's own checks. The real source (HTTPS fetch, chain validation,
// cache) is exercised by the x5u and end-to-end tests.
#ifndef SHAKEN_TESTS_TESTING_FIXED_CERT_SOURCE_H_
#define SHAKEN_TESTS_TESTING_FIXED_CERT_SOURCE_H_

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "stir/cert_source.h"
#include "stir/openssl_util.h"

namespace shaken::testing {

class FixedCertificateSource : public stir::CertificateSource {
 public:
  // Serve `key` (a public or private P-256 key; the public half is used) for `x5u`.
  void AddKey(const std::string& x5u, const EVP_PKEY* key, std::string spc = "709J") {
    AddKeyWithTnAuthList(x5u, key, {{stir::TnAuthEntry::Kind::kSpc, std::move(spc), 0}});
  }
  // Serve `key` for `x5u` under a certificate whose TNAuthList is `tn_auth_list` (e.g. the TNs
  // and ranges of a delegate certificate, RFC 9060); its first SPC entry, if any, is the SPC.
  void AddKeyWithTnAuthList(const std::string& x5u, const EVP_PKEY* key,
                            std::vector<stir::TnAuthEntry> tn_auth_list) {
    std::string spc;
    for (const stir::TnAuthEntry& e : tn_auth_list) {
      if (e.kind == stir::TnAuthEntry::Kind::kSpc) {
        spc = e.value;
        break;
      }
    }
    auto der = stir::PublicKeyToDer(key);
    const unsigned char* p = reinterpret_cast<const unsigned char*>(der->data());
    auto cert = std::make_shared<stir::VerifiedCertificate>();
    cert->public_key.reset(d2i_PUBKEY(nullptr, &p, static_cast<long>(der->size())));
    cert->info.subject = "CN=SHAKEN " + spc;
    cert->info.spc = spc;
    cert->info.tn_auth_list = std::move(tn_auth_list);
    cert->info.serial_hex = "01";
    cert->info.not_after = absl::InfiniteFuture();
    cert->valid_from = absl::InfinitePast();
    cert->valid_until = absl::InfiniteFuture();
    entries_[x5u] = stir::CertificateResult{cert, stir::Reason::kPassed, ""};
  }
  void AddFailure(const std::string& x5u, stir::Reason reason, std::string detail) {
    entries_[x5u] = stir::CertificateResult::Failure(reason, std::move(detail));
  }

  stir::CertificateResult Lookup(std::string_view x5u, absl::Time now) override {
    ++lookups_;
    auto it = entries_.find(std::string(x5u));
    if (it == entries_.end()) {
      return stir::CertificateResult::Failure(stir::Reason::kFetchHttpStatus, "HTTP 404");
    }
    return it->second;
  }

  int lookups() const { return lookups_.load(); }

 private:
  std::map<std::string, stir::CertificateResult> entries_;
  std::atomic<int> lookups_{0};
};

}  // namespace shaken::testing

#endif  // SHAKEN_TESTS_TESTING_FIXED_CERT_SOURCE_H_
