// conformance_runner: executes every case of conformance/cases/*.json through stir's Verifier
// (real X5uCertificateSource, real HTTPS x5u server on 127.0.0.1) and, where the case fits the
// daemon's configuration, through shakend's Verify RPC (tests/daemon_fixture.h); runs the
// secsipidx and OpenSSL interop (interop.cc); writes REPORT.md and report.json. Exits 1 when any
// case fails (a regression fails CI), 2 on a set-up error.
//
//   conformance_runner --source-dir <repo> --out <dir> [--secsipidx PATH] [--openssl PATH]
//                      [--only <case-id-prefix>]
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <algorithm>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <optional>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_replace.h"
#include "absl/time/clock.h"
#include "conformance/interop.h"
#include "tests/testing/subprocess.h"
#include "conformance/recipe.h"
#include "conformance/runner.h"
#include "stir/absl_compat.h"
#include "stir/base64url.h"
#include "stir/cert_cache.h"
#include "stir/cert_validator.h"
#include "stir/clock.h"
#include "stir/memory_signer.h"
#include "stir/passport.h"
#include "stir/status_macros.h"
#include "stir/tn.h"
#include "stir/verification_stack.h"
#include "stir/x5u_fetcher.h"
#include "tests/daemon_fixture.h"
#include "tests/testing/https_server.h"
#include "tests/testing/test_pki.h"

namespace shaken::conformance {
namespace {

using stir::Json;
using testing::HttpResponse;
using testing::LeafOptions;
using testing::TestCert;
using testing::TestPki;

constexpr int64_t kVectorIat = 1443208345;  // V4's iat (docs/standards.md#test-vectors)
constexpr char kVectorX5u[] = "https://cert.example.org/passport.cer";

struct Args {
  std::string source_dir;
  std::string out;
  std::string secsipidx = "/usr/bin/secsipidx";
  std::string openssl = "/usr/bin/openssl";
  std::string only;
};

std::string Str(const Json& obj, const char* name, std::string fallback = "") {
  if (!obj.is_object()) return fallback;
  auto it = obj.find(name);
  if (it == obj.end() || !it->is_string()) return fallback;
  return it->get<std::string>();
}
int64_t Int(const Json& obj, const char* name, int64_t fallback = 0) {
  if (!obj.is_object()) return fallback;
  auto it = obj.find(name);
  if (it == obj.end() || !it->is_number_integer()) return fallback;
  return it->get<int64_t>();
}
bool Bool(const Json& obj, const char* name, bool fallback = false) {
  if (!obj.is_object()) return fallback;
  auto it = obj.find(name);
  if (it == obj.end() || !it->is_boolean()) return fallback;
  return it->get<bool>();
}
const Json& Member(const Json& obj, const char* name) {
  static const Json kEmpty = Json::object();
  if (!obj.is_object()) return kEmpty;
  auto it = obj.find(name);
  return it == obj.end() ? kEmpty : *it;
}

absl::StatusOr<Json> LoadJsonFile(const std::string& path) {
  ASSIGN_OR_RETURN(std::string text, stir::ReadFile(path, 4 << 20));
  Json j = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded()) return absl::InvalidArgumentError(absl::StrCat(path, ": not JSON"));
  return j;
}

// RewritingFetcher sends the test vectors' x5u (cert.example.org) to a loopback route, through
// the real libcurl fetcher.
class RewritingFetcher final : public stir::CertificateFetcher {
 public:
  RewritingFetcher(std::shared_ptr<const stir::CertificateFetcher> inner, std::string from,
                   std::string to)
      : inner_(std::move(inner)), from_(std::move(from)), to_(std::move(to)) {}
  stir::FetchResult Fetch(std::string_view url) const override {
    return inner_->Fetch(url == from_ ? std::string_view(to_) : url);
  }

 private:
  std::shared_ptr<const stir::CertificateFetcher> inner_;
  std::string from_, to_;
};

// Harness holds everything the cases share: the in-process daemon with its STI PKI and x5u
// server, a second (untrusted) PKI, a TLS server nobody trusts, the vector world, keys.
struct Harness {
  Args args;
  std::unique_ptr<testing::DaemonEnv> env;
  std::unique_ptr<client::Client> client;
  std::unique_ptr<testing::TempDir> dir;
  std::unique_ptr<TestPki> other_pki;
  std::unique_ptr<testing::HttpsServer> rogue_tls;
  TestCert default_leaf;
  stir::EvpPkeyPtr other_p256, p384, rsa;
  int refused_port = 0;
  std::string root_file;
  std::map<std::string, std::string> vectors;
  Json rfc_vectors;
  // The vector world: a PKI at V4's iat certifying K1, served at /vector/k1.pem.
  std::unique_ptr<TestPki> vector_pki;
  std::string vector_root_file;
  stir::EvpPkeyPtr k1_private;
  TestCert k1_leaf;
  std::map<std::string, std::shared_ptr<const stir::CertificateFetcher>> fetchers;
  std::map<std::string, std::shared_ptr<const stir::CertValidator>> validators;
};


absl::StatusOr<stir::EvpPkeyPtr> GenerateKey(const char* kind) {
  EVP_PKEY* k = std::string_view(kind) == "rsa" ? EVP_RSA_gen(2048) : EVP_EC_gen(kind);
  if (k == nullptr) return stir::OpenSslError(absl::StatusCode::kInternal, "key generation");
  return stir::EvpPkeyPtr(k);
}

absl::Status SetUp(Harness* h) {
  const absl::Time now = absl::Now();
  ASSIGN_OR_RETURN(h->env, testing::DaemonEnv::Create());
  ASSIGN_OR_RETURN(h->client, h->env->NewClient("sbc1.test"));
  h->dir = std::make_unique<testing::TempDir>();
  h->root_file = absl::StrCat(h->env->dir(), "/sti-root.pem");
  ASSIGN_OR_RETURN(h->other_pki, TestPki::Create(now));
  ASSIGN_OR_RETURN(h->default_leaf, h->env->pki().IssueLeaf());
  ASSIGN_OR_RETURN(testing::TlsServerPki rogue, testing::TlsServerPki::Create(now));
  ASSIGN_OR_RETURN(h->rogue_tls, testing::HttpsServer::Start({.tls = true,
                                                              .cert_pem = rogue.server.cert_pem,
                                                              .key_pem = rogue.server.key_pem}));
  ASSIGN_OR_RETURN(h->other_p256, GenerateKey("P-256"));
  ASSIGN_OR_RETURN(h->p384, GenerateKey("P-384"));
  ASSIGN_OR_RETURN(h->rsa, GenerateKey("rsa"));
  h->refused_port = testing::FreeLoopbackPort();  // nothing listens there: refused

  // Vectors.
  ASSIGN_OR_RETURN(h->rfc_vectors,
                   LoadJsonFile(h->args.source_dir + "/conformance/vectors/rfc_vectors.json"));
  for (const auto& [name, v] : h->rfc_vectors.items()) {
    if (!v.is_object()) continue;
    for (const auto& [field, value] : v.items()) {
      if (value.is_string()) h->vectors[absl::StrCat(name, ".", field)] = value.get<std::string>();
    }
  }
  ASSIGN_OR_RETURN(std::string k1_pem,
                   stir::ReadFile(h->args.source_dir + "/conformance/vectors/k1_private.pem"));
  ASSIGN_OR_RETURN(h->k1_private, stir::ReadPrivateKeyPem(k1_pem));
  ASSIGN_OR_RETURN(h->vector_pki, TestPki::Create(absl::FromUnixSeconds(kVectorIat)));
  LeafOptions k1;
  k1.subject_public_key = h->k1_private.get();
  ASSIGN_OR_RETURN(h->k1_leaf, h->vector_pki->IssueLeaf(k1));
  h->env->x5u_server().SetRoute("/vector/k1.pem", {.body = h->vector_pki->ChainPem(h->k1_leaf)});
  h->vector_root_file = h->dir->Write("vector-root.pem", h->vector_pki->root().cert_pem);
  return absl::OkStatus();
}

// Fetcher returns the libcurl fetcher for a fetch policy: "lab" (loopback allowed, any port,
// 1 s timeouts so slow cases stay short), "production" (the defaults: 443/8443, SSRF guard) or
// "production_any_port" (SSRF guard only); "vector:" prefixes rewrite the vector x5u.
absl::StatusOr<std::shared_ptr<const stir::CertificateFetcher>> Fetcher(Harness* h,
                                                                         const std::string& policy,
                                                                         bool vector) {
  const std::string key = absl::StrCat(vector ? "vector:" : "", policy);
  if (auto it = h->fetchers.find(key); it != h->fetchers.end()) return it->second;
  stir::X5uFetcherOptions o;
  o.tls_ca_file = h->env->TlsCaFile();
  o.connect_timeout = absl::Seconds(1);
  o.total_timeout = absl::Seconds(1);
  o.allow_private_addresses = policy == "lab";
  o.allow_any_port = policy != "production";
  ASSIGN_OR_RETURN(std::unique_ptr<stir::X5uFetcher> f, stir::X5uFetcher::New(o));
  std::shared_ptr<const stir::CertificateFetcher> out = std::move(f);
  if (vector) {
    out = std::make_shared<RewritingFetcher>(out, kVectorX5u,
                                             h->env->x5u_server().Url("/vector/k1.pem"));
  }
  h->fetchers[key] = out;
  return out;
}

absl::StatusOr<std::shared_ptr<const stir::CertValidator>> Validator(Harness* h,
                                                                     const std::string& root,
                                                                     const std::string& policy,
                                                                     const std::string& crl_file) {
  const std::string key = absl::StrCat(root, "|", policy, "|", crl_file);
  if (auto it = h->validators.find(key); it != h->validators.end()) return it->second;
  stir::CertValidatorOptions o;
  o.ca_file = root;
  if (!crl_file.empty()) o.crl_files = {crl_file};
  o.strictness = policy == "lenient" ? stir::ProfileStrictness::kLenient
                                     : stir::ProfileStrictness::kStrict;
  ASSIGN_OR_RETURN(std::unique_ptr<stir::CertValidator> v, stir::CertValidator::New(o));
  std::shared_ptr<const stir::CertValidator> out = std::move(v);
  h->validators[key] = out;
  return out;
}

std::string Unhex(std::string_view hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<char>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16)));
  }
  return out;
}

absl::StatusOr<TestCert> IssueCaseLeaf(Harness* h, const Json& spec) {
  LeafOptions o;
  o.spc = Str(spec, "spc", o.spc);
  o.common_name = absl::StrCat("SHAKEN ", o.spc);
  o.tn_auth_list = Bool(spec, "tn_auth_list", true);
  if (std::string hex = Str(spec, "tn_auth_list_der_hex"); !hex.empty()) {
    o.tn_auth_list_der = Unhex(hex);
  }
  if (auto it = spec.find("policy_oids"); it != spec.end() && it->is_array()) {
    o.policy_oids.clear();
    for (const Json& oid : *it) {
      if (oid.is_string()) o.policy_oids.push_back(oid.get<std::string>());
    }
  }
  const std::string ku = Str(spec, "key_usage");
  if (ku == "key_cert_sign") o.key_usage = LeafOptions::KeyUsage::kKeyCertSign;
  if (ku == "absent") o.key_usage = LeafOptions::KeyUsage::kAbsent;
  const std::string kt = Str(spec, "key_type");
  if (kt == "p384") o.key_type = LeafOptions::KeyType::kP384;
  if (kt == "rsa") o.key_type = LeafOptions::KeyType::kRsa2048;
  o.self_signed = Bool(spec, "self_signed");
  o.ca = Bool(spec, "ca");
  o.not_before_offset = absl::Seconds(Int(spec, "not_before_offset_s", -3600));
  o.not_after_offset = absl::Seconds(Int(spec, "not_after_offset_s", 90 * 86400));
  const TestPki& issuer = Str(spec, "issuer") == "untrusted" ? *h->other_pki : h->env->pki();
  return issuer.IssueLeaf(o);
}

std::string ChainFor(const TestPki& pki, const TestCert& leaf, const std::string& chain) {
  if (chain == "leaf_only") return leaf.cert_pem;
  if (chain == "reversed") return pki.intermediate().cert_pem + leaf.cert_pem;
  return pki.ChainPem(leaf);
}

// RouteFor is the HTTP response the x5u server gives for a case.
absl::StatusOr<HttpResponse> RouteFor(const Json& behaviour_spec, const std::string& chain_pem,
                                      const TestCert& leaf, const std::string& good_url) {
  const std::string b = Str(behaviour_spec, "behaviour", "chain");
  HttpResponse r;
  r.headers = {{"Content-Type", "application/pem-certificate-chain"}};
  r.body = chain_pem;
  if (b == "chain" || b == "refused" || b == "tls_untrusted") return r;
  if (b == "status") {
    r.status = static_cast<int>(Int(behaviour_spec, "status", 404));
    r.body = "not here\n";
    r.headers = {{"Content-Type", "text/plain"}};
  } else if (b == "slow") {
    r.delay_before = absl::Seconds(3);  // fetch timeout is 1 s; Stop cuts it short
  } else if (b == "trickle") {
    r.chunk_size = 64;
    r.delay_between_chunks = absl::Milliseconds(150);
  } else if (b == "oversize" || b == "oversize_no_length") {
    std::string big;
    while (big.size() < 64 * 1024) big += chain_pem;
    r.body = big;
    r.send_content_length = b == "oversize";
  } else if (b == "redirect") {
    r.status = static_cast<int>(Int(behaviour_spec, "status", 302));
    r.headers = {{"Location", good_url}};
    r.body.clear();
  } else if (b == "html") {
    r.headers = {{"Content-Type", "text/html"}};
    r.body = "<html><body>certificate</body></html>\n";
  } else if (b == "der") {
    r.body = stir::CertificateDer(leaf.cert.get());
    if (r.body.empty()) return absl::InternalError("i2d_X509");
    r.headers = {{"Content-Type", "application/pkix-cert"}};
  } else if (b == "empty") {
    r.body.clear();
  } else if (b == "trailing_garbage") {
    r.body += "this is not PEM\n";
  } else {
    return absl::InvalidArgumentError(absl::StrCat("unknown x5u behaviour ", b));
  }
  return r;
}

Outcome FromStir(const stir::VerifyResult& r) {
  Outcome o;
  o.ran = true;
  o.passed = r.overall.passed;
  o.sip_code = r.overall.sip_code;
  o.verstat = std::string(stir::VerstatName(r.overall.verstat));
  o.reason = std::string(stir::ReasonName(r.overall.reason));
  o.detail = r.overall.detail;
  for (const stir::Verdict& v : r.headers) o.header_reasons.emplace_back(stir::ReasonName(v.reason));
  return o;
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

// RunSignerCheck runs the AS-side checks named by kind "signer" cases.
absl::Status RunSignerCheck(Harness* h, const std::string& check, std::string* detail) {
  const auto& V = h->vectors;
  auto need = [](bool ok, std::string what) {
    return ok ? absl::OkStatus() : absl::FailedPreconditionError(std::move(what));
  };
  auto b64json = [](std::string_view b64) -> std::string {
    absl::StatusOr<std::string> s = stir::Base64UrlDecode(b64);
    return s.ok() ? *s : "";
  };
  stir::FixedClock clock(absl::FromUnixSeconds(kVectorIat));
  ASSIGN_OR_RETURN(auto k1, stir::MemorySigner::FromPem(
                                *stir::ReadFile(h->args.source_dir +
                                                "/conformance/vectors/k1_private.pem")));
  ASSIGN_OR_RETURN(auto signer, stir::PassportSigner::Create(k1.get(), kVectorX5u, &clock));
  stir::ShakenClaims v4;
  v4.attest = "A";
  v4.orig_tn = "12155550121";
  v4.dest_tns = {"12155550131"};
  v4.iat = kVectorIat;
  v4.origid = V.at("V4.origid");

  if (check == "v4_header") {
    std::string got = stir::CanonicalShakenHeader(kVectorX5u);
    *detail = got;
    return need(got == V.at("V4.header_json"), "header differs from V4");
  }
  if (check == "v4_payload") {
    std::string got =
        stir::CanonicalShakenPayload("A", {"12155550131"}, kVectorIat, "12155550121", v4.origid.value());
    *detail = got;
    return need(got == V.at("V4.payload_json"), "payload differs from V4");
  }
  if (check == "v4_prefix") {
    ASSIGN_OR_RETURN(stir::SignedPassport sp, signer->Sign(v4));
    const std::string& id = V.at("V4.identity");
    std::string v4_prefix = id.substr(0, id.rfind('.', id.find(';')));
    std::string got_prefix = sp.jws.substr(0, sp.jws.rfind('.'));
    std::string sig = b64json(sp.jws.substr(sp.jws.rfind('.') + 1));
    *detail = absl::StrCat("header.payload equal: ", got_prefix == v4_prefix,
                           "; parameters: ", sp.identity.substr(sp.identity.find(';')));
    RETURN_IF_ERROR(need(got_prefix == v4_prefix, "header.payload differs from V4"));
    RETURN_IF_ERROR(need(sp.identity.substr(sp.identity.find(';')) == id.substr(id.find(';')),
                         "Identity parameters differ from V4"));
    return need(VerifyEs256Independent(h->k1_private.get(), got_prefix, sig),
                "signature does not verify with K1 (OpenSSL)");
  }
  if (check == "v1_canonical" || check == "v5_canonical") {
    const std::string n = check == "v1_canonical" ? "V1" : "V5";
    Json header = Json::parse(V.at(n + ".header_json"), nullptr, false);
    Json payload = Json::parse(V.at(n + ".payload_json"), nullptr, false);
    if (n == "V5") payload["iat"] = kVectorIat;  // errata 6656
    std::string hc, pc;
    RETURN_IF_ERROR(stir::AppendCanonicalJson(header, &hc));
    RETURN_IF_ERROR(stir::AppendCanonicalJson(payload, &pc));
    *detail = absl::StrCat(hc, " ", pc);
    if (n == "V1") {
      RETURN_IF_ERROR(need(stir::Base64UrlEncode(hc) == V.at("V1.header_b64"), "V1 header b64"));
      return need(stir::Base64UrlEncode(pc) == V.at("V1.payload_b64"), "V1 payload b64");
    }
    RETURN_IF_ERROR(need(hc == V.at("V4.header_json"), "V5 header is not V4's canonically"));
    return need(pc == V.at("V4.payload_json"), "V5 payload is not V4's canonically");
  }
  if (check == "canonical_tns") {
    stir::ShakenClaims c = v4;
    c.orig_tn = "+1 (215) 555-0121";
    c.dest_tns = {"+1-215-555-0131"};
    ASSIGN_OR_RETURN(stir::SignedPassport sp, signer->Sign(c));
    size_t d1 = sp.jws.find('.'), d2 = sp.jws.rfind('.');
    std::string payload = b64json(sp.jws.substr(d1 + 1, d2 - d1 - 1));
    *detail = payload;
    return need(payload == V.at("V4.payload_json"), "TNs not canonicalized as in V4");
  }
  if (check == "refuse_stale_iat") {
    stir::ShakenClaims c = v4;
    c.iat = kVectorIat - 120;
    absl::StatusOr<stir::SignedPassport> stale = signer->Sign(c);
    c.iat = kVectorIat - 30;
    absl::StatusOr<stir::SignedPassport> fresh = signer->Sign(c);
    *detail = absl::StrCat("iat-120: ", stale.status().ToString(), "; iat-30: ",
                           fresh.status().ToString());
    return need(absl::IsInvalidArgument(stale.status()) && fresh.ok(), "iat window not enforced");
  }
  if (check == "refuse_attest") {
    stir::ShakenClaims c = v4;
    c.attest = "D";
    absl::Status s = signer->Sign(c).status();
    *detail = s.ToString();
    return need(absl::IsInvalidArgument(s), "attest D was signed");
  }
  if (check == "origid") {
    stir::ShakenClaims c = v4;
    c.origid = "not-a-uuid";
    absl::Status bad = signer->Sign(c).status();
    c.origid.reset();
    ASSIGN_OR_RETURN(stir::SignedPassport sp, signer->Sign(c));
    *detail = absl::StrCat("bad origid: ", bad.ToString(), "; generated: ", sp.origid);
    return need(absl::IsInvalidArgument(bad) && stir::IsUuid(sp.origid) && sp.origid[14] == '4',
                "origid rules");
  }
  if (check == "refuse_x5u") {
    std::vector<std::string> results;
    bool ok = true;
    for (const char* url : {"http://cert.example.org/a.pem", "https://u@cert.example.org/a.pem",
                            "https://cert.example.org/a.pem?x=1", "https://cert.example.org/a.pem#f",
                            "https://cert.example.org:9443/a.pem"}) {
      absl::Status s = stir::PassportSigner::Create(k1.get(), url, &clock).status();
      ok = ok && absl::IsInvalidArgument(s);
      results.push_back(absl::StrCat(url, " -> ", absl::StatusCodeToString(s.code())));
    }
    absl::Status good = stir::PassportSigner::Create(k1.get(), "https://cert.example.org:8443/a.pem", &clock).status();
    results.push_back(absl::StrCat("https :8443 -> ", absl::StatusCodeToString(good.code())));
    *detail = absl::StrJoin(results, "; ");
    return need(ok && good.ok(), "x5u policy");
  }
  if (check == "iat_integer") {
    stir::ShakenClaims c = v4;
    c.iat.reset();
    ASSIGN_OR_RETURN(stir::SignedPassport sp, signer->Sign(c));
    size_t d1 = sp.jws.find('.'), d2 = sp.jws.rfind('.');
    Json payload = Json::parse(b64json(sp.jws.substr(d1 + 1, d2 - d1 - 1)), nullptr, false);
    *detail = absl::StrCat("iat = ", payload.is_object() ? payload["iat"].dump() : "?");
    return need(payload.is_object() && payload["iat"].is_number_integer() &&
                    payload["iat"].get<int64_t>() == kVectorIat,
                "iat is not the clock's integer");
  }
  return absl::InvalidArgumentError(absl::StrCat("unknown signer check ", check));
}

// RunCase runs one verification case on both paths and the secsipidx comparison.
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
  ASSIGN_OR_RETURN(std::vector<std::string> identities, BuildIdentities(input, rc));

  // The call.
  stir::CallInfo call;
  call.from_tn = Str(ctx, "from", "12155550121");
  call.to_tns = {"12155550131"};
  if (auto it = ctx.find("to"); it != ctx.end() && it->is_array()) {
    call.to_tns.clear();
    for (const Json& t : *it) call.to_tns.push_back(t.get<std::string>());
  }
  if (ctx.contains("date_offset")) call.date = now + absl::Seconds(Int(ctx, "date_offset"));

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
    absl::StatusOr<client::VerifyResult> d = h->client->Verify(p, absl::Seconds(10));
    out->daemon.ran = true;
    if (d.ok()) {
      out->daemon.passed = d->overall.passed;
      out->daemon.sip_code = d->overall.sip_code;
      out->daemon.verstat = d->overall.verstat;
      out->daemon.reason = d->overall.reason;
      out->daemon.detail = d->overall.detail;
      for (const auto& v : d->identities) out->daemon.header_reasons.push_back(v.reason);
    } else {
      out->daemon.error = ErrorName(d.status().code());
      out->daemon.detail = std::string(d.status().message());
    }
    Compare(out->expect, &out->daemon);
  }

  // secsipidx on the same header, given the case's certificate.
  out->peer_note = PeerNa(c, identities, out->stir);
  if (out->peer_note.empty()) {
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

int Main(int argc, char** argv) {
  Harness h;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string flag = argv[i], value = argv[i + 1];
    if (flag == "--source-dir") h.args.source_dir = value;
    else if (flag == "--out") h.args.out = value;
    else if (flag == "--secsipidx") h.args.secsipidx = value;
    else if (flag == "--openssl") h.args.openssl = value;
    else if (flag == "--only") h.args.only = value;
    else {
      std::cerr << "unknown flag " << flag << "\n";
      return 2;
    }
  }
  if (h.args.source_dir.empty() || h.args.out.empty()) {
    std::cerr << "usage: conformance_runner --source-dir <repo> --out <dir> [--secsipidx PATH] "
                 "[--openssl PATH] [--only <case-id-prefix>]\n";
    return 2;
  }
  const absl::Time start = absl::Now();
  if (absl::Status s = SetUp(&h); !s.ok()) {
    std::cerr << "set-up failed: " << s << "\n";
    return 2;
  }

  Report report;
  report.generated_at = absl::FormatTime("%Y-%m-%d %H:%M:%S UTC", start, absl::UTCTimeZone());
  report.command = "ctest -L conformance (or: cmake --build <build> --target conformance_report)";
  absl::StatusOr<Json> reqs = LoadJsonFile(h.args.source_dir + "/conformance/requirements.json");
  if (!reqs.ok()) {
    std::cerr << reqs.status() << "\n";
    return 2;
  }
  report.requirements = (*reqs)["requirements"];

  std::vector<std::filesystem::path> files;
  for (const auto& e : std::filesystem::directory_iterator(h.args.source_dir + "/conformance/cases")) {
    if (e.path().extension() == ".json") files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());
  for (const auto& file : files) {
    absl::StatusOr<Json> doc = LoadJsonFile(file.string());
    if (!doc.ok() || !Member(*doc, "cases").is_array()) {
      CaseResult bad;
      bad.id = file.filename().string();
      bad.status = "fail";
      bad.failure = doc.ok() ? "no \"cases\" array" : std::string(doc.status().message());
      report.cases.push_back(bad);
      continue;
    }
    for (const Json& c : (*doc)["cases"]) {
      CaseResult r;
      r.id = Str(c, "id");
      if (!h.args.only.empty() && !absl::StartsWith(r.id, h.args.only)) continue;
      r.file = file.filename().string();
      r.kind = Str(c, "kind");
      r.title = Str(c, "title");
      r.why = Str(c, "why");
      r.expect = Member(c, "expect");
      r.expected_fail = Str(Member(c, "expected_fail"), "reason");
      for (const Json& q : Member(c, "requirements")) {
        if (q.is_string()) r.requirements.push_back(q.get<std::string>());
      }
      if (r.kind == "signer") {
        r.stir.ran = true;
        r.daemon.skip_why = "signer (AS) check";
        r.peer_note = "signer (AS) check";
        absl::Status s = RunSignerCheck(&h, Str(Member(c, "signer"), "check"), &r.signer_detail);
        r.stir.passed = s.ok();
        r.stir.reason = s.ok() ? "ok" : std::string(s.message());
        if (!s.ok()) r.stir.mismatch = s.ToString();
      } else if (absl::Status s = RunCase(&h, c, &r); !s.ok()) {
        r.stir.ran = true;
        r.stir.mismatch = absl::StrCat("case could not run: ", s.ToString());
      }
      Judge(&r);
      if (r.status == "fail" || r.status == "xpass") {
        std::cerr << "FAIL " << r.id << ": " << r.failure << "\n";
      }
      report.cases.push_back(std::move(r));
    }
  }

  if (h.args.only.empty()) {
    InteropDeps deps;
    deps.env = h.env.get();
    deps.client = h.client.get();
    deps.dir = h.dir.get();
    deps.secsipidx = h.args.secsipidx;
    deps.openssl = h.args.openssl;
    deps.untrusted_pki = h.other_pki.get();
    if (absl::Status s = RunInterop(deps, &report); !s.ok()) {
      InteropCount failed{"interop set-up", s.ToString(), 0, 1, {s.ToString()}};
      report.interop.push_back(failed);
    }
  }
  h.rogue_tls->Stop();
  report.seconds = absl::ToDoubleSeconds(absl::Now() - start);

  if (absl::Status s = WriteReport(report, h.args.out); !s.ok()) {
    std::cerr << "cannot write the report: " << s << "\n";
    return 2;
  }
  int failed = 0, xfail = 0;
  for (const CaseResult& r : report.cases) {
    failed += r.status == "fail" || r.status == "xpass";
    xfail += r.status == "xfail";
  }
  std::cout << report.cases.size() << " cases, " << failed << " failed, " << xfail
            << " expected failures; report in " << h.args.out << "/REPORT.md ("
            << report.seconds << " s)\n";
  for (const InteropCount& i : report.interop) {
    std::cout << "interop " << i.name << ": " << i.passed << "/" << i.total << "\n";
  }
  return Failed(report) ? 1 : 0;
}

}  // namespace
}  // namespace shaken::conformance

int main(int argc, char** argv) { return shaken::conformance::Main(argc, argv); }
