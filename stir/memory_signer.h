// memory_signer.h: a Signer over a P-256 private key held in process memory (OpenSSL). For
// tests, tools and labs, and for carriers who sign with a software key; production keys belong
// in a token (hsm/).
#ifndef SHAKEN_STIR_MEMORY_SIGNER_H_
#define SHAKEN_STIR_MEMORY_SIGNER_H_

#include <memory>
#include <string_view>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "stir/openssl_util.h"
#include "stir/signer.h"

namespace shaken::stir {

// MemorySigner signs with an in-memory EC P-256 key. Thread-safe.
class MemorySigner final : public Signer {
 public:
  // FromPem parses a PEM private key (encrypted ones with `passphrase`, see ReadPrivateKeyPem);
  // INVALID_ARGUMENT unless it is EC P-256.
  static absl::StatusOr<std::unique_ptr<MemorySigner>> FromPem(
      std::string_view pem, std::optional<std::string_view> passphrase = {});
  // FromKey takes ownership of an EC P-256 key.
  static absl::StatusOr<std::unique_ptr<MemorySigner>> FromKey(EvpPkeyPtr key);
  // Generate makes a fresh P-256 key (for tests and demos).
  static absl::StatusOr<std::unique_ptr<MemorySigner>> Generate();

  absl::StatusOr<Es256Signature> SignDigest(const Sha256Digest& digest,
                                            absl::Time deadline) const override;

  // key returns the key pair (e.g. to derive the public key or issue a test certificate).
  const EVP_PKEY* key() const { return key_.get(); }

 private:
  explicit MemorySigner(EvpPkeyPtr key) : key_(std::move(key)) {}
  EvpPkeyPtr key_;
  // Initialised signing contexts, reused across calls (an EVP_PKEY_CTX is not thread-safe, and
  // initialising one costs a sixth of a P-256 signature). Grows to the number of threads that
  // sign at once.
  mutable absl::Mutex mu_;
  mutable std::vector<EvpPkeyCtxPtr> idle_ ABSL_GUARDED_BY(mu_);
};

}  // namespace shaken::stir

#endif  // SHAKEN_STIR_MEMORY_SIGNER_H_
