// fuzz_crl: a CRL distribution point's response body as the CRL checker ingests it: ParseCrls
// (PEM blocks, else one DER CRL, through OpenSSL), then what the checker reads before trusting
// it (nextUpdate, the revoked entries). The signature is OpenSSL's to check and needs a key a
// fuzzer cannot forge.
#include <openssl/x509.h>

#include <cstddef>
#include <cstdint>
#include <string_view>

#include "stir/openssl_util.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  auto crls = shaken::stir::ParseCrls(body);
  if (!crls.ok()) {
    FUZZ_CHECK(!crls.status().message().empty());
    return 0;
  }
  FUZZ_CHECK(!crls->empty());
  for (const auto& crl : *crls) {
    FUZZ_CHECK(crl != nullptr);
    (void)shaken::stir::Asn1TimeToTime(X509_CRL_get0_nextUpdate(crl.get()));
    (void)shaken::stir::Asn1TimeToTime(X509_CRL_get0_lastUpdate(crl.get()));
    STACK_OF(X509_REVOKED)* revoked = X509_CRL_get_REVOKED(crl.get());
    for (int i = 0; i < sk_X509_REVOKED_num(revoked); ++i) {
      (void)X509_REVOKED_get0_serialNumber(sk_X509_REVOKED_value(revoked, i));
    }
  }
  return 0;
}
