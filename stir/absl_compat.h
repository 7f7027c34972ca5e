// absl_compat.h: Debian 12's abseil 20220623 is built with ABSL_OPTION_USE_STD_STRING_VIEW 0, so
// absl::string_view is its own type and std::string_view does not convert to it implicitly.
// Our APIs take std::string_view; ToAbsl bridges to abseil calls (StrCat, Status messages, ...).
#ifndef SHAKEN_STIR_ABSL_COMPAT_H_
#define SHAKEN_STIR_ABSL_COMPAT_H_

#include <string_view>

#include "absl/strings/string_view.h"

namespace shaken {

inline absl::string_view ToAbsl(std::string_view s) { return absl::string_view(s.data(), s.size()); }
inline std::string_view ToStd(absl::string_view s) { return std::string_view(s.data(), s.size()); }

}  // namespace shaken

#endif  // SHAKEN_STIR_ABSL_COMPAT_H_
