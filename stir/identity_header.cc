#include "stir/identity_header.h"

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "stir/absl_compat.h"
#include "stir/verdict.h"

namespace shaken::stir {
namespace {

absl::Status Malformed(std::string_view what) {
  return ReasonError(Reason::kIdentityMalformed, absl::StrCat("Identity header: ", ToAbsl(what)));
}

bool IsSpace(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n'; }

// RFC 8224 §4 with errata 6499: base64url characters and '.'.
bool IsDigestChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
}

// RFC 3261 token characters.
bool IsTokenChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) ||
         std::string_view("-.!%*_+`'~").find(c) != std::string_view::npos;
}

void SkipSpace(std::string_view s, size_t* i) {
  while (*i < s.size() && IsSpace(s[*i])) ++*i;
}

// absoluteURI (RFC 3261 / RFC 2396): scheme ":" then printable characters without whitespace,
// '<', '>' or '"'.
bool IsAbsoluteUri(std::string_view uri) {
  size_t colon = uri.find(':');
  if (colon == 0 || colon == std::string_view::npos || colon + 1 == uri.size()) return false;
  if (!absl::ascii_isalpha(static_cast<unsigned char>(uri[0]))) return false;
  for (size_t i = 1; i < colon; ++i) {
    char c = uri[i];
    if (!absl::ascii_isalnum(static_cast<unsigned char>(c)) && c != '+' && c != '-' && c != '.') {
      return false;
    }
  }
  for (char c : uri) {
    if (!absl::ascii_isgraph(static_cast<unsigned char>(c)) || c == '<' || c == '>' || c == '"') {
      return false;
    }
  }
  return true;
}

}  // namespace

std::string BuildIdentityHeader(std::string_view jws, std::string_view x5u,
                                std::string_view ppt) {
  return absl::StrCat(ToAbsl(jws), ";info=<", ToAbsl(x5u), ">;alg=ES256;ppt=", ToAbsl(ppt));
}

absl::StatusOr<IdentityHeader> ParseIdentityHeader(std::string_view value) {
  if (value.size() > kMaxIdentityHeaderBytes) {
    return Malformed(absl::StrCat("value of ", value.size(), " bytes exceeds the limit of ",
                                  kMaxIdentityHeaderBytes));
  }
  IdentityHeader out;
  size_t i = 0;
  SkipSpace(value, &i);
  size_t start = i;
  while (i < value.size() && IsDigestChar(value[i])) ++i;
  if (i == start) return Malformed("no signed-identity-digest before the first ';'");
  out.digest = std::string(value.substr(start, i - start));
  SkipSpace(value, &i);

  while (i < value.size()) {
    if (value[i] != ';') {
      if (value[i] == '=') return Malformed("the digest must not carry '=' padding");
      return Malformed(absl::StrCat("unexpected character at position ", i,
                                    "; parameters are separated by ';'"));
    }
    ++i;
    SkipSpace(value, &i);
    size_t name_start = i;
    while (i < value.size() && IsTokenChar(value[i])) ++i;
    if (i == name_start) return Malformed("a parameter has no name");
    std::string name = absl::AsciiStrToLower(ToAbsl(value.substr(name_start, i - name_start)));
    SkipSpace(value, &i);

    std::string param_value;
    bool has_value = false;
    bool angle = false;
    if (i < value.size() && value[i] == '=') {
      ++i;
      SkipSpace(value, &i);
      has_value = true;
      if (i < value.size() && value[i] == '<') {
        size_t close = value.find('>', i + 1);
        if (close == std::string_view::npos) return Malformed("'<' without a closing '>'");
        param_value = std::string(value.substr(i + 1, close - i - 1));
        angle = true;
        i = close + 1;
      } else if (i < value.size() && value[i] == '"') {
        // quoted-string (RFC 3261 §25.1): backslash escapes one character.
        ++i;
        bool closed = false;
        while (i < value.size()) {
          char c = value[i++];
          if (c == '"') {
            closed = true;
            break;
          }
          if (c == '\\') {
            if (i == value.size()) break;
            c = value[i++];
          }
          param_value.push_back(c);
        }
        if (!closed) return Malformed("unterminated quoted string");
      } else {
        size_t vstart = i;
        while (i < value.size() && IsTokenChar(value[i])) ++i;
        param_value = std::string(value.substr(vstart, i - vstart));
        if (param_value.empty()) return Malformed(absl::StrCat("parameter ", name, " has no value"));
      }
      SkipSpace(value, &i);
    }

    if (name == "info") {
      if (out.info.has_value()) return Malformed("more than one info parameter");
      if (!has_value || !angle || !IsAbsoluteUri(param_value)) {
        return ReasonError(Reason::kInfoInvalid,
                           "Identity header info must be <absoluteURI> (RFC 8224 §4)");
      }
      out.info = std::move(param_value);
    } else if (name == "alg" || name == "ppt") {
      std::optional<std::string>& slot = name == "alg" ? out.alg : out.ppt;
      if (slot.has_value()) return Malformed(absl::StrCat("more than one ", name, " parameter"));
      if (!has_value || angle) return Malformed(absl::StrCat("parameter ", name, " needs a token"));
      slot = std::move(param_value);
    }
    // Other parameters are generic-param extensions (RFC 8224 §4): ignored.
  }
  return out;
}

}  // namespace shaken::stir
