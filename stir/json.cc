#include "stir/json.h"

#include <algorithm>
#include <vector>

#include "absl/strings/str_cat.h"

namespace shaken::stir {
namespace {

constexpr char kHex[] = "0123456789abcdef";

}  // namespace

void AppendJsonString(std::string_view s, std::string* out) {
  out->push_back('"');
  size_t run = 0;  // start of the pending run of bytes that need no escaping
  for (size_t i = 0; i < s.size(); ++i) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    if (c >= 0x20 && c != '"' && c != '\\') continue;
    out->append(s.data() + run, i - run);
    run = i + 1;
    out->push_back('\\');
    switch (c) {
      case '"':
        out->push_back('"');
        break;
      case '\\':
        out->push_back('\\');
        break;
      case '\b':
        out->push_back('b');
        break;
      case '\f':
        out->push_back('f');
        break;
      case '\n':
        out->push_back('n');
        break;
      case '\r':
        out->push_back('r');
        break;
      case '\t':
        out->push_back('t');
        break;
      default:
        out->append("u00");
        out->push_back(kHex[c >> 4]);
        out->push_back(kHex[c & 15]);
    }
  }
  out->append(s.data() + run, s.size() - run);
  out->push_back('"');
}

bool IsValidUtf8(std::string_view s) {
  const auto* p = reinterpret_cast<const unsigned char*>(s.data());
  size_t n = s.size();
  size_t i = 0;
  while (i < n) {
    unsigned char c = p[i];
    if (c < 0x80) {
      ++i;
      continue;
    }
    size_t len;
    uint32_t cp;
    if ((c & 0xe0) == 0xc0) {
      len = 2;
      cp = c & 0x1f;
    } else if ((c & 0xf0) == 0xe0) {
      len = 3;
      cp = c & 0x0f;
    } else if ((c & 0xf8) == 0xf0) {
      len = 4;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + len > n) return false;
    for (size_t k = 1; k < len; ++k) {
      if ((p[i + k] & 0xc0) != 0x80) return false;
      cp = (cp << 6) | (p[i + k] & 0x3f);
    }
    static constexpr uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < kMin[len] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return false;
    i += len;
  }
  return true;
}

absl::Status AppendCanonicalJson(const Json& value, std::string* out) {
  switch (value.type()) {
    case Json::value_t::object: {
      // nlohmann's object is a std::map<std::string, ...>: iteration is already in byte order,
      // which for UTF-8 is code point order. Sort explicitly anyway, so a change of the map type
      // cannot silently change the signed bytes.
      std::vector<const std::pair<const std::string, Json>*> members;
      members.reserve(value.size());
      for (const auto& item : value.get_ref<const Json::object_t&>()) members.push_back(&item);
      std::sort(members.begin(), members.end(),
                [](const auto* a, const auto* b) { return a->first < b->first; });
      out->push_back('{');
      bool first = true;
      for (const auto* m : members) {
        if (!first) out->push_back(',');
        first = false;
        if (!IsValidUtf8(m->first)) return absl::InvalidArgumentError("member name is not UTF-8");
        AppendJsonString(m->first, out);
        out->push_back(':');
        absl::Status s = AppendCanonicalJson(m->second, out);
        if (!s.ok()) return s;
      }
      out->push_back('}');
      return absl::OkStatus();
    }
    case Json::value_t::array: {
      out->push_back('[');
      bool first = true;
      for (const Json& item : value) {
        if (!first) out->push_back(',');
        first = false;
        absl::Status s = AppendCanonicalJson(item, out);
        if (!s.ok()) return s;
      }
      out->push_back(']');
      return absl::OkStatus();
    }
    case Json::value_t::string: {
      const auto& s = value.get_ref<const std::string&>();
      if (!IsValidUtf8(s)) return absl::InvalidArgumentError("string value is not UTF-8");
      AppendJsonString(s, out);
      return absl::OkStatus();
    }
    case Json::value_t::number_integer:
      absl::StrAppend(out, value.get<int64_t>());
      return absl::OkStatus();
    case Json::value_t::number_unsigned:
      absl::StrAppend(out, value.get<uint64_t>());
      return absl::OkStatus();
    case Json::value_t::boolean:
      out->append(value.get<bool>() ? "true" : "false");
      return absl::OkStatus();
    case Json::value_t::null:
      out->append("null");
      return absl::OkStatus();
    case Json::value_t::number_float:
      return absl::InvalidArgumentError(
          "canonical PASSporT JSON carries integers only (RFC 8225 §9)");
    case Json::value_t::binary:
    case Json::value_t::discarded:
      break;
  }
  return absl::InvalidArgumentError("value has no JSON representation");
}

absl::StatusOr<Json> ParseStrictJson(std::string_view text, const JsonLimits& limits) {
  if (text.size() > limits.max_bytes) {
    return absl::InvalidArgumentError(
        absl::StrCat("JSON of ", text.size(), " bytes exceeds the limit of ", limits.max_bytes));
  }
  // nlohmann keeps the last of duplicate names silently; a forger could then show one value to
  // this verifier and another to a different one. Track the names of each open object.
  std::vector<std::vector<std::string>> open_objects;
  std::string problem;
  auto callback = [&](int depth, Json::parse_event_t event, Json& parsed) -> bool {
    if (!problem.empty()) return false;
    switch (event) {
      case Json::parse_event_t::object_start:
        if (depth >= limits.max_depth) {
          problem = absl::StrCat("JSON nests deeper than ", limits.max_depth, " levels");
          return false;
        }
        open_objects.emplace_back();
        break;
      case Json::parse_event_t::array_start:
        if (depth >= limits.max_depth) {
          problem = absl::StrCat("JSON nests deeper than ", limits.max_depth, " levels");
          return false;
        }
        break;
      case Json::parse_event_t::object_end:
        if (!open_objects.empty()) open_objects.pop_back();
        break;
      case Json::parse_event_t::key: {
        if (open_objects.empty()) break;
        auto& names = open_objects.back();
        const auto& name = parsed.get_ref<const std::string&>();
        if (std::find(names.begin(), names.end(), name) != names.end()) {
          problem = absl::StrCat("duplicate member name \"", name.substr(0, 64), "\"");
          return false;
        }
        names.push_back(name);
        break;
      }
      default:
        break;
    }
    return true;
  };
  Json value;
  try {
    value = Json::parse(text.begin(), text.end(), callback, /*allow_exceptions=*/false,
                        /*ignore_comments=*/false);
  } catch (const std::exception& e) {
    // Parse errors do not throw with allow_exceptions=false; this guards the library's other
    // paths (e.g. allocation) at the boundary of untrusted input.
    return absl::InvalidArgumentError(absl::StrCat("invalid JSON: ", e.what()));
  }
  if (!problem.empty()) return absl::InvalidArgumentError(problem);
  if (value.is_discarded()) return absl::InvalidArgumentError("invalid JSON");
  if (!value.is_object()) return absl::InvalidArgumentError("JSON is not an object");
  return value;
}

}  // namespace shaken::stir
