// time_text.h: time offsets as people read them in verdict details and error messages.
//
// absl::FormatDuration is the wrong tool for these: it prints a past instant as a negative
// duration ("-1h0.15s"), leaves the reader to guess which side of now a positive one lies on,
// and overflows at the int64 edges ("-2562047787516263h", "inf").
#ifndef SHAKEN_STIR_TIME_TEXT_H_
#define SHAKEN_STIR_TIME_TEXT_H_

#include <string>

#include "absl/time/time.h"

namespace shaken::stir {

// OffsetText says where `t` lies relative to `now` in whole seconds, truncated toward zero:
// "3600 s in the past", "61 s in the future", or "0 s from now" under a second away. It saturates:
// infinite instants and offsets beyond int64 seconds read as 9223372036854775807 s, on the right
// side of now. Never negative.
std::string OffsetText(absl::Time t, absl::Time now);

// SecondsText writes the magnitude of `d` as whole seconds, truncated toward zero and saturating
// like OffsetText: "60 s".
std::string SecondsText(absl::Duration d);

}  // namespace shaken::stir

#endif  // SHAKEN_STIR_TIME_TEXT_H_
