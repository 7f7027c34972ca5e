#include "cli/acme/authority_token.h"

#include <openssl/err.h>

#include "absl/strings/escaping.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "cli/acme/jws.h"
#include "stir/absl_compat.h"
#include "stir/base64url.h"
#include "stir/pem_chain.h"
#include "stir/status_macros.h"

namespace shaken::acme {
namespace {

absl::Status Denied(absl::string_view what) {
  return absl::PermissionDeniedError(absl::StrCat("Authority Token: ", what));
}

struct X509StackFree {
  void operator()(STACK_OF(X509) * s) const { sk_X509_free(s); }  // not the certificates
};

}  // namespace

std::string TnAuthListValue(std::string_view der) { return absl::Base64Escape(ToAbsl(der)); }

absl::StatusOr<std::string> DecodeTnAuthListValue(std::string_view value) {
  std::string der;
  if (!value.empty() &&
      (absl::Base64Unescape(ToAbsl(value), &der) ||
       absl::WebSafeBase64Unescape(ToAbsl(value), &der)) &&
      !der.empty()) {
    return der;
  }
  return absl::InvalidArgumentError(
      "a TNAuthList value must be the base64 of its DER encoding (RFC 9448 §3)");
}

absl::StatusOr<std::string> SignAuthorityToken(const stir::Signer& signer, std::string_view x5u,
                                               const AuthorityTokenClaims& c) {
  if (c.tnauthlist_der.empty()) return absl::InvalidArgumentError("the TNAuthList is empty");
  if (!absl::StartsWith(c.fingerprint, "SHA256 ")) {
    return absl::InvalidArgumentError("the account fingerprint must be \"SHA256 XX:XX:...\"");
  }
  if (!absl::StartsWith(ToAbsl(x5u), "https://") && !absl::StartsWith(ToAbsl(x5u), "http://")) {
    return absl::InvalidArgumentError("the x5u must be an http(s) URL of the PA certificate");
  }
  if (c.exp <= c.iat) return absl::InvalidArgumentError("exp must be after iat");
  Json header = {{"alg", "ES256"}, {"typ", "JWT"}, {"x5u", std::string(x5u)}};
  Json payload = {{"atc",
                   {{"tktype", "TNAuthList"},
                    {"tkvalue", TnAuthListValue(c.tnauthlist_der)},
                    {"ca", c.ca},
                    {"fingerprint", c.fingerprint}}},
                  {"exp", absl::ToUnixSeconds(c.exp)},
                  {"iat", absl::ToUnixSeconds(c.iat)},
                  {"iss", c.iss},
                  {"jti", c.jti.empty() ? RandomToken(16) : c.jti}};
  std::string h, p;
  RETURN_IF_ERROR(stir::AppendCanonicalJson(header, &h));
  RETURN_IF_ERROR(stir::AppendCanonicalJson(payload, &p));
  std::string input = absl::StrCat(stir::Base64UrlEncode(h), ".", stir::Base64UrlEncode(p));
  ASSIGN_OR_RETURN(std::string sig, SignEs256(signer, input));
  return absl::StrCat(input, ".", sig);
}

absl::StatusOr<VerifiedToken> VerifyAuthorityToken(std::string_view token,
                                                   const TokenExpectations& e) {
  absl::StatusOr<CompactJws> jws = ParseCompactJws(token);
  if (!jws.ok()) return Denied(jws.status().message());
  if (StringMember(jws->header, "alg") != "ES256") return Denied("alg must be ES256");
  const std::string x5u = StringMember(jws->header, "x5u");
  if (x5u.empty()) return Denied("the header has no x5u (the STI-PA certificate URL)");
  if (e.fetcher == nullptr || e.pa_anchors == nullptr) {
    return absl::FailedPreconditionError("no STI-PA trust anchors configured");
  }
  stir::FetchResult fetched = e.fetcher->Fetch(x5u);
  if (!fetched.ok()) {
    return Denied(absl::StrCat("cannot fetch the PA certificate at ", x5u, ": ", fetched.detail));
  }
  absl::StatusOr<std::vector<stir::X509Ptr>> chain = stir::ParsePemChain(fetched.body);
  if (!chain.ok()) return Denied(absl::StrCat("x5u body: ", chain.status().message()));
  // The PA chain must reach one of the configured anchors at `now`.
  std::unique_ptr<STACK_OF(X509), X509StackFree> untrusted(sk_X509_new_null());
  for (size_t i = 1; i < chain->size(); ++i) sk_X509_push(untrusted.get(), (*chain)[i].get());
  stir::X509StoreCtxPtr ctx(X509_STORE_CTX_new());
  if (!ctx ||
      X509_STORE_CTX_init(ctx.get(), e.pa_anchors, (*chain)[0].get(), untrusted.get()) != 1) {
    return stir::OpenSslError(absl::StatusCode::kInternal, "X509_STORE_CTX_init");
  }
  X509_STORE_CTX_set_time(ctx.get(), 0, static_cast<time_t>(absl::ToUnixSeconds(e.now)));
  if (X509_verify_cert(ctx.get()) != 1) {
    const int err = X509_STORE_CTX_get_error(ctx.get());
    ERR_clear_error();
    return Denied(absl::StrCat(
        "the PA certificate at ", x5u,
        " does not chain to a trusted STI-PA anchor: ", X509_verify_cert_error_string(err)));
  }
  EVP_PKEY* pa_key = X509_get0_pubkey((*chain)[0].get());
  if (pa_key == nullptr || !VerifyEs256Raw(jws->signing_input, jws->signature, pa_key).ok()) {
    return Denied(
        "the signature does not verify with the PA certificate's key (forged or altered)");
  }
  const Json& p = jws->payload;
  auto exp = p.find("exp");
  if (exp == p.end() || !exp->is_number_integer()) return Denied("exp is missing (RFC 9447 §4)");
  VerifiedToken out;
  out.exp = absl::FromUnixSeconds(exp->get<int64_t>());
  if (out.exp <= e.now) return Denied("the token has expired (exp)");
  out.jti = StringMember(p, "jti");
  if (out.jti.empty()) return Denied("jti is missing (RFC 9447 §4)");
  out.iss = StringMember(p, "iss");
  auto atc = p.find("atc");
  if (atc == p.end() || !atc->is_object()) return Denied("atc is missing (RFC 9448 §3)");
  if (StringMember(*atc, "tktype") != "TNAuthList") return Denied("atc tktype is not TNAuthList");
  absl::StatusOr<std::string> der = DecodeTnAuthListValue(StringMember(*atc, "tkvalue"));
  if (!der.ok() || *der != e.tnauthlist_der) {
    return Denied("atc tkvalue is not the TNAuthList of this authorization");
  }
  if (StringMember(*atc, "fingerprint") != e.fingerprint) {
    return Denied("atc fingerprint is not that of this ACME account's key");
  }
  if (auto ca = atc->find("ca"); ca != atc->end()) {
    if (!ca->is_boolean()) return Denied("atc ca must be true or false (RFC 9448 §3)");
    out.ca = ca->get<bool>();
  }
  out.pa_subject = stir::NameText(X509_get_subject_name((*chain)[0].get()));
  return out;
}

}  // namespace shaken::acme
