#include "hsm/pkcs11_uri.h"

#include <openssl/crypto.h>
#include <p11-kit/uri.h>

#include <cstdlib>
#include <cstring>

#include "absl/status/status.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace shaken::hsm {

struct Pkcs11Uri::Parsed {
  ~Parsed() {
    if (uri) p11_kit_uri_free(uri);
  }
  P11KitUri* uri = nullptr;
};

namespace {

// Space-padded CK_TOKEN_INFO field (PKCS#11 v2.40 §3.2) to a string without the padding.
std::string Unpad(const unsigned char* p, size_t n) {
  while (n > 0 && (p[n - 1] == ' ' || p[n - 1] == '\0')) --n;
  return std::string(reinterpret_cast<const char*>(p), n);
}

std::optional<std::string> AttributeBytes(P11KitUri* uri, CK_ATTRIBUTE_TYPE type) {
  CK_ATTRIBUTE* a = p11_kit_uri_get_attribute(uri, type);
  if (a == nullptr || a->ulValueLen == CK_UNAVAILABLE_INFORMATION) return std::nullopt;
  return std::string(static_cast<const char*>(a->pValue), a->ulValueLen);
}

}  // namespace

absl::StatusOr<Pkcs11Uri> Pkcs11Uri::Parse(absl::string_view uri, const ParseOptions& options) {
  auto parsed = std::make_shared<Parsed>();
  parsed->uri = p11_kit_uri_new();
  if (parsed->uri == nullptr) return absl::ResourceExhaustedError("p11_kit_uri_new failed");
  std::string text(uri);
  int rc = p11_kit_uri_parse(text.c_str(), P11_KIT_URI_FOR_ANY, parsed->uri);
  OPENSSL_cleanse(text.data(), text.size());  // the text may hold a pin-value
  if (rc != P11_KIT_URI_OK) {
    // The input may contain a PIN: name only its scheme-independent failure, not the text.
    return absl::InvalidArgumentError(
        absl::StrCat("not a valid PKCS#11 URI (RFC 7512): ", p11_kit_uri_message(rc)));
  }
  if (p11_kit_uri_any_unrecognized(parsed->uri)) {
    return absl::InvalidArgumentError("PKCS#11 URI has an unrecognized path attribute");
  }

  Pkcs11Uri out;
  const char* pin_value = p11_kit_uri_get_pin_value(parsed->uri);
  bool had_pin_value = pin_value != nullptr;
  if (had_pin_value) {
    if (options.allow_pin_value) out.pin_value_ = PinSource::FromValue(pin_value);
    // p11-kit owns a heap copy of the PIN; wipe it before p11-kit frees it.
    OPENSSL_cleanse(const_cast<char*>(pin_value), std::strlen(pin_value));
    p11_kit_uri_set_pin_value(parsed->uri, nullptr);
  }
  char* formatted = nullptr;
  if (p11_kit_uri_format(parsed->uri, P11_KIT_URI_FOR_ANY, &formatted) == P11_KIT_URI_OK &&
      formatted != nullptr) {
    out.redacted_ = formatted;
    free(formatted);
  } else {
    out.redacted_ = "pkcs11:(unformattable)";
  }
  if (had_pin_value && !options.allow_pin_value) {
    return absl::InvalidArgumentError(
        absl::StrCat(out.redacted_, ": pin-value is not allowed in a PKCS#11 URI here; use "
                                    "pin-source or a PIN file / environment variable"));
  }

  if (const char* ps = p11_kit_uri_get_pin_source(parsed->uri)) out.pin_source_ = ps;
  if (const char* mp = p11_kit_uri_get_module_path(parsed->uri)) out.module_path_ = mp;
  if (CK_TOKEN_INFO* ti = p11_kit_uri_get_token_info(parsed->uri)) {
    out.token_label_ = Unpad(ti->label, sizeof(ti->label));
  }
  out.object_label_ = AttributeBytes(parsed->uri, CKA_LABEL);
  out.object_id_ = AttributeBytes(parsed->uri, CKA_ID);
  if (auto cls = AttributeBytes(parsed->uri, CKA_CLASS); cls && cls->size() == sizeof(CK_OBJECT_CLASS)) {
    CK_OBJECT_CLASS c;
    std::memcpy(&c, cls->data(), sizeof(c));
    out.object_class_ = c;
  }
  out.parsed_ = std::move(parsed);
  return out;
}

bool Pkcs11Uri::MatchesToken(const CK_TOKEN_INFO& info) const {
  return p11_kit_uri_match_token_info(parsed_->uri, &info) == 1;
}

std::optional<CK_SLOT_ID> Pkcs11Uri::slot_id() const {
  CK_SLOT_ID id = p11_kit_uri_get_slot_id(parsed_->uri);
  if (id == static_cast<CK_SLOT_ID>(-1)) return std::nullopt;
  return id;
}

absl::StatusOr<PinSource> Pkcs11Uri::PinFromUri() const {
  if (pin_value_) return *pin_value_;
  if (pin_source_) {
    absl::StatusOr<PinSource> pin = PinSource::Parse(*pin_source_);
    if (!pin.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat(redacted_, ": pin-source ", pin.status().message()));
    }
    return pin;
  }
  return absl::NotFoundError(absl::StrCat(redacted_, ": names no PIN (pin-source)"));
}

}  // namespace shaken::hsm
