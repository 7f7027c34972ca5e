#include "stir/time_text.h"

#include <cstdint>
#include <limits>

#include "absl/strings/str_cat.h"

namespace shaken::stir {
namespace {

constexpr uint64_t kMaxSeconds = std::numeric_limits<int64_t>::max();

// WholeSeconds is |d| in whole seconds, capped at INT64_MAX. absl saturates Time and Duration
// arithmetic at +-InfiniteDuration, which ToInt64Seconds maps to the int64 limits; the magnitude
// is taken in unsigned arithmetic so that INT64_MIN cannot overflow on negation.
uint64_t WholeSeconds(absl::Duration d) {
  if (d == absl::InfiniteDuration() || d == -absl::InfiniteDuration()) return kMaxSeconds;
  const int64_t s = absl::ToInt64Seconds(d);
  const uint64_t magnitude =
      s < 0 ? uint64_t{0} - static_cast<uint64_t>(s) : static_cast<uint64_t>(s);
  return magnitude > kMaxSeconds ? kMaxSeconds : magnitude;
}

}  // namespace

std::string OffsetText(absl::Time t, absl::Time now) {
  const absl::Duration offset = t - now;
  const uint64_t seconds = WholeSeconds(offset);
  if (seconds == 0) return "0 s from now";
  return absl::StrCat(seconds,
                      offset < absl::ZeroDuration() ? " s in the past" : " s in the future");
}

std::string SecondsText(absl::Duration d) { return absl::StrCat(WholeSeconds(d), " s"); }

}  // namespace shaken::stir
