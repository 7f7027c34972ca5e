// core.h: the service core of shakend, shared by every front end: gRPC (service.h), and the SBC
// front ends (REST, SIP) in sub-folders. A front end turns its protocol's request into a shaken.v1
// message, identifies the caller (Authorizer), calls the core and maps the absl::Status and the
// answer back into its protocol. So every front end has the same profiles, authorization, limits,
// input checks, verdicts, metrics of signing and verification, and audit records.
//
// No method ever waits: a token signature is handed to the profile's key pool (its workers
// complete the call), a certificate fetch to the verifier's fetch loop (it completes the call);
// only a refusal, a software-key signature and a verification whose certificates are cached
// complete on the calling thread, because that is cheaper than a hand-off. Every hand-off is
// bounded: the pool's queue per profile, verifier.max_in_flight for verification (so slow x5u
// servers cannot starve signing), the fetch loop's slots.
#ifndef SHAKEN_DAEMON_CORE_H_
#define SHAKEN_DAEMON_CORE_H_

#include <atomic>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/functional/any_invocable.h"
#include "absl/status/status.h"
#include "absl/time/time.h"
#include "daemon/authz.h"
#include "daemon/metrics.h"
#include "daemon/profiles.h"
#include "shaken/v1/shaken.pb.h"
#include "stir/verifier.h"

namespace shaken::daemon {

// Front is the front end a call came in through; audit records name it (`front`).
enum class Front { kGrpc, kRest, kSip };
std::string_view FrontName(Front f);

// ProfileSet is the signing profiles in force, replaced as a whole by a reload: a call keeps the
// set it started with (and so its profile) until it completes.
struct ProfileSet {
  // MakeProfileSet indexes `profiles` (configuration order; exactly one is_default) and gets
  // their metric series.
  static std::shared_ptr<const ProfileSet> Make(std::vector<std::shared_ptr<SigningProfile>> profiles,
                                                Metrics* metrics);

  std::vector<std::shared_ptr<SigningProfile>> profiles;
  std::vector<size_t> metric_series;  // Metrics::ProfileSeries of each profile
  absl::flat_hash_map<std::string, size_t> index;
  size_t default_index = 0;
};

// VerifierInForce is the verification settings in force, replaced as a whole by a reload.
struct VerifierInForce {
  std::shared_ptr<const stir::Verifier> verifier;  // null: verification disabled
  // The verifier's x5u fetcher, also what fetches rich call data to sign (rcdi); null with it.
  std::shared_ptr<const stir::CertificateFetcher> fetcher;
  // Verifications in progress at most, all front ends together (beyond: RESOURCE_EXHAUSTED).
  int max_in_flight = 4096;
};

// ServiceDeps is what the core needs; authorizer and metrics outlive the core.
struct ServiceDeps {
  std::shared_ptr<const ProfileSet> profiles;
  VerifierInForce verifier;
  const Authorizer* authorizer = nullptr;
  Metrics* metrics = nullptr;
  bool audit_tns = false;
};


// ServiceCore signs and verifies for every front end. Thread-safe.
class ServiceCore {
 public:
  explicit ServiceCore(ServiceDeps deps);

  // Done is called exactly once with the outcome; the answer message is filled when it is OK.
  using Done = absl::AnyInvocable<void(absl::Status) &&>;

  // CallContext says who asks, through which front end and method, and by when. `method` is the
  // authorization vocabulary of the clients rules (Sign, SignStream, Verify): a REST or SIP
  // signing request is a Sign, a verification a Verify. `deadline`: the caller's own (the time
  // after which nobody waits for the answer); InfiniteFuture when it has none.
  struct CallContext {
    const Caller* caller = nullptr;
    Front front = Front::kGrpc;
    Method method = Method::kSign;
    absl::Time deadline = absl::InfiniteFuture();
  };

  // StartSign signs one request and calls `done` exactly once: on this thread for a refusal or
  // a software key, on the profile's pool worker for a token key. Refusals: PERMISSION_DENIED
  // (rules), INVALID_ARGUMENT (request; the message names the field), FAILED_PRECONDITION
  // (certificate not valid now), UNAVAILABLE / RESOURCE_EXHAUSTED / DEADLINE_EXCEEDED (token
  // down, queue full, no start in time; the message names the profile). `ctx.caller`, `request`
  // and `response` must stay valid until `done`.
  void StartSign(const CallContext& ctx, const shaken::v1::SignRequest& request,
                 shaken::v1::SignResponse* response, Done done) const;

  // StartVerify verifies the Identity header(s) of one call and calls `done` exactly once: OK
  // with the verdicts in `response` (a failed verification is an OK call with passed=false), or
  // PERMISSION_DENIED, FAILED_PRECONDITION (verification disabled), INVALID_ARGUMENT (the request
  // is not usable: ATIS-1000082 E1/E2), RESOURCE_EXHAUSTED (verifier.max_in_flight). The answer
  // comes before `ctx.deadline` (at 90 % of the budget, at most 1 s early): a certificate still
  // being fetched then is a 436 verdict, not a missed deadline. `ctx.caller`, `request` and
  // `response` must stay valid until `done`.
  void StartVerify(const CallContext& ctx, const shaken::v1::VerifyRequest& request,
                   shaken::v1::VerifyResponse* response, Done done) const;

  // ListProfiles lists the profiles `caller` may sign with (all of them for an unrestricted
  // caller), with their certificates and health.
  absl::Status ListProfiles(const Caller& caller, shaken::v1::ListProfilesResponse* response) const;

  const Authorizer& authorizer() const { return *deps_.authorizer; }
  Metrics* metrics() const { return deps_.metrics; }
  // verifying: false when verifier.enabled is false.
  bool verifying() const { return verifier_in_force()->verifier != nullptr; }

  // The profiles / verifier in force now. Replace* puts a new set in force for every call that
  // starts after it; calls in progress finish with what they started with. The last reference
  // to a replaced set may be dropped on a pool worker or fetch thread: whoever replaces keeps the
  // old one and frees it elsewhere once it is no longer in use (use_count() == 1).
  std::shared_ptr<const ProfileSet> profiles() const { return profiles_.load(); }
  std::shared_ptr<const VerifierInForce> verifier_in_force() const { return verifier_.load(); }
  void ReplaceProfiles(std::shared_ptr<const ProfileSet> next) { profiles_.store(std::move(next)); }
  void ReplaceVerifier(VerifierInForce next) {
    verifier_.store(std::make_shared<const VerifierInForce>(std::move(next)));
  }
  void SetAuditTns(bool on) { audit_tns_.store(on, std::memory_order_relaxed); }
  // verify_in_flight: verifications accepted and not yet answered (all front ends).
  int verify_in_flight() const { return verify_in_flight_.load(std::memory_order_relaxed); }

 private:
  struct SignCall;

  void AuditSign(const SignCall& call, const absl::Status& status) const;
  void CompleteSign(std::unique_ptr<SignCall> call, absl::Status status) const;
  // StartSignDiv is StartSign's path for a request with div (RFC 8946): its own field checks,
  // then the profile's div signer.
  void StartSignDiv(std::unique_ptr<SignCall> call, absl::Time deadline) const;
  // StartSignRphOrRcd is StartSign's path for an rph PASSporT (RFC 8443) or an rcd one (RFC
  // 9795): field checks, rcdi digests for rcd, then the profile's signer (core_ppt.cc).
  void StartSignRphOrRcd(std::unique_ptr<SignCall> call, std::string_view ppt,
                         absl::Time deadline) const;
  // CheckPptFields: INVALID_ARGUMENT when the request's ppt is unknown or disagrees with the
  // div, rph and rcd fields set.
  static absl::Status CheckPptFields(const shaken::v1::SignRequest& req, std::string_view ppt);
  // RcdFrom maps the API's rich call data (empty fields absent) to stir's.
  static stir::RcdSigning RcdFrom(const shaken::v1::Rcd& rcd);
  // WithRcdi computes the rcdi digests of `rcd` (its content by reference fetched by the
  // verifier's x5u fetcher, never on the calling thread) and continues with `next`, on the
  // fetcher's thread or inline when nothing is fetched; a failure completes `call`.
  using RcdNext = absl::AnyInvocable<void(std::unique_ptr<SignCall>, stir::RcdSigning) &&>;
  void WithRcdi(std::unique_ptr<SignCall> call, stir::RcdSigning rcd, absl::Time deadline,
                RcdNext next) const;
  // ApiFieldError renames a stir signing error that names a request field ("auth: ...") as the
  // API does ("rph.auth: ..."); nullopt when `status` names none.
  static std::optional<absl::Status> ApiFieldError(const absl::Status& status,
                                                   std::string_view ppt);
  // SignDone completes `call` with the signer's result (errors on the fields of `ppt` named as
  // the API names them).
  stir::PassportSigner::SignDone SignDone(std::unique_ptr<SignCall> call,
                                          std::string_view ppt) const;
  static std::string ProfilesFor(const ProfileSet& set, const Caller& caller,
                                 std::string_view method);
  // VerifyRequestError: why `request` cannot be verified, or OK.
  static absl::Status VerifyRequestError(const shaken::v1::VerifyRequest& request);

  ServiceDeps deps_;  // without its profiles and verifier: those are in force below
  std::atomic<std::shared_ptr<const ProfileSet>> profiles_;
  std::atomic<std::shared_ptr<const VerifierInForce>> verifier_;
  std::atomic<bool> audit_tns_;
  mutable std::atomic<int> verify_in_flight_{0};
};

}  // namespace shaken::daemon

#endif  // SHAKEN_DAEMON_CORE_H_
