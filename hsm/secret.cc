#include "hsm/secret.h"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>

#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"

namespace shaken::hsm {
namespace {

constexpr size_t kMaxPin = 256;

// Trims a trailing CR/LF, as editors and `echo` leave one at the end of a PIN file.
size_t TrimmedSize(const char* p, size_t n) {
  while (n > 0 && (p[n - 1] == '\n' || p[n - 1] == '\r')) --n;
  return n;
}

// PINs read from the environment, by variable name. The first Read takes the value, overwrites
// it in place and removes the variable: a process's environment stays readable by its user (and
// root) in /proc/<pid>/environ for its whole life, and child processes would inherit it.
struct EnvPins {
  absl::Mutex mu;
  std::map<std::string, std::shared_ptr<const SecretString>> pins ABSL_GUARDED_BY(mu);
};
EnvPins& TheEnvPins() {
  static EnvPins* pins = new EnvPins;  // never destroyed: reads may come until exit
  return *pins;
}

}  // namespace

SecretString::SecretString(absl::string_view value)
    : data_(new char[value.size() + 1]), size_(value.size()) {
  std::memcpy(data_.get(), value.data(), value.size());
  data_[size_] = '\0';
}

SecretString::SecretString(SecretString&& other) noexcept
    : data_(std::move(other.data_)), size_(other.size_) {
  other.size_ = 0;
}

SecretString& SecretString::operator=(SecretString&& other) noexcept {
  if (this != &other) {
    Wipe();
    data_ = std::move(other.data_);
    size_ = other.size_;
    other.size_ = 0;
  }
  return *this;
}

SecretString::~SecretString() { Wipe(); }

void SecretString::Wipe() {
  if (data_) OPENSSL_cleanse(data_.get(), size_ + 1);
  data_.reset();
  size_ = 0;
}

absl::StatusOr<PinSource> PinSource::Parse(std::string_view spec) {
  auto refuse = [](const char* why) {
    constexpr char kMust[] = "must be file:/path, env:VARIABLE or an absolute path";
    return absl::InvalidArgumentError(*why == '\0' ? std::string(kMust)
                                                   : absl::StrCat(kMust, " (", why, ")"));
  };
  if (spec.starts_with("file:")) {
    std::string_view path = spec.substr(5);
    if (path.starts_with("//")) {
      // RFC 8089: file://<host>/path; only the local host (empty authority) is meant.
      path.remove_prefix(2);
      if (!path.starts_with("/")) return refuse("a file: URI must not name a host");
    }
    if (path.empty()) return refuse("\"file:\" names no file");
    return FromFile(std::string(path));
  }
  if (spec.starts_with("env:")) {
    if (spec.size() == 4) return refuse("\"env:\" names no variable");
    return FromEnv(std::string(spec.substr(4)));
  }
  if (spec.starts_with("/")) return FromFile(std::string(spec));
  return refuse("");
}

PinSource PinSource::FromFile(std::string path) { return PinSource(Kind::kFile, std::move(path)); }

PinSource PinSource::FromEnv(std::string variable) {
  return PinSource(Kind::kEnv, std::move(variable));
}

PinSource PinSource::FromValue(absl::string_view pin) {
  PinSource s(Kind::kValue, "");
  s.value_ = std::make_shared<const SecretString>(pin);
  return s;
}

bool operator==(const PinSource& a, const PinSource& b) {
  if (a.kind_ != b.kind_ || a.where_ != b.where_) return false;
  if (a.kind_ != PinSource::Kind::kValue || a.value_ == b.value_) return true;
  if (a.value_ == nullptr || b.value_ == nullptr) return false;
  const absl::string_view x = a.value_->view();
  const absl::string_view y = b.value_->view();
  return x.size() == y.size() && CRYPTO_memcmp(x.data(), y.data(), x.size()) == 0;
}

std::string PinSource::Describe() const {
  switch (kind_) {
    case Kind::kFile:
      return absl::StrCat("file:", where_);
    case Kind::kEnv:
      return absl::StrCat("env:", where_);
    case Kind::kValue:
      return "value";
  }
  return "?";
}

absl::StatusOr<SecretString> PinSource::Read() const {
  switch (kind_) {
    case Kind::kValue:
      return SecretString(value_->view());
    case Kind::kEnv: {
      EnvPins& env = TheEnvPins();
      absl::MutexLock lock(&env.mu);
      if (auto it = env.pins.find(where_); it != env.pins.end()) {
        return SecretString(it->second->view());
      }
      char* v = std::getenv(where_.c_str());
      if (v == nullptr || *v == '\0') {
        return absl::NotFoundError(absl::StrCat("PIN source ", Describe(), " is unset or empty"));
      }
      const size_t raw = std::strlen(v);
      size_t n = TrimmedSize(v, raw);
      if (n > kMaxPin) {
        return absl::InvalidArgumentError(absl::StrCat("PIN source ", Describe(), " is too long"));
      }
      auto pin = std::make_shared<const SecretString>(absl::string_view(v, n));
      OPENSSL_cleanse(v, raw);  // the bytes /proc/<pid>/environ shows
      ::unsetenv(where_.c_str());
      env.pins.emplace(where_, pin);
      return SecretString(pin->view());
    }
    case Kind::kFile: {
      int fd = ::open(where_.c_str(), O_RDONLY | O_CLOEXEC);
      if (fd < 0) {
        int err = errno;
        absl::StatusCode code = err == ENOENT ? absl::StatusCode::kNotFound
                                              : absl::StatusCode::kPermissionDenied;
        return absl::Status(code, absl::StrCat("PIN source ", Describe(), ": cannot open: ",
                                               std::strerror(err)));
      }
      // Read into a fixed stack buffer that is wiped before returning; no std::string copies.
      char buf[kMaxPin + 2];
      size_t n = 0;
      while (n < sizeof(buf)) {
        ssize_t r = ::read(fd, buf + n, sizeof(buf) - n);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        n += static_cast<size_t>(r);
      }
      ::close(fd);
      size_t len = TrimmedSize(buf, n);
      absl::StatusOr<SecretString> result;
      if (n == sizeof(buf) || len > kMaxPin) {
        result = absl::InvalidArgumentError(absl::StrCat("PIN source ", Describe(), " is too long"));
      } else if (len == 0) {
        result = absl::InvalidArgumentError(absl::StrCat("PIN source ", Describe(), " is empty"));
      } else {
        result = SecretString(absl::string_view(buf, len));
      }
      OPENSSL_cleanse(buf, sizeof(buf));
      return result;
    }
  }
  return absl::InternalError("bad PinSource");
}

}  // namespace shaken::hsm
