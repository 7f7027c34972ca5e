// fuzz_identity_header: a SIP Identity header value as a verifier receives it: ParseIdentityHeader,
// then, as the verifier goes on, the PASSporT of the digest (DecodePassport, ExtractClaims).
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "stir/identity_header.h"
#include "stir/passport.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view value(reinterpret_cast<const char*>(data), size);
  auto parsed = shaken::stir::ParseIdentityHeader(value);
  if (!parsed.ok()) {
    FUZZ_CHECK(!parsed.status().message().empty());
    return 0;
  }
  FUZZ_CHECK(size <= shaken::stir::kMaxIdentityHeaderBytes);
  FUZZ_CHECK(parsed->digest.size() <= size);
  auto decoded = shaken::stir::DecodePassport(parsed->digest);
  if (!decoded.ok()) return 0;
  (void)shaken::stir::ExtractClaims(decoded->payload, parsed->ppt.value_or("shaken"));
  return 0;
}
