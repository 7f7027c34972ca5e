// passport_rph.cc: rph PASSporTs (RFC 8443): the r-value grammar, signing, and the claim check.
// The JSON, TN canonicalization, iat policy and Identity header are the shaken signer's.
#include <algorithm>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "stir/absl_compat.h"
#include "stir/passport.h"
#include "stir/rph.h"
#include "stir/status_macros.h"
#include "stir/verdict.h"

namespace shaken::stir {
namespace {

// RFC 3261 token characters, without '.' (RFC 4412 token-nodot).
bool IsTokenNoDotChar(char c) {
  return absl::ascii_isalnum(static_cast<unsigned char>(c)) ||
         std::string_view("-!%*_+`'~").find(c) != std::string_view::npos;
}

bool IsTokenNoDot(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), IsTokenNoDotChar);
}

// IsSphValue: the sph claim is a SIP Priority value (RFC 9027 "psap-callback"), a token.
bool IsSphValue(std::string_view s) {
  return !s.empty() && s.size() <= 64 &&
         std::all_of(s.begin(), s.end(), [](char c) { return IsTokenNoDotChar(c) || c == '.'; });
}

}  // namespace

bool IsResourcePriorityValue(std::string_view s) {
  if (s.size() > 64) return false;
  const size_t dot = s.find('.');
  if (dot == std::string_view::npos) return false;
  return IsTokenNoDot(s.substr(0, dot)) && IsTokenNoDot(s.substr(dot + 1));
}

absl::StatusOr<std::vector<std::string>> ParseResourcePriority(
    const std::vector<std::string>& values) {
  std::vector<std::string> out;
  for (const std::string& value : values) {
    for (absl::string_view part : absl::StrSplit(value, ',')) {
      part = absl::StripAsciiWhitespace(part);
      if (!IsResourcePriorityValue(ToStd(part))) {
        return absl::InvalidArgumentError(absl::StrCat(
            "\"", part.substr(0, 64), "\" is not a Resource-Priority r-value: namespace.priority "
            "such as ets.0 or wps.4 (RFC 4412 §3.1)"));
      }
      if (out.size() == kMaxRphValues) {
        return absl::InvalidArgumentError(
            absl::StrCat("more than ", kMaxRphValues, " Resource-Priority r-values"));
      }
      out.emplace_back(part);
    }
  }
  return out;
}

absl::StatusOr<std::vector<std::string>> ReadRphClaim(const Json& rph) {
  auto invalid = [](std::string_view why) {
    return ReasonError(Reason::kClaimInvalid, absl::StrCat("claim rph ", ToAbsl(why),
                                                           " (RFC 8443 §3)"));
  };
  if (!rph.is_object() || rph.size() != 1 || !rph.contains("auth")) {
    return invalid("must be an object whose only member is auth");
  }
  const Json& auth = rph["auth"];
  if (!auth.is_array() || auth.empty() || auth.size() > kMaxRphValues) {
    return invalid(absl::StrCat("auth must be an array of 1 to ", kMaxRphValues, " r-values"));
  }
  std::vector<std::string> out;
  for (const Json& v : auth) {
    if (!v.is_string() || !IsResourcePriorityValue(v.get_ref<const std::string&>())) {
      return invalid("auth holds a value that is not an r-value such as \"ets.0\" (RFC 4412)");
    }
    out.push_back(v.get<std::string>());
  }
  return out;
}

bool RphCovers(const std::vector<std::string>& signed_auth,
               const std::vector<std::string>& received, std::string* missing) {
  missing->clear();
  if (received.empty()) return false;
  for (const std::string& r : received) {
    const bool found = std::any_of(signed_auth.begin(), signed_auth.end(), [&](const std::string& a) {
      return absl::EqualsIgnoreCase(a, r);
    });
    if (!found) {
      *missing = r;
      return false;
    }
  }
  return true;
}

absl::StatusOr<SignedPassport> PassportSigner::PrepareRph(const RphClaims& claims) const {
  ASSIGN_OR_RETURN(auto orig_dest, PrepareOrigDest(claims.orig_tn, claims.dest_tns));
  absl::StatusOr<std::vector<std::string>> auth = ParseResourcePriority(claims.auth);
  if (!auth.ok()) return absl::InvalidArgumentError(absl::StrCat("auth: ", auth.status().message()));
  if (auth->empty()) {
    return absl::InvalidArgumentError(
        "auth needs at least one Resource-Priority r-value, e.g. ets.0 (RFC 8443 §3)");
  }
  if (claims.sph.has_value() && !IsSphValue(*claims.sph)) {
    return absl::InvalidArgumentError(
        "sph must be a SIP Priority token such as psap-callback (RFC 9027)");
  }
  SignedPassport out;
  ASSIGN_OR_RETURN(out.iat, CheckIat(claims.iat));
  Json payload = {{"dest", {{"tn", orig_dest.second}}},
                  {"iat", out.iat},
                  {"orig", {{"tn", orig_dest.first}}},
                  {"rph", {{"auth", *auth}}}};
  if (claims.sph.has_value()) payload["sph"] = *claims.sph;
  std::string text;
  RETURN_IF_ERROR(AppendCanonicalJson(payload, &text));
  Assemble(kPptRph, text, out);
  return out;
}

absl::StatusOr<SignedPassport> PassportSigner::SignRph(const RphClaims& claims,
                                                       absl::Time deadline) const {
  return SignPrepared(PrepareRph(claims), kPptRph, deadline);
}

void PassportSigner::SignRphAsync(const RphClaims& claims, absl::Time deadline,
                                  SignDone done) const {
  SignPreparedAsync(PrepareRph(claims), kPptRph, deadline, std::move(done));
}

}  // namespace shaken::stir
