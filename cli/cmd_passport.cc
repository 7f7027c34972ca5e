// cmd_passport.cc: shakenctl passport create | verify | dump. Everything protocol-related is
// stir's (PassportSigner, Verifier, DecodePassport, the certificate sources); this file only
// wires flags to them and maps the verdict to an exit code.
#include <iostream>
#include <memory>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "cli/commands.h"
#include "cli/file_cert_source.h"
#include "cli/x509.h"
#include "proto/verdict.h"
#include "stir/absl_compat.h"
#include "stir/clock.h"
#include "stir/identity_header.h"
#include "stir/cert_profile.h"
#include "stir/passport.h"
#include "stir/rcd.h"
#include "stir/pem_chain.h"
#include "stir/status_macros.h"
#include "stir/tn_auth_list.h"
#include "stir/verification_stack.h"
#include "stir/x5u_fetcher.h"

namespace shaken::cli {
namespace {

constexpr char kVerifyExitCodes[] = R"(
Exit codes:
  0  passed (TN-Validation-Passed)
  3  403 Stale Date: iat (or Date) outside --iat-window
  4  428 Use Identity Header: nothing to verify (no input)
  5  436 Bad Identity Info: info/x5u missing, not allowed, or the fetch failed
  6  437 Unsupported Credential: certificate untrusted, expired, revoked, wrong profile; bad alg/typ
  7  438 Invalid Identity Header: malformed, wrong claims, orig/dest mismatch, bad signature
  2  usage error (including a --from/--to that is not a TN)
  1  other error (unreadable file, bad trust configuration, ...)
)";

// ---------------------------------------------------------------------------------------------
// create

struct CreateFlags {
  std::string key;
  std::string x5u;
  std::string attest;
  std::string orig;
  std::vector<std::string> dest;
  std::string origid;
  std::optional<int64_t> iat;
  std::string ppt = "shaken";
  std::string div_of;   // --ppt div: the Identity header (or JWS) of the PASSporT diverted
  std::string div_tn;
  std::string hi;
  std::vector<std::string> rph;  // --ppt rph: Resource-Priority r-values
  std::string sph;
  std::string nam, apn, icn, jcl, jcd, crn;  // rich call data (RFC 9795)
  std::string tls_ca_file;                   // CA bundle for fetching icn / jcl
  std::string print = "both";
  bool json = false;
  bool x5u_any_port = false;  // lab: as verifier.lab.allow_any_port
  bool allow_private = false;  // lab: fetch icn / jcl from loopback (tests)
  std::string cert;  // the certificate published at x5u: its key and its scope are checked
  TokenOptions token;
};

// RichCallData collects the rcd flags (empty: absent) and computes their rcdi digests by
// fetching icn and jcl with the x5u fetcher under `policy`.
absl::StatusOr<stir::RcdSigning> RichCallData(const CreateFlags& f, const stir::X5uPolicy& policy) {
  auto opt = [](const std::string& s) {
    return s.empty() ? std::nullopt : std::optional<std::string>(s);
  };
  stir::RcdSigning rcd{.nam = opt(f.nam), .apn = opt(f.apn), .icn = opt(f.icn),
                       .jcl = opt(f.jcl), .jcd = opt(f.jcd), .crn = opt(f.crn)};
  if (rcd.icn || rcd.jcl) {
    stir::X5uFetcherOptions options;
    static_cast<stir::X5uPolicy&>(options) = policy;
    options.tls_ca_file = f.tls_ca_file;
    options.max_body_bytes = 64 * 1024;
    ASSIGN_OR_RETURN(std::unique_ptr<stir::X5uFetcher> fetcher, stir::X5uFetcher::New(options));
    RETURN_IF_ERROR(stir::ComputeRcdi(*fetcher, rcd));
  }
  return rcd;
}

// CheckSigningCertificate reads the PEM chain at `path` (leaf first) and checks that its leaf
// certifies `key` and, for a delegate certificate, that its TNAuthList covers `orig` (the rule
// shakend's profiles apply: stir::CheckOrigInScope).
absl::Status CheckSigningCertificate(const std::string& path, const LoadedKey& key,
                                     const std::string& orig) {
  ASSIGN_OR_RETURN(std::string pem, ReadInput(path, 64 * 1024));
  absl::StatusOr<std::vector<stir::X509Ptr>> chain = stir::ParsePemChain(pem);
  if (!chain.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("--cert ", path, ": ", chain.status().message()));
  }
  const X509* leaf = chain->front().get();
  if (!SameKey(X509_get0_pubkey(leaf), key.public_key.get())) {
    return absl::FailedPreconditionError(
        absl::StrCat("--cert ", path, " does not certify the --key ", key.where));
  }
  ASSIGN_OR_RETURN(stir::CertificateInfo info, stir::DescribeCertificate(leaf));
  if (orig.empty()) return absl::OkStatus();
  return stir::CheckOrigInScope(info.tn_auth_list, orig, absl::StrCat("--cert ", path));
}

int Create(const CreateFlags& f) {
  stir::X5uPolicy x5u_policy;  // the production x5u policy (CE-12)
  x5u_policy.allow_any_port = f.x5u_any_port;
  x5u_policy.allow_private_addresses = f.allow_private;
  const bool has_rcd = !f.nam.empty() || !f.apn.empty() || !f.icn.empty() || !f.jcl.empty() ||
                       !f.jcd.empty() || !f.crn.empty();
  if ((f.ppt == "rph") != !f.rph.empty() || (!f.sph.empty() && f.ppt != "rph")) {
    return UsageError("--ppt rph goes with --rph (and optionally --sph), and they with it");
  }
  if (has_rcd && f.ppt != "shaken" && f.ppt != "rcd") {
    return UsageError("--nam, --apn, --icn, --jcl, --jcd and --crn go with --ppt shaken or rcd");
  }
  if ((f.ppt == "rph" || f.ppt == "rcd") && (!f.attest.empty() || !f.origid.empty())) {
    return UsageError("--ppt rph and rcd take no --attest or --origid (only shaken attests)");
  }
  if (absl::Status st = stir::ValidateX5uForSigning(f.x5u, x5u_policy); !st.ok()) {
    return UsageError(absl::StrCat("bad --x5u: ", st.message()));
  }
  absl::StatusOr<LoadedKey> key = LoadSigningKey(f.key, f.token);
  if (!key.ok()) return Fail(key.status());
  if (!f.cert.empty()) {
    if (absl::Status st = CheckSigningCertificate(f.cert, *key, f.ppt == "div" ? "" : f.orig);
        !st.ok()) {
      return Fail(st);
    }
  }
  stir::PassportSigner::Options options;
  options.x5u_policy = x5u_policy;
  // An explicit --iat is for test vectors: no freshness check against the clock.
  if (f.iat.has_value()) options.max_iat_skew = absl::ZeroDuration();
  absl::StatusOr<std::unique_ptr<stir::PassportSigner>> signer = stir::PassportSigner::Create(
      key->signer.get(), f.x5u, &stir::SystemClock::Shared(), options);
  if (!signer.ok()) return Fail(signer.status());
  absl::StatusOr<stir::SignedPassport> signed_passport;
  if (f.ppt == "div") {
    if (!f.attest.empty() || !f.orig.empty() || !f.origid.empty()) {
      return UsageError("--ppt div takes no --attest, --orig or --origid: a div PASSporT has no "
                        "attest or origid, and its orig is copied from --div-of (RFC 8946)");
    }
    if (f.div_of.empty()) {
      return UsageError("--ppt div needs --div-of: the Identity header of the PASSporT diverted");
    }
    stir::DivClaims claims;
    claims.original = f.div_of;
    claims.dest_tns = f.dest;
    if (!f.div_tn.empty()) claims.div_tn = f.div_tn;
    if (!f.hi.empty()) claims.hi = f.hi;
    claims.iat = f.iat;
    signed_passport = (*signer)->SignDiv(claims, absl::Now() + absl::Seconds(30));
  } else if (f.ppt == "rph") {
    stir::RphClaims claims{.orig_tn = f.orig, .dest_tns = f.dest, .auth = f.rph, .iat = f.iat};
    if (!f.sph.empty()) claims.sph = f.sph;
    signed_passport = (*signer)->SignRph(claims, absl::Now() + absl::Seconds(30));
  } else if (f.ppt == "rcd") {
    absl::StatusOr<stir::RcdSigning> rcd = RichCallData(f, x5u_policy);
    if (!rcd.ok()) return Fail(rcd.status());
    stir::RcdClaims claims{.orig_tn = f.orig, .dest_tns = f.dest, .rcd = *std::move(rcd),
                           .iat = f.iat};
    signed_passport = (*signer)->SignRcd(claims, absl::Now() + absl::Seconds(30));
  } else {
    if (!f.div_of.empty() || !f.div_tn.empty() || !f.hi.empty()) {
      return UsageError("--div-of, --div-tn and --hi go with --ppt div");
    }
    if (f.attest.empty() || f.orig.empty()) {
      return UsageError("--ppt shaken needs --attest and --orig");
    }
    stir::ShakenClaims claims;
    claims.attest = f.attest;
    claims.orig_tn = f.orig;
    claims.dest_tns = f.dest;
    claims.iat = f.iat;
    if (!f.origid.empty()) claims.origid = f.origid;
    if (has_rcd) {
      absl::StatusOr<stir::RcdSigning> rcd = RichCallData(f, x5u_policy);
      if (!rcd.ok()) return Fail(rcd.status());
      claims.rcd = *std::move(rcd);
    }
    signed_passport = (*signer)->Sign(claims, absl::Now() + absl::Seconds(30));
  }
  if (!signed_passport.ok()) return Fail(signed_passport.status());
  if (f.json) {
    PrintJson({{"jws", signed_passport->jws},
               {"identity", signed_passport->identity},
               {"origid", signed_passport->origid},
               {"iat", signed_passport->iat},
               {"x5u", f.x5u},
               {"key", key->where}});
  } else if (f.print == "jws") {
    std::cout << signed_passport->jws << "\n";
  } else if (f.print == "identity") {
    std::cout << signed_passport->identity << "\n";
  } else {
    std::cout << "JWS: " << signed_passport->jws << "\n"
              << "Identity: " << signed_passport->identity << "\n";
  }
  return kExitOk;
}

// ---------------------------------------------------------------------------------------------
// verify

struct VerifyFlags {
  std::vector<std::string> inputs;
  std::string in_file;
  std::string x5u;
  std::string cert;
  std::string ca_file;
  std::string ca_dir;
  std::string tls_ca_file;
  std::vector<std::string> crls;
  bool allow_private_x5u = false;
  bool no_path_check = false;
  bool strict = false;
  double connect_timeout = 2;
  double timeout = 4;
  int64_t iat_window = 60;
  std::string from;
  std::vector<std::string> to;
  std::optional<int64_t> at;
  std::vector<std::string> resource_priority;
  bool json = false;
};

// LooksLikeBareJws: three dot-separated segments and no Identity parameters.
bool LooksLikeBareJws(std::string_view s) {
  return s.find(';') == std::string_view::npos &&
         std::count(s.begin(), s.end(), '.') == 2;
}

// ToIdentity turns a bare JWS into an Identity header value with info = --x5u or the JWS's x5u.
std::string ToIdentity(const std::string& input, const std::string& x5u) {
  if (!LooksLikeBareJws(input)) return input;
  std::string info = x5u;
  if (info.empty()) {
    absl::StatusOr<stir::DecodedPassport> d = stir::DecodePassport(input);
    if (d.ok() && d->header.x5u.has_value()) info = *d->header.x5u;
  }
  if (info.empty()) return input;  // the verifier answers 436 info_missing / 438 malformed
  return stir::BuildIdentityHeader(input, info);
}

void PrintVerdict(const stir::Verdict& v, std::string_view indent) {
  auto line = [&](std::string_view k, std::string_view val) {
    if (!val.empty()) std::cout << indent << k << val << "\n";
  };
  line("result:   ", v.passed ? "PASSED" : "FAILED");
  line("sip:      ", v.passed ? "-" : absl::StrCat(v.sip_code, " ", ToAbsl(v.sip_reason)));
  line("verstat:  ", stir::VerstatName(v.verstat));
  line("reason:   ", stir::ReasonName(v.reason));
  line("detail:   ", v.detail);
  line("attest:   ", v.attest);
  line("orig:     ", v.orig_tn);
  line("dest:     ", absl::StrJoin(v.dest_tns, ", "));
  line("origid:   ", v.origid);
  line("iat:      ", v.iat.has_value() ? absl::StrCat(*v.iat) : "");
  line("x5u:      ", v.x5u);
  line("cert:     ", v.cert_subject);
  line("cert spc: ", v.cert_spc);
  line("rph:      ", absl::StrJoin(v.rph_auth, ", "));
  line("sph:      ", v.sph);
}

// MakeStack builds the verification stack of `passport verify`: the x5u fetched and validated
// against --ca-file / --ca-dir, or the chain read from --cert, or (--no-path-check) only the
// leaf's key used.
absl::StatusOr<std::unique_ptr<stir::VerificationStack>> MakeStack(const VerifyFlags& f,
                                                                   const stir::Clock* clock) {
  if (!f.no_path_check && f.ca_file.empty() && f.ca_dir.empty()) {
    return absl::InvalidArgumentError(
        "no STI trust anchors: give --ca-file and/or --ca-dir (or --no-path-check to check "
        "only the signature with the certificate's key)");
  }
  stir::VerifierSettings settings;
  settings.validator.ca_file = f.ca_file;
  settings.validator.ca_dir = f.ca_dir;
  settings.validator.crl_files = f.crls;
  settings.validator.strictness =
      f.strict ? stir::ProfileStrictness::kStrict : stir::ProfileStrictness::kLenient;
  settings.x5u_policy.allow_any_port = f.allow_private_x5u;
  settings.x5u_policy.allow_private_addresses = f.allow_private_x5u;
  settings.fetcher.connect_timeout = absl::Seconds(f.connect_timeout);
  settings.fetcher.total_timeout = absl::Seconds(f.timeout);
  // With --cert nothing is fetched: its TLS trust is not read.
  if (f.cert.empty()) settings.fetcher.tls_ca_file = f.tls_ca_file;
  settings.verifier.iat_window = absl::Seconds(f.iat_window);

  stir::VerificationStackParts parts;
  parts.without_validator = f.no_path_check;
  if (!f.cert.empty() || f.no_path_check) {
    parts.make_source = [&f](std::shared_ptr<const stir::CertificateFetcher> fetcher,
                             std::shared_ptr<const stir::CertValidator> validator)
        -> absl::StatusOr<std::unique_ptr<stir::CertificateSource>> {
      if (f.cert.empty()) {
        return std::make_unique<ChainCertificateSource>("", std::move(fetcher), nullptr);
      }
      ASSIGN_OR_RETURN(std::string pem, ReadInput(f.cert, 64 * 1024));
      return std::make_unique<ChainCertificateSource>(std::move(pem), nullptr,
                                                      std::move(validator));
    };
  }
  return stir::VerificationStack::New(std::move(settings), clock, std::move(parts));
}

int Verify(const VerifyFlags& f) {
  if (f.connect_timeout <= 0 || f.timeout <= 0) {
    return UsageError("--connect-timeout and --timeout must be positive");
  }
  if (f.iat_window < 0) return UsageError("--iat-window must not be negative");
  std::vector<std::string> identities;
  for (const std::string& in : f.inputs) {
    identities.push_back(ToIdentity(std::string(absl::StripAsciiWhitespace(in)), f.x5u));
  }
  if (!f.in_file.empty()) {
    absl::StatusOr<std::string> data = ReadInput(f.in_file, 256 * 1024);
    if (!data.ok()) return Fail(data.status());
    for (absl::string_view line : absl::StrSplit(*data, '\n', absl::SkipWhitespace())) {
      line = absl::StripAsciiWhitespace(line);
      if (absl::StartsWithIgnoreCase(line, "Identity:")) {
        line = absl::StripAsciiWhitespace(line.substr(9));
      }
      identities.push_back(ToIdentity(std::string(line), f.x5u));
    }
  }
  std::unique_ptr<stir::Clock> fixed;
  const stir::Clock* clock = &stir::SystemClock::Shared();
  if (f.at.has_value()) {
    fixed = std::make_unique<stir::FixedClock>(absl::FromUnixSeconds(*f.at));
    clock = fixed.get();
  }
  absl::StatusOr<std::unique_ptr<stir::VerificationStack>> stack = MakeStack(f, clock);
  if (!stack.ok()) return Fail(stack.status());
  const stir::Verifier& verifier = (*stack)->verifier();
  stir::CallInfo call;
  call.from_tn = f.from;
  call.to_tns = f.to;
  call.resource_priority = f.resource_priority;
  absl::StatusOr<stir::VerifyResult> result = verifier.Verify(identities, call);
  if (!result.ok()) return UsageError(ToStd(result.status().message()));
  const stir::Verdict& v = result->overall;
  if (f.json) {
    // The public API's schema: shaken.v1.VerifyResponse, as the daemon's Verify answers.
    shaken::v1::VerifyResponse response;
    proto::FillVerifyResponse(*result, &response);
    absl::StatusOr<std::string> json = proto::ToJson(response);
    if (!json.ok()) return Fail(json.status());
    std::cout << *json;
  } else {
    PrintVerdict(v, "");
    if (result->headers.size() > 1) {
      for (size_t i = 0; i < result->headers.size(); ++i) {
        std::cout << "header " << i << ":\n";
        PrintVerdict(result->headers[i], "  ");
      }
    }
    if (result->verstat_priority != stir::PriorityVerstat::kNone) {
      std::cout << "priority: " << stir::PriorityVerstatName(result->verstat_priority) << "\n";
    }
    for (const stir::RcdResult& r : result->rcds) {
      std::cout << "rich call data of header " << r.header << ": "
                << (r.passed ? "SHOWN" : "DROPPED (") << (r.passed ? "" : stir::ReasonName(r.reason))
                << (r.passed ? "" : ")") << "\n";
      for (const auto& [k, val] : {std::pair{"  name:   ", &r.nam}, {"  apn:    ", &r.apn},
                                   {"  icon:   ", &r.icn}, {"  jcard:  ", &r.jcl},
                                   {"  reason: ", &r.crn}, {"  detail: ", &r.detail}}) {
        if (!val->empty()) std::cout << k << *val << "\n";
      }
    }
  }
  return ExitForSipCode(v.passed ? 0 : v.sip_code);
}

// ---------------------------------------------------------------------------------------------
// dump

struct DumpFlags {
  std::string input;
  bool json = false;
};

int Dump(const DumpFlags& f) {
  std::string input = f.input;
  if (input == "-") {
    absl::StatusOr<std::string> data = ReadInput("-", 64 * 1024);
    if (!data.ok()) return Fail(data.status());
    input = *data;
  }
  input = std::string(absl::StripAsciiWhitespace(input));
  if (absl::StartsWithIgnoreCase(input, "Identity:")) {
    input = std::string(absl::StripAsciiWhitespace(absl::string_view(input).substr(9)));
  }
  nlohmann::json out;
  std::string jws = input;
  if (!LooksLikeBareJws(input)) {
    absl::StatusOr<stir::IdentityHeader> h = stir::ParseIdentityHeader(input);
    if (!h.ok()) return Fail(h.status());
    jws = h->digest;
    nlohmann::json params;
    if (h->info) params["info"] = *h->info;
    if (h->alg) params["alg"] = *h->alg;
    if (h->ppt) params["ppt"] = *h->ppt;
    out["identity_params"] = params;
  }
  absl::StatusOr<stir::DecodedPassport> d = stir::DecodePassport(jws);
  if (!d.ok()) return Fail(d.status());
  nlohmann::json header = nlohmann::json::object();
  if (d->header.alg) header["alg"] = *d->header.alg;
  if (d->header.typ) header["typ"] = *d->header.typ;
  if (d->header.ppt) header["ppt"] = *d->header.ppt;
  if (d->header.x5u) header["x5u"] = *d->header.x5u;
  out["header"] = header;
  out["payload"] = d->payload;
  const std::string sig_hex = absl::BytesToHexString(d->signature);
  out["signature"] = {{"bytes", d->signature.size()}};
  if (d->signature.size() == 64) {
    out["signature"]["r"] = sig_hex.substr(0, 64);
    out["signature"]["s"] = sig_hex.substr(64);
  } else {
    out["signature"]["hex"] = sig_hex;
  }
  absl::StatusOr<stir::PassportClaims> claims =
      stir::ExtractClaims(d->payload, d->header.ppt.value_or(""));
  out["claims_check"] = claims.ok() ? "ok" : std::string(claims.status().message());
  if (f.json) {
    PrintJson(out);
    return kExitOk;
  }
  if (out.contains("identity_params")) {
    std::cout << "identity params: " << out["identity_params"].dump() << "\n";
  }
  std::cout << "header:    " << header.dump() << "\n"
            << "payload:   " << d->payload.dump(2) << "\n"
            << "signature: " << out["signature"].dump() << "\n"
            << "claims:    " << out["claims_check"].get<std::string>()
            << " (syntax only; nothing was verified)\n";
  return kExitOk;
}

}  // namespace

void AddPassportCommands(CLI::App& root, Registry& registry) {
  CLI::App* pp = root.add_subcommand("passport", "Create, verify and dump SHAKEN PASSporTs");
  pp->require_subcommand(1);

  auto c = std::make_shared<CreateFlags>();
  CLI::App* create = pp->add_subcommand(
      "create", "Sign a SHAKEN (RFC 8588), div (RFC 8946), rph (RFC 8443) or rcd (RFC 9795) "
      "PASSporT and print the JWS and "
                "Identity header");
  create->add_option("--key", c->key, "signing key: pkcs11: URI or PEM file")->required();
  create->add_option("--x5u", c->x5u, "https URL of the certificate chain")->required();
  create->add_option("--ppt", c->ppt, "PASSporT type: shaken, div for a retargeted call "
                                      "(RFC 8946), rph for a priority call (RFC 8443), rcd for "
                                      "rich call data (RFC 9795)")
      ->check(CLI::IsMember({"shaken", "div", "rph", "rcd"}))
      ->capture_default_str();
  create->add_option("--attest", c->attest, "attestation level (shaken)")
      ->check(CLI::IsMember({"A", "B", "C"}));
  create->add_option("--orig", c->orig, "calling TN (shaken)");
  create->add_option("--div-of", c->div_of,
                     "div: the Identity header (or JWS) of the PASSporT being diverted; refused "
                     "when its iat is over 60 s old");
  create->add_option("--div-tn", c->div_tn,
                     "div: the diverted number, when the original has several dest TNs");
  create->add_option("--hi", c->hi, "div: History-Info index, e.g. 1.2 (RFC 7044)");
  create->add_option("--rph", c->rph,
                     "rph: a Resource-Priority r-value such as ets.0 (repeatable; RFC 8443)")
      ->allow_extra_args(false);
  create->add_option("--sph", c->sph, "rph: the sph claim, e.g. psap-callback (RFC 9027)");
  create->add_option("--nam", c->nam, "rich call data: display name (shaken or rcd; RFC 9795)");
  create->add_option("--apn", c->apn, "rich call data: alternate presentation number");
  create->add_option("--icn", c->icn, "rich call data: icon URL, fetched for its rcdi digest");
  create->add_option("--jcl", c->jcl, "rich call data: jCard URL, fetched for its rcdi digest");
  create->add_option("--jcd", c->jcd, "rich call data: inline jCard (JSON array text)");
  create->add_option("--crn", c->crn, "rich call data: call reason");
  create->add_option("--tls-ca-file", c->tls_ca_file,
                     "CA bundle trusted when fetching --icn / --jcl (default: the system's)");
  create->add_flag("--allow-private-rcd", c->allow_private,
                   "lab: fetch --icn / --jcl from loopback addresses");
  create->add_option("--dest", c->dest, "called TN, for div the new target (repeatable)")->allow_extra_args(false)->required();
  create->add_option("--origid", c->origid, "origination identifier UUID (default: a new one)");
  create->add_option("--iat", c->iat, "issued-at Unix time (default: now; given: no skew check)");
  create->add_option("--print", c->print, "what to print")
      ->check(CLI::IsMember({"both", "jws", "identity"}))
      ->capture_default_str();
  create->add_flag("--json", c->json, "print JSON");
  create->add_flag("--x5u-any-port", c->x5u_any_port,
                   "lab: accept an x5u port other than 443 or 8443 (verifiers refuse it in "
                   "production, ATIS-1000080)");
  create->add_option("--cert", c->cert,
                     "the certificate chain published at --x5u (PEM, leaf first): it must "
                     "certify --key, and a delegate certificate's TNAuthList must cover --orig");
  AddTokenFlags(create, &c->token);
  create->footer(Examples(
      {"shakenctl passport create --key 'pkcs11:token=shaken;object=sp-2024' --pin-source "
       "env:SHAKEN_PIN \\",
       "    --x5u https://cert.example.net/sp.pem --attest A --orig +12155550121 --dest "
       "+12155550131",
       "shakenctl passport create --key sp.pem --x5u https://cert.example.net/sp.pem --ppt div "
       "\\",
       "    --div-of \"$IDENTITY\" --dest +12155550141 --hi 1.2"}));
  registry.push_back({create, [c] { return Create(*c); }});

  auto v = std::make_shared<VerifyFlags>();
  CLI::App* verify = pp->add_subcommand(
      "verify",
      "Verify Identity header values (or bare JWSs) like an STI-VS and print the verdict");
  verify->add_option("identity", v->inputs,
                     "Identity header value(s) or bare JWS(s); none: 428");
  verify->add_option("--in", v->in_file,
                     "read Identity values (one per line, optional 'Identity:' prefix); - = stdin");
  verify->add_option("--x5u", v->x5u, "info URL for a bare JWS (default: the JWS's x5u)");
  verify->add_option("--cert", v->cert, "use this PEM chain (leaf first) instead of fetching x5u");
  verify->add_option("--ca-file", v->ca_file, "STI trust anchors (PEM bundle)");
  verify->add_option("--ca-dir", v->ca_dir, "STI trust anchors (hashed directory, see ca-dir)");
  verify->add_option("--crl", v->crls, "CRL file (PEM/DER), repeatable")->allow_extra_args(false);
  verify->add_flag("--strict", v->strict, "enforce the ATIS-1000080 v005 profile strictly");
  verify->add_flag("--no-path-check", v->no_path_check,
                   "skip chain validation: only the signature with the certificate's key");
  verify->add_option("--tls-ca-file", v->tls_ca_file, "CA bundle trusted for the HTTPS x5u fetch");
  verify->add_flag("--allow-private-x5u", v->allow_private_x5u,
                   "lab: allow loopback/private x5u hosts and any port");
  verify->add_option("--connect-timeout", v->connect_timeout, "x5u connect timeout, seconds")
      ->capture_default_str();
  verify->add_option("--timeout", v->timeout, "x5u total timeout, seconds")
      ->capture_default_str();
  verify->add_option("--iat-window", v->iat_window, "accepted |now - iat|, seconds")
      ->capture_default_str();
  verify->add_option("--from", v->from, "calling TN to match orig.tn");
  verify->add_option("--to", v->to, "called TN(s) to match dest.tn")->allow_extra_args(false);
  verify->add_option("--at", v->at, "verify at this Unix time (test vectors)");
  verify->add_option("--resource-priority", v->resource_priority,
                     "the call's Resource-Priority value(s), checked against ppt=rph headers")
      ->allow_extra_args(false);
  verify->add_flag("--json", v->json,
                   "print the shaken.v1.VerifyResponse of the public API as JSON (proto3 mapping, "
                   "field names as in shaken.proto)");
  verify->footer(std::string(kVerifyExitCodes) +
                 Examples({"shakenctl passport verify --ca-dir /etc/shaken/sti-ca --from "
                           "+12155550121 --to +12155550131 \"$IDENTITY\"",
                           "shakenctl passport verify --cert sp-chain.pem --ca-file root.pem --at "
                           "1700000000 --iat-window 0 eyJhbGciOi...",
                           "shakenctl passport verify --no-path-check --cert sp.pem \"$JWS\""}));
  registry.push_back({verify, [v] { return Verify(*v); }});

  auto d = std::make_shared<DumpFlags>();
  CLI::App* dump = pp->add_subcommand(
      "dump", "Decode a PASSporT (header, claims, signature) without verifying anything");
  dump->add_option("input", d->input, "Identity header value or JWS; - for stdin")->required();
  dump->add_flag("--json", d->json, "print JSON");
  dump->footer(Examples({"shakenctl passport dump \"$IDENTITY\" --json"}));
  registry.push_back({dump, [d] { return Dump(*d); }});
}

}  // namespace shaken::cli
