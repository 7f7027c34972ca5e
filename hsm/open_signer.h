// open_signer.h: opening a signing key by name, the one way shakend and shakenctl do it.
//   "pkcs11:..."  (RFC 7512) a token key, signed with through a KeyPool (the private key never
//                 leaves the token);
//   "file:<path>" a PEM private key (EC P-256; SEC1 or PKCS#8, encrypted or not) held in memory
//                 by stir::MemorySigner: for labs.
// shakenctl's bare paths are file: keys ("/k.pem" is "file:/k.pem").
#ifndef SHAKEN_HSM_OPEN_SIGNER_H_
#define SHAKEN_HSM_OPEN_SIGNER_H_

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "hsm/key_pool.h"
#include "hsm/module.h"
#include "hsm/secret.h"
#include "stir/openssl_util.h"
#include "stir/signer.h"

namespace shaken::hsm {

// PassphraseFor obtains the passphrase of the encrypted PEM key file `path`: read from a
// PinSource, typed at a prompt, or an error saying how to give one. Called only when the file
// is encrypted. Errors are returned as they are.
using PassphraseFor = std::function<absl::StatusOr<SecretString>(const std::string& path)>;

// ReadPrivateKeyFile reads the PEM private key in `path` (at most 64 KiB). An encrypted one is
// decrypted with what `passphrase` returns (null: FAILED_PRECONDITION "... is encrypted and no
// passphrase was given"). The PEM text and the passphrase are wiped once read. Errors: those of
// stir::ReadFile ("cannot open <path>: <reason>"), of `passphrase`, and INVALID_ARGUMENT
// "key file <path>: ..." (not a private key, wrong passphrase or damaged key).
absl::StatusOr<stir::EvpPkeyPtr> ReadPrivateKeyFile(const std::string& path,
                                                    const PassphraseFor& passphrase);

struct OpenSignerOptions {
  // pkcs11: keys (see SignerConfig).
  std::string module_path;              // empty: the URI's module-path
  std::optional<PinSource> pin;         // unset: the URI's pin-source
  std::optional<ModuleQuirks> quirks;   // unset: chosen by Module::Load(path)
  KeyPoolOptions pool;
  // export_public_key: for a token key, look up its public half on the token (CKO_PUBLIC_KEY
  // with the same object / id) for OpenedSigner::public_key. False leaves public_key null for a
  // token key (shakend checks its keys against their certificates with a test signature).
  bool export_public_key = true;
  // file: keys: the passphrase of an encrypted key file.
  PassphraseFor passphrase;
};

// OpenedSigner is an open signing key.
struct OpenedSigner {
  std::unique_ptr<stir::Signer> signer;
  // public_key: the key's public half (null for a token key without export_public_key).
  stir::EvpPkeyPtr public_key;
  // description names the key without any secret: the token key's URI (as KeyPool::key_uri,
  // PIN attributes removed) or "file:<path>".
  std::string description;
  // pool is `signer` when it is a token key (health, stats); null for a file key.
  KeyPool* pool = nullptr;
};

// OpenSigner opens `key` ("pkcs11:..." or "file:<path>") for signing. A token key: the module is
// loaded (or reused), the token opened and logged in to, the pool created (errors as
// OpenKeyPool), the public key exported when asked. A file key: ReadPrivateKeyFile, then
// INVALID_ARGUMENT "key file <path> is not an EC P-256 key" unless it is one. Any other form of
// `key` is INVALID_ARGUMENT saying which two are understood.
absl::StatusOr<OpenedSigner> OpenSigner(std::string_view key, const OpenSignerOptions& options);

}  // namespace shaken::hsm

#endif  // SHAKEN_HSM_OPEN_SIGNER_H_
