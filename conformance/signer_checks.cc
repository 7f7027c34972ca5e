#include "conformance/signer_checks.h"

#include <map>
#include <memory>
#include <string_view>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "conformance/recipe.h"
#include "stir/base64url.h"
#include "stir/clock.h"
#include "stir/memory_signer.h"
#include "stir/passport.h"
#include "stir/status_macros.h"
#include "stir/tn.h"

namespace shaken::conformance {
namespace {

// Signing is what every check starts from: K1 behind a PassportSigner at V4's iat, V4's claims.
struct Signing {
  const Harness& h;
  const std::map<std::string, std::string>& vectors;
  stir::FixedClock clock{absl::FromUnixSeconds(kVectorIat)};
  std::unique_ptr<stir::MemorySigner> k1;
  std::unique_ptr<stir::PassportSigner> signer;
  stir::ShakenClaims v4;

  const std::string& V(const std::string& name) const { return vectors.at(name); }
};

absl::Status Need(bool ok, std::string what) {
  return ok ? absl::OkStatus() : absl::FailedPreconditionError(std::move(what));
}

std::string B64Decoded(std::string_view b64) {
  absl::StatusOr<std::string> s = stir::Base64UrlDecode(b64);
  return s.ok() ? *s : "";
}

// The decoded payload of a JWS compact form.
std::string PayloadOf(const std::string& jws) {
  size_t d1 = jws.find('.'), d2 = jws.rfind('.');
  return B64Decoded(std::string_view(jws).substr(d1 + 1, d2 - d1 - 1));
}

absl::Status V4Header(Signing& s, std::string* detail) {
  *detail = stir::CanonicalShakenHeader(kVectorX5u);
  return Need(*detail == s.V("V4.header_json"), "header differs from V4");
}

absl::Status V4Payload(Signing& s, std::string* detail) {
  *detail = stir::CanonicalShakenPayload("A", {"12155550131"}, kVectorIat, "12155550121",
                                         s.v4.origid.value());
  return Need(*detail == s.V("V4.payload_json"), "payload differs from V4");
}

absl::Status V4Prefix(Signing& s, std::string* detail) {
  ASSIGN_OR_RETURN(stir::SignedPassport sp, s.signer->Sign(s.v4));
  const std::string& id = s.V("V4.identity");
  std::string v4_prefix = id.substr(0, id.rfind('.', id.find(';')));
  std::string got_prefix = sp.jws.substr(0, sp.jws.rfind('.'));
  std::string sig = B64Decoded(sp.jws.substr(sp.jws.rfind('.') + 1));
  *detail = absl::StrCat("header.payload equal: ", got_prefix == v4_prefix,
                         "; parameters: ", sp.identity.substr(sp.identity.find(';')));
  RETURN_IF_ERROR(Need(got_prefix == v4_prefix, "header.payload differs from V4"));
  RETURN_IF_ERROR(Need(sp.identity.substr(sp.identity.find(';')) == id.substr(id.find(';')),
                       "Identity parameters differ from V4"));
  return Need(VerifyEs256Independent(s.h.k1_private.get(), got_prefix, sig),
              "signature does not verify with K1 (OpenSSL)");
}

// The canonical JSON of vector `n` (V1, or V5 whose iat errata 6656 fixes).
absl::Status Canonical(Signing& s, const std::string& n, std::string* detail) {
  Json header = Json::parse(s.V(n + ".header_json"), nullptr, false);
  Json payload = Json::parse(s.V(n + ".payload_json"), nullptr, false);
  if (n == "V5") payload["iat"] = kVectorIat;  // errata 6656
  std::string hc, pc;
  RETURN_IF_ERROR(stir::AppendCanonicalJson(header, &hc));
  RETURN_IF_ERROR(stir::AppendCanonicalJson(payload, &pc));
  *detail = absl::StrCat(hc, " ", pc);
  if (n == "V1") {
    RETURN_IF_ERROR(Need(stir::Base64UrlEncode(hc) == s.V("V1.header_b64"), "V1 header b64"));
    return Need(stir::Base64UrlEncode(pc) == s.V("V1.payload_b64"), "V1 payload b64");
  }
  RETURN_IF_ERROR(Need(hc == s.V("V4.header_json"), "V5 header is not V4's canonically"));
  return Need(pc == s.V("V4.payload_json"), "V5 payload is not V4's canonically");
}

absl::Status CanonicalTns(Signing& s, std::string* detail) {
  stir::ShakenClaims c = s.v4;
  c.orig_tn = "+1 (215) 555-0121";
  c.dest_tns = {"+1-215-555-0131"};
  ASSIGN_OR_RETURN(stir::SignedPassport sp, s.signer->Sign(c));
  *detail = PayloadOf(sp.jws);
  return Need(*detail == s.V("V4.payload_json"), "TNs not canonicalized as in V4");
}

absl::Status RefuseStaleIat(Signing& s, std::string* detail) {
  stir::ShakenClaims c = s.v4;
  c.iat = kVectorIat - 120;
  absl::StatusOr<stir::SignedPassport> stale = s.signer->Sign(c);
  c.iat = kVectorIat - 30;
  absl::StatusOr<stir::SignedPassport> fresh = s.signer->Sign(c);
  *detail = absl::StrCat("iat-120: ", stale.status().ToString(), "; iat-30: ",
                         fresh.status().ToString());
  return Need(absl::IsInvalidArgument(stale.status()) && fresh.ok(), "iat window not enforced");
}

absl::Status RefuseAttest(Signing& s, std::string* detail) {
  stir::ShakenClaims c = s.v4;
  c.attest = "D";
  absl::Status st = s.signer->Sign(c).status();
  *detail = st.ToString();
  return Need(absl::IsInvalidArgument(st), "attest D was signed");
}

absl::Status Origid(Signing& s, std::string* detail) {
  stir::ShakenClaims c = s.v4;
  c.origid = "not-a-uuid";
  absl::Status bad = s.signer->Sign(c).status();
  c.origid.reset();
  ASSIGN_OR_RETURN(stir::SignedPassport sp, s.signer->Sign(c));
  *detail = absl::StrCat("bad origid: ", bad.ToString(), "; generated: ", sp.origid);
  return Need(absl::IsInvalidArgument(bad) && stir::IsUuid(sp.origid) && sp.origid[14] == '4',
              "origid rules");
}

absl::Status RefuseX5u(Signing& s, std::string* detail) {
  std::vector<std::string> results;
  bool ok = true;
  for (const char* url : {"http://cert.example.org/a.pem", "https://u@cert.example.org/a.pem",
                          "https://cert.example.org/a.pem?x=1", "https://cert.example.org/a.pem#f",
                          "https://cert.example.org:9443/a.pem"}) {
    absl::Status st = stir::PassportSigner::Create(s.k1.get(), url, &s.clock).status();
    ok = ok && absl::IsInvalidArgument(st);
    results.push_back(absl::StrCat(url, " -> ", absl::StatusCodeToString(st.code())));
  }
  absl::Status good =
      stir::PassportSigner::Create(s.k1.get(), "https://cert.example.org:8443/a.pem", &s.clock)
          .status();
  results.push_back(absl::StrCat("https :8443 -> ", absl::StatusCodeToString(good.code())));
  *detail = absl::StrJoin(results, "; ");
  return Need(ok && good.ok(), "x5u policy");
}

absl::Status IatInteger(Signing& s, std::string* detail) {
  stir::ShakenClaims c = s.v4;
  c.iat.reset();
  ASSIGN_OR_RETURN(stir::SignedPassport sp, s.signer->Sign(c));
  Json payload = Json::parse(PayloadOf(sp.jws), nullptr, false);
  *detail = absl::StrCat("iat = ", payload.is_object() ? payload["iat"].dump() : "?");
  return Need(payload.is_object() && payload["iat"].is_number_integer() &&
                  payload["iat"].get<int64_t>() == kVectorIat,
              "iat is not the clock's integer");
}

struct SignerCheck {
  std::string_view name;
  absl::Status (*run)(Signing& s, std::string* detail);
};

constexpr SignerCheck kSignerChecks[] = {
    {"v4_header", V4Header},
    {"v4_payload", V4Payload},
    {"v4_prefix", V4Prefix},
    {"v1_canonical", [](Signing& s, std::string* d) { return Canonical(s, "V1", d); }},
    {"v5_canonical", [](Signing& s, std::string* d) { return Canonical(s, "V5", d); }},
    {"canonical_tns", CanonicalTns},
    {"refuse_stale_iat", RefuseStaleIat},
    {"refuse_attest", RefuseAttest},
    {"origid", Origid},
    {"refuse_x5u", RefuseX5u},
    {"iat_integer", IatInteger},
};

}  // namespace

absl::Status RunSignerCheck(Harness* h, const std::string& check, std::string* detail) {
  Signing s{*h, h->vectors};
  ASSIGN_OR_RETURN(std::string k1_pem,
                   stir::ReadFile(h->args.source_dir + "/conformance/vectors/k1_private.pem"));
  ASSIGN_OR_RETURN(s.k1, stir::MemorySigner::FromPem(k1_pem));
  ASSIGN_OR_RETURN(s.signer, stir::PassportSigner::Create(s.k1.get(), kVectorX5u, &s.clock));
  s.v4.attest = "A";
  s.v4.orig_tn = "12155550121";
  s.v4.dest_tns = {"12155550131"};
  s.v4.iat = kVectorIat;
  s.v4.origid = s.V("V4.origid");
  for (const SignerCheck& c : kSignerChecks) {
    if (c.name == check) return c.run(s, detail);
  }
  return absl::InvalidArgumentError(absl::StrCat("unknown signer check ", check));
}

}  // namespace shaken::conformance
