#include "stir/passport.h"

#include <algorithm>
#include <iterator>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "stir/absl_compat.h"
#include "stir/base64url.h"
#include "stir/identity_header.h"
#include "stir/openssl_util.h"
#include "stir/rcd.h"
#include "stir/rph.h"
#include "stir/status_macros.h"
#include "stir/time_text.h"
#include "stir/tn.h"
#include "stir/verdict.h"

namespace shaken::stir {
namespace {

absl::Status Malformed(std::string_view what) {
  return ReasonError(Reason::kPassportMalformed, what);
}

// ReadHeaderString reads an optional string member of the JOSE header.
absl::Status ReadHeaderString(const Json& header, const char* name,
                              std::optional<std::string>* out) {
  auto it = header.find(name);
  if (it == header.end()) return absl::OkStatus();
  if (!it->is_string()) {
    return Malformed(absl::StrCat("PASSporT header \"", name, "\" is not a string"));
  }
  *out = it->get<std::string>();
  return absl::OkStatus();
}

// The header parameters that may be named in crit: extensions this verifier understands and
// checks. RFC 7515 §4.1.11 forbids naming the parameters JWS and JWA define (alg, typ, x5u, ...),
// so they are not listed and a crit naming one is refused too.
constexpr std::string_view kUnderstoodCritParams[] = {"ppt"};  // RFC 8225 §8.1

// CheckCrit applies RFC 7515 §4.1.11: crit, when present, is a non-empty array of strings naming
// parameters present in the header, and a JWS whose crit names an extension the recipient does
// not understand is invalid.
absl::Status CheckCrit(const Json& header) {
  auto crit = header.find("crit");
  if (crit == header.end()) return absl::OkStatus();
  if (!crit->is_array() || crit->empty()) {
    return Malformed(
        "PASSporT header \"crit\" must be a non-empty array of strings (RFC 7515 §4.1.11)");
  }
  for (const Json& item : *crit) {
    if (!item.is_string()) {
      return Malformed("PASSporT header \"crit\" must hold strings only (RFC 7515 §4.1.11)");
    }
    const std::string& name = item.get_ref<const std::string&>();
    const std::string shown = name.substr(0, 32);
    if (name == "crit" || !header.contains(name)) {
      return Malformed(absl::StrCat("PASSporT header \"crit\" names \"", shown,
                                    "\", which the header does not carry (RFC 7515 §4.1.11)"));
    }
    if (std::find(std::begin(kUnderstoodCritParams), std::end(kUnderstoodCritParams), name) ==
        std::end(kUnderstoodCritParams)) {
      return ReasonError(Reason::kCritUnsupported,
                         absl::StrCat("PASSporT header \"crit\" names \"", shown,
                                      "\", which this verifier does not understand as an "
                                      "extension (RFC 7515 §4.1.11)"));
    }
  }
  return absl::OkStatus();
}

absl::StatusOr<Json> DecodeJsonSegment(std::string_view segment, const char* which) {
  absl::StatusOr<std::string> raw = Base64UrlDecode(segment);
  if (!raw.ok()) {
    return Malformed(absl::StrCat("PASSporT ", which, ": ", raw.status().message()));
  }
  absl::StatusOr<Json> json = ParseStrictJson(*raw);
  if (!json.ok()) {
    return Malformed(absl::StrCat("PASSporT ", which, ": ", json.status().message()));
  }
  return json;
}

absl::Status ClaimMissing(std::string_view name) {
  return ReasonError(Reason::kClaimMissing, absl::StrCat("PASSporT claim \"", ToAbsl(name),
                                                         "\" is missing"));
}
absl::Status ClaimInvalid(std::string_view what) {
  return ReasonError(Reason::kClaimInvalid, what);
}

absl::Status ReadStringArray(const Json& v, std::string_view name,
                             std::vector<std::string>* out) {
  if (!v.is_array() || v.empty()) {
    return ClaimInvalid(absl::StrCat("claim ", ToAbsl(name), " must be a non-empty array of strings"));
  }
  if (v.size() > kMaxDestTns) {
    return ClaimInvalid(absl::StrCat("claim ", ToAbsl(name), " has more than ", kMaxDestTns, " entries"));
  }
  for (const Json& item : v) {
    if (!item.is_string()) {
      return ClaimInvalid(absl::StrCat("claim ", ToAbsl(name), " must hold strings only"));
    }
    out->push_back(item.get<std::string>());
  }
  return absl::OkStatus();
}

// CheckTnClaims applies what every PASSporT type shares here: TNs only for orig and dest,
// canonical (a div chain is linked by TN; rph and rcd are checked against the call's From and To
// like shaken). RFC 8224 §8.3 (ID-6): the signer canonicalizes before signing, so a signed TN is
// digits, '#' and '*' only; a '+' or a separator means it did not, and is refused rather than
// silently repaired.
absl::Status CheckTnClaims(const PassportClaims& c) {
  if (!c.orig_tn) return ClaimMissing("orig.tn");
  if (c.dest_tns.empty()) return ClaimMissing("dest.tn");
  if (!IsCanonicalTn(*c.orig_tn)) {
    return ClaimInvalid("claim orig.tn is not a canonical TN (RFC 8224 §8.3: digits, # and * only)");
  }
  for (const std::string& tn : c.dest_tns) {
    if (!IsCanonicalTn(tn)) {
      return ClaimInvalid(
          "claim dest.tn holds a non-canonical TN (RFC 8224 §8.3: digits, # and * only)");
    }
  }
  return absl::OkStatus();
}

// CheckShakenClaims applies RFC 8588 to typed claims.
absl::Status CheckShakenClaims(const PassportClaims& c) {
  if (!c.attest) return ClaimMissing("attest");
  if (!c.origid) return ClaimMissing("origid");
  if (!c.orig_tn) return ClaimMissing("orig.tn");
  if (c.dest_tns.empty()) return ClaimMissing("dest.tn");
  if (!IsAttestLevel(*c.attest)) {
    return ReasonError(Reason::kAttestInvalid,
                       absl::StrCat("attest \"", c.attest->substr(0, 16),
                                    "\" is not A, B or C (RFC 8588 §4)"));
  }
  if (!IsUuid(*c.origid)) {
    return ReasonError(Reason::kOrigidInvalid, "origid is not a UUID (RFC 8588 §5)");
  }
  return CheckTnClaims(c);
}

// ReadDivClaim types the div claim (RFC 8946 §3): an object with one tn or uri string and an
// optional History-Info index hi.
absl::Status ReadDivClaim(const Json& v, PassportClaims* c) {
  if (!v.is_object()) {
    return ClaimInvalid("claim div must be an object holding a tn or uri (RFC 8946 §3)");
  }
  for (const auto& [name, value] : v.items()) {
    if (name != "tn" && name != "uri" && name != "hi") {
      return ClaimInvalid("claim div may hold only tn, uri and hi (RFC 8946 §3)");
    }
    if (!value.is_string()) {
      return ClaimInvalid(absl::StrCat("claim div.", name, " must be a string"));
    }
    (name == "tn" ? c->div_tn : name == "uri" ? c->div_uri : c->div_hi) =
        value.get<std::string>();
  }
  if (c->div_tn.has_value() == c->div_uri.has_value()) {
    return ClaimInvalid("claim div must hold exactly one of tn and uri (RFC 8946 §3)");
  }
  if (c->div_tn.has_value() && !IsCanonicalTn(*c->div_tn)) {
    return ClaimInvalid("claim div.tn is not a canonical TN (RFC 8224 §8.3: digits, # and * only)");
  }
  if (c->div_hi.has_value() && !IsHistoryInfoIndex(*c->div_hi)) {
    return ClaimInvalid("claim div.hi is not a History-Info index such as \"1.2\" (RFC 7044)");
  }
  return absl::OkStatus();
}

bool IsUrlChar(char c) {
  return absl::ascii_isgraph(static_cast<unsigned char>(c)) && c != '<' && c != '>' &&
         c != '"' && c != '\\';
}

}  // namespace

absl::StatusOr<DecodedPassport> DecodePassport(std::string_view jws) {
  if (jws.size() > kMaxPassportBytes) {
    return Malformed(absl::StrCat("PASSporT of ", jws.size(), " bytes exceeds the limit of ",
                                  kMaxPassportBytes));
  }
  size_t dot1 = jws.find('.');
  size_t dot2 = dot1 == std::string_view::npos ? dot1 : jws.find('.', dot1 + 1);
  if (dot2 == std::string_view::npos || jws.find('.', dot2 + 1) != std::string_view::npos) {
    return Malformed("a PASSporT has exactly three dot-separated segments (JWS compact form)");
  }
  if (dot1 == 0 && dot2 == 1) {
    return ReasonError(Reason::kCompactForm,
                       "compact form PASSporT; SHAKEN requires the full form "
                       "(ATIS-1000074 §5.3.3)");
  }
  if (dot1 == 0 || dot2 == dot1 + 1 || dot2 + 1 == jws.size()) {
    return Malformed("a PASSporT segment is empty");
  }
  DecodedPassport out;
  ASSIGN_OR_RETURN(Json header, DecodeJsonSegment(jws.substr(0, dot1), "header"));
  ASSIGN_OR_RETURN(out.payload, DecodeJsonSegment(jws.substr(dot1 + 1, dot2 - dot1 - 1),
                                                  "payload"));
  absl::StatusOr<std::string> sig = Base64UrlDecode(jws.substr(dot2 + 1));
  if (!sig.ok()) return Malformed(absl::StrCat("PASSporT signature: ", sig.status().message()));
  out.signature = *std::move(sig);
  RETURN_IF_ERROR(ReadHeaderString(header, "alg", &out.header.alg));
  RETURN_IF_ERROR(ReadHeaderString(header, "typ", &out.header.typ));
  RETURN_IF_ERROR(ReadHeaderString(header, "ppt", &out.header.ppt));
  RETURN_IF_ERROR(ReadHeaderString(header, "x5u", &out.header.x5u));
  RETURN_IF_ERROR(CheckCrit(header));
  out.signing_input = std::string(jws.substr(0, dot2));
  return out;
}

absl::StatusOr<PassportClaims> ExtractClaims(const Json& payload, std::string_view ppt) {
  PassportClaims c;
  auto iat = payload.find("iat");
  auto orig = payload.find("orig");
  auto dest = payload.find("dest");
  if (iat == payload.end()) return ClaimMissing("iat");
  if (orig == payload.end()) return ClaimMissing("orig");
  if (dest == payload.end()) return ClaimMissing("dest");

  // errata 5985 / 6656: iat is a JSON number, never a string.
  if (!iat->is_number_integer() || (iat->is_number_integer() && !iat->is_number_unsigned() &&
                                    iat->get<int64_t>() < 0)) {
    return ClaimInvalid("claim iat must be a non-negative JSON integer (RFC 8225 errata 5985)");
  }
  if (iat->is_number_unsigned() && iat->get<uint64_t>() > uint64_t{1} << 40) {
    return ClaimInvalid("claim iat is out of range");
  }
  c.iat = iat->get<int64_t>();

  if (!orig->is_object() || orig->size() != 1) {
    return ClaimInvalid("claim orig must be an object with a single tn or uri");
  }
  if (auto tn = orig->find("tn"); tn != orig->end()) {
    if (!tn->is_string()) return ClaimInvalid("claim orig.tn must be a string");
    c.orig_tn = tn->get<std::string>();
  } else if (auto uri = orig->find("uri"); uri != orig->end()) {
    if (!uri->is_string()) return ClaimInvalid("claim orig.uri must be a string");
    c.orig_uri = uri->get<std::string>();
  } else {
    return ClaimInvalid("claim orig must hold tn or uri");
  }

  if (!dest->is_object() || dest->empty()) {
    return ClaimInvalid("claim dest must be an object holding a tn and/or uri array");
  }
  for (const auto& [name, value] : dest->items()) {
    if (name == "tn") {
      RETURN_IF_ERROR(ReadStringArray(value, "dest.tn", &c.dest_tns));
    } else if (name == "uri") {
      RETURN_IF_ERROR(ReadStringArray(value, "dest.uri", &c.dest_uris));
    } else {
      return ClaimInvalid("claim dest may hold only tn and uri arrays (RFC 8225 §5.2.1)");
    }
  }

  for (const auto& [name, value] : payload.items()) {
    if (name == "iat" || name == "orig" || name == "dest") continue;
    if (name == "attest" || name == "origid") {
      if (!value.is_string()) {
        return ClaimInvalid(absl::StrCat("claim ", name, " must be a string"));
      }
      (name == "attest" ? c.attest : c.origid) = value.get<std::string>();
      continue;
    }
    if (name == "div" && ppt == kPptDiv) {
      RETURN_IF_ERROR(ReadDivClaim(value, &c));
      continue;
    }
    if (name == "rph" && ppt == kPptRph) {
      ASSIGN_OR_RETURN(c.rph_auth, ReadRphClaim(value));
      continue;
    }
    if (name == "sph" && ppt == kPptRph) {
      if (!value.is_string()) return ClaimInvalid("claim sph must be a string (RFC 9027)");
      c.sph = value.get<std::string>();
      continue;
    }
    // RFC 9795 rich call data in an rcd PASSporT, or in a shaken one (ATIS-1000094).
    if ((name == "rcd" || name == "rcdi" || name == "crn") && (ppt == kPptRcd || ppt == kPptShaken)) {
      if (name == "rcd") {
        c.rcd = value;
      } else if (name == "rcdi") {
        c.rcdi = value;
      } else if (!value.is_string()) {
        return ClaimInvalid("claim crn must be a string (RFC 9795)");
      } else {
        c.crn = value.get<std::string>();
      }
      continue;
    }
    c.other[name] = value;
  }
  if (c.rcd.has_value() || c.rcdi.has_value() || c.crn.has_value()) {
    RETURN_IF_ERROR(CheckRcdClaims(c));
  }

  if (ppt == kPptShaken) {
    RETURN_IF_ERROR(CheckShakenClaims(c));
    return c;
  }
  if (ppt == kPptDiv) {
    if (!c.div_tn && !c.div_uri) return ClaimMissing("div");
    RETURN_IF_ERROR(CheckTnClaims(c));
    return c;
  }
  if (ppt == kPptRph) {
    if (c.rph_auth.empty()) return ClaimMissing("rph");
    RETURN_IF_ERROR(CheckTnClaims(c));
    return c;
  }
  if (ppt == kPptRcd) {
    if (!c.rcd.has_value()) return ClaimMissing("rcd");
    RETURN_IF_ERROR(CheckTnClaims(c));
    return c;
  }
  return ReasonError(Reason::kPptUnsupported,
                     absl::StrCat("PASSporT type ppt=\"", ToAbsl(ppt.substr(0, 16)),
                                  "\" is not supported; shakend verifies ppt=shaken, div, rph "
                                  "and rcd"));
}

bool IsAttestLevel(std::string_view attest) {
  return attest == "A" || attest == "B" || attest == "C";
}

bool IsSupportedPpt(std::string_view ppt) {
  return ppt == kPptShaken || ppt == kPptDiv || ppt == kPptRph || ppt == kPptRcd;
}

std::string CanonicalShakenHeader(std::string_view x5u) { return CanonicalHeader(kPptShaken, x5u); }

std::string CanonicalHeader(std::string_view ppt, std::string_view x5u) {
  std::string out = R"({"alg":"ES256","ppt":)";
  AppendJsonString(ppt, &out);
  out.append(R"(,"typ":"passport","x5u":)");
  AppendJsonString(x5u, &out);
  out.push_back('}');
  return out;
}

std::string CanonicalShakenPayload(std::string_view attest, const std::vector<std::string>& dest,
                                   int64_t iat, std::string_view orig, std::string_view origid) {
  std::string out;
  out.reserve(96 + dest.size() * 20);
  out.append(R"({"attest":)");
  AppendJsonString(attest, &out);
  out.append(R"(,"dest":{"tn":[)");
  for (size_t i = 0; i < dest.size(); ++i) {
    if (i > 0) out.push_back(',');
    AppendJsonString(dest[i], &out);
  }
  out.append(R"(]},"iat":)");
  absl::StrAppend(&out, iat);
  out.append(R"(,"orig":{"tn":)");
  AppendJsonString(orig, &out);
  out.append(R"(},"origid":)");
  AppendJsonString(origid, &out);
  out.push_back('}');
  return out;
}

absl::Status ValidateX5uForSigning(std::string_view x5u, const X5uPolicy& policy) {
  // ATIS-1000080 CE-12: one x5u policy for signer and verifier. What the fetcher would refuse,
  // every verifier answers 436, so it is refused here with the fetcher's own words.
  FetchResult allowed = CheckX5uUrl(x5u, policy);
  if (!allowed.ok()) {
    return absl::InvalidArgumentError(absl::StrCat(
        "x5u \"", ToAbsl(x5u.substr(0, 128)), "\" would not be fetched by verifiers (shakend's "
        "own included, 436 x5u_not_allowed): ", allowed.detail,
        ". Publish the certificate chain at https://host/path or https://host:8443/path, "
        "without userinfo, query or fragment (ATIS-1000080 CE-12)"));
  }
  // Signing-only: the Identity header carries the URL as info=<...> (RFC 8224 §4).
  if (x5u.size() > 1024) return absl::InvalidArgumentError("x5u is longer than 1024 bytes");
  for (char c : x5u) {
    if (!IsUrlChar(c)) {
      return absl::InvalidArgumentError(
          "x5u must be printable ASCII without spaces, '<', '>', '\"' or '\\' (they would break "
          "the Identity header's info=<...>)");
    }
  }
  return absl::OkStatus();
}

PassportSigner::PassportSigner(const Signer* signer, std::string x5u, const Clock* clock,
                               Options options)
    : signer_(signer), x5u_(std::move(x5u)), clock_(clock), options_(options) {
  header_b64_ = Base64UrlEncode(CanonicalShakenHeader(x5u_));
  div_header_b64_ = Base64UrlEncode(CanonicalHeader(kPptDiv, x5u_));
  rph_header_b64_ = Base64UrlEncode(CanonicalHeader(kPptRph, x5u_));
  rcd_header_b64_ = Base64UrlEncode(CanonicalHeader(kPptRcd, x5u_));
}

absl::StatusOr<std::pair<std::string, std::vector<std::string>>> PassportSigner::PrepareOrigDest(
    std::string_view orig_tn, const std::vector<std::string>& dest_tns) const {
  absl::StatusOr<std::string> orig = CanonicalizeTn(orig_tn);
  if (!orig.ok()) return absl::InvalidArgumentError(absl::StrCat("orig tn: ", orig.status().message()));
  if (dest_tns.empty()) {
    return absl::InvalidArgumentError("dest needs at least one telephone number");
  }
  if (dest_tns.size() > kMaxDestTns) {
    return absl::InvalidArgumentError(
        absl::StrCat("dest has ", dest_tns.size(), " numbers; at most ", kMaxDestTns));
  }
  std::vector<std::string> dest;
  dest.reserve(dest_tns.size());
  for (size_t i = 0; i < dest_tns.size(); ++i) {
    absl::StatusOr<std::string> tn = CanonicalizeTn(dest_tns[i]);
    if (!tn.ok()) {
      return absl::InvalidArgumentError(
          absl::StrCat("dest tn #", i + 1, ": ", tn.status().message()));
    }
    dest.push_back(*std::move(tn));
  }
  return std::pair{*std::move(orig), std::move(dest)};
}

void PassportSigner::Assemble(std::string_view ppt, const std::string& payload,
                              SignedPassport& out) const {
  const std::string& header = ppt == kPptShaken ? header_b64_
                              : ppt == kPptDiv  ? div_header_b64_
                              : ppt == kPptRph  ? rph_header_b64_
                                                : rcd_header_b64_;
  out.jws.reserve(header.size() + payload.size() * 4 / 3 + 96);
  out.jws.append(header);
  out.jws.push_back('.');
  Base64UrlEncodeAppend(payload, &out.jws);
}

absl::StatusOr<std::unique_ptr<PassportSigner>> PassportSigner::Create(const Signer* signer,
                                                                        std::string x5u,
                                                                        const Clock* clock,
                                                                        Options options) {
  if (signer == nullptr || clock == nullptr) {
    return absl::InvalidArgumentError("PassportSigner needs a signer and a clock");
  }
  RETURN_IF_ERROR(ValidateX5uForSigning(x5u, options.x5u_policy));
  return std::unique_ptr<PassportSigner>(
      new PassportSigner(signer, std::move(x5u), clock, options));
}

absl::StatusOr<SignedPassport> PassportSigner::Prepare(const ShakenClaims& claims) const {
  if (!IsAttestLevel(claims.attest)) {
    return absl::InvalidArgumentError(absl::StrCat(
        "attest \"", claims.attest.substr(0, 16), "\" must be A, B or C (RFC 8588 §4)"));
  }
  ASSIGN_OR_RETURN(auto orig_dest, PrepareOrigDest(claims.orig_tn, claims.dest_tns));
  const std::string& orig = orig_dest.first;
  const std::vector<std::string>& dest = orig_dest.second;
  SignedPassport out;
  ASSIGN_OR_RETURN(out.iat, CheckIat(claims.iat));
  if (claims.origid.has_value()) {
    if (!IsUuid(*claims.origid)) {
      return absl::InvalidArgumentError("origid must be a UUID, e.g. "
                                        "123e4567-e89b-12d3-a456-426655440000 (RFC 8588 §5)");
    }
    out.origid = *claims.origid;
  } else {
    out.origid = NewUuidV4();
  }

  std::string payload = CanonicalShakenPayload(claims.attest, dest, out.iat, orig, out.origid);
  if (!claims.rcd.empty()) {
    // ATIS-1000094: rich call data inside the shaken PASSporT; the payload is then built as a
    // whole and serialized canonically (the plain shaken payload keeps its fast path).
    absl::StatusOr<Json> parsed = ParseStrictJson(payload);
    if (!parsed.ok()) return parsed.status();
    RETURN_IF_ERROR(AddRcdClaims(claims.rcd, options_.x5u_policy, &*parsed));
    payload.clear();
    RETURN_IF_ERROR(AppendCanonicalJson(*parsed, &payload));
  }
  Assemble(kPptShaken, payload, out);
  return out;
}

absl::StatusOr<int64_t> PassportSigner::CheckIat(std::optional<int64_t> given) const {
  const absl::Time now = clock_->Now();
  const int64_t iat = given.value_or(absl::ToUnixSeconds(now));
  if (iat <= 0) return absl::InvalidArgumentError("iat must be a positive NumericDate");
  if (options_.max_iat_skew > absl::ZeroDuration() &&
      absl::AbsDuration(absl::FromUnixSeconds(iat) - now) > options_.max_iat_skew) {
    return absl::InvalidArgumentError(absl::StrCat(
        "iat ", iat, " is ", OffsetText(absl::FromUnixSeconds(iat), now),
        "; the signing policy allows ", SecondsText(options_.max_iat_skew),
        " (RFC 8224 §4.1)"));
  }
  return iat;
}

void PassportSigner::Complete(const Es256Signature& sig, std::string_view ppt,
                              SignedPassport& out) const {
  out.jws.push_back('.');
  Base64UrlEncodeAppend(std::string_view(reinterpret_cast<const char*>(sig.data()), sig.size()),
                        &out.jws);
  out.identity = BuildIdentityHeader(out.jws, x5u_, ppt);
}

absl::StatusOr<SignedPassport> PassportSigner::Sign(const ShakenClaims& claims,
                                                    absl::Time deadline) const {
  return SignPrepared(Prepare(claims), kPptShaken, deadline);
}

void PassportSigner::SignAsync(const ShakenClaims& claims, absl::Time deadline,
                               SignDone done) const {
  SignPreparedAsync(Prepare(claims), kPptShaken, deadline, std::move(done));
}

absl::StatusOr<SignedPassport> PassportSigner::SignPrepared(
    absl::StatusOr<SignedPassport> prepared, std::string_view ppt, absl::Time deadline) const {
  ASSIGN_OR_RETURN(SignedPassport out, std::move(prepared));
  ASSIGN_OR_RETURN(Es256Signature sig, signer_->SignDigest(Sha256(out.jws), deadline));
  Complete(sig, ppt, out);
  return out;
}

void PassportSigner::SignPreparedAsync(absl::StatusOr<SignedPassport> prepared,
                                       std::string_view ppt, absl::Time deadline,
                                       SignDone done) const {
  if (!prepared.ok()) {
    std::move(done)(std::move(prepared).status());
    return;
  }
  const Sha256Digest digest = Sha256(prepared->jws);
  signer_->SignDigestAsync(
      digest, deadline,
      [this, ppt, out = *std::move(prepared),
       done = std::move(done)](absl::StatusOr<Es256Signature> sig) mutable {
        if (!sig.ok()) {
          std::move(done)(std::move(sig).status());
          return;
        }
        Complete(*sig, ppt, out);
        std::move(done)(std::move(out));
      });
}

}  // namespace shaken::stir
