#include "daemon/profiles.h"

#include <sys/stat.h>

#include <algorithm>
#include <optional>
#include <string_view>

#include "absl/strings/match.h"
#include "absl/strings/strip.h"
#include "absl/strings/str_cat.h"
#include "daemon/log.h"
#include "hsm/module.h"
#include "hsm/open_signer.h"
#include "hsm/pkcs11_uri.h"
#include "hsm/secret.h"
#include "stir/absl_compat.h"
#include "stir/cert_validator.h"
#include "stir/openssl_util.h"
#include "stir/status_macros.h"
#include "stir/tn_auth_list.h"

namespace shaken::daemon {
namespace {

// ProfileError prefixes the profile's name and keeps the payloads (hsm::IsPinRefused reads one).
absl::Status ProfileError(const std::string& profile, const absl::Status& s) {
  return stir::WithPrefix(s, absl::StrCat("profile ", profile, ": "));
}

// SignerOptions: how a profile's key is opened: a token key with the pkcs11 section's module,
// PIN, quirks and pool; a file key with the profile's key_passphrase_source.
hsm::OpenSignerOptions SignerOptions(const ProfileConfig& p, const Config& c,
                                     std::function<void(absl::Duration)> on_queue_wait) {
  hsm::OpenSignerOptions o;
  o.export_public_key = false;  // the start-up self-check signs against the certificate instead
  if (c.pkcs11.has_value()) {
    const Pkcs11Config& k = *c.pkcs11;
    o.module_path = k.module;
    o.pin = k.pin_source;
    o.quirks = k.quirks;
    o.pool.size = k.pool_size;
    o.pool.open_at_start = k.open_at_start;
    o.pool.key_copy = k.key_copy;
    o.pool.max_wait = k.max_wait;
    o.pool.open_interval = k.open_interval;
    o.pool.backoff_initial = k.backoff_initial;
    o.pool.backoff_max = k.backoff_max;
    o.pool.queue_limit = k.queue_limit;
    o.pool.on_queue_wait = std::move(on_queue_wait);
  }
  o.passphrase = [source = p.key_passphrase_source](
                     const std::string& path) -> absl::StatusOr<hsm::SecretString> {
    if (!source.has_value()) {
      return absl::InvalidArgumentError(
          absl::StrCat("key file ", path,
                       " is encrypted: set key_passphrase_source (file:/path or env:VARIABLE) on "
                       "this profile"));
    }
    absl::StatusOr<hsm::SecretString> read = source->Read();
    if (!read.ok()) {
      return absl::Status(read.status().code(),
                          absl::StrCat("key_passphrase_source: ", read.status().message()));
    }
    return read;
  };
  return o;
}

// FileStamp identifies a version of the file at `path` (what stat(2) says of it, following
// symlinks); "" when it cannot be stat'ed.
std::string FileStamp(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return "";
  return absl::StrCat(st.st_dev, ":", st.st_ino, ":", st.st_size, ":", st.st_mtim.tv_sec, ".",
                      st.st_mtim.tv_nsec);
}

// ProfileCertificate is the profile certificate file's leaf: its description and its public key.
struct ProfileCertificate {
  stir::CertificateInfo info;
  stir::EvpPkeyPtr key;
};

// ReadProfileCertificate reads the PEM chain at `certificate_file` and checks that its leaf is a
// SHAKEN certificate (a TNAuthList) for an EC P-256 key.
absl::StatusOr<ProfileCertificate> ReadProfileCertificate(const std::string& certificate_file) {
  ASSIGN_OR_RETURN(std::string pem, stir::ReadFile(certificate_file, 64 * 1024));
  absl::StatusOr<std::vector<stir::X509Ptr>> chain = stir::ParsePemChain(pem);
  if (!chain.ok()) {
    return absl::InvalidArgumentError(
        absl::StrCat("certificate ", certificate_file, ": ", chain.status().message()));
  }
  X509* leaf = chain->front().get();
  ASSIGN_OR_RETURN(stir::CertificateInfo info, stir::DescribeCertificate(leaf));
  if (info.tn_auth_list.empty()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "certificate ", certificate_file,
        " has no TNAuthList extension (RFC 8226, OID 1.3.6.1.5.5.7.1.26): it is not a SHAKEN "
        "certificate"));
  }
  stir::EvpPkeyPtr key(X509_get_pubkey(leaf));
  if (!stir::IsP256Key(key.get())) {
    return absl::FailedPreconditionError(
        absl::StrCat("certificate ", certificate_file, " does not hold an EC P-256 key"));
  }
  return ProfileCertificate{std::move(info), std::move(key)};
}

// CheckKeySigns signs a test digest with `signer` and verifies it with the certificate's key.
absl::Status CheckKeySigns(const stir::Signer& signer, const ProfileCertificate& cert,
                           const std::string& certificate_file) {
  const stir::Sha256Digest digest = stir::Sha256("shakend start-up self-check");
  absl::StatusOr<stir::Es256Signature> sig =
      signer.SignDigest(digest, absl::Now() + absl::Seconds(10));
  if (!sig.ok()) {
    return stir::WithPrefix(sig.status(), "the key cannot sign: ");
  }
  if (!stir::VerifyEs256(cert.key.get(), digest, *sig).ok()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the key does not match certificate ", certificate_file,
        " (a test signature does not verify with the certificate's public key)"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<stir::CertificateInfo> CheckKeyMatchesCertificate(
    const stir::Signer& signer, const std::string& certificate_file) {
  ASSIGN_OR_RETURN(ProfileCertificate cert, ReadProfileCertificate(certificate_file));
  RETURN_IF_ERROR(CheckKeySigns(signer, cert, certificate_file));
  return std::move(cert.info);
}

// LateSigner is the signer of a profile whose token key is opened in the background: UNAVAILABLE
// with the reason until Set, then the key. One acquire load on the signing path.
class SigningProfile::LateSigner final : public stir::Signer {
 public:
  absl::StatusOr<stir::Es256Signature> SignDigest(const stir::Sha256Digest& digest,
                                                  absl::Time deadline) const override {
    if (const stir::Signer* s = inner_.load(std::memory_order_acquire)) {
      return s->SignDigest(digest, deadline);
    }
    return NotOpen();
  }
  void SignDigestAsync(const stir::Sha256Digest& digest, absl::Time deadline,
                       SignDone done) const override {
    if (const stir::Signer* s = inner_.load(std::memory_order_acquire)) {
      s->SignDigestAsync(digest, deadline, std::move(done));
      return;
    }
    std::move(done)(NotOpen());
  }
  // Set publishes the opened key; once.
  void Set(std::unique_ptr<stir::Signer> signer) {
    owned_ = std::move(signer);
    inner_.store(owned_.get(), std::memory_order_release);
  }
  void SetWhy(std::string why) {
    absl::MutexLock lock(&mu_);
    why_ = std::move(why);
  }

 private:
  absl::Status NotOpen() const {
    absl::MutexLock lock(&mu_);
    return absl::UnavailableError(why_);
  }

  std::atomic<const stir::Signer*> inner_{nullptr};
  std::unique_ptr<stir::Signer> owned_;  // written once, before inner_ is published
  mutable absl::Mutex mu_;
  std::string why_ ABSL_GUARDED_BY(mu_);
};

SigningProfile::SigningProfile(ProfileConfig config, std::unique_ptr<stir::Signer> signer,
                               const hsm::KeyPool* pool,
                               std::unique_ptr<stir::PassportSigner> passport_signer,
                               const stir::Clock* clock)
    : config_(std::move(config)),
      scope_owner_(absl::StrCat("profile ", config_.name, " (", config_.certificate_file, ")")),
      signer_(std::move(signer)),
      pool_(pool),
      passport_signer_(std::move(passport_signer)),
      clock_(clock) {}

SigningProfile::~SigningProfile() {
  stop_.Notify();
  if (opener_.joinable()) opener_.join();
}

void SigningProfile::SetCertificate(stir::CertificateInfo info) {
  const std::string stamp = FileStamp(config_.certificate_file);
  absl::MutexLock lock(&mu_);
  cert_stamp_ = stamp;
  not_before_s_.store(absl::ToUnixSeconds(info.not_before), std::memory_order_relaxed);
  not_after_s_.store(absl::ToUnixSeconds(info.not_after), std::memory_order_relaxed);
  delegate_.store(stir::TnAuthListHasTns(info.tn_auth_list), std::memory_order_relaxed);
  cert_ = std::make_shared<const stir::CertificateInfo>(std::move(info));
}

absl::StatusOr<std::unique_ptr<SigningProfile>> SigningProfile::Open(
    const ProfileConfig& p, const Config& c, const stir::Clock* clock,
    std::function<void(absl::Duration)> on_queue_wait) {
  absl::StatusOr<hsm::OpenedSigner> opened =
      hsm::OpenSigner(p.key, SignerOptions(p, c, std::move(on_queue_wait)));
  if (!opened.ok()) return ProfileError(p.name, opened.status());
  std::unique_ptr<stir::Signer> signer = std::move(opened->signer);
  const hsm::KeyPool* pool = opened->pool;
  absl::StatusOr<stir::CertificateInfo> info = CheckKeyMatchesCertificate(*signer, p.certificate_file);
  if (!info.ok()) return ProfileError(p.name, info.status());

  stir::PassportSigner::Options options;
  options.max_iat_skew = c.max_iat_skew;
  options.x5u_policy = c.verifier.x5u_policy;
  absl::StatusOr<std::unique_ptr<stir::PassportSigner>> ps =
      stir::PassportSigner::Create(signer.get(), p.x5u, clock, options);
  if (!ps.ok()) return ProfileError(p.name, ps.status());
  auto profile = std::unique_ptr<SigningProfile>(
      new SigningProfile(p, std::move(signer), pool, *std::move(ps), clock));
  profile->SetCertificate(*std::move(info));
  return profile;
}

absl::StatusOr<std::unique_ptr<SigningProfile>> SigningProfile::OpenInBackground(
    const ProfileConfig& p, const Config& c, const stir::Clock* clock,
    std::function<void(absl::Duration)> on_queue_wait, absl::Status why) {
  absl::StatusOr<ProfileCertificate> cert = ReadProfileCertificate(p.certificate_file);
  if (!cert.ok()) return ProfileError(p.name, cert.status());
  auto late = std::make_unique<LateSigner>();
  LateSigner* late_signer = late.get();
  // `why` comes from Open, which names the profile already.
  late->SetWhy(absl::StrCat("its token could not be opened yet (",
                            absl::StripPrefix(why.message(), absl::StrCat("profile ", p.name, ": ")),
                            "); shakend keeps trying in the background"));
  stir::PassportSigner::Options options;
  options.max_iat_skew = c.max_iat_skew;
  options.x5u_policy = c.verifier.x5u_policy;
  absl::StatusOr<std::unique_ptr<stir::PassportSigner>> ps =
      stir::PassportSigner::Create(late.get(), p.x5u, clock, options);
  if (!ps.ok()) return ProfileError(p.name, ps.status());
  auto profile = std::unique_ptr<SigningProfile>(
      new SigningProfile(p, std::move(late), nullptr, *std::move(ps), clock));
  profile->late_ = late_signer;
  profile->SetCertificate(std::move(cert->info));
  profile->opener_ = std::thread([profile = profile.get(), c, on_queue_wait]() mutable {
    profile->OpenLater(std::move(c), std::move(on_queue_wait));
  });
  return profile;
}

void SigningProfile::OpenLater(Config c, std::function<void(absl::Duration)> on_queue_wait) {
  const absl::Duration initial = c.pkcs11.has_value() ? c.pkcs11->backoff_initial : absl::Seconds(1);
  const absl::Duration most = c.pkcs11.has_value() ? c.pkcs11->backoff_max : absl::Seconds(30);
  absl::Duration backoff = std::max(initial, absl::Seconds(1));
  const absl::Duration max_backoff = std::max(most, backoff);
  while (!stop_.WaitForNotificationWithTimeout(backoff)) {
    absl::Status status;
    absl::StatusOr<hsm::OpenedSigner> opened =
        hsm::OpenSigner(config_.key, SignerOptions(config_, c, on_queue_wait));
    absl::StatusOr<ProfileCertificate> cert = ReadProfileCertificate(config_.certificate_file);
    if (!opened.ok()) {
      status = opened.status();
    } else if (!cert.ok()) {
      status = cert.status();
    } else {
      status = CheckKeySigns(*opened->signer, *cert, config_.certificate_file);
    }
    if (status.ok()) {
      SetCertificate(std::move(cert->info));
      pool_.store(opened->pool, std::memory_order_release);
      late_->Set(std::move(opened->signer));
      LogInfo("profile_ready", {{"profile", config_.name},
                                {"key", key_description()},
                                {"x5u", config_.x5u},
                                {"detail", "opened in the background"}});
      return;
    }
    if (hsm::IsPinRefused(status)) {
      late_->SetWhy(absl::StrCat("the token refused the PIN (", status.message(),
                                 "); no further login is attempted: fix pkcs11.pin_source and "
                                 "restart shakend"));
      LogError("pin_refused", {{"profile", config_.name},
                               {"error", ToStd(status.message())},
                               {"detail", "no further login is attempted; fix pkcs11.pin_source "
                                          "and restart shakend"}});
      return;
    }
    late_->SetWhy(absl::StrCat("its token could not be opened yet (", status.message(),
                               "); shakend keeps trying in the background"));
    LogWarn("profile_open_failed", {{"profile", config_.name},
                                    {"error", ToStd(status.message())},
                                    {"retry_in", absl::FormatDuration(backoff)}});
    backoff = std::min(backoff * 2, max_backoff);
  }
}

bool SigningProfile::AllowsAttest(std::string_view attest) const {
  return std::find(config_.attest.begin(), config_.attest.end(), attest) != config_.attest.end();
}

hsm::Health SigningProfile::health() const {
  if (!CheckCertificateValidity().ok()) return hsm::Health::kDown;
  if (const hsm::KeyPool* pool = this->pool()) return pool->health();
  return late_ != nullptr ? hsm::Health::kDown : hsm::Health::kServing;  // not open yet
}

absl::Status SigningProfile::CheckOrigScope(std::string_view orig_tn) const {
  if (!delegate_.load(std::memory_order_relaxed)) return absl::OkStatus();
  const std::shared_ptr<const stir::CertificateInfo> cert = certificate();
  return stir::CheckOrigInScope(cert->tn_auth_list, orig_tn, scope_owner_);
}

absl::Status SigningProfile::CheckCertificateValidity() const {
  const int64_t now = absl::ToUnixSeconds(clock_->Now());
  const int64_t not_before = not_before_s_.load(std::memory_order_relaxed);
  const int64_t not_after = not_after_s_.load(std::memory_order_relaxed);
  if (now >= not_before && now <= not_after) return absl::OkStatus();
  const absl::TimeZone utc = absl::UTCTimeZone();
  constexpr char kFormat[] = "%Y-%m-%dT%H:%M:%SZ";
  return absl::FailedPreconditionError(absl::StrCat(
      "profile ", config_.name, ": its certificate ", config_.certificate_file,
      now > not_after ? " has expired" : " is not yet valid", " (notBefore ",
      absl::FormatTime(kFormat, absl::FromUnixSeconds(not_before), utc), ", notAfter ",
      absl::FormatTime(kFormat, absl::FromUnixSeconds(not_after), utc),
      "); install a valid certificate and reload (SIGHUP)"));
}

std::string SigningProfile::key_description() const {
  if (const hsm::KeyPool* pool = this->pool()) return pool->key_uri();
  if (late_ != nullptr) {  // a token key not open yet: its URI as KeyPool::key_uri gives it
    absl::StatusOr<hsm::Pkcs11Uri> uri = hsm::Pkcs11Uri::Parse(config_.key);
    return uri.ok() ? uri->redacted() : std::string("pkcs11:");
  }
  return config_.key;
}

std::shared_ptr<const stir::CertificateInfo> SigningProfile::certificate() const {
  absl::MutexLock lock(&mu_);
  return cert_;
}

absl::StatusOr<bool> SigningProfile::ReloadCertificateIfChanged() {
  const std::string stamp = FileStamp(config_.certificate_file);
  {
    absl::MutexLock lock(&mu_);
    if (stamp == cert_stamp_) return false;
    cert_stamp_ = stamp;  // a file that fails is reported once, until it changes again
  }
  RETURN_IF_ERROR(ReloadCertificate());
  return true;
}

absl::Status SigningProfile::ReloadCertificate() {
  if (late_ != nullptr && pool() == nullptr) {  // the key is not open: the certificate alone
    absl::StatusOr<ProfileCertificate> cert = ReadProfileCertificate(config_.certificate_file);
    if (!cert.ok()) return ProfileError(config_.name, cert.status());
    SetCertificate(std::move(cert->info));
    return absl::OkStatus();
  }
  absl::StatusOr<stir::CertificateInfo> info =
      CheckKeyMatchesCertificate(*signer_, config_.certificate_file);
  if (!info.ok()) return ProfileError(config_.name, info.status());
  SetCertificate(*std::move(info));
  return absl::OkStatus();
}

}  // namespace shaken::daemon
