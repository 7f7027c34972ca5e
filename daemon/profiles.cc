#include "daemon/profiles.h"

#include <algorithm>
#include <optional>
#include <string_view>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "hsm/open_signer.h"
#include "hsm/secret.h"
#include "stir/absl_compat.h"
#include "stir/cert_validator.h"
#include "stir/openssl_util.h"
#include "stir/status_macros.h"

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

}  // namespace

absl::StatusOr<stir::CertificateInfo> CheckKeyMatchesCertificate(
    const stir::Signer& signer, const std::string& certificate_file) {
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
  const EVP_PKEY* cert_key = X509_get0_pubkey(leaf);
  if (!stir::IsP256Key(cert_key)) {
    return absl::FailedPreconditionError(
        absl::StrCat("certificate ", certificate_file, " does not hold an EC P-256 key"));
  }
  const stir::Sha256Digest digest = stir::Sha256("shakend start-up self-check");
  absl::StatusOr<stir::Es256Signature> sig =
      signer.SignDigest(digest, absl::Now() + absl::Seconds(10));
  if (!sig.ok()) {
    return absl::Status(sig.status().code(),
                        absl::StrCat("the key cannot sign: ", sig.status().message()));
  }
  if (!stir::VerifyEs256(cert_key, digest, *sig).ok()) {
    return absl::FailedPreconditionError(absl::StrCat(
        "the key does not match certificate ", certificate_file,
        " (a test signature does not verify with the certificate's public key)"));
  }
  return info;
}

SigningProfile::SigningProfile(ProfileConfig config, std::unique_ptr<stir::Signer> signer,
                               const hsm::KeyPool* pool,
                               std::unique_ptr<stir::PassportSigner> passport_signer,
                               const stir::Clock* clock)
    : config_(std::move(config)),
      signer_(std::move(signer)),
      pool_(pool),
      passport_signer_(std::move(passport_signer)),
      clock_(clock) {}

void SigningProfile::SetCertificate(stir::CertificateInfo info) {
  absl::MutexLock lock(&mu_);
  not_before_s_.store(absl::ToUnixSeconds(info.not_before), std::memory_order_relaxed);
  not_after_s_.store(absl::ToUnixSeconds(info.not_after), std::memory_order_relaxed);
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

bool SigningProfile::AllowsAttest(std::string_view attest) const {
  return std::find(config_.attest.begin(), config_.attest.end(), attest) != config_.attest.end();
}

hsm::Health SigningProfile::health() const {
  if (!CheckCertificateValidity().ok()) return hsm::Health::kDown;
  return pool_ != nullptr ? pool_->health() : hsm::Health::kServing;
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
  return pool_ != nullptr ? pool_->key_uri() : config_.key;
}

std::shared_ptr<const stir::CertificateInfo> SigningProfile::certificate() const {
  absl::MutexLock lock(&mu_);
  return cert_;
}

absl::Status SigningProfile::ReloadCertificate() {
  absl::StatusOr<stir::CertificateInfo> info =
      CheckKeyMatchesCertificate(*signer_, config_.certificate_file);
  if (!info.ok()) return ProfileError(config_.name, info.status());
  SetCertificate(*std::move(info));
  return absl::OkStatus();
}

}  // namespace shaken::daemon
