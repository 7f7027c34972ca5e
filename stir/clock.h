// clock.h: time is injected wherever it matters (iat freshness, cache lifetimes, certificate
// validity), so tests fix "now" instead of sleeping.
#ifndef SHAKEN_STIR_CLOCK_H_
#define SHAKEN_STIR_CLOCK_H_

#include <atomic>

#include "absl/time/clock.h"
#include "absl/time/time.h"

namespace shaken::stir {

// Clock returns the current time. Implementations are thread-safe.
class Clock {
 public:
  virtual ~Clock() = default;
  virtual absl::Time Now() const = 0;
};

// SystemClock reads the system's real-time clock.
class SystemClock final : public Clock {
 public:
  absl::Time Now() const override { return absl::Now(); }
  // Shared returns a process-wide instance.
  static const SystemClock& Shared() {
    static const SystemClock clock;
    return clock;
  }
};

// FixedClock returns a time that only changes when told to. For tests and for reproducing a
// verification at a given moment (shakenctl passport verify --at).
class FixedClock final : public Clock {
 public:
  explicit FixedClock(absl::Time now) : nanos_(absl::ToUnixNanos(now)) {}
  absl::Time Now() const override { return absl::FromUnixNanos(nanos_.load()); }
  void Set(absl::Time now) { nanos_.store(absl::ToUnixNanos(now)); }
  void Advance(absl::Duration d) { nanos_.fetch_add(absl::ToInt64Nanoseconds(d)); }

 private:
  std::atomic<int64_t> nanos_;
};

}  // namespace shaken::stir

#endif  // SHAKEN_STIR_CLOCK_H_
