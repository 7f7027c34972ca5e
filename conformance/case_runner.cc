#include "conformance/case_runner.h"

#include <cctype>
#include <cstdlib>
#include <string>
#include <vector>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "conformance/recipe.h"
#include "stir/clock.h"
#include "stir/rcd.h"
#include "stir/status_macros.h"
#include "stir/verification_stack.h"
#include "tests/testing/subprocess.h"

namespace shaken::conformance {
namespace {

using testing::HttpResponse;
using testing::TestCert;
using testing::TestPki;

Outcome FromStir(const stir::VerifyResult& r) {
  Outcome o;
  o.ran = true;
  o.passed = r.overall.passed;
  o.sip_code = r.overall.sip_code;
  o.verstat = std::string(stir::VerstatName(r.overall.verstat));
  o.reason = std::string(stir::ReasonName(r.overall.reason));
  o.detail = r.overall.detail;
  for (const stir::Verdict& v : r.headers) o.header_reasons.emplace_back(stir::ReasonName(v.reason));
  o.verstat_priority = std::string(stir::PriorityVerstatName(r.verstat_priority));
  for (const stir::RcdResult& c : r.rcds) {
    o.rcd_reasons.emplace_back(stir::ReasonName(c.reason));
    if (c.passed && o.display_name.empty()) o.display_name = c.nam;
  }
  return o;
}

// ExpandCaseValues replaces the case-level placeholders the recipe does not know: the rich call
// data content route ($content_url) and the rcdi digest of its signed body ($content_digest).
Json ExpandCaseValues(const Json& v, const std::string& url, const std::string& digest) {
  if (v.is_string()) {
    if (v == "$content_url") return url;
    if (v == "$content_digest") return digest;
    return v;
  }
  Json out = v;
  if (v.is_object()) {
    for (auto& [k, item] : out.items()) item = ExpandCaseValues(v[k], url, digest);
  } else if (v.is_array()) {
    for (size_t i = 0; i < v.size(); ++i) out[i] = ExpandCaseValues(v[i], url, digest);
  }
  return out;
}

std::string ErrorName(absl::StatusCode code) {
  std::string s = absl::StatusCodeToString(code);
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

// Compare fills o->mismatch with what differs from `expect`.
void Compare(const Json& expect, Outcome* o) {
  std::vector<std::string> diffs;
  if (std::string e = Str(expect, "error"); !e.empty() || !o->error.empty()) {
    if (e != o->error) {
      diffs.push_back(absl::StrCat("error: expected '", e, "', got '", o->error, "'"));
    }
  } else {
    if (expect.contains("passed") && Bool(expect, "passed") != o->passed) {
      diffs.push_back(absl::StrCat("passed: expected ", Bool(expect, "passed"), ", got ", o->passed));
    }
    if (expect.contains("sip_code") && Int(expect, "sip_code") != o->sip_code) {
      diffs.push_back(absl::StrCat("sip_code: expected ", Int(expect, "sip_code"), ", got ",
                                   o->sip_code));
    }
    if (expect.contains("verstat") && Str(expect, "verstat") != o->verstat) {
      diffs.push_back(absl::StrCat("verstat: expected ", Str(expect, "verstat"), ", got ",
                                   o->verstat));
    }
    if (expect.contains("reason") && Str(expect, "reason") != o->reason) {
      diffs.push_back(absl::StrCat("reason: expected ", Str(expect, "reason"), ", got ", o->reason));
    }
    for (const char* key : {"verstat_priority", "display_name"}) {
      const std::string got = std::string_view(key) == "display_name" ? o->display_name
                                                                      : o->verstat_priority;
      if (expect.contains(key) && Str(expect, key) != got) {
        diffs.push_back(absl::StrCat(key, ": expected '", Str(expect, key), "', got '", got, "'"));
      }
    }
    if (expect.contains("rcd_reasons")) {
      std::vector<std::string> want;
      for (const Json& r : expect["rcd_reasons"]) want.push_back(r.is_string() ? r.get<std::string>() : r.dump());
      if (want != o->rcd_reasons) {
        diffs.push_back(absl::StrCat("rcd_reasons: expected [", absl::StrJoin(want, ", "),
                                     "], got [", absl::StrJoin(o->rcd_reasons, ", "), "]"));
      }
    }
    // header_reasons: each Identity header's own reason, in input order.
    if (expect.contains("header_reasons")) {
      std::vector<std::string> want;
      for (const Json& r : expect["header_reasons"]) want.push_back(r.is_string() ? r.get<std::string>() : r.dump());
      if (want != o->header_reasons) {
        diffs.push_back(absl::StrCat("header_reasons: expected [", absl::StrJoin(want, ", "),
                                     "], got [", absl::StrJoin(o->header_reasons, ", "), "]"));
      }
    }
  }
  o->mismatch = absl::StrJoin(diffs, "; ");
  if (!o->mismatch.empty() && !o->detail.empty()) absl::StrAppend(&o->mismatch, " (", o->detail, ")");
}

// DaemonSkip says why a case cannot run through the daemon's fixed configuration ("" if it can).
std::string DaemonSkip(const Json& c) {
  const Json& ctx = Member(c, "context");
  if (c.contains("daemon") && !Bool(c, "daemon", true)) {
    return Str(c, "daemon_why", "excluded by the case");
  }
  if (Str(ctx, "world", "now") != "now") return "vector world (fixed clock at the vector's iat)";
  if (Str(ctx, "policy", "strict") != "strict") return "daemon runs the strict policy";
  if (ctx.contains("crl")) return "daemon has no CRL configured";
  if (Str(ctx, "fetch_policy", "lab") != "lab") return "daemon runs the lab fetch policy";
  if (ctx.contains("verifier")) return "daemon verifier options differ";
  const std::string b = Str(Member(ctx, "x5u_server"), "behaviour");
  if (b == "slow" || b == "trickle") return "daemon fetch timeout is 4 s (the stir path uses 1 s)";
  // The daemon reads the real clock: a PASSporT built a few seconds from the edge of the 60 s
  // window crosses it while the case runs (slowly, under a sanitizer). The stir path checks the
  // edge exactly with a fixed clock.
  for (const char* offset : {"iat_offset", "date_offset"}) {
    const Json& input = Member(c, "input");
    if (!input.contains(offset) || !input[offset].is_number_integer()) continue;
    const int64_t v = std::llabs(input[offset].get<int64_t>());
    if (v >= 50 && v <= 70) return "within 10 s of the 60 s window's edge (daemon reads the real clock)";
  }
  return "";
}

// PeerNa says why secsipidx -check cannot judge a case like shakend ("" if it can).
std::string PeerNa(const Json& c, const std::vector<std::string>& identities, const Outcome& o) {
  const Json& ctx = Member(c, "context");
  if (identities.size() != 1) return "several Identity headers (secsipidx checks one)";
  if (Str(ctx, "world", "now") != "now") return "vector world (secsipidx checks iat against the real clock)";
  if (!o.error.empty()) return "request-level error";
  const std::string& r = o.reason;
  if (absl::StartsWith(r, "fetch_") || r == "x5u_not_allowed") {
    return "x5u fetch behaviour (secsipidx is given the certificate file)";
  }
  if (r == "orig_mismatch" || r == "dest_mismatch" || r == "date_stale") {
    return "secsipidx -check has no From/To/Date input";
  }
  return "";
}

}  // namespace

absl::Status RunCase(Harness* h, const Json& c, CaseResult* out) {
  const Json& ctx = Member(c, "context");
  const Json& input = Member(c, "input");
  const bool vector = Str(ctx, "world", "now") == "vector";
  const absl::Time now = vector ? absl::FromUnixSeconds(Int(ctx, "at", kVectorIat))
                                : absl::FromUnixSeconds(absl::ToUnixSeconds(absl::Now()));

  // The certificate and what the x5u server answers.
  const Json& cert_spec = Member(ctx, "cert");
  TestCert issued;
  const TestCert* leaf = vector ? &h->k1_leaf : &h->default_leaf;
  const TestPki* pki = vector ? h->vector_pki.get() : &h->env->pki();
  if (!cert_spec.empty()) {
    ASSIGN_OR_RETURN(issued, IssueCaseLeaf(h, cert_spec));
    leaf = &issued;
    if (Str(cert_spec, "issuer") == "untrusted") pki = h->other_pki.get();
  }
  const std::string path = absl::StrCat("/c/", out->id, ".pem");
  const Json& behaviour = Member(ctx, "x5u_server");
  const std::string b = Str(behaviour, "behaviour", "chain");
  testing::HttpsServer& server = b == "tls_untrusted" ? *h->rogue_tls : h->env->x5u_server();
  const std::string good_path = absl::StrCat("/c/", out->id, ".good.pem");
  h->env->x5u_server().SetRoute(good_path, {.body = ChainFor(*pki, *leaf, "")});
  ASSIGN_OR_RETURN(HttpResponse route,
                   RouteFor(behaviour, ChainFor(*pki, *leaf, Str(ctx, "chain")), *leaf,
                            h->env->x5u_server().Url(good_path)));
  server.SetRoute(path, route);

  RecipeContext rc;
  rc.url = b == "refused" ? absl::StrCat("https://127.0.0.1:", h->refused_port, path)
                          : server.Url(path);
  rc.http_url = absl::StrReplaceAll(rc.url, {{"https://", "http://"}});
  rc.port = b == "refused" ? h->refused_port : server.port();
  rc.path = path;
  rc.iat = absl::ToUnixSeconds(now);
  rc.keys.leaf = stir::IsP256Key(leaf->key.get()) ? leaf->key.get() : nullptr;
  if (vector) rc.keys.leaf = h->k1_private.get();
  rc.keys.other_p256 = h->other_p256.get();
  rc.keys.p384 = h->p384.get();
  rc.keys.rsa = h->rsa.get();
  rc.vectors = h->vectors;
  // Rich call data content by reference (RFC 9795): served at /c/<id>.content ("serve", or the
  // signed "body"; "status" for an error), its rcdi digest computed from "body".
  const Json& content = Member(ctx, "rcd_content");
  const std::string content_path = absl::StrCat("/c/", out->id, ".content");
  const std::string content_body = Str(content, "body", "rich call data content");
  h->env->x5u_server().SetRoute(
      content_path, {.status = static_cast<int>(Int(content, "status", 200)),
                     .body = Str(content, "serve", content_body)});
  const Json expanded = ExpandCaseValues(input, h->env->x5u_server().Url(content_path),
                                         stir::RcdiDigest(content_body));
  ASSIGN_OR_RETURN(std::vector<std::string> identities, BuildIdentities(expanded, rc));

  // The call.
  stir::CallInfo call;
  call.from_tn = Str(ctx, "from", "12155550121");
  call.to_tns = {"12155550131"};
  if (auto it = ctx.find("to"); it != ctx.end() && it->is_array()) {
    call.to_tns.clear();
    for (const Json& t : *it) call.to_tns.push_back(t.get<std::string>());
  }
  if (ctx.contains("date_offset")) call.date = now + absl::Seconds(Int(ctx, "date_offset"));
  if (auto it = ctx.find("resource_priority"); it != ctx.end() && it->is_array()) {
    for (const Json& v : *it) call.resource_priority.push_back(v.get<std::string>());
  }

  // Path 1: stir's Verifier with a real X5uCertificateSource.
  std::string crl_file;
  if (std::string crl = Str(ctx, "crl"); !crl.empty()) {
    std::vector<const X509*> revoked;
    if (crl == "revoke_leaf") revoked.push_back(leaf->cert.get());
    ASSIGN_OR_RETURN(std::string crl_pem, h->env->pki().CrlPem(revoked, false));
    crl_file = h->dir->Write(absl::StrCat("crl-", out->id, ".pem"), crl_pem);
  }
  ASSIGN_OR_RETURN(auto fetcher, Fetcher(h, Str(ctx, "fetch_policy", "lab"), vector));
  ASSIGN_OR_RETURN(auto validator, Validator(h, vector ? h->vector_root_file : h->root_file,
                                             Str(ctx, "policy", "strict"), crl_file));
  stir::FixedClock clock(now);
  stir::VerifierSettings vs;
  vs.verifier.require_low_s = Bool(Member(ctx, "verifier"), "require_low_s");
  ASSIGN_OR_RETURN(std::unique_ptr<stir::VerificationStack> stack,
                   stir::VerificationStack::New(vs, &clock,
                                                {.fetcher = fetcher, .validator = validator}));
  absl::StatusOr<stir::VerifyResult> r = stack->verifier().Verify(identities, call);
  if (r.ok()) {
    out->stir = FromStir(*r);
  } else {
    out->stir.ran = true;
    out->stir.error = ErrorName(r.status().code());
    out->stir.detail = std::string(r.status().message());
  }
  Compare(out->expect, &out->stir);

  // Path 2: the daemon's Verify RPC.
  out->daemon.skip_why = DaemonSkip(c);
  if (out->daemon.skip_why.empty()) {
    client::VerifyParams p;
    p.identities = identities;
    p.from_tn = call.from_tn;
    p.to_tns = call.to_tns;
    if (call.date) p.date = absl::ToUnixSeconds(*call.date);
    p.request_id = out->id;
    p.resource_priority = call.resource_priority;
    absl::StatusOr<client::VerifyResult> d = h->client->Verify(p, absl::Seconds(10));
    out->daemon.ran = true;
    if (d.ok()) {
      out->daemon.passed = d->overall.passed;
      out->daemon.sip_code = d->overall.sip_code;
      out->daemon.verstat = d->overall.verstat;
      out->daemon.reason = d->overall.reason;
      out->daemon.detail = d->overall.detail;
      for (const auto& v : d->identities) out->daemon.header_reasons.push_back(v.reason);
      out->daemon.verstat_priority = d->verstat_priority;
      for (const auto& r : d->rcds) out->daemon.rcd_reasons.push_back(r.reason);
      out->daemon.display_name = d->display_name;
    } else {
      out->daemon.error = ErrorName(d.status().code());
      out->daemon.detail = std::string(d.status().message());
    }
    Compare(out->expect, &out->daemon);
  }

  // secsipidx on the same header, given the case's certificate.
  out->peer_note = PeerNa(c, identities, out->stir);
  if (out->peer_note.empty() && h->args.secsipidx.empty()) {
    out->peer_note = kNoSecsipidx;
  } else if (out->peer_note.empty()) {
    std::string cert_file = h->dir->Write(absl::StrCat("leaf-", out->id, ".pem"), leaf->cert_pem);
    testing::RunResult pr = testing::RunCommand({h->args.secsipidx, "-check", "-identity", identities[0],
                                   "-expire", "60", "-p", cert_file},
                                  {.timeout = absl::Seconds(10)});
    out->peer = pr.exit_code == 0 ? "accepted" : "rejected";
    std::string o = absl::StrReplaceAll(pr.output(), {{"\n", " "}});
    out->peer_note = o.substr(0, 160);
  }
  return absl::OkStatus();
}

void Judge(CaseResult* r) {
  std::vector<std::string> problems;
  if (!r->stir.mismatch.empty()) problems.push_back("stir: " + r->stir.mismatch);
  if (r->daemon.ran && !r->daemon.mismatch.empty()) problems.push_back("daemon: " + r->daemon.mismatch);
  bool ok = problems.empty();
  if (r->expected_fail.empty()) {
    r->status = ok ? "pass" : "fail";
    r->failure = absl::StrJoin(problems, " | ");
  } else if (ok) {
    r->status = "xpass";
    r->failure = "expected to fail (" + r->expected_fail + ") but now passes: update the case";
  } else {
    r->status = "xfail";
    r->failure = absl::StrJoin(problems, " | ");
  }
}

}  // namespace shaken::conformance
