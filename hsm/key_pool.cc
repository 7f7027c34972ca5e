#include "hsm/key_pool.h"

#include <algorithm>
#include <cstring>
#include <utility>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "hsm/ck.h"
#include "hsm/objects.h"
#include "stir/status_macros.h"

namespace shaken::hsm {
namespace {

// Errors after which every session of the token may be gone (not just this one's key handle).
bool IsSessionLevelLoss(CK_RV rv) {
  return rv == CKR_SESSION_HANDLE_INVALID || rv == CKR_SESSION_CLOSED || rv == CKR_DEVICE_REMOVED ||
         rv == CKR_TOKEN_NOT_PRESENT || rv == CKR_USER_NOT_LOGGED_IN || rv == CKR_DEVICE_ERROR;
}

}  // namespace

absl::string_view HealthName(Health h) {
  switch (h) {
    case Health::kServing:
      return "SERVING";
    case Health::kDegraded:
      return "DEGRADED";
    case Health::kDown:
      return "DOWN";
  }
  return "?";
}

KeyPool::KeyPool(std::shared_ptr<Token> token, Pkcs11Uri uri, const KeyPoolOptions& options)
    : token_(std::move(token)),
      uri_(std::move(uri)),
      where_(uri_.redacted()),
      options_(options),
      copy_key_(options.key_copy != KeyCopy::kNever),
      backoff_(options.backoff_initial),
      queue_limit_(options.queue_limit > 0 ? options.queue_limit
                                           : std::max(256, 16 * options.size)) {}

absl::StatusOr<std::unique_ptr<KeyPool>> KeyPool::Create(std::shared_ptr<Token> token,
                                                         const Pkcs11Uri& key_uri,
                                                         const KeyPoolOptions& options) {
  const std::string prefix = absl::StrCat("signing key ", key_uri.redacted(), ": ");
  if (token == nullptr) return absl::InvalidArgumentError(absl::StrCat(prefix, "no token"));
  if (options.size < 1 || options.size > 1024 || options.open_at_start < 1 ||
      options.open_at_start > options.size || options.max_wait < absl::ZeroDuration() ||
      options.backoff_initial <= absl::ZeroDuration() || options.backoff_multiplier < 1.0 ||
      options.queue_limit < 0 || options.queue_limit > 1000000) {
    return absl::InvalidArgumentError(
        absl::StrCat(prefix,
                     "bad pool options (need 1 <= open_at_start <= size <= 1024, backoff > 0, "
                     "0 <= queue_limit <= 1000000)"));
  }
  if (absl::Status st = token->CheckEcdsaSupport(); !st.ok()) return stir::WithPrefix(st, prefix);

  std::unique_ptr<KeyPool> pool(new KeyPool(std::move(token), key_uri, options));
  for (int i = 0; i < options.open_at_start; ++i) {
    absl::StatusOr<Lease> lease = pool->OpenLease(/*generation=*/1);
    if (!lease.ok()) {
      absl::MutexLock lock(&pool->mu_);
      for (const Lease& l : pool->idle_) pool->Abandon(l);
      pool->idle_.clear();
      return stir::WithPrefix(lease.status(), prefix);
    }
    absl::MutexLock lock(&pool->mu_);
    pool->RecordOpenSuccess(*lease);
  }
  {
    absl::MutexLock lock(&pool->mu_);
    pool->next_attempt_ = absl::Now() + options.open_interval;
  }
  pool->token_->module().Register(pool.get());
  pool->maintainer_ = std::thread([p = pool.get()] { p->Maintain(); });
  pool->workers_.reserve(options.size);
  for (int i = 0; i < options.size; ++i) {
    pool->workers_.emplace_back([p = pool.get()] { p->Work(); });
  }
  pool->reaper_ = std::thread([p = pool.get()] { p->Reap(); });
  return pool;
}

KeyPool::~KeyPool() {
  StopWorkers();
  if (maintainer_.joinable()) token_->module().Unregister(this);
  {
    absl::MutexLock lock(&mu_);
    stopping_ = true;
  }
  if (maintainer_.joinable()) maintainer_.join();
  absl::MutexLock lock(&mu_);
  for (const Lease& l : idle_) Abandon(l);
  idle_.clear();
}

absl::StatusOr<KeyPool::Lease> KeyPool::OpenLease(uint64_t generation) const {
  const CK_FUNCTION_LIST* fl = token_->functions();
  ASSIGN_OR_RETURN(CK_SESSION_HANDLE session, token_->OpenSession(/*rw=*/false));
  Lease lease{session, CK_INVALID_HANDLE, false, generation};
  absl::StatusOr<CK_OBJECT_HANDLE> key = internal::FindSigningKey(fl, session, uri_);
  if (!key.ok()) {
    Abandon(lease);
    return key.status();
  }
  lease.key = *key;
  if (copy_key_.load(std::memory_order_relaxed)) {
    // PKCS#11 v3.0 §4.4: CKA_COPYABLE false forbids C_CopyObject; absent means copyable.
    std::optional<bool> copyable = internal::GetBool(fl, session, *key, CKA_COPYABLE);
    absl::Status st;
    if (copyable == false) {
      st = absl::FailedPreconditionError(absl::StrCat(where_, " has CKA_COPYABLE false"));
    } else {
      CK_BBOOL no = CK_FALSE;
      CK_ATTRIBUTE tmpl[] = {{CKA_TOKEN, &no, sizeof(no)}};
      CK_OBJECT_HANDLE copy = CK_INVALID_HANDLE;
      st = CK_CALL(fl, C_CopyObject, where_, session, *key, tmpl, 1, &copy);
      if (st.ok()) {
        lease.key = copy;
        lease.copied = true;
      }
    }
    if (!st.ok()) {
      if (options_.key_copy == KeyCopy::kRequired) {
        Abandon(lease);
        return stir::WithPrefix(st, "key copy required but refused: ");
      }
      // The token or its policy refuses copies: sign with the token object from now on.
      copy_key_.store(false, std::memory_order_relaxed);
    }
  }
  sessions_opened_.fetch_add(1, std::memory_order_relaxed);
  return lease;
}

void KeyPool::Abandon(const Lease& lease) const {
  if (token_->module().quirks().close_pooled_sessions) {
    token_->CloseSession(lease.session);  // closing also destroys the session-object key copy
  } else if (lease.copied) {
    // The session stays open (quirk); do not leave the key copy behind in it. Best effort: in the
    // loss cases it is already gone.
    (void)CK_CALL(token_->functions(), C_DestroyObject, where_, lease.session, lease.key);
  }
}

absl::StatusOr<KeyPool::Lease> KeyPool::Checkout(absl::Time deadline) const {
  const absl::Time cap = absl::Now() + options_.max_wait;
  const bool capped = cap < deadline;
  absl::MutexLock lock(&mu_);
  auto ready = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    return !idle_.empty() || live_ == 0 || stopping_;
  };
  if (!ready()) {
    waits_.fetch_add(1, std::memory_order_relaxed);
    if (!mu_.AwaitWithDeadline(absl::Condition(&ready), capped ? cap : deadline)) {
      if (capped) {
        return absl::ResourceExhaustedError(absl::StrCat(
            where_, ": all ", live_, " sessions busy for ", absl::FormatDuration(options_.max_wait)));
      }
      return absl::DeadlineExceededError(
          absl::StrCat(where_, ": deadline passed while all ", live_, " sessions were busy"));
    }
  }
  if (idle_.empty()) {
    return absl::UnavailableError(absl::StrCat(where_, ": token down, reconnecting",
                                               last_error_.empty() ? "" : " (last error: ",
                                               last_error_, last_error_.empty() ? "" : ")"));
  }
  Lease lease = idle_.back();  // LIFO: the most recently used session is the warmest
  idle_.pop_back();
  return lease;
}

void KeyPool::Return(const Lease& lease) const {
  absl::MutexLock lock(&mu_);
  if (lease.generation < generation_) {
    // Opened before a session-level loss: its handle may now name someone else's session.
    --live_;
    sessions_dropped_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  idle_.push_back(lease);
}

void KeyPool::Drop(const Lease& lease, const absl::Status& why) const {
  std::optional<CK_RV> rv = internal::CkrOf(why);
  std::vector<Lease> stale;
  {
    absl::MutexLock lock(&mu_);
    --live_;
    sessions_dropped_.fetch_add(1, std::memory_order_relaxed);
    last_error_ = std::string(why.message());
    if (rv && IsSessionLevelLoss(*rv) && lease.generation == generation_) {
      // Every session opened so far may be gone: drop the idle ones now, the busy ones when they
      // come back (Return), rather than letting each request find out by failing.
      ++generation_;
      for (const Lease& l : idle_) {
        if (l.generation < generation_) stale.push_back(l);
      }
      idle_.erase(std::remove_if(idle_.begin(), idle_.end(),
                                 [&](const Lease& l) { return l.generation < generation_; }),
                  idle_.end());
      live_ -= static_cast<int>(stale.size());
      sessions_dropped_.fetch_add(stale.size(), std::memory_order_relaxed);
    }
  }
  // The sessions in a session-level loss are gone already: nothing to close. Otherwise the broken
  // session is closed (or its key copy destroyed) and never used again.
  if (!(rv && IsSessionLevelLoss(*rv))) Abandon(lease);
}

absl::Status KeyPool::Sign(const Lease& lease, const stir::Sha256Digest& digest,
                           stir::Es256Signature& sig) const {
  const CK_FUNCTION_LIST* fl = token_->functions();
  // CKM_ECDSA over a digest computed in process (see ModuleQuirks); PKCS#11 v2.40 §2.3.6: the
  // signature is r || s, each the size of the order (32 bytes for P-256): the JWS form.
  CK_MECHANISM mech{CKM_ECDSA, nullptr, 0};
  RETURN_IF_ERROR(CK_CALL(fl, C_SignInit, where_, lease.session, &mech, lease.key));
  stir::Sha256Digest data = digest;  // C_Sign takes a non-const pointer
  CK_ULONG len = sig.size();
  RETURN_IF_ERROR(CK_CALL(fl, C_Sign, where_, lease.session, data.data(), data.size(), sig.data(), &len));
  if (len != sig.size()) {
    return absl::InternalError(absl::StrCat(where_, ": C_Sign returned ", len, " bytes, not 64"));
  }
  return absl::OkStatus();
}

absl::StatusOr<KeyPool::Lease> KeyPool::RetryLease(absl::Time deadline) const {
  bool fresh = false;
  uint64_t generation = 0;
  {
    absl::MutexLock lock(&mu_);
    if (consecutive_failures_ == 0 && !stopping_ && !paused_ && live_ + opening_ < options_.size) {
      ++opening_;
      generation = generation_;
      fresh = true;
    } else if (idle_.empty() && (consecutive_failures_ > 0 || live_ == 0)) {
      // A session the background thread is opening right now (after a module re-initialisation,
      // say) is worth waiting for, within the deadline and max_wait.
      auto settled = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
        return !idle_.empty() || opening_ == 0 || stopping_;
      };
      if (opening_ > 0) {
        mu_.AwaitWithDeadline(absl::Condition(&settled),
                              std::min(deadline, absl::Now() + options_.max_wait));
      }
      if (idle_.empty()) {
        // The token is known to be down: do not hammer it; the background thread retries with
        // backoff.
        return absl::UnavailableError("token down, reconnecting in the background");
      }
      Lease lease = idle_.back();
      idle_.pop_back();
      return lease;
    }
  }
  if (!fresh) return Checkout(deadline);  // the pool is full again: take an idle session

  absl::StatusOr<Lease> lease = OpenLease(generation);
  absl::MutexLock lock(&mu_);
  --opening_;
  if (!lease.ok()) {
    RecordOpenFailure(lease.status());
    return lease.status();
  }
  if (lease->generation < generation_) {
    // Another loss happened while it was being opened: its state is unknown; never sign with it.
    sessions_dropped_.fetch_add(1, std::memory_order_relaxed);
    return absl::UnavailableError("token lost again while reconnecting");
  }
  ++live_;
  consecutive_failures_ = 0;
  backoff_ = options_.backoff_initial;
  return lease;
}

absl::StatusOr<stir::Es256Signature> KeyPool::SignDigest(const stir::Sha256Digest& digest,
                                                         absl::Time deadline) const {
  ASSIGN_OR_RETURN(Lease lease, Checkout(deadline));
  stir::Es256Signature sig;
  absl::Status st = Sign(lease, digest, sig);
  if (ABSL_PREDICT_TRUE(st.ok())) {
    Return(lease);
    signatures_.fetch_add(1, std::memory_order_relaxed);
    return sig;
  }
  sign_failures_.fetch_add(1, std::memory_order_relaxed);
  Drop(lease, st);
  std::optional<CK_RV> rv = internal::CkrOf(st);
  if (!rv || !internal::IsRecoverable(*rv)) return st;
  if (absl::Now() >= deadline) return st;

  // Retry once, on a fresh session when the pool has room for one.
  absl::StatusOr<Lease> again = RetryLease(deadline);
  if (!again.ok()) {
    return absl::UnavailableError(absl::StrCat(where_, ": session lost (", st.message(),
                                               "); retry failed: ", again.status().message()));
  }
  absl::Status st2 = Sign(*again, digest, sig);
  if (st2.ok()) {
    Return(*again);
    signatures_.fetch_add(1, std::memory_order_relaxed);
    return sig;
  }
  sign_failures_.fetch_add(1, std::memory_order_relaxed);
  Drop(*again, st2);
  return absl::UnavailableError(
      absl::StrCat(where_, ": signing failed twice, reconnecting: ", st2.message()));
}

void KeyPool::SignDigestAsync(const stir::Sha256Digest& digest, absl::Time deadline,
                              SignDone done) const {
  const absl::Time now = absl::Now();
  Job job{digest, deadline, std::min(deadline, now + options_.max_wait), now, std::move(done)};
  absl::Status refused;
  {
    absl::MutexLock lock(&q_mu_);
    const int waiting = static_cast<int>(queue_.size());
    if (q_stopping_) {
      refused = absl::UnavailableError(absl::StrCat(where_, ": the key pool is shutting down"));
    } else if (now >= deadline) {
      refused = absl::DeadlineExceededError(
          absl::StrCat(where_, ": the deadline passed before signing could start"));
    } else if (waiting >= queue_limit_) {
      refused = absl::ResourceExhaustedError(absl::StrCat(
          where_, ": signing queue full (", waiting, " requests waiting for ", options_.size,
          " sessions; queue_limit ", queue_limit_, ")"));
    } else if (waiting >= idle_workers_) {
      // No idle worker is left for it (idle_workers_ counts workers not yet awake, some already
      // woken for the requests ahead): it starts after `ahead` of them are done. When recent
      // signatures say that is later than its deadline or max_wait, say so now rather than when
      // the time has passed.
      const int ahead = waiting - idle_workers_;
      const absl::Duration service =
          absl::Nanoseconds(service_ns_.load(std::memory_order_relaxed));
      const absl::Time start = now + service * (ahead / options_.size + 1);
      if (start > job.expires) {
        refused = absl::ResourceExhaustedError(absl::StrCat(
            where_, ": cannot start signing in time: ", waiting, " requests waiting for ",
            options_.size, " sessions at about ", absl::FormatDuration(service), " each; ",
            job.expires == deadline ? "the call's deadline"
                                    : absl::StrCat("max_wait ", absl::FormatDuration(options_.max_wait)),
            " ends first"));
      }
    }
    if (refused.ok()) {
      const absl::Time expires = job.expires;
      queue_.push_back(std::move(job));
      if (idle_workers_ > 0) work_cv_.Signal();
      // More requests queued than workers about to take them: this one may wait, so the reaper
      // must know its time.
      if (static_cast<int>(queue_.size()) > idle_workers_ && expires < reaper_wake_) {
        reaper_cv_.Signal();
      }
      return;
    }
  }
  queue_rejected_.fetch_add(1, std::memory_order_relaxed);
  std::move(job.done)(std::move(refused));
}

void KeyPool::Work() {
  q_mu_.Lock();
  while (true) {
    while (!q_stopping_ && queue_.empty()) {
      ++idle_workers_;
      work_cv_.Wait(&q_mu_);
      --idle_workers_;
    }
    if (q_stopping_) break;
    Job job = std::move(queue_.front());
    queue_.pop_front();
    ++in_flight_;
    q_mu_.Unlock();

    const absl::Time start = absl::Now();
    if (options_.on_queue_wait) options_.on_queue_wait(start - job.enqueued);
    absl::StatusOr<stir::Es256Signature> sig = SignDigest(job.digest, job.deadline);
    if (sig.ok()) {
      // EWMA with weight 1/8: follows a token that slows down within a few dozen signatures.
      const int64_t took = absl::ToInt64Nanoseconds(absl::Now() - start);
      const int64_t old = service_ns_.load(std::memory_order_relaxed);
      service_ns_.store(old == 0 ? took : old + (took - old) / 8, std::memory_order_relaxed);
    }
    std::move(job.done)(std::move(sig));

    q_mu_.Lock();
    --in_flight_;
  }
  q_mu_.Unlock();
}

void KeyPool::Reap() {
  q_mu_.Lock();
  while (!q_stopping_) {
    const absl::Time now = absl::Now();
    absl::Time earliest = absl::InfiniteFuture();
    std::vector<Job> expired;
    for (auto it = queue_.begin(); it != queue_.end();) {
      if (it->expires <= now) {
        expired.push_back(std::move(*it));
        it = queue_.erase(it);
      } else {
        earliest = std::min(earliest, it->expires);
        ++it;
      }
    }
    if (!expired.empty()) {
      q_mu_.Unlock();
      for (Job& job : expired) {
        queue_expired_.fetch_add(1, std::memory_order_relaxed);
        absl::Status why =
            job.expires == job.deadline
                ? absl::DeadlineExceededError(absl::StrCat(
                      where_, ": the deadline passed while waiting for a free session (",
                      absl::FormatDuration(now - job.enqueued), " queued)"))
                : absl::ResourceExhaustedError(absl::StrCat(
                      where_, ": waited max_wait ", absl::FormatDuration(options_.max_wait),
                      " in the signing queue; every session stayed busy"));
        std::move(job.done)(std::move(why));
      }
      q_mu_.Lock();
      continue;
    }
    reaper_wake_ = earliest;
    reaper_cv_.WaitWithDeadline(&q_mu_, earliest);
    reaper_wake_ = absl::InfiniteFuture();
  }
  q_mu_.Unlock();
}

void KeyPool::StopWorkers() {
  std::deque<Job> left;
  {
    absl::MutexLock lock(&q_mu_);
    q_stopping_ = true;
    work_cv_.SignalAll();
    reaper_cv_.SignalAll();
  }
  for (std::thread& t : workers_) {
    if (t.joinable()) t.join();
  }
  if (reaper_.joinable()) reaper_.join();
  {
    absl::MutexLock lock(&q_mu_);
    left.swap(queue_);
  }
  for (Job& job : left) {
    std::move(job.done)(
        absl::UnavailableError(absl::StrCat(where_, ": the key pool is shutting down")));
  }
}

void KeyPool::RecordOpenSuccess(const Lease& lease) const {
  if (lease.generation < generation_) {
    // Opened across a session-level loss: it may be dead or alias a reused handle. Discard.
    sessions_dropped_.fetch_add(1, std::memory_order_relaxed);
    return;
  }
  idle_.push_back(lease);
  ++live_;
  if (live_ >= options_.size) filled_ = true;
  consecutive_failures_ = 0;
  backoff_ = options_.backoff_initial;
}

void KeyPool::RecordOpenFailure(const absl::Status& st) const {
  open_failures_.fetch_add(1, std::memory_order_relaxed);
  ++consecutive_failures_;
  last_error_ = std::string(st.message());
  next_attempt_ = absl::Now() + backoff_;
  backoff_ = std::min(options_.backoff_max, backoff_ * options_.backoff_multiplier);
}

void KeyPool::Maintain() {
  mu_.Lock();
  while (!stopping_) {
    auto need = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
      return stopping_ || (!paused_ && live_ + opening_ < options_.size);
    };
    mu_.Await(absl::Condition(&need));
    if (stopping_) break;
    if (absl::Now() < next_attempt_) {
      // Pacing (gradual open) or backoff: sleep until then unless told to stop.
      auto stop = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) { return stopping_; };
      mu_.AwaitWithDeadline(absl::Condition(&stop), next_attempt_);
      continue;
    }
    ++opening_;
    const uint64_t generation = generation_;
    mu_.Unlock();
    absl::StatusOr<Lease> lease = OpenLease(generation);
    mu_.Lock();
    --opening_;
    if (lease.ok()) {
      RecordOpenSuccess(*lease);
      next_attempt_ = absl::Now() + options_.open_interval;
      if (stopping_) break;
    } else {
      RecordOpenFailure(lease.status());
      if (token_->module().quirks().reinitialize_on_token_loss) {
        mu_.Unlock();
        MaybeReinitialize(lease.status());
        mu_.Lock();
      }
    }
  }
  mu_.Unlock();
}

void KeyPool::MaybeReinitialize(const absl::Status& open_error) {
  std::optional<CK_RV> rv = internal::CkrOf(open_error);
  if (!rv) return;
  switch (*rv) {
    case CKR_GENERAL_ERROR:
    case CKR_TOKEN_NOT_PRESENT:
    case CKR_TOKEN_NOT_RECOGNIZED:
    case CKR_DEVICE_REMOVED:
    case CKR_DEVICE_ERROR:
    case CKR_CRYPTOKI_NOT_INITIALIZED:
      break;
    default:
      return;  // a missing key or a wrong PIN is not cured by re-initialising
  }
  // Paced by the caller's backoff: at most one attempt per failed open.
  (void)token_->module().Reinitialize(token_->module().epoch());
}

void KeyPool::Pause() {
  absl::MutexLock lock(&mu_);
  paused_ = true;
  ++generation_;  // whatever is in use now is dropped when it comes back
  auto quiet = [this]() ABSL_SHARED_LOCKS_REQUIRED(mu_) {
    return opening_ == 0 && live_ == static_cast<int>(idle_.size());
  };
  // Bounded: a signature takes microseconds to milliseconds; never wait forever.
  mu_.AwaitWithTimeout(absl::Condition(&quiet), absl::Seconds(5));
  // The module is about to be finalised: its sessions die with it, nothing to close.
  live_ -= static_cast<int>(idle_.size());
  sessions_dropped_.fetch_add(idle_.size(), std::memory_order_relaxed);
  idle_.clear();
}

void KeyPool::Resume() {
  absl::MutexLock lock(&mu_);
  paused_ = false;
  next_attempt_ = absl::Now();
}

Health KeyPool::HealthLocked() const {
  if (live_ == 0) return Health::kDown;
  if (live_ < options_.size && (filled_ || consecutive_failures_ > 0)) return Health::kDegraded;
  return Health::kServing;
}

Health KeyPool::health() const {
  absl::MutexLock lock(&mu_);
  return HealthLocked();
}

KeyPoolStats KeyPool::stats() const {
  KeyPoolStats s;
  {
    absl::MutexLock lock(&mu_);
    s.health = HealthLocked();
    s.live = live_;
    s.idle = static_cast<int>(idle_.size());
    s.last_error = last_error_;
  }
  s.size = options_.size;
  s.key_copied = copy_key_.load(std::memory_order_relaxed);
  s.signatures = signatures_.load(std::memory_order_relaxed);
  s.sign_failures = sign_failures_.load(std::memory_order_relaxed);
  s.sessions_opened = sessions_opened_.load(std::memory_order_relaxed);
  s.sessions_dropped = sessions_dropped_.load(std::memory_order_relaxed);
  s.open_failures = open_failures_.load(std::memory_order_relaxed);
  s.waits = waits_.load(std::memory_order_relaxed);
  s.queue_limit = queue_limit_;
  {
    absl::MutexLock lock(&q_mu_);
    s.queued = static_cast<int>(queue_.size());
    s.in_flight = in_flight_;
  }
  s.queue_rejected = queue_rejected_.load(std::memory_order_relaxed);
  s.queue_expired = queue_expired_.load(std::memory_order_relaxed);
  return s;
}

absl::StatusOr<std::unique_ptr<KeyPool>> OpenKeyPool(const SignerConfig& config) {
  ASSIGN_OR_RETURN(Pkcs11Uri uri,
                   Pkcs11Uri::Parse(config.key_uri, {.allow_pin_value = config.allow_pin_value}));
  std::string path = config.module_path;
  if (path.empty() && uri.module_path()) path = *uri.module_path();
  if (path.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat(uri.redacted(), ": no PKCS#11 module path (config or module-path=)"));
  }
  ASSIGN_OR_RETURN(std::shared_ptr<Module> module,
                   config.quirks ? Module::Load(path, *config.quirks) : Module::Load(path));
  std::optional<PinSource> pin = config.pin;
  if (!pin) {
    ASSIGN_OR_RETURN(PinSource from_uri, uri.PinFromUri());
    pin = std::move(from_uri);
  }
  ASSIGN_OR_RETURN(std::shared_ptr<Token> token, module->OpenToken(uri, *pin));
  return KeyPool::Create(std::move(token), uri, config.pool);
}

}  // namespace shaken::hsm
