// pkcs11_uri.h: RFC 7512 PKCS#11 URIs ("pkcs11:token=shaken;object=sp-key-1;type=private"),
// parsed with p11-kit's URI API so that percent-encoding and attribute rules are p11-kit's.
#ifndef SHAKEN_HSM_PKCS11_URI_H_
#define SHAKEN_HSM_PKCS11_URI_H_

#include <p11-kit/pkcs11.h>

#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "hsm/secret.h"

namespace shaken::hsm {

// Pkcs11Uri is a parsed RFC 7512 URI naming a token and, optionally, an object on it.
// Immutable after Parse; copies share the parsed form. Thread-safe.
class Pkcs11Uri {
 public:
  struct ParseOptions {
    // allow_pin_value accepts `pin-value` (RFC 7512 §2.3). Off by default: a PIN in a URI ends up
    // in configs, shell history and logs. Tests turn it on.
    bool allow_pin_value = false;
  };

  // Parse fails with INVALID_ARGUMENT when `uri` is not a pkcs11: URI, has an unknown path
  // attribute, or carries pin-value while not allowed. Messages never contain the pin-value.
  static absl::StatusOr<Pkcs11Uri> Parse(absl::string_view uri, const ParseOptions& options);
  static absl::StatusOr<Pkcs11Uri> Parse(absl::string_view uri) { return Parse(uri, {}); }

  // redacted is the URI as p11-kit formats it, without pin-value: the only form that may appear
  // in messages and logs.
  const std::string& redacted() const { return redacted_; }

  // MatchesToken tells whether the token attributes of the URI (token, manufacturer, serial,
  // model) match `info`. Attributes the URI leaves out match anything.
  bool MatchesToken(const CK_TOKEN_INFO& info) const;

  // slot_id is the `slot-id` attribute when present.
  std::optional<CK_SLOT_ID> slot_id() const;

  // Object attributes: `object` (CKA_LABEL), `id` (CKA_ID, raw bytes), `type` (CKA_CLASS).
  const std::optional<std::string>& object_label() const { return object_label_; }
  const std::optional<std::string>& object_id() const { return object_id_; }
  const std::optional<CK_OBJECT_CLASS>& object_class() const { return object_class_; }
  // token_label is the `token` attribute, or empty.
  const std::string& token_label() const { return token_label_; }

  // pin_source is the `pin-source` query attribute (RFC 7512 §2.3), e.g. "file:/etc/pin".
  const std::optional<std::string>& pin_source() const { return pin_source_; }
  // module_path is the `module-path` query attribute (RFC 7512 §2.3).
  const std::optional<std::string>& module_path() const { return module_path_; }

  // PinFromUri returns the PIN source the URI names: pin-value (only if it was allowed at parse
  // time) or pin-source (read by PinSource::Parse: file:/path, env:VARIABLE or an absolute path;
  // INVALID_ARGUMENT otherwise). NOT_FOUND when the URI names neither.
  absl::StatusOr<PinSource> PinFromUri() const;

 private:
  struct Parsed;
  std::shared_ptr<const Parsed> parsed_;
  std::string redacted_;
  std::string token_label_;
  std::optional<std::string> object_label_;
  std::optional<std::string> object_id_;
  std::optional<CK_OBJECT_CLASS> object_class_;
  std::optional<std::string> pin_source_;
  std::optional<std::string> module_path_;
  std::optional<PinSource> pin_value_;
};

}  // namespace shaken::hsm

#endif  // SHAKEN_HSM_PKCS11_URI_H_
