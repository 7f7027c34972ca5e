// fuzz_pkcs11_uri: RFC 7512 PKCS#11 URIs (Pkcs11Uri::Parse, p11-kit underneath) as they come from
// the configuration, with and without pin-value allowed; every accessor of a parsed URI. The
// redacted form must never hold the pin-value and must parse again. No PIN is ever read.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>
#include "absl/strings/string_view.h"

#include "hsm/pkcs11_uri.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

void Exercise(const shaken::hsm::Pkcs11Uri& uri) {
  CK_TOKEN_INFO info;
  std::memset(&info, ' ', sizeof(info));
  std::memcpy(info.label, "shaken", 6);
  std::memcpy(info.manufacturerID, "SoftHSM project", 15);
  std::memcpy(info.model, "SoftHSM v2", 10);
  std::memcpy(info.serialNumber, "0123456789abcdef", 16);
  (void)uri.MatchesToken(info);
  (void)uri.slot_id();
  (void)uri.object_label();
  (void)uri.object_id();
  (void)uri.object_class();
  (void)uri.token_label();
  (void)uri.module_path();
  auto pin = uri.PinFromUri();
  if (pin.ok()) (void)pin->Describe();  // never Read(): that would open a file
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const absl::string_view text(reinterpret_cast<const char*>(data), size);
  auto strict = shaken::hsm::Pkcs11Uri::Parse(text);
  if (strict.ok()) {
    Exercise(*strict);
    FUZZ_CHECK(strict->redacted().find("pin-value") == std::string::npos);
    auto again = shaken::hsm::Pkcs11Uri::Parse(strict->redacted());
    FUZZ_CHECK(again.ok());
    FUZZ_CHECK(again->redacted() == strict->redacted());
  } else {
    FUZZ_CHECK(!strict.status().message().empty());
  }
  auto lab = shaken::hsm::Pkcs11Uri::Parse(text, {.allow_pin_value = true});
  if (lab.ok()) {
    Exercise(*lab);
    FUZZ_CHECK(lab->redacted().find("pin-value") == std::string::npos);
  } else {
    FUZZ_CHECK(lab.status().message().find("pin-value=") == std::string::npos);
  }
  return 0;
}
