// passport_rcd.cc: signing rcd PASSporTs (RFC 9795, ppt=rcd). The rich call data claims are
// rcd.cc's (AddRcdClaims), shared with shaken PASSporTs that carry them (ATIS-1000094).
#include "absl/strings/str_cat.h"
#include "stir/passport.h"
#include "stir/rcd.h"
#include "stir/status_macros.h"

namespace shaken::stir {

absl::StatusOr<SignedPassport> PassportSigner::PrepareRcd(const RcdClaims& claims) const {
  ASSIGN_OR_RETURN(auto orig_dest, PrepareOrigDest(claims.orig_tn, claims.dest_tns));
  const RcdSigning& rcd = claims.rcd;
  if (!rcd.nam && !rcd.apn && !rcd.icn && !rcd.jcl && !rcd.jcd) {
    return absl::InvalidArgumentError(
        "rcd needs at least one of nam, apn, icn, jcl and jcd (RFC 9795)");
  }
  SignedPassport out;
  ASSIGN_OR_RETURN(out.iat, CheckIat(claims.iat));
  Json payload = {{"dest", {{"tn", orig_dest.second}}},
                  {"iat", out.iat},
                  {"orig", {{"tn", orig_dest.first}}}};
  RETURN_IF_ERROR(AddRcdClaims(rcd, options_.x5u_policy, &payload));
  std::string text;
  RETURN_IF_ERROR(AppendCanonicalJson(payload, &text));
  Assemble(kPptRcd, text, out);
  return out;
}

absl::StatusOr<SignedPassport> PassportSigner::SignRcd(const RcdClaims& claims,
                                                       absl::Time deadline) const {
  return SignPrepared(PrepareRcd(claims), kPptRcd, deadline);
}

void PassportSigner::SignRcdAsync(const RcdClaims& claims, absl::Time deadline,
                                  SignDone done) const {
  SignPreparedAsync(PrepareRcd(claims), kPptRcd, deadline, std::move(done));
}

}  // namespace shaken::stir
