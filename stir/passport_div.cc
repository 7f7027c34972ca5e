// passport_div.cc: signing div PASSporTs (RFC 8946), the retargeting entity's side. The JSON,
// TN canonicalization, iat policy and Identity header are the shaken signer's (passport.cc).
#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "stir/absl_compat.h"
#include "stir/base64url.h"
#include "stir/identity_header.h"
#include "stir/passport.h"
#include "stir/status_macros.h"
#include "stir/time_text.h"
#include "stir/tn.h"

namespace shaken::stir {
namespace {

// OriginalClaims decodes the PASSporT being diverted and types its claims (INVALID_ARGUMENT
// naming DivClaims.original).
absl::StatusOr<PassportClaims> OriginalClaims(std::string_view original) {
  auto bad = [](absl::string_view why) {
    return absl::InvalidArgumentError(
        absl::StrCat("original: ", why,
                     "; give the Identity header value (or its JWS) of the PASSporT being "
                     "diverted, ppt shaken or div"));
  };
  if (original.empty()) return bad("empty");
  absl::StatusOr<IdentityHeader> header = ParseIdentityHeader(original);
  if (!header.ok()) return bad(header.status().message());
  absl::StatusOr<DecodedPassport> decoded = DecodePassport(header->digest);
  if (!decoded.ok()) return bad(decoded.status().message());
  const std::optional<std::string>& ppt = decoded->header.ppt;
  if (!ppt.has_value() || (*ppt != kPptShaken && *ppt != kPptDiv)) {
    return bad("its PASSporT header ppt is neither shaken nor div");
  }
  absl::StatusOr<PassportClaims> claims = ExtractClaims(decoded->payload, *ppt);
  if (!claims.ok()) return bad(claims.status().message());
  return claims;
}

}  // namespace

bool IsHistoryInfoIndex(std::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  bool digit_before = false;
  for (char c : s) {
    if (absl::ascii_isdigit(static_cast<unsigned char>(c))) {
      digit_before = true;
    } else if (c == '.' && digit_before) {
      digit_before = false;
    } else {
      return false;
    }
  }
  return digit_before;
}

std::string CanonicalDivPayload(const std::vector<std::string>& dest, std::string_view div_tn,
                                std::optional<std::string_view> hi, int64_t iat,
                                std::string_view orig) {
  std::string out;
  out.reserve(96 + dest.size() * 20);
  out.append(R"({"dest":{"tn":[)");
  for (size_t i = 0; i < dest.size(); ++i) {
    if (i > 0) out.push_back(',');
    AppendJsonString(dest[i], &out);
  }
  out.append(R"(]},"div":{)");
  if (hi.has_value()) {
    out.append(R"("hi":)");
    AppendJsonString(*hi, &out);
    out.push_back(',');
  }
  out.append(R"("tn":)");
  AppendJsonString(div_tn, &out);
  out.append(R"(},"iat":)");
  absl::StrAppend(&out, iat);
  out.append(R"(,"orig":{"tn":)");
  AppendJsonString(orig, &out);
  out.append("}}");
  return out;
}

absl::StatusOr<SignedPassport> PassportSigner::PrepareDiv(const DivClaims& claims) const {
  ASSIGN_OR_RETURN(PassportClaims original, OriginalClaims(claims.original));
  if (!original.orig_tn.has_value() || original.dest_tns.empty()) {
    return absl::InvalidArgumentError(
        "original: its orig and dest must be TNs; shakend diverts TN-addressed calls only");
  }
  // DIV-5 (ATIS-1000085): no div authentication for a call whose outermost PASSporT is stale.
  const absl::Time now = clock_->Now();
  const absl::Time original_iat = absl::FromUnixSeconds(*original.iat);
  if (absl::AbsDuration(now - original_iat) > options_.div_original_window) {
    return absl::FailedPreconditionError(absl::StrCat(
        "original: its iat is ", OffsetText(original_iat, now), "; a div PASSporT is signed "
        "only for an original within ", SecondsText(options_.div_original_window),
        " of now (ATIS-1000085: no div authentication for a stale PASSporT); divert the call "
        "while its PASSporT is fresh"));
  }

  std::string div_tn;
  if (claims.div_tn.has_value()) {
    absl::StatusOr<std::string> tn = CanonicalizeTn(*claims.div_tn);
    if (!tn.ok()) return absl::InvalidArgumentError(absl::StrCat("div_tn: ", tn.status().message()));
    if (std::find(original.dest_tns.begin(), original.dest_tns.end(), *tn) ==
        original.dest_tns.end()) {
      return absl::InvalidArgumentError(absl::StrCat(
          "div_tn ", *tn, " is not a dest TN of the original PASSporT; name the number "
          "being diverted (RFC 8946 §3: div is the original dest)"));
    }
    div_tn = *std::move(tn);
  } else if (original.dest_tns.size() == 1) {
    div_tn = original.dest_tns.front();
  } else {
    return absl::InvalidArgumentError(absl::StrCat(
        "div_tn is required: the original PASSporT has ", original.dest_tns.size(),
        " dest TNs; name the one being diverted"));
  }
  if (claims.hi.has_value() && !IsHistoryInfoIndex(*claims.hi)) {
    return absl::InvalidArgumentError(
        "hi must be a History-Info index such as \"1.2\" (digits separated by dots, RFC 7044)");
  }
  if (claims.dest_tns.empty()) {
    return absl::InvalidArgumentError("dest needs at least one telephone number (the new target)");
  }
  if (claims.dest_tns.size() > kMaxDestTns) {
    return absl::InvalidArgumentError(
        absl::StrCat("dest has ", claims.dest_tns.size(), " numbers; at most ", kMaxDestTns));
  }
  std::vector<std::string> dest;
  dest.reserve(claims.dest_tns.size());
  for (size_t i = 0; i < claims.dest_tns.size(); ++i) {
    absl::StatusOr<std::string> tn = CanonicalizeTn(claims.dest_tns[i]);
    if (!tn.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("dest tn #", i + 1, ": ", tn.status().message()));
    }
    dest.push_back(*std::move(tn));
  }

  SignedPassport out;
  ASSIGN_OR_RETURN(out.iat, CheckIat(claims.iat));
  std::optional<std::string_view> hi;
  if (claims.hi.has_value()) hi = *claims.hi;
  const std::string payload = CanonicalDivPayload(dest, div_tn, hi, out.iat, *original.orig_tn);
  Assemble(kPptDiv, payload, out);
  return out;
}

absl::StatusOr<SignedPassport> PassportSigner::SignDiv(const DivClaims& claims,
                                                       absl::Time deadline) const {
  return SignPrepared(PrepareDiv(claims), kPptDiv, deadline);
}

void PassportSigner::SignDivAsync(const DivClaims& claims, absl::Time deadline,
                                  SignDone done) const {
  SignPreparedAsync(PrepareDiv(claims), kPptDiv, deadline, std::move(done));
}

}  // namespace shaken::stir
