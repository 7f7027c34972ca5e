// fuzz_json: the JSON layer. ParseStrictJson on untrusted text; what it accepts must serialize
// canonically (AppendCanonicalJson) when it holds no floating-point number, and the canonical
// form must parse back to the same value. AppendJsonString of valid UTF-8 must round-trip.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "stir/json.h"
#include "tests/fuzz/fuzz_check.h"

namespace {

bool HasFloat(const shaken::stir::Json& v) {
  if (v.is_number_float()) return true;
  if (v.is_structured()) {
    for (const auto& e : v) {
      if (HasFloat(e)) return true;
    }
  }
  return false;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using shaken::stir::Json;
  const std::string_view text(reinterpret_cast<const char*>(data), size);

  // The text as a string value: escaping must round-trip through the strict parser.
  if (shaken::stir::IsValidUtf8(text)) {
    std::string doc = "{\"k\":";
    shaken::stir::AppendJsonString(text, &doc);
    doc += "}";
    auto back = shaken::stir::ParseStrictJson(doc, {.max_bytes = doc.size(), .max_depth = 2});
    FUZZ_CHECK(back.ok());
    FUZZ_CHECK((*back)["k"].get<std::string>() == text);
  }

  const shaken::stir::JsonLimits limits;
  auto parsed = shaken::stir::ParseStrictJson(text, limits);
  if (!parsed.ok()) {
    FUZZ_CHECK(parsed.status().code() == absl::StatusCode::kInvalidArgument);
    return 0;
  }
  FUZZ_CHECK(parsed->is_object());
  FUZZ_CHECK(size <= limits.max_bytes);
  std::string canonical;
  absl::Status st = shaken::stir::AppendCanonicalJson(*parsed, &canonical);
  if (HasFloat(*parsed)) {
    FUZZ_CHECK(!st.ok());
    return 0;
  }
  FUZZ_CHECK(st.ok());
  auto again = shaken::stir::ParseStrictJson(
      canonical, {.max_bytes = canonical.size(), .max_depth = limits.max_depth});
  FUZZ_CHECK(again.ok());
  FUZZ_CHECK(*again == *parsed);
  std::string twice;
  FUZZ_CHECK(shaken::stir::AppendCanonicalJson(*again, &twice).ok());
  FUZZ_CHECK(twice == canonical);
  return 0;
}
