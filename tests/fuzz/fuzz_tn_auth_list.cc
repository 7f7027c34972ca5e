// fuzz_tn_auth_list: the DER value of a TNAuthList extension (RFC 8226 §9) through the
// bounds-checked reader (ParseTnAuthList), then matched against TNs (TnAuthListCovers).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "stir/cert_validator.h"
#include "tests/fuzz/fuzz_check.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view der(reinterpret_cast<const char*>(data), size);
  auto list = shaken::stir::ParseTnAuthList(der);
  if (!list.ok()) {
    FUZZ_CHECK(list.status().code() == absl::StatusCode::kInvalidArgument);
    return 0;
  }
  FUZZ_CHECK(!list->empty() && list->size() <= 1024);
  (void)shaken::stir::TnAuthListHasTns(*list);
  for (const auto& e : *list) {
    FUZZ_CHECK(!e.value.empty());
    // The documented ranges: count 2..2^63, a 1..15 character TN start; SPC 1..64 characters.
    if (e.kind == shaken::stir::TnAuthEntry::Kind::kRange) {
      FUZZ_CHECK(e.count >= 2 && e.count <= (uint64_t{1} << 63));
    }
    FUZZ_CHECK(e.value.size() <= (e.kind == shaken::stir::TnAuthEntry::Kind::kSpc ? 64u : 15u));
    // A TN of the list, and its neighbours, through the range arithmetic.
    (void)shaken::stir::TnAuthListCovers(*list, e.value);
    std::string next = e.value;
    if (!next.empty()) next.back() = next.back() == '9' ? '0' : static_cast<char>(next.back() + 1);
    (void)shaken::stir::TnAuthListCovers(*list, next);
  }
  (void)shaken::stir::TnAuthListCovers(*list, "999999999999999");
  (void)shaken::stir::TnAuthListCovers(*list, "0");
  return 0;
}
