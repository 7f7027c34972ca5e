#include "stir/time_text.h"

#include <cstdint>
#include <limits>

#include "gtest/gtest.h"

namespace shaken::stir {
namespace {

constexpr int64_t kNow = 1700000000;
const absl::Time now = absl::FromUnixSeconds(kNow);

TEST(OffsetTextTest, SaysWhichSideOfNowInWholeSeconds) {
  EXPECT_EQ(OffsetText(now - absl::Hours(1) - absl::Milliseconds(150), now), "3600 s in the past");
  EXPECT_EQ(OffsetText(now + absl::Seconds(61), now), "61 s in the future");
  EXPECT_EQ(OffsetText(now - absl::Seconds(61), now), "61 s in the past");
  EXPECT_EQ(OffsetText(now, now), "0 s from now");
  EXPECT_EQ(OffsetText(now + absl::Milliseconds(999), now), "0 s from now");
}

TEST(OffsetTextTest, SaturatesAtTheInt64Edges) {
  constexpr int64_t kMax = std::numeric_limits<int64_t>::max();
  constexpr int64_t kMin = std::numeric_limits<int64_t>::min();
  // INT64_MAX - kNow is representable; INT64_MIN - kNow is not, and saturates.
  EXPECT_EQ(OffsetText(absl::FromUnixSeconds(kMax), now), "9223372035154775807 s in the future");
  EXPECT_EQ(OffsetText(absl::FromUnixSeconds(kMin), now), "9223372036854775807 s in the past");
  EXPECT_EQ(OffsetText(absl::InfiniteFuture(), now), "9223372036854775807 s in the future");
  EXPECT_EQ(OffsetText(absl::InfinitePast(), now), "9223372036854775807 s in the past");
  EXPECT_EQ(OffsetText(now, absl::FromUnixSeconds(kMin)), "9223372036854775807 s in the future");
}

TEST(SecondsTextTest, WholeNonNegativeSeconds) {
  EXPECT_EQ(SecondsText(absl::Seconds(60)), "60 s");
  EXPECT_EQ(SecondsText(absl::Milliseconds(1500)), "1 s");
  EXPECT_EQ(SecondsText(-absl::Seconds(5)), "5 s");
  EXPECT_EQ(SecondsText(absl::InfiniteDuration()), "9223372036854775807 s");
}

}  // namespace
}  // namespace shaken::stir
