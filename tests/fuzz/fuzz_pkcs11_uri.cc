// fuzz_pkcs11_uri: RFC 7512 PKCS#11 URIs (Pkcs11Uri::Parse, p11-kit underneath) as they come from
// the configuration, with and without pin-value allowed; every accessor of a parsed URI. A URI
// parsed without allow_pin_value never keeps one; the redacted form never holds a pin-value (as
// p11-kit reads it) and parses again to itself. No PIN is ever read.
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

// HoldsPinValue tells whether `uri` kept a pin-value (p11-kit's reading of the URI, not a text
// search: "pin-value=" may appear inside another attribute's value).
bool HoldsPinValue(const shaken::hsm::Pkcs11Uri& uri) {
  auto pin = uri.PinFromUri();
  return pin.ok() && pin->Describe() == "value";
}

// CheckRedacted: the redacted form holds no pin-value even for a parser that would accept one,
// and it is a fixed point (what logs show is the URI that was used, minus the PIN).
void CheckRedacted(const shaken::hsm::Pkcs11Uri& uri) {
  auto again = shaken::hsm::Pkcs11Uri::Parse(uri.redacted(), {.allow_pin_value = true});
  FUZZ_CHECK(again.ok());
  FUZZ_CHECK(!HoldsPinValue(*again));
  FUZZ_CHECK(again->redacted() == uri.redacted());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using shaken::hsm::Pkcs11Uri;
  const absl::string_view text(reinterpret_cast<const char*>(data), size);
  auto strict = Pkcs11Uri::Parse(text);
  if (strict.ok()) {
    Exercise(*strict);
    FUZZ_CHECK(!HoldsPinValue(*strict));
    CheckRedacted(*strict);
  } else {
    FUZZ_CHECK(!strict.status().message().empty());
  }
  auto lab = Pkcs11Uri::Parse(text, {.allow_pin_value = true});
  if (lab.ok()) {
    Exercise(*lab);
    CheckRedacted(*lab);
  } else {
    FUZZ_CHECK(!lab.status().message().empty());
  }
  return 0;
}
