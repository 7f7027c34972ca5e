// profiles.h: signing profiles. A profile is a key (in a PKCS#11 token, or a PEM file for labs
// and carriers without an HSM), the certificate chain published at its x5u, and the attestation
// levels it may sign.
#ifndef SHAKEN_DAEMON_PROFILES_H_
#define SHAKEN_DAEMON_PROFILES_H_

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "absl/synchronization/notification.h"
#include "daemon/config.h"
#include "hsm/key_pool.h"
#include "stir/cert_source.h"
#include "stir/clock.h"
#include "stir/passport.h"
#include "stir/signer.h"

namespace shaken::daemon {

// SigningProfile signs with one key for one x5u. Thread-safe.
class SigningProfile {
 public:
  // Open makes the profile's signer (a KeyPool on the token, or an in-memory key), reads its
  // certificate, and runs the start-up self-check: the key signs a test digest that verifies
  // against the certificate's public key, and the certificate carries a TNAuthList. Errors name
  // the profile and say what to fix.
  // `on_queue_wait`, when set, is told how long each asynchronous signature waited for a token
  // session worker (metrics); it runs on the pool's worker thread.
  static absl::StatusOr<std::unique_ptr<SigningProfile>> Open(
      const ProfileConfig& config, const Config& daemon_config, const stir::Clock* clock,
      std::function<void(absl::Duration)> on_queue_wait = nullptr);
  // OpenInBackground is Open for a token key whose token cannot be reached now (`why`, from
  // Open; hsm::IsTokenUnreachable): the certificate is read at once (errors as Open), and a
  // background thread opens the key (backoff: pkcs11.backoff_initial doubling up to
  // pkcs11.backoff_max, at least 1 s), runs the self-check and starts signing. Until then the
  // profile is kDown and signing is UNAVAILABLE naming the profile and the last error. A PIN
  // the token refuses ends the retries (no second C_Login: a real HSM locks the user out); the
  // profile stays down and says to fix the PIN and restart.
  static absl::StatusOr<std::unique_ptr<SigningProfile>> OpenInBackground(
      const ProfileConfig& config, const Config& daemon_config, const stir::Clock* clock,
      std::function<void(absl::Duration)> on_queue_wait, absl::Status why);
  ~SigningProfile();

  const std::string& name() const { return config_.name; }
  const ProfileConfig& config() const { return config_; }
  bool AllowsAttest(std::string_view attest) const;

  // Sign signs `claims`; the caller has checked the attestation level.
  absl::StatusOr<stir::SignedPassport> Sign(const stir::ShakenClaims& claims,
                                            absl::Time deadline) const {
    return passport_signer_->Sign(claims, deadline);
  }
  // SignAsync signs without blocking the caller: a token key signs on its pool's workers (done
  // runs there), a file key inline (done runs before SignAsync returns).
  void SignAsync(const stir::ShakenClaims& claims, absl::Time deadline,
                 stir::PassportSigner::SignDone done) const {
    passport_signer_->SignAsync(claims, deadline, std::move(done));
  }
  // SignDivAsync is SignAsync for a div PASSporT (stir::PassportSigner::SignDiv).
  void SignDivAsync(const stir::DivClaims& claims, absl::Time deadline,
                    stir::PassportSigner::SignDone done) const {
    passport_signer_->SignDivAsync(claims, deadline, std::move(done));
  }
  // SignRphAsync and SignRcdAsync are SignAsync for rph (RFC 8443) and rcd (RFC 9795) PASSporTs.
  void SignRphAsync(const stir::RphClaims& claims, absl::Time deadline,
                    stir::PassportSigner::SignDone done) const {
    passport_signer_->SignRphAsync(claims, deadline, std::move(done));
  }
  void SignRcdAsync(const stir::RcdClaims& claims, absl::Time deadline,
                    stir::PassportSigner::SignDone done) const {
    passport_signer_->SignRcdAsync(claims, deadline, std::move(done));
  }

  // health: kDown while the profile certificate is outside its validity period (see
  // CheckCertificateValidity); otherwise kServing for a file key, the pool's health for a token
  // key.
  hsm::Health health() const;
  // CheckCertificateValidity is OK while the profile's clock lies within the cached profile
  // certificate's notBefore..notAfter; otherwise FAILED_PRECONDITION naming the profile, the
  // certificate file and its validity. Cheap (two atomic loads and the clock: no lock, no file
  // I/O): it runs before every signature, because a PASSporT signed under an expired or not yet
  // valid certificate fails every verifier (RFC 5280 §4.1.2.5).
  absl::Status CheckCertificateValidity() const;
  // CheckOrigScope is stir::CheckOrigInScope for the profile certificate: a delegate certificate
  // (its TNAuthList holds TNs or ranges: RFC 9060, ATIS-1000092) signs only for its numbers.
  // FAILED_PRECONDITION names the number, the certificate's scope and the profile;
  // INVALID_ARGUMENT when `orig_tn` is not a TN. Cheap for a profile whose certificate holds an
  // SPC only (one atomic load); a delegate profile reads the certificate under the lock.
  absl::Status CheckOrigScope(std::string_view orig_tn) const;
  // pool is the KeyPool of a token key, null for a file key and for a token key not open yet.
  const hsm::KeyPool* pool() const { return pool_.load(std::memory_order_acquire); }
  // signer signs digests with the profile's key (the pool, or the in-memory file key).
  const stir::Signer& signer() const { return *signer_; }
  // key_description names the key without any secret: the PKCS#11 URI or "file:<path>".
  std::string key_description() const;

  // certificate describes the profile certificate (the leaf of `certificate`).
  std::shared_ptr<const stir::CertificateInfo> certificate() const;
  // ReloadCertificate re-reads the certificate file (SIGHUP, after a renewal) and checks that it
  // still matches the key; on error the old certificate stays.
  absl::Status ReloadCertificate();
  // ReloadCertificateIfChanged does ReloadCertificate when the certificate file changed since it
  // was last read (device, inode, size or modification time: an editor's rename, a Kubernetes
  // ConfigMap's symlink swap, a copy in place). True when it was read again; an error (the old
  // certificate stays) is reported once per change of the file.
  absl::StatusOr<bool> ReloadCertificateIfChanged();

 private:
  class LateSigner;

  SigningProfile(ProfileConfig config, std::unique_ptr<stir::Signer> signer,
                 const hsm::KeyPool* pool, std::unique_ptr<stir::PassportSigner> passport_signer,
                 const stir::Clock* clock);
  void SetCertificate(stir::CertificateInfo info);
  // OpenLater is OpenInBackground's thread: retries until the key is open, stop_ or a refused PIN.
  void OpenLater(Config daemon_config, std::function<void(absl::Duration)> on_queue_wait);

  const ProfileConfig config_;
  const std::string scope_owner_;  // "profile NAME (CERT FILE)": names it in scope refusals
  const std::unique_ptr<stir::Signer> signer_;
  LateSigner* late_ = nullptr;  // signer_, when the key is opened in the background
  std::atomic<const hsm::KeyPool*> pool_;
  const std::unique_ptr<stir::PassportSigner> passport_signer_;
  const stir::Clock* const clock_;
  absl::Notification stop_;
  std::thread opener_;
  // The validity of cert_, Unix seconds, for the lock-free check on the signing path. Written
  // with cert_ under mu_; a check racing a reload may see one bound of the old certificate and
  // one of the new, which decides at most the signatures of that instant.
  std::atomic<int64_t> not_before_s_{0};
  std::atomic<int64_t> not_after_s_{0};
  std::atomic<bool> delegate_{false};  // cert_'s TNAuthList holds TNs or ranges
  mutable absl::Mutex mu_;
  std::shared_ptr<const stir::CertificateInfo> cert_ ABSL_GUARDED_BY(mu_);
  std::string cert_stamp_ ABSL_GUARDED_BY(mu_);  // FileStamp of the file when last read
};

// CheckKeyMatchesCertificate reads the PEM chain at `certificate_file`, signs a test digest with
// `signer` and verifies it with the leaf's key; it also requires a TNAuthList in the leaf.
// Returns the leaf's description.
absl::StatusOr<stir::CertificateInfo> CheckKeyMatchesCertificate(const stir::Signer& signer,
                                                                 const std::string& certificate_file);

}  // namespace shaken::daemon

#endif  // SHAKEN_DAEMON_PROFILES_H_
