// key_pool.h: KeyPool, the PKCS#11 implementation of stir::Signer: a pool of logged-in sessions,
// each with the signing key's handle found once, so that a signature costs exactly two PKCS#11
// calls (C_SignInit + C_Sign) and one mutex acquisition to take a session and one to give it back.
//
// Threads: SignDigest signs on the calling thread (tools, benchmarks). SignDigestAsync, what the
// daemon uses, queues the request for the pool's own workers, one thread per session, so the
// signatures in flight are the sessions whatever thread asked, and an RPC thread never waits on
// the token. The queue is bounded (queue_limit) and a request that cannot start before its
// deadline or max_wait fails at once or when that time passes, never later.
//
// Sizing (Little's law, L = λ·W): sessions needed ≥ target signatures per second × time one
// signature holds a session. A network HSM answering in 7 ms needs 2,000/s × 0.007 s = 14 sessions
// for 2,000 signs/s; a software token (SoftHSM2) is CPU-bound, so more sessions than cores only
// adds contention: size ≈ number of cores. Add headroom (×1.2–1.5) for bursts; a caller that finds
// every session busy waits at most until its deadline (and never more than max_wait).
#ifndef SHAKEN_HSM_KEY_POOL_H_
#define SHAKEN_HSM_KEY_POOL_H_

#include <p11-kit/pkcs11.h>

#include <atomic>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "absl/base/thread_annotations.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"
#include "hsm/module.h"
#include "hsm/pkcs11_uri.h"
#include "stir/signer.h"

namespace shaken::hsm {

// Health is what the daemon reports through grpc.health.v1 for a signing profile.
enum class Health {
  kServing,   // every session the pool wants is open (or still being opened at start-up)
  kDegraded,  // some sessions were lost and are not back yet; signing works with fewer
  kDown,      // no session: SignDigest fails fast with UNAVAILABLE while the pool reconnects
};
absl::string_view HealthName(Health h);

// KeyCopy says whether each pooled session signs with a session-object copy of the key
// (C_CopyObject with CKA_TOKEN=false; the copy never leaves the token). On SoftHSM2 a token object
// is decrypted at every C_SignInit and a session copy signs ~1.4x faster and scales better.
enum class KeyCopy {
  kNever,      // sign with the token object
  kIfAllowed,  // copy when CKA_COPYABLE is not false and C_CopyObject works; else token object
  kRequired,   // fail Create when the key cannot be copied
};

struct KeyPoolOptions {
  // size: sessions in the pool (see the sizing rule above). 1..1024.
  int size = 2;
  // open_at_start: sessions opened (synchronously) by Create, at least 1: it validates the key,
  // PIN and token. The others are opened by a background thread, one per open_interval, so a
  // network HSM is not hit by a connection storm at start-up or after an outage.
  int open_at_start = 1;
  absl::Duration open_interval = absl::Milliseconds(5);
  KeyCopy key_copy = KeyCopy::kIfAllowed;
  // max_wait caps how long SignDigest waits for a free session even when its deadline is later
  // (or infinite): then RESOURCE_EXHAUSTED. Never an unbounded block.
  absl::Duration max_wait = absl::Seconds(2);
  // Reconnect backoff after a failed open: initial, ×multiplier per failure, capped at max.
  absl::Duration backoff_initial = absl::Milliseconds(100);
  absl::Duration backoff_max = absl::Seconds(10);
  double backoff_multiplier = 2.0;
  // queue_limit: SignDigestAsync requests that may wait for a worker (beyond the `size` being
  // signed); one more is refused at once with RESOURCE_EXHAUSTED. 0: max(256, 16 × size): a small
  // pool on a fast token needs room for bursts (at 4 sessions, 64 waiting refused calls of an
  // open-loop load at 80 % of capacity); the deadline and max_wait checks bound the wait anyway.
  int queue_limit = 0;
  // on_queue_wait, when set, is told how long each SignDigestAsync request waited for a worker
  // (metrics). It runs on a worker thread and must not block.
  std::function<void(absl::Duration)> on_queue_wait;
};

// KeyPoolStats is a snapshot for metrics (shaken_hsm_* in the daemon).
struct KeyPoolStats {
  Health health = Health::kDown;
  int size = 0;
  int live = 0;  // open sessions (idle + in use)
  int idle = 0;
  bool key_copied = false;
  uint64_t signatures = 0;
  uint64_t sign_failures = 0;
  uint64_t sessions_opened = 0;
  uint64_t sessions_dropped = 0;
  uint64_t open_failures = 0;
  uint64_t waits = 0;  // checkouts that found every session busy and had to wait
  int queue_limit = 0;
  int queued = 0;       // SignDigestAsync requests waiting for a worker
  int in_flight = 0;    // requests a worker is signing now
  uint64_t queue_rejected = 0;  // refused at once: queue full, or could not start in time
  uint64_t queue_expired = 0;   // deadline or max_wait passed while queued
  std::string last_error;  // pin-free
};

// KeyPool signs with one private key on one token. Thread-safe: SignDigest may be called from any
// number of threads; no session is ever used by two threads at once. The pool must outlive every
// SignDigest call; destroying it stops its background thread (and closes its sessions unless
// ModuleQuirks::close_pooled_sessions is false).
//
// Faults: when a signature fails with CKR_SESSION_HANDLE_INVALID, CKR_SESSION_CLOSED,
// CKR_DEVICE_REMOVED, CKR_TOKEN_NOT_PRESENT, CKR_USER_NOT_LOGGED_IN, CKR_DEVICE_ERROR,
// CKR_OBJECT_HANDLE_INVALID, CKR_KEY_HANDLE_INVALID or CKR_KEY_FUNCTION_NOT_PERMITTED (SoftHSM2's
// answer when the token vanishes mid-signature), the session is dropped (never reused: its
// state is unknown) and the request retries once on a freshly opened session (login and key lookup
// again, key copied again); if that fails it returns UNAVAILABLE and the background thread
// reconnects with backoff while further requests fail fast. A session-level loss also drops every
// idle session opened before it (they may be gone too, and their handle numbers may be reused).
// Any other error drops the session too, without a retry. With ModuleQuirks::
// reinitialize_on_token_loss, a token that cannot be reached again makes the background thread
// re-initialise the module (all pools on it paused meanwhile).
class KeyPool final : public stir::Signer, private Module::Quiescer {
 public:
  // Create opens options.open_at_start sessions on `token`, logs in (once per token), finds the
  // private key `key_uri` names and checks that it is EC P-256 with CKA_SIGN and that the token
  // offers CKM_ECDSA. Errors name the key URI (never the PIN): NOT_FOUND (no such key),
  // FAILED_PRECONDITION (wrong key type/curve, no CKA_SIGN, no CKM_ECDSA, copy required but
  // refused), PERMISSION_DENIED (wrong PIN), INVALID_ARGUMENT (bad options or URI).
  static absl::StatusOr<std::unique_ptr<KeyPool>> Create(std::shared_ptr<Token> token,
                                                         const Pkcs11Uri& key_uri,
                                                         const KeyPoolOptions& options = {});

  ~KeyPool() override;
  KeyPool(const KeyPool&) = delete;
  KeyPool& operator=(const KeyPool&) = delete;

  // SignDigest: C_SignInit(CKM_ECDSA) + C_Sign over `digest` on a pooled session → r||s.
  // DEADLINE_EXCEEDED when `deadline` passes while every session is busy, RESOURCE_EXHAUSTED
  // when max_wait does; UNAVAILABLE when the token is down.
  absl::StatusOr<stir::Es256Signature> SignDigest(
      const stir::Sha256Digest& digest,
      absl::Time deadline = absl::InfiniteFuture()) const override;
  // SignDigestAsync queues the request for a pool worker and returns at once; `done` runs on the
  // worker (or inline when refused). RESOURCE_EXHAUSTED when the queue is full or the request
  // cannot start before its deadline or max_wait (estimated from recent signatures), or when
  // max_wait passes while queued; DEADLINE_EXCEEDED when the deadline passes while queued;
  // otherwise SignDigest's results.
  void SignDigestAsync(const stir::Sha256Digest& digest, absl::Time deadline,
                       SignDone done) const override;

  Health health() const;
  KeyPoolStats stats() const;
  // key_uri is the pin-free URI of the key, for logs and audit records.
  const std::string& key_uri() const { return where_; }
  const std::shared_ptr<Token>& token() const { return token_; }

 private:
  struct Lease {
    CK_SESSION_HANDLE session = CK_INVALID_HANDLE;
    CK_OBJECT_HANDLE key = CK_INVALID_HANDLE;
    bool copied = false;
    uint64_t generation = 0;
  };

  // Job is one SignDigestAsync request.
  struct Job {
    stir::Sha256Digest digest;
    absl::Time deadline;  // the caller's
    absl::Time expires;   // min(deadline, enqueued + max_wait): when it fails if still queued
    absl::Time enqueued;
    SignDone done;
  };

  KeyPool(std::shared_ptr<Token> token, Pkcs11Uri uri, const KeyPoolOptions& options);
  void Work();
  void Reap();
  void StopWorkers();
  absl::StatusOr<Lease> OpenLease(uint64_t generation) const;
  void Abandon(const Lease& lease) const;
  absl::StatusOr<Lease> Checkout(absl::Time deadline) const;
  absl::StatusOr<Lease> RetryLease(absl::Time deadline) const;
  void Return(const Lease& lease) const;
  void Drop(const Lease& lease, const absl::Status& why) const;
  absl::Status Sign(const Lease& lease, const stir::Sha256Digest& digest,
                    stir::Es256Signature& sig) const;
  void RecordOpenFailure(const absl::Status& st) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void RecordOpenSuccess(const Lease& lease) const ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  Health HealthLocked() const ABSL_SHARED_LOCKS_REQUIRED(mu_);
  void Maintain();
  void MaybeReinitialize(const absl::Status& open_error);
  void Pause() override;
  void Resume() override;

  const std::shared_ptr<Token> token_;
  const Pkcs11Uri uri_;
  const std::string where_;
  const KeyPoolOptions options_;
  mutable std::atomic<bool> copy_key_;

  mutable absl::Mutex mu_;
  mutable std::vector<Lease> idle_ ABSL_GUARDED_BY(mu_);
  mutable int live_ ABSL_GUARDED_BY(mu_) = 0;
  mutable int opening_ ABSL_GUARDED_BY(mu_) = 0;
  mutable uint64_t generation_ ABSL_GUARDED_BY(mu_) = 1;
  mutable bool filled_ ABSL_GUARDED_BY(mu_) = false;
  mutable bool stopping_ ABSL_GUARDED_BY(mu_) = false;
  mutable bool paused_ ABSL_GUARDED_BY(mu_) = false;  // module being re-initialised
  mutable int consecutive_failures_ ABSL_GUARDED_BY(mu_) = 0;
  mutable absl::Duration backoff_ ABSL_GUARDED_BY(mu_);
  mutable absl::Time next_attempt_ ABSL_GUARDED_BY(mu_) = absl::InfinitePast();
  mutable std::string last_error_ ABSL_GUARDED_BY(mu_);

  mutable std::atomic<uint64_t> signatures_{0};
  mutable std::atomic<uint64_t> sign_failures_{0};
  mutable std::atomic<uint64_t> sessions_opened_{0};
  mutable std::atomic<uint64_t> sessions_dropped_{0};
  mutable std::atomic<uint64_t> open_failures_{0};
  mutable std::atomic<uint64_t> waits_{0};

  std::thread maintainer_;

  // The asynchronous side: one FIFO queue, `size` workers, and a reaper that fails queued
  // requests when their time is up. q_mu_ is never held while signing.
  const int queue_limit_;
  mutable absl::Mutex q_mu_;
  mutable absl::CondVar work_cv_;
  mutable absl::CondVar reaper_cv_;
  mutable std::deque<Job> queue_ ABSL_GUARDED_BY(q_mu_);
  mutable int idle_workers_ ABSL_GUARDED_BY(q_mu_) = 0;
  mutable int in_flight_ ABSL_GUARDED_BY(q_mu_) = 0;
  mutable bool q_stopping_ ABSL_GUARDED_BY(q_mu_) = false;
  mutable absl::Time reaper_wake_ ABSL_GUARDED_BY(q_mu_) = absl::InfiniteFuture();
  mutable std::atomic<uint64_t> queue_rejected_{0};
  mutable std::atomic<uint64_t> queue_expired_{0};
  // Exponentially weighted mean time a worker holds a request (ns), for the start estimate.
  mutable std::atomic<int64_t> service_ns_{0};
  std::vector<std::thread> workers_;
  std::thread reaper_;
};

// SignerConfig is everything needed to sign with one token key, for shakenctl (X.509 signing in a
// key ceremony) and for one daemon signing profile.
struct SignerConfig {
  std::string module_path;  // empty: the key URI's module-path
  std::string key_uri;      // RFC 7512, type=private
  std::optional<PinSource> pin;  // unset: the key URI's pin-source (or pin-value if allowed)
  bool allow_pin_value = false;  // tests only
  std::optional<ModuleQuirks> quirks;  // unset: chosen by Module::Load(path) (C_GetInfo, path)
  KeyPoolOptions pool;
};

// OpenKeyPool loads the module (or reuses it), opens the token (or reuses its login) and creates a
// KeyPool. Errors as Module::Load, Module::OpenToken and KeyPool::Create.
absl::StatusOr<std::unique_ptr<KeyPool>> OpenKeyPool(const SignerConfig& config);

}  // namespace shaken::hsm

#endif  // SHAKEN_HSM_KEY_POOL_H_
