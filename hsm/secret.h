// secret.h: PINs and where they come from. A PIN is never logged, never put on a command line,
// and its bytes are wiped (OPENSSL_cleanse) as soon as C_Login has seen them.
#ifndef SHAKEN_HSM_SECRET_H_
#define SHAKEN_HSM_SECRET_H_

#include <memory>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace shaken::hsm {

// SecretString holds a secret (a PIN) in a buffer that is wiped when the object dies or is
// assigned over. Move-only; the buffer never reallocates after construction, so no stale copy is
// left in the heap. Not thread-safe. It has no operator<< on purpose.
class SecretString {
 public:
  SecretString() = default;
  explicit SecretString(absl::string_view value);
  SecretString(SecretString&& other) noexcept;
  SecretString& operator=(SecretString&& other) noexcept;
  SecretString(const SecretString&) = delete;
  SecretString& operator=(const SecretString&) = delete;
  ~SecretString();

  // view is valid until this object is destroyed or moved from.
  absl::string_view view() const { return absl::string_view(data_.get(), size_); }
  bool empty() const { return size_ == 0; }

 private:
  void Wipe();
  std::unique_ptr<char[]> data_;
  size_t size_ = 0;
};

// PinSource says where the user PIN of a token comes from. It is read at every login (start-up,
// and again after the token was lost and came back), and the copy read is wiped after C_Login.
// Copyable and thread-safe (const methods only).
class PinSource {
 public:
  // FromFile reads the PIN from a file (trailing CR/LF removed). The file should be mode 0400/0600
  // and owned by the daemon's user; Read fails with NOT_FOUND/PERMISSION_DENIED/INVALID_ARGUMENT
  // if it is missing, unreadable, empty or longer than 256 bytes.
  static PinSource FromFile(std::string path);
  // FromEnv reads the PIN from an environment variable (a container secret exposed as one; a
  // mounted file is the better choice). The first Read in the process takes the value, overwrites
  // it and unsets the variable, so that /proc/<pid>/environ and child processes never show it;
  // later Reads (of any PinSource naming that variable) use the value taken. Call the first Read
  // before other threads use getenv/setenv (shakend: at start-up). Read fails with NOT_FOUND
  // when it is unset or empty.
  static PinSource FromEnv(std::string variable);
  // FromValue holds the PIN itself. Only for tests and for a URI pin-value when explicitly
  // allowed (Pkcs11Uri::ParseOptions::allow_pin_value). The value is kept, wiped on destruction.
  static PinSource FromValue(absl::string_view pin);

  // Parse is the one reader of a secret's source as written in configuration, on a command line
  // or in a PKCS#11 URI's pin-source attribute (RFC 7512 §2.4). It accepts:
  //   file:/path, file:///path   the secret is in that file (FromFile)
  //   env:VARIABLE               the secret is in that environment variable (FromEnv)
  //   /path                      a bare absolute path: a file, as p11-kit reads pin-source
  // Anything else is INVALID_ARGUMENT: a bare "file:" or "env:" (no file, no variable), a
  // file: URI naming a host, a relative name, or the secret itself typed where its source
  // belongs. The message starts "must be file:/path, env:VARIABLE or an absolute path" so a
  // caller can prefix the setting it read (e.g. "pkcs11.pin_source ") and never repeats `spec`,
  // which may be the secret.
  static absl::StatusOr<PinSource> Parse(std::string_view spec);

  // Read returns the PIN. Errors never contain the PIN.
  absl::StatusOr<SecretString> Read() const;

  // Describe names the source without its secret ("file:/etc/shaken/pin", "env:SHAKEN_PIN",
  // "value").
  std::string Describe() const;

  // Two sources are equal when they name the same file or variable, or hold the same value
  // (compared in constant time). For configuration reloads that tell what changed.
  friend bool operator==(const PinSource& a, const PinSource& b);

 private:
  enum class Kind { kFile, kEnv, kValue };
  PinSource(Kind kind, std::string where) : kind_(kind), where_(std::move(where)) {}
  Kind kind_;
  std::string where_;
  std::shared_ptr<const SecretString> value_;
};

}  // namespace shaken::hsm

#endif  // SHAKEN_HSM_SECRET_H_
