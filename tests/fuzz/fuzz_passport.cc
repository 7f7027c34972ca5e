// fuzz_passport: a PASSporT JWS (compact serialization) decoded and its claims validated as the
// verifier does (DecodePassport, ExtractClaims for the header's ppt and for "shaken"), then the
// typed claims re-serialized canonically.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "stir/json.h"
#include "stir/passport.h"
#include "stir/tn.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

void CheckClaims(const shaken::stir::Json& payload, std::string_view ppt) {
  auto claims = shaken::stir::ExtractClaims(payload, ppt);
  if (!claims.ok()) {
    FUZZ_CHECK(!claims.status().message().empty());
    return;
  }
  if (ppt != "shaken") return;
  // Claims accepted for SHAKEN are what a signer would produce: canonical TNs, attest A|B|C, a
  // UUID origid, and they serialize canonically.
  FUZZ_CHECK(claims->orig_tn.has_value() && shaken::stir::IsCanonicalTn(*claims->orig_tn));
  FUZZ_CHECK(!claims->dest_tns.empty());
  for (const std::string& tn : claims->dest_tns) FUZZ_CHECK(shaken::stir::IsCanonicalTn(tn));
  FUZZ_CHECK(claims->attest == "A" || claims->attest == "B" || claims->attest == "C");
  FUZZ_CHECK(claims->origid.has_value() && shaken::stir::IsUuid(*claims->origid));
  FUZZ_CHECK(claims->iat.has_value() && *claims->iat >= 0);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view jws(reinterpret_cast<const char*>(data), size);
  auto decoded = shaken::stir::DecodePassport(jws);
  if (!decoded.ok()) {
    FUZZ_CHECK(!decoded.status().message().empty());
    return 0;
  }
  FUZZ_CHECK(size <= shaken::stir::kMaxPassportBytes);
  FUZZ_CHECK(decoded->payload.is_object());
  FUZZ_CHECK(jws.substr(0, decoded->signing_input.size()) == decoded->signing_input);
  CheckClaims(decoded->payload, decoded->header.ppt.value_or("shaken"));
  if (decoded->header.ppt != "shaken") CheckClaims(decoded->payload, "shaken");
  std::string canonical;
  (void)shaken::stir::AppendCanonicalJson(decoded->payload, &canonical);
  return 0;
}
