#include "stir/memory_signer.h"

#include <openssl/ec.h>

#include "stir/status_macros.h"

namespace shaken::stir {

absl::StatusOr<std::unique_ptr<MemorySigner>> MemorySigner::FromPem(
    std::string_view pem, std::optional<std::string_view> passphrase) {
  ASSIGN_OR_RETURN(EvpPkeyPtr key, ReadPrivateKeyPem(pem, passphrase));
  return FromKey(std::move(key));
}

absl::StatusOr<std::unique_ptr<MemorySigner>> MemorySigner::FromKey(EvpPkeyPtr key) {
  if (!IsP256Key(key.get())) {
    return absl::InvalidArgumentError("the signing key must be EC P-256 (ES256, RFC 7518 §3.4)");
  }
  return std::unique_ptr<MemorySigner>(new MemorySigner(std::move(key)));
}

absl::StatusOr<std::unique_ptr<MemorySigner>> MemorySigner::Generate() {
  EvpPkeyPtr key(EVP_EC_gen("P-256"));
  if (key == nullptr) return OpenSslError(absl::StatusCode::kInternal, "generating a P-256 key");
  return FromKey(std::move(key));
}

absl::StatusOr<Es256Signature> MemorySigner::SignDigest(const Sha256Digest& digest,
                                                        absl::Time /*deadline*/) const {
  EvpPkeyCtxPtr ctx;
  {
    absl::MutexLock lock(&mu_);
    if (!idle_.empty()) {
      ctx = std::move(idle_.back());
      idle_.pop_back();
    }
  }
  if (ctx == nullptr) {
    ctx.reset(EVP_PKEY_CTX_new_from_pkey(nullptr, key_.get(), nullptr));
    if (ctx == nullptr || EVP_PKEY_sign_init(ctx.get()) != 1) {
      return OpenSslError(absl::StatusCode::kInternal, "EVP_PKEY_sign_init");
    }
  }
  unsigned char der[80];
  size_t der_len = sizeof(der);
  if (EVP_PKEY_sign(ctx.get(), der, &der_len, digest.data(), digest.size()) != 1) {
    // The context's state is unknown after a failure: drop it.
    return OpenSslError(absl::StatusCode::kInternal, "EVP_PKEY_sign");
  }
  {
    absl::MutexLock lock(&mu_);
    idle_.push_back(std::move(ctx));
  }
  return EcdsaDerToRaw(std::string_view(reinterpret_cast<const char*>(der), der_len));
}

}  // namespace shaken::stir
