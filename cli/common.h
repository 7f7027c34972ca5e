// common.h: what every shakenctl command shares: exit codes, reporting, files written atomically,
// PIN sources, and "a key" given as a PKCS#11 URI (a token key) or a PEM file (a lab key).
#ifndef SHAKEN_CLI_COMMON_H_
#define SHAKEN_CLI_COMMON_H_

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "hsm/module.h"
#include "hsm/pkcs11_uri.h"
#include "hsm/secret.h"
#include "nlohmann/json.hpp"
#include "stir/openssl_util.h"
#include "stir/signer.h"

namespace shaken::cli {

// Exit codes (documented in `shakenctl --help` and cli/README.md). `passport verify` maps its
// verdict's SIP code to 3..7; `cert check` uses 8 when a profile item fails.
enum ExitCode : int {
  kExitOk = 0,
  kExitError = 1,        // anything else: unreadable file, token error, bad input data, ...
  kExitUsage = 2,        // bad command line
  kExitStale403 = 3,     // passport verify: 403 Stale Date
  kExitNoIdentity428 = 4,   // 428 Use Identity Header
  kExitBadInfo436 = 5,      // 436 Bad Identity Info
  kExitBadCert437 = 6,      // 437 Unsupported Credential
  kExitInvalid438 = 7,      // 438 Invalid Identity Header
  kExitLintFailed = 8,   // cert check: at least one FAIL
};

// ExitForSipCode maps a verification verdict's SIP code to the exit code above (0 for 0/200).
int ExitForSipCode(int sip_code);

// Fail prints "shakenctl: error: <status message>" on stderr and returns kExitError.
int Fail(const absl::Status& status);
// UsageError prints "shakenctl: <message>" and returns kExitUsage.
int UsageError(std::string_view message);
// Note prints an informational line on stderr (never on stdout, which carries data).
void Note(std::string_view message);
// PrintJson writes `j` (indented) and a newline to stdout.
void PrintJson(const nlohmann::json& j);

// ReadInput reads a file, or stdin when `path` is "-". Messages name the path and the OS reason.
absl::StatusOr<std::string> ReadInput(const std::string& path, size_t max_bytes = 1 << 20);

// WriteOptions: private files get 0600 (keys); `force` allows replacing an existing file.
struct WriteOptions {
  bool force = false;
  bool private_file = false;
};
// CheckWritable fails (ALREADY_EXISTS) when `path` exists and !force, so a command can refuse
// before doing any work (and before touching a token).
absl::Status CheckWritable(const std::string& path, bool force);
// WriteFileAtomic writes `data` to a temporary file beside `path` (same directory, mode 0600 or
// 0644), fsyncs it and renames it over `path`: a reader sees the old file or the new one, never
// a partial one. Without force an existing `path` is never replaced (checked again at rename
// time with link(2)+unlink(2), which fails if the name was taken meanwhile).
absl::Status WriteFileAtomic(const std::string& path, std::string_view data,
                             const WriteOptions& options);

// PinOptions are the command-line sources of a token user PIN. The PIN itself is never accepted
// on the command line.
struct PinOptions {
  std::string pin_source;  // "file:/path", "env:VAR" or ""
};
// ResolvePin picks the PIN source: --pin-source, else the URI's pin-source, else an interactive
// prompt without echo when stdin is a terminal; otherwise FAILED_PRECONDITION saying how to give
// one. `what` names the PIN in the prompt ("user PIN for pkcs11:token=shaken").
absl::StatusOr<hsm::PinSource> ResolvePin(const std::string& pin_source,
                                          const hsm::Pkcs11Uri* uri, std::string_view what);
// ParsePinSource is hsm::PinSource::Parse ("file:/path", "env:VAR" or an absolute path) with
// the command line's error: "bad PIN source: ... (a PIN is never given on the command line)".
absl::StatusOr<hsm::PinSource> ParsePinSource(const std::string& spec);
// PromptSecret reads one line from the terminal with echo off.
absl::StatusOr<hsm::SecretString> PromptSecret(std::string_view prompt);

// IsPkcs11Uri tells whether a --key argument names a token key (starts with "pkcs11:").
bool IsPkcs11Uri(std::string_view key);

// ModulePath picks the PKCS#11 module: --module, else the URI's module-path, else
// $SHAKEN_PKCS11_MODULE, else SoftHSM2's /usr/lib/softhsm/libsofthsm2.so.
std::string ModulePath(const std::string& flag, const hsm::Pkcs11Uri* uri);

// TokenOptions: where a token and its PIN are, and where an encrypted PEM key file's passphrase
// is.
struct TokenOptions {
  std::string module;
  std::string pin_source;
  std::string passphrase_source;
};

// OpenTokenFor loads the module and opens (and logs in to, on first session) the token `uri`
// names.
absl::StatusOr<std::shared_ptr<hsm::Token>> OpenTokenFor(const hsm::Pkcs11Uri& uri,
                                                         const TokenOptions& options);

// LoadedKey is a signing key: a token key behind a KeyPool, or a PEM private key in memory.
struct LoadedKey {
  std::unique_ptr<stir::Signer> signer;
  stir::EvpPkeyPtr public_key;
  std::string where;  // pin-free URI or file path, for messages
};

// LoadSigningKey opens `key` for signing with hsm::OpenSigner, and returns its public key too:
// a pkcs11: URI (PIN from --pin-source, the URI or a prompt) or a PEM file holding an EC P-256
// private key, encrypted or not (a bare path, "file:/path", or "-" for stdin).
absl::StatusOr<LoadedKey> LoadSigningKey(const std::string& key, const TokenOptions& options);

// LoadPublicKey returns the public key of `key`: a pkcs11: URI (exported from the token, no
// login needed beyond the token's), a PEM private key, a PEM public key or a certificate.
absl::StatusOr<stir::EvpPkeyPtr> LoadPublicKey(const std::string& key, const TokenOptions& options);

// ReadPrivateKeyFile is hsm::ReadPrivateKeyFile for a command line: an encrypted key's
// passphrase comes from options.passphrase_source, else from a prompt on a terminal. Errors name
// the file and what to give.
absl::StatusOr<stir::EvpPkeyPtr> ReadPrivateKeyFile(const std::string& path,
                                                    const TokenOptions& options);

// ParseUnixOrNow parses a --at / --iat style Unix time in seconds.
absl::StatusOr<int64_t> ParseInt64(std::string_view s, std::string_view what);

}  // namespace shaken::cli

#endif  // SHAKEN_CLI_COMMON_H_
