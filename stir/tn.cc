#include "stir/tn.h"

#include <openssl/rand.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"

namespace shaken::stir {
namespace {

bool IsTnChar(char c) { return absl::ascii_isdigit(static_cast<unsigned char>(c)) || c == '#' || c == '*'; }
bool IsVisualSeparator(char c) { return c == '-' || c == '.' || c == '(' || c == ')' || c == ' '; }

}  // namespace

absl::StatusOr<std::string> CanonicalizeTn(std::string_view tn) {
  std::string out;
  out.reserve(tn.size());
  bool seen_plus = false;
  for (size_t i = 0; i < tn.size(); ++i) {
    char c = tn[i];
    if (IsTnChar(c)) {
      if (out.size() == kMaxTnLength) {
        return absl::InvalidArgumentError(
            absl::StrCat("telephone number is longer than ", kMaxTnLength, " digits"));
      }
      out.push_back(c);
    } else if (IsVisualSeparator(c)) {
      continue;
    } else if (c == '+' && out.empty() && !seen_plus) {
      seen_plus = true;  // RFC 8224 §8.3: a global number drops its leading '+'
    } else {
      std::string shown = absl::ascii_isprint(static_cast<unsigned char>(c))
                              ? absl::StrCat("'", std::string(1, c), "'")
                              : absl::StrCat("byte 0x", absl::Hex(static_cast<unsigned char>(c)));
      return absl::InvalidArgumentError(absl::StrCat(
          "telephone number has ", shown, " at position ", i,
          "; only digits, '#', '*', visual separators (-.() and space) and a leading '+' are "
          "allowed"));
    }
  }
  if (out.empty()) return absl::InvalidArgumentError("telephone number has no digits");
  return out;
}

bool IsCanonicalTn(std::string_view tn) {
  if (tn.empty() || tn.size() > kMaxTnLength) return false;
  for (char c : tn) {
    if (!IsTnChar(c)) return false;
  }
  return true;
}

bool IsUuid(std::string_view s) {
  if (s.size() != 36) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    if (i == 8 || i == 13 || i == 18 || i == 23) {
      if (s[i] != '-') return false;
    } else if (!absl::ascii_isxdigit(static_cast<unsigned char>(s[i]))) {
      return false;
    }
  }
  return true;
}

namespace {

// RandomBytes16 hands out 16 bytes at a time from a per-thread buffer refilled from OpenSSL's
// CSPRNG: one RAND_bytes call per 256 ids instead of one per id (the call's fixed cost, ~3 µs
// under load, was a tenth of a software-key signature). A process that forks discards the
// buffer in the child, so parent and child never share ids.
void RandomBytes16(unsigned char out[16]) {
  struct Buffer {
    unsigned char bytes[4096];
    size_t used = sizeof(bytes);
    pid_t pid = -1;
  };
  thread_local Buffer buf;
  const pid_t pid = getpid();
  if (buf.used + 16 > sizeof(buf.bytes) || buf.pid != pid) {
    // No entropy: refuse to mint predictable ids.
    if (RAND_bytes(buf.bytes, sizeof(buf.bytes)) != 1) abort();
    buf.used = 0;
    buf.pid = pid;
  }
  std::memcpy(out, buf.bytes + buf.used, 16);
  buf.used += 16;
}

}  // namespace

std::string NewUuidV4() {
  unsigned char b[16];
  RandomBytes16(b);
  b[6] = (b[6] & 0x0f) | 0x40;  // version 4
  b[8] = (b[8] & 0x3f) | 0x80;  // RFC 4122 variant
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  out.reserve(36);
  for (int i = 0; i < 16; ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out.push_back('-');
    out.push_back(kHex[b[i] >> 4]);
    out.push_back(kHex[b[i] & 15]);
  }
  return out;
}

}  // namespace shaken::stir
