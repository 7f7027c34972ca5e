#include "cli/common.h"

#include <errno.h>
#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include <charconv>
#include <iostream>
#include <optional>
#include <string_view>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "hsm/key_manager.h"
#include "hsm/key_pool.h"
#include "hsm/open_signer.h"
#include "stir/absl_compat.h"
#include "stir/memory_signer.h"
#include "stir/openssl_util.h"
#include "stir/status_macros.h"

namespace shaken::cli {

namespace {

constexpr char kDefaultModule[] = "/usr/lib/softhsm/libsofthsm2.so";

std::string Errno(int err) { return std::string(strerror(err)); }

std::string DirName(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return ".";
  if (slash == 0) return "/";
  return path.substr(0, slash);
}

// WithTypePrivate adds type=private to a key URI that names no object class, so that KeyPool
// finds the private half (the path part ends before '?').
std::string WithTypePrivate(const std::string& uri, const hsm::Pkcs11Uri& parsed) {
  if (parsed.object_class().has_value()) return uri;
  size_t q = uri.find('?');
  std::string path = uri.substr(0, q);
  std::string query = q == std::string::npos ? "" : uri.substr(q);
  if (!path.empty() && path.back() != ':' && path.back() != ';') path += ';';
  return absl::StrCat(path, "type=private", query);
}

}  // namespace

int ExitForSipCode(int sip_code) {
  switch (sip_code) {
    case 0:
    case 200:
      return kExitOk;
    case 403:
      return kExitStale403;
    case 428:
      return kExitNoIdentity428;
    case 436:
      return kExitBadInfo436;
    case 437:
      return kExitBadCert437;
    case 438:
      return kExitInvalid438;
    default:
      return kExitError;
  }
}

int Fail(const absl::Status& status) {
  std::cerr << "shakenctl: error: " << status.message() << "\n";
  return kExitError;
}

int UsageError(std::string_view message) {
  std::cerr << "shakenctl: " << message << "\nRun with --help for more information.\n";
  return kExitUsage;
}

void Note(std::string_view message) { std::cerr << message << "\n"; }

void PrintJson(const nlohmann::json& j) { std::cout << j.dump(2) << "\n"; }

absl::StatusOr<std::string> ReadInput(const std::string& path, size_t max_bytes) {
  int fd = path == "-" ? STDIN_FILENO : ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    int err = errno;
    std::string msg = absl::StrCat("cannot read ", path, ": ", Errno(err));
    if (err == ENOENT) return absl::NotFoundError(msg);
    if (err == EACCES) return absl::PermissionDeniedError(msg);
    return absl::InvalidArgumentError(msg);
  }
  std::string data;
  char buf[8192];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int err = errno;
      if (fd != STDIN_FILENO) ::close(fd);
      return absl::InvalidArgumentError(absl::StrCat("cannot read ", path, ": ", Errno(err)));
    }
    if (n == 0) break;
    data.append(buf, static_cast<size_t>(n));
    if (data.size() > max_bytes) {
      if (fd != STDIN_FILENO) ::close(fd);
      return absl::InvalidArgumentError(
          absl::StrCat(path, " is larger than ", max_bytes, " bytes"));
    }
  }
  if (fd != STDIN_FILENO) ::close(fd);
  return data;
}

absl::Status CheckWritable(const std::string& path, bool force) {
  if (path.empty()) return absl::InvalidArgumentError("empty output path");
  struct stat st;
  if (::lstat(path.c_str(), &st) == 0) {
    if (!force) {
      return absl::AlreadyExistsError(
          absl::StrCat(path, " already exists; use --force to replace it"));
    }
    if (S_ISDIR(st.st_mode)) {
      return absl::InvalidArgumentError(absl::StrCat(path, " is a directory"));
    }
  }
  std::string dir = DirName(path);
  if (::access(dir.c_str(), W_OK | X_OK) != 0) {
    return absl::PermissionDeniedError(
        absl::StrCat("cannot write in ", dir, ": ", Errno(errno)));
  }
  return absl::OkStatus();
}

absl::Status WriteFileAtomic(const std::string& path, std::string_view data,
                             const WriteOptions& options) {
  RETURN_IF_ERROR(CheckWritable(path, options.force));
  // Public files (certificates, CSRs) world-readable; private ones 0600.
  return stir::WriteFileAtomic(path, data, options.private_file ? 0600 : 0644, options.force);
}

absl::StatusOr<hsm::SecretString> PromptSecret(std::string_view prompt) {
  if (!::isatty(STDIN_FILENO)) {
    return absl::FailedPreconditionError("stdin is not a terminal: cannot prompt for a PIN");
  }
  std::cerr << prompt << std::flush;
  struct termios old_attr;
  if (::tcgetattr(STDIN_FILENO, &old_attr) != 0) {
    return absl::FailedPreconditionError("cannot read the terminal settings");
  }
  struct termios quiet = old_attr;
  quiet.c_lflag &= ~static_cast<tcflag_t>(ECHO);
  quiet.c_lflag |= ECHONL;
  if (::tcsetattr(STDIN_FILENO, TCSAFLUSH, &quiet) != 0) {
    return absl::FailedPreconditionError("cannot turn the terminal echo off");
  }
  char buf[257];
  size_t len = 0;
  bool too_long = false;
  for (;;) {
    char c;
    ssize_t n = ::read(STDIN_FILENO, &c, 1);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0 || c == '\n' || c == '\r') break;
    if (len < sizeof(buf)) {
      buf[len++] = c;
    } else {
      too_long = true;
    }
  }
  ::tcsetattr(STDIN_FILENO, TCSAFLUSH, &old_attr);
  hsm::SecretString out(absl::string_view(buf, len));
  OPENSSL_cleanse(buf, sizeof(buf));
  if (too_long) return absl::InvalidArgumentError("the PIN is longer than 256 bytes");
  if (out.empty()) return absl::InvalidArgumentError("empty PIN");
  return out;
}

absl::StatusOr<hsm::PinSource> ParsePinSource(const std::string& spec) {
  absl::StatusOr<hsm::PinSource> source = hsm::PinSource::Parse(spec);
  if (source.ok()) return source;
  // The value is not repeated: it may be the PIN itself, typed where its source belongs.
  return absl::InvalidArgumentError(absl::StrCat("bad PIN source: ", source.status().message(),
                                                 " (a PIN is never given on the command line)"));
}

absl::StatusOr<hsm::PinSource> ResolvePin(const std::string& pin_source,
                                          const hsm::Pkcs11Uri* uri, std::string_view what) {
  if (!pin_source.empty()) return ParsePinSource(pin_source);
  if (uri != nullptr && uri->pin_source().has_value()) return ParsePinSource(*uri->pin_source());
  if (::isatty(STDIN_FILENO)) {
    ASSIGN_OR_RETURN(hsm::SecretString pin, PromptSecret(absl::StrCat(ToAbsl(what), ": ")));
    return hsm::PinSource::FromValue(pin.view());
  }
  return absl::FailedPreconditionError(absl::StrCat(
      "no ", ToAbsl(what),
      ": give --pin-source file:/path or --pin-source env:VARIABLE (or run on a terminal to be "
      "prompted)"));
}

bool IsPkcs11Uri(std::string_view key) { return key.starts_with("pkcs11:"); }

std::string ModulePath(const std::string& flag, const hsm::Pkcs11Uri* uri) {
  if (!flag.empty()) return flag;
  if (uri != nullptr && uri->module_path().has_value()) return *uri->module_path();
  if (const char* env = ::getenv("SHAKEN_PKCS11_MODULE"); env != nullptr && *env != '\0') {
    return env;
  }
  return kDefaultModule;
}

absl::StatusOr<std::shared_ptr<hsm::Token>> OpenTokenFor(const hsm::Pkcs11Uri& uri,
                                                         const TokenOptions& options) {
  ASSIGN_OR_RETURN(hsm::PinSource pin,
                   ResolvePin(options.pin_source, &uri,
                              absl::StrCat("user PIN for ", uri.redacted())));
  ASSIGN_OR_RETURN(std::shared_ptr<hsm::Module> module,
                   hsm::Module::Load(ModulePath(options.module, &uri)));
  return module->OpenToken(uri, pin);
}

hsm::PassphraseFor PassphraseFrom(const TokenOptions& options) {
  return [source = options.passphrase_source](
             const std::string& path) -> absl::StatusOr<hsm::SecretString> {
    if (!source.empty()) {
      absl::StatusOr<hsm::PinSource> from = hsm::PinSource::Parse(source);
      if (!from.ok()) {
        return absl::InvalidArgumentError(
            absl::StrCat("bad --passphrase-source: ", from.status().message(),
                         " (a passphrase is never given on the command line)"));
      }
      return from->Read();
    }
    if (::isatty(STDIN_FILENO)) return PromptSecret(absl::StrCat("passphrase of ", path, ": "));
    return absl::FailedPreconditionError(absl::StrCat(
        path, " is an encrypted key: give --passphrase-source file:/path or "
              "--passphrase-source env:VARIABLE (or run on a terminal to be prompted)"));
  };
}

std::string KeyFileName(const std::string& key) {
  if (absl::StartsWith(key, "file:")) return key.substr(5);
  return key == "-" ? "/dev/stdin" : key;
}

absl::StatusOr<stir::EvpPkeyPtr> ReadPrivateKeyFile(const std::string& path,
                                                    const TokenOptions& options) {
  return hsm::ReadPrivateKeyFile(KeyFileName(path), PassphraseFrom(options));
}

absl::StatusOr<LoadedKey> LoadSigningKey(const std::string& key, const TokenOptions& options) {
  hsm::OpenSignerOptions open;
  std::string name;
  if (IsPkcs11Uri(key)) {
    ASSIGN_OR_RETURN(hsm::Pkcs11Uri uri, hsm::Pkcs11Uri::Parse(key));
    if (!uri.object_label().has_value() && !uri.object_id().has_value()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "the key URI ", uri.redacted(), " names no key: add object=<label> or id=<hex>"));
    }
    ASSIGN_OR_RETURN(hsm::PinSource pin,
                     ResolvePin(options.pin_source, &uri,
                                absl::StrCat("user PIN for ", uri.redacted())));
    open.module_path = ModulePath(options.module, &uri);
    open.pin = pin;
    open.pool.size = 1;
    open.pool.open_at_start = 1;
    name = WithTypePrivate(key, uri);
  } else {
    // A bare path is a key file (shakenctl's form of file:/path); "-" is stdin.
    open.passphrase = PassphraseFrom(options);
    name = absl::StrCat("file:", KeyFileName(key));
  }
  ASSIGN_OR_RETURN(hsm::OpenedSigner opened, hsm::OpenSigner(name, open));
  LoadedKey out;
  out.signer = std::move(opened.signer);
  out.public_key = std::move(opened.public_key);
  out.where = IsPkcs11Uri(key) ? opened.description : key;
  return out;
}

absl::StatusOr<stir::EvpPkeyPtr> LoadPublicKey(const std::string& key,
                                               const TokenOptions& options) {
  if (IsPkcs11Uri(key)) {
    ASSIGN_OR_RETURN(hsm::Pkcs11Uri uri, hsm::Pkcs11Uri::Parse(key));
    ASSIGN_OR_RETURN(std::shared_ptr<hsm::Token> token, OpenTokenFor(uri, options));
    ASSIGN_OR_RETURN(hsm::PublicKey pub, hsm::ExportPublicKey(*token, uri));
    return stir::ReadPublicKeyPem(pub.pem);
  }
  ASSIGN_OR_RETURN(std::string pem, ReadInput(key, 64 * 1024));
  stir::EvpPkeyPtr out;
  if (pem.find("PRIVATE KEY-----") != std::string::npos) {
    OPENSSL_cleanse(pem.data(), pem.size());
    ASSIGN_OR_RETURN(stir::EvpPkeyPtr priv, ReadPrivateKeyFile(key, options));
    ASSIGN_OR_RETURN(std::string pub_pem, stir::PublicKeyToPem(priv.get()));
    return stir::ReadPublicKeyPem(pub_pem);
  }
  if (pem.find("BEGIN CERTIFICATE") != std::string::npos) {
    stir::BioPtr bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())));
    stir::X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
    if (!cert) return stir::OpenSslError(absl::StatusCode::kInvalidArgument, key);
    out.reset(X509_get_pubkey(cert.get()));
    if (!out) return absl::InvalidArgumentError(absl::StrCat(key, ": no public key"));
    return out;
  }
  absl::StatusOr<stir::EvpPkeyPtr> pub = stir::ReadPublicKeyPem(pem);
  if (!pub.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat(key, " holds no PEM private key, public key or certificate"));
  }
  return pub;
}

absl::StatusOr<int64_t> ParseInt64(std::string_view s, std::string_view what) {
  int64_t v = 0;
  auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || p != s.data() + s.size() || s.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(ToAbsl(what), ": '", ToAbsl(s), "' is not an integer"));
  }
  return v;
}

}  // namespace shaken::cli
