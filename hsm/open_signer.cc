#include "hsm/open_signer.h"

#include <openssl/crypto.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "hsm/key_manager.h"
#include "hsm/pkcs11_uri.h"
#include "stir/absl_compat.h"
#include "stir/memory_signer.h"
#include "stir/status_macros.h"

namespace shaken::hsm {
namespace {

constexpr size_t kMaxKeyFileBytes = 64 * 1024;

absl::StatusOr<OpenedSigner> OpenTokenKey(const std::string& key,
                                          const OpenSignerOptions& options) {
  SignerConfig config;
  config.module_path = options.module_path;
  config.key_uri = key;
  config.pin = options.pin;
  config.quirks = options.quirks;
  config.pool = options.pool;
  ASSIGN_OR_RETURN(std::unique_ptr<KeyPool> pool, OpenKeyPool(config));
  OpenedSigner out;
  if (options.export_public_key) {
    ASSIGN_OR_RETURN(Pkcs11Uri uri, Pkcs11Uri::Parse(key));
    ASSIGN_OR_RETURN(PublicKey pub, ExportPublicKey(*pool->token(), uri));
    ASSIGN_OR_RETURN(out.public_key, stir::ReadPublicKeyPem(pub.pem));
  }
  out.description = pool->key_uri();
  out.pool = pool.get();
  out.signer = std::move(pool);
  return out;
}

absl::StatusOr<OpenedSigner> OpenFileKey(const std::string& path,
                                         const OpenSignerOptions& options) {
  ASSIGN_OR_RETURN(stir::EvpPkeyPtr pkey, ReadPrivateKeyFile(path, options.passphrase));
  if (!stir::IsP256Key(pkey.get())) {
    return absl::InvalidArgumentError(
        absl::StrCat("key file ", path, " is not an EC P-256 key (ES256 needs one)"));
  }
  OpenedSigner out;
  ASSIGN_OR_RETURN(std::string pub_pem, stir::PublicKeyToPem(pkey.get()));
  ASSIGN_OR_RETURN(out.public_key, stir::ReadPublicKeyPem(pub_pem));
  ASSIGN_OR_RETURN(out.signer, stir::MemorySigner::FromKey(std::move(pkey)));
  out.description = absl::StrCat("file:", path);
  return out;
}

}  // namespace

absl::StatusOr<stir::EvpPkeyPtr> ReadPrivateKeyFile(const std::string& path,
                                                    const PassphraseFor& passphrase) {
  ASSIGN_OR_RETURN(std::string pem, stir::ReadFile(path, kMaxKeyFileBytes));
  std::optional<SecretString> secret;
  if (stir::IsEncryptedPrivateKeyPem(pem)) {
    absl::StatusOr<SecretString> read =
        passphrase ? passphrase(path)
                   : absl::StatusOr<SecretString>(absl::FailedPreconditionError(absl::StrCat(
                         "key file ", path, " is encrypted and no passphrase was given")));
    if (!read.ok()) {
      OPENSSL_cleanse(pem.data(), pem.size());
      return read.status();
    }
    secret = *std::move(read);
  }
  std::optional<std::string_view> pass;
  if (secret.has_value()) pass = ToStd(secret->view());
  absl::StatusOr<stir::EvpPkeyPtr> key = stir::ReadPrivateKeyPem(pem, pass);
  // Wipe the PEM copy: the key lives on only inside the EVP_PKEY (`secret` wipes itself).
  OPENSSL_cleanse(pem.data(), pem.size());
  if (!key.ok()) {
    return absl::Status(key.status().code(),
                        absl::StrCat("key file ", path, ": ", key.status().message()));
  }
  return key;
}

absl::StatusOr<OpenedSigner> OpenSigner(std::string_view key, const OpenSignerOptions& options) {
  if (key.starts_with("pkcs11:")) return OpenTokenKey(std::string(key), options);
  if (key.starts_with("file:") && key.size() > 5) {
    return OpenFileKey(std::string(key.substr(5)), options);
  }
  return absl::InvalidArgumentError(
      "a signing key is a PKCS#11 URI (pkcs11:token=...;object=...) or a PEM key file "
      "(file:/path/key.pem)");
}

}  // namespace shaken::hsm
