#include "stir/tn_auth_list.h"

#include <algorithm>
#include <cstdint>
#include <optional>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/cord.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "stir/absl_compat.h"
#include "stir/der.h"
#include "stir/status_macros.h"
#include "stir/tn.h"

namespace shaken::stir {
namespace {

constexpr size_t kMaxTnEntries = 1024;
constexpr size_t kMaxSpcBytes = 64;
constexpr uint64_t kMaxRangeCount = uint64_t{1} << 63;  // as documented in tn_auth_list.h


absl::StatusOr<std::string> TelephoneNumber(const DerElement& tlv) {
  if (tlv.tag != 0x16) return absl::InvalidArgumentError("TelephoneNumber is not an IA5String");
  if (tlv.value.empty() || tlv.value.size() > 15) {
    return absl::InvalidArgumentError("TelephoneNumber must have 1 to 15 characters");
  }
  for (char c : tlv.value) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c)) && c != '#' && c != '*') {
      return absl::InvalidArgumentError("TelephoneNumber has a character outside 0-9 # *");
    }
  }
  return std::string(tlv.value);
}

absl::StatusOr<uint64_t> PositiveInteger(const DerElement& tlv) {
  if (tlv.tag != 0x02) return absl::InvalidArgumentError("count is not an INTEGER");
  std::string_view v = tlv.value;
  if (v.empty()) return absl::InvalidArgumentError("empty INTEGER");
  if (static_cast<uint8_t>(v[0]) & 0x80) return absl::InvalidArgumentError("negative count");
  if (v.size() > 1 && v[0] == 0 && !(static_cast<uint8_t>(v[1]) & 0x80)) {
    return absl::InvalidArgumentError("non-minimal INTEGER");
  }
  if (v[0] == 0) v.remove_prefix(1);
  if (v.size() > 8) return absl::InvalidArgumentError("count too large");
  uint64_t value = 0;
  for (char c : v) value = (value << 8) | static_cast<uint8_t>(c);
  return value;
}


}  // namespace

absl::StatusOr<std::vector<TnAuthEntry>> ParseTnAuthList(std::string_view der) {
  ASSIGN_OR_RETURN(DerElement list, ReadOnlyDerElement(der, "TNAuthorizationList"));
  if (list.tag != 0x30) return absl::InvalidArgumentError("TNAuthorizationList is not a SEQUENCE");
  std::vector<TnAuthEntry> entries;
  std::string_view rest = list.value;
  while (!rest.empty()) {
    if (entries.size() == kMaxTnEntries) {
      return absl::InvalidArgumentError(
          absl::StrCat("TNAuthorizationList has more than ", kMaxTnEntries, " entries"));
    }
    ASSIGN_OR_RETURN(DerElement entry, ReadDerElement(rest));
    TnAuthEntry out;
    switch (entry.tag) {
      case 0xA0: {  // spc [0] EXPLICIT ServiceProviderCode (IA5String)
        ASSIGN_OR_RETURN(DerElement spc, ReadOnlyDerElement(entry.value, "spc"));
        if (spc.tag != 0x16) return absl::InvalidArgumentError("spc is not an IA5String");
        if (spc.value.empty() || spc.value.size() > kMaxSpcBytes) {
          return absl::InvalidArgumentError(
              absl::StrCat("spc must have 1 to ", kMaxSpcBytes, " characters"));
        }
        for (char c : spc.value) {
          if (c < 0x21 || c > 0x7E) {
            return absl::InvalidArgumentError("spc has a non-printable or non-ASCII character");
          }
        }
        out.kind = TnAuthEntry::Kind::kSpc;
        out.value = std::string(spc.value);
        break;
      }
      case 0xA1: {  // range [1] TelephoneNumberRange ::= SEQUENCE { start, count }
        std::string_view body = entry.value;
        // Explicit tagging wraps a SEQUENCE; implicit tagging holds its members directly.
        if (!body.empty() && static_cast<uint8_t>(body[0]) == 0x30) {
          ASSIGN_OR_RETURN(DerElement seq, ReadOnlyDerElement(body, "range"));
          body = seq.value;
        }
        ASSIGN_OR_RETURN(DerElement start, ReadDerElement(body));
        ASSIGN_OR_RETURN(out.value, TelephoneNumber(start));
        ASSIGN_OR_RETURN(DerElement count, ReadOnlyDerElement(body, "range count"));
        ASSIGN_OR_RETURN(out.count, PositiveInteger(count));
        if (out.count < 2) return absl::InvalidArgumentError("range count must be at least 2");
        if (out.count > kMaxRangeCount) {
          return absl::InvalidArgumentError(
              absl::StrCat("range count ", out.count, " exceeds 2^63"));
        }
        out.kind = TnAuthEntry::Kind::kRange;
        break;
      }
      case 0xA2: {  // one [2] EXPLICIT TelephoneNumber
        ASSIGN_OR_RETURN(DerElement tn, ReadOnlyDerElement(entry.value, "one"));
        ASSIGN_OR_RETURN(out.value, TelephoneNumber(tn));
        out.kind = TnAuthEntry::Kind::kOne;
        break;
      }
      case 0x82: {  // one [2] IMPLICIT TelephoneNumber
        ASSIGN_OR_RETURN(out.value, TelephoneNumber(DerElement{0x16, entry.value}));
        out.kind = TnAuthEntry::Kind::kOne;
        break;
      }
      default:
        return absl::InvalidArgumentError(absl::StrCat("TNEntry has tag 0x", absl::Hex(entry.tag),
                                                       "; expected [0] spc, [1] range or [2] one"));
    }
    entries.push_back(std::move(out));
  }
  if (entries.empty()) return absl::InvalidArgumentError("TNAuthorizationList is empty");
  return entries;
}

bool TnAuthListHasTns(const std::vector<TnAuthEntry>& entries) {
  for (const TnAuthEntry& e : entries) {
    if (e.kind != TnAuthEntry::Kind::kSpc) return true;
  }
  return false;
}

namespace {

// DigitsValue reads a string of 1 to 18 decimal digits (a TelephoneNumber has at most 15).
std::optional<uint64_t> DigitsValue(std::string_view s) {
  if (s.empty() || s.size() > 18) return std::nullopt;
  uint64_t v = 0;
  for (char c : s) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c))) return std::nullopt;
    v = v * 10 + static_cast<uint64_t>(c - '0');
  }
  return v;
}

}  // namespace

bool TnAuthListCovers(const std::vector<TnAuthEntry>& entries, std::string_view tn) {
  for (const TnAuthEntry& e : entries) {
    switch (e.kind) {
      case TnAuthEntry::Kind::kSpc:
        break;
      case TnAuthEntry::Kind::kOne:
        if (e.value == tn) return true;
        break;
      case TnAuthEntry::Kind::kRange: {
        // RFC 8226 §9: `count` numbers from `start`, all as long as `start`; a number with
        // '#' or '*', or of another length, is in no range.
        if (e.value.size() != tn.size()) break;
        std::optional<uint64_t> start = DigitsValue(e.value);
        std::optional<uint64_t> value = DigitsValue(tn);
        if (start && value && *value >= *start && *value - *start < e.count) return true;
        break;
      }
    }
  }
  return false;
}

namespace {

absl::Status ValidateTelephoneNumber(std::string_view tn) {
  if (tn.empty() || tn.size() > 15) {
    return absl::InvalidArgumentError(absl::StrCat(
        "bad TN '", ToAbsl(tn), "': RFC 8226 TelephoneNumber is 1 to 15 characters"));
  }
  for (char c : tn) {
    if (!absl::ascii_isdigit(static_cast<unsigned char>(c)) && c != '#' && c != '*') {
      return absl::InvalidArgumentError(absl::StrCat(
          "bad TN '", ToAbsl(tn), "': RFC 8226 allows only 0-9, # and * (canonical form)"));
    }
  }
  return absl::OkStatus();
}

}  // namespace

absl::Status ValidateSpc(std::string_view spc) {
  if (spc.empty() || spc.size() > 16) {
    return absl::InvalidArgumentError(
        absl::StrCat("bad SPC '", ToAbsl(spc), "': expected 1 to 16 characters (an OCN is 4)"));
  }
  for (char c : spc) {
    if (!((c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z'))) {
      return absl::InvalidArgumentError(
          absl::StrCat("bad SPC '", ToAbsl(spc),
                       "': ATIS-1000080 v005 allows digits and upper-case letters only"));
    }
  }
  return absl::OkStatus();
}

std::string EncodeTnAuthListUnchecked(const std::vector<TnAuthEntry>& entries) {
  std::string list;
  for (const TnAuthEntry& e : entries) {
    switch (e.kind) {
      case TnAuthEntry::Kind::kSpc:
        list += DerEncode(0xA0, DerEncode(0x16, e.value));
        break;
      case TnAuthEntry::Kind::kOne:
        list += DerEncode(0xA2, DerEncode(0x16, e.value));
        break;
      case TnAuthEntry::Kind::kRange:
        list += DerEncode(0xA1, DerEncode(0x30, DerEncode(0x16, e.value) +
                                                    DerUnsignedInteger(e.count)));
        break;
    }
  }
  return DerEncode(0x30, list);
}

absl::StatusOr<std::string> EncodeTnAuthList(const std::vector<TnAuthEntry>& entries) {
  if (entries.empty()) return absl::InvalidArgumentError("a TNAuthList needs at least one entry");
  for (const TnAuthEntry& e : entries) {
    switch (e.kind) {
      case TnAuthEntry::Kind::kSpc:
        RETURN_IF_ERROR(ValidateSpc(e.value));
        break;
      case TnAuthEntry::Kind::kOne:
        RETURN_IF_ERROR(ValidateTelephoneNumber(e.value));
        break;
      case TnAuthEntry::Kind::kRange:
        RETURN_IF_ERROR(ValidateTelephoneNumber(e.value));
        if (e.count < 2) {
          return absl::InvalidArgumentError(absl::StrCat(
              "bad TN range ", e.value, ":", e.count, ": RFC 8226 requires a count of 2 or more"));
        }
        break;
    }
  }
  return EncodeTnAuthListUnchecked(entries);
}

std::string FirstSpc(const std::vector<TnAuthEntry>& entries) {
  for (const TnAuthEntry& e : entries) {
    if (e.kind == TnAuthEntry::Kind::kSpc) return e.value;
  }
  return "";
}

namespace {

// Numbers is the set of numbers an entry of digits covers: [first, end) among the numbers of
// `digits` digits. nullopt for an SPC and for an entry with '#' or '*'.
struct Numbers {
  size_t digits = 0;
  uint64_t first = 0;
  uint64_t end = 0;
};

std::optional<Numbers> NumbersOf(const TnAuthEntry& e) {
  if (e.kind == TnAuthEntry::Kind::kSpc) return std::nullopt;
  std::optional<uint64_t> start = DigitsValue(e.value);
  if (!start.has_value()) return std::nullopt;
  uint64_t limit = 1;  // 10^digits; a TN has at most 15 digits, so no overflow
  for (size_t i = 0; i < e.value.size(); ++i) limit *= 10;
  const uint64_t count = e.kind == TnAuthEntry::Kind::kRange ? e.count : 1;
  // start < 10^15 and count <= 2^63 (ParseTnAuthList): the sum fits in 64 bits.
  return Numbers{e.value.size(), *start, std::min(*start + count, limit)};
}

// Encompassed tells whether `scope` encompasses the TN or range entry `e` (see the header).
bool Encompassed(const std::vector<TnAuthEntry>& scope, const TnAuthEntry& e) {
  std::optional<Numbers> want = NumbersOf(e);
  if (!want.has_value()) {  // '#' or '*': only an equal entry
    for (const TnAuthEntry& s : scope) {
      if (s.kind == e.kind && s.value == e.value && s.count >= e.count) return true;
    }
    return false;
  }
  std::vector<std::pair<uint64_t, uint64_t>> have;
  for (const TnAuthEntry& s : scope) {
    std::optional<Numbers> n = NumbersOf(s);
    if (n.has_value() && n->digits == want->digits) have.emplace_back(n->first, n->end);
  }
  std::sort(have.begin(), have.end());
  uint64_t covered_to = want->first;  // [want->first, covered_to) lies in the union so far
  for (const auto& [first, end] : have) {
    if (covered_to >= want->end || first > covered_to) break;
    covered_to = std::max(covered_to, end);
  }
  return covered_to >= want->end;
}

}  // namespace

std::string TnAuthScopeText(const std::vector<TnAuthEntry>& entries) {
  std::vector<std::string> parts;
  for (const TnAuthEntry& e : entries) {
    switch (e.kind) {
      case TnAuthEntry::Kind::kSpc:
        parts.push_back(absl::StrCat("SPC ", e.value));
        break;
      case TnAuthEntry::Kind::kOne:
        parts.push_back(e.value);
        break;
      case TnAuthEntry::Kind::kRange: {
        std::optional<Numbers> n = NumbersOf(e);
        if (!n.has_value()) {
          parts.push_back(absl::StrCat(e.value, " +", e.count));
          break;
        }
        std::string last = absl::StrCat(n->end - 1);
        if (last.size() < n->digits) last.insert(0, n->digits - last.size(), '0');
        parts.push_back(absl::StrCat(e.value, "-", last));
        break;
      }
    }
  }
  return absl::StrJoin(parts, ", ");
}

std::vector<TnAuthEntry> EntriesOutsideScope(const std::vector<TnAuthEntry>& scope,
                                             const std::vector<TnAuthEntry>& subordinate) {
  const bool scope_has_spc = !FirstSpc(scope).empty();
  std::vector<TnAuthEntry> outside;
  for (const TnAuthEntry& e : subordinate) {
    bool ok = false;
    if (e.kind == TnAuthEntry::Kind::kSpc) {
      ok = std::any_of(scope.begin(), scope.end(), [&e](const TnAuthEntry& s) {
        return s.kind == TnAuthEntry::Kind::kSpc && s.value == e.value;
      });
    } else {
      ok = scope_has_spc || Encompassed(scope, e);
    }
    if (!ok) outside.push_back(e);
  }
  return outside;
}

namespace {
constexpr std::string_view kOrigOutsideScopePayload = "type.shaken/stir.OrigOutsideScope";
}  // namespace

absl::Status CheckOrigInScope(const std::vector<TnAuthEntry>& entries, std::string_view orig_tn,
                              std::string_view whose) {
  if (!TnAuthListHasTns(entries)) return absl::OkStatus();
  absl::StatusOr<std::string> orig = CanonicalizeTn(orig_tn);
  if (!orig.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("orig tn: ", orig.status().message()));
  }
  if (TnAuthListCovers(entries, *orig)) return absl::OkStatus();
  absl::Status s = absl::FailedPreconditionError(
      absl::StrCat("orig ", *orig, " is outside the delegate certificate's TNAuthList (",
                   TnAuthScopeText(entries), ") of ", ToAbsl(whose)));
  s.SetPayload(ToAbsl(kOrigOutsideScopePayload), absl::Cord(*orig));
  return s;
}

bool IsOrigOutsideScope(const absl::Status& status) {
  return status.code() == absl::StatusCode::kFailedPrecondition &&
         status.GetPayload(ToAbsl(kOrigOutsideScopePayload)).has_value();
}

}  // namespace shaken::stir
