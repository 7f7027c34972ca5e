// fuzz_x5u_chain: an x5u response body as the verifier ingests it: ParsePemChain (PEM blocks,
// DER X.509 through OpenSSL), then each certificate described as the profile checks read it
// (names, validity, TNAuthList DER, certificate policies) and its TNAuthList matched against TNs.
// No trust anchor: chain validation is OpenSSL's and needs signatures a fuzzer cannot forge.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "stir/cert_validator.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view body(reinterpret_cast<const char*>(data), size);
  auto chain = shaken::stir::ParsePemChain(body, /*max_certs=*/8, /*max_bytes=*/64 * 1024);
  if (!chain.ok()) {
    FUZZ_CHECK(!chain.status().message().empty());
    return 0;
  }
  FUZZ_CHECK(!chain->empty() && chain->size() <= 8);
  for (const auto& cert : *chain) {
    FUZZ_CHECK(cert != nullptr);
    auto info = shaken::stir::DescribeCertificate(cert.get());
    if (!info.ok()) continue;
    (void)shaken::stir::TnAuthListHasTns(info->tn_auth_list);
    (void)shaken::stir::TnAuthListCovers(info->tn_auth_list, "12155550121");
  }
  return 0;
}
