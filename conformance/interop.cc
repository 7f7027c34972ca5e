#include "conformance/interop.h"

#include <openssl/pem.h>

#include <memory>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "tests/testing/subprocess.h"
#include "conformance/recipe.h"
#include "hsm/key_pool.h"
#include "hsm/secret.h"
#include "stir/absl_compat.h"
#include "stir/base64url.h"
#include "stir/clock.h"
#include "stir/identity_header.h"
#include "stir/memory_signer.h"
#include "stir/passport.h"
#include "stir/rcd.h"
#include "stir/status_macros.h"
#include "stir/verification_stack.h"
#include "tests/testing/lab_verifier.h"
#include "tests/testing/softhsm_token.h"

namespace shaken::conformance {
namespace {

constexpr int kHeaders = 100;
constexpr size_t kKeptFailures = 5;

void Count(InteropCount* c, bool ok, const std::string& what) {
  ++c->total;
  if (ok) {
    ++c->passed;
  } else if (c->failures.size() < kKeptFailures) {
    c->failures.push_back(what.substr(0, 300));
  }
}

// Leaf is the first certificate of a PEM chain file, with its public key.
struct Leaf {
  std::string leaf_file;
  std::string intermediate_file;
  std::string pubkey_file;
  stir::EvpPkeyPtr pubkey;
};

absl::StatusOr<Leaf> SplitChain(const std::string& chain_file, const std::string& name,
                                testing::TempDir* dir) {
  ASSIGN_OR_RETURN(std::string pem, stir::ReadFile(chain_file));
  const std::string kEnd = "-----END CERTIFICATE-----\n";
  size_t end = pem.find(kEnd);
  if (end == std::string::npos) return absl::InvalidArgumentError("chain without a certificate");
  Leaf out;
  std::string leaf_pem = pem.substr(0, end + kEnd.size());
  out.leaf_file = dir->Write(name + "-leaf.pem", leaf_pem);
  out.intermediate_file = dir->Write(name + "-intermediate.pem", pem.substr(end + kEnd.size()));
  stir::BioPtr bio(BIO_new_mem_buf(leaf_pem.data(), static_cast<int>(leaf_pem.size())));
  stir::X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (cert == nullptr) return absl::InvalidArgumentError("unreadable leaf");
  out.pubkey.reset(X509_get_pubkey(cert.get()));
  ASSIGN_OR_RETURN(std::string pub_pem, stir::PublicKeyToPem(out.pubkey.get()));
  out.pubkey_file = dir->Write(name + "-pub.pem", pub_pem);
  return out;
}

std::string Trim(std::string s) {
  return std::string(absl::StripAsciiWhitespace(s));
}

}  // namespace

absl::Status RunInterop(const InteropDeps& deps, Report* report) {
  testing::DaemonEnv& env = *deps.env;
  testing::TempDir& dir = *deps.dir;
  const std::string tls_ca = env.TlsCaFile();
  const std::string file_key = absl::StrCat(env.dir(), "/file.key");
  const std::string root = absl::StrCat(env.dir(), "/sti-root.pem");
  ASSIGN_OR_RETURN(Leaf file_leaf, SplitChain(absl::StrCat(env.dir(), "/file-chain.pem"), "file", &dir));
  ASSIGN_OR_RETURN(Leaf token_leaf,
                   SplitChain(absl::StrCat(env.dir(), "/token-chain.pem"), "token", &dir));

  // The two shakend signers: a file key, and the daemon's SoftHSM2 token key.
  ASSIGN_OR_RETURN(std::string file_key_pem, stir::ReadFile(file_key));
  ASSIGN_OR_RETURN(std::unique_ptr<stir::MemorySigner> file_signer,
                   stir::MemorySigner::FromPem(file_key_pem));
  hsm::SignerConfig sc;
  sc.module_path = testing::SoftHsmToken::Shared().module_path();
  sc.key_uri = env.token_key_uri();
  sc.pin = hsm::PinSource::FromFile(testing::SoftHsmToken::Shared().pin_file());
  sc.pool.size = 1;
  ASSIGN_OR_RETURN(std::unique_ptr<hsm::KeyPool> token_signer, hsm::OpenKeyPool(sc));
  const stir::Clock& clock = stir::SystemClock::Shared();
  // The fixture's x5u server listens on a loopback port (verifier.lab.allow_any_port).
  const stir::PassportSigner::Options kLabPort{.x5u_policy = {.allow_any_port = true}};
  ASSIGN_OR_RETURN(auto file_passport,
                   stir::PassportSigner::Create(file_signer.get(), env.file_x5u(), &clock, kLabPort));
  ASSIGN_OR_RETURN(auto token_passport,
                   stir::PassportSigner::Create(token_signer.get(), env.token_x5u(), &clock, kLabPort));

  // shakend -> secsipidx.
  InteropCount by_cert{"shakend -> secsipidx (certificate file)",
                       "secsipidx -check -identity <hdr> -expire 60 -p <leaf.pem>; 50 file-key, "
                       "50 SoftHSM2-token-key headers"};
  InteropCount by_x5u{"shakend -> secsipidx (x5u over HTTPS)",
                      "secsipidx -check -identity <hdr> -expire 60 -p <x5u https URL on "
                      "127.0.0.1>, SSL_CERT_FILE=<test TLS CA>"};
  InteropCount by_evp{"shakend -> OpenSSL EVP", "r||s converted to DER with ECDSA_SIG, "
                                                "EVP_DigestVerify with the leaf's key"};
  InteropCount by_cli{"shakend -> openssl dgst (CLI)",
                      "openssl dgst -sha256 -verify <pub.pem> -signature <sig.der> (every 10th)"};
  for (int i = 0; i < kHeaders; ++i) {
    const bool token = i % 2 == 1;
    stir::ShakenClaims claims;
    claims.attest = std::string(1, "ABC"[i % 3]);
    claims.orig_tn = absl::StrCat(i % 4 == 0 ? "+1 " : "1", 2155551000 + i);
    claims.dest_tns = {absl::StrCat(12155562000 + i)};
    if (i % 10 == 0) claims.dest_tns.push_back(absl::StrCat(12155563000 + i));
    absl::StatusOr<stir::SignedPassport> sp =
        (token ? token_passport : file_passport)->Sign(claims, absl::Now() + absl::Seconds(5));
    const std::string label = absl::StrCat(token ? "token" : "file", " #", i);
    if (!sp.ok()) {
      for (InteropCount* c : {&by_cert, &by_x5u, &by_evp}) {
        Count(c, false, absl::StrCat(label, ": signing failed: ", sp.status().ToString()));
      }
      continue;
    }
    const Leaf& leaf = token ? token_leaf : file_leaf;
    const std::string& x5u = token ? env.token_x5u() : env.file_x5u();
    testing::RunResult pc = testing::RunCommand({deps.secsipidx, "-check", "-identity", sp->identity, "-expire",
                                   "60", "-p", leaf.leaf_file});
    Count(&by_cert, pc.exit_code == 0, absl::StrCat(label, ": ", Trim(pc.output())));
    testing::RunResult px = testing::RunCommand({deps.secsipidx, "-check", "-identity", sp->identity, "-expire",
                                   "60", "-p", x5u, "-timeout", "5"},
                                  {.env = {{"SSL_CERT_FILE", tls_ca}}});
    Count(&by_x5u, px.exit_code == 0, absl::StrCat(label, ": ", Trim(px.output())));

    const size_t dot = sp->jws.rfind('.');
    const std::string input = sp->jws.substr(0, dot);
    absl::StatusOr<std::string> sig = stir::Base64UrlDecode(sp->jws.substr(dot + 1));
    const bool evp_ok = sig.ok() && VerifyEs256Independent(leaf.pubkey.get(), input, *sig);
    Count(&by_evp, evp_ok, label);
    if (i % 10 == 0 && sig.ok()) {
      absl::StatusOr<std::string> der = RawToDer(*sig);
      std::string in_file = dir.Write(absl::StrCat("sig-input-", i), input);
      std::string sig_file = dir.Write(absl::StrCat("sig-", i, ".der"), der.ok() ? *der : "");
      testing::RunResult po = testing::RunCommand({deps.openssl, "dgst", "-sha256", "-verify", leaf.pubkey_file,
                                     "-signature", sig_file, in_file});
      Count(&by_cli, po.exit_code == 0 && absl::StrContains(po.output(), "Verified OK"),
            absl::StrCat(label, ": ", Trim(po.output())));
    }
  }

  // secsipidx -> shakend.
  const stir::VerifierSettings vs = testing::LabVerifierSettings(root, tls_ca);
  ASSIGN_OR_RETURN(std::unique_ptr<stir::VerificationStack> stack,
                   stir::VerificationStack::New(vs, &clock));
  const stir::Verifier& verifier = stack->verifier();
  InteropCount to_stir{"secsipidx -> shakend (stir Verifier)",
                       "secsipidx -sign-full -orig-tn -dest-tn -attest -x5u <https x5u> -k "
                       "<file key>; stir Verifier, strict policy, real x5u fetch"};
  InteropCount to_daemon{"secsipidx -> shakend (daemon Verify RPC)",
                         "the same headers through shakend's Verify RPC"};
  for (int i = 0; i < kHeaders; ++i) {
    const std::string orig = absl::StrCat(12155571000 + i);
    const std::string dest = absl::StrCat(12155582000 + i);
    const std::string attest(1, "ABC"[i % 3]);
    testing::RunResult ps = testing::RunCommand({deps.secsipidx, "-sign-full", "-orig-tn", orig, "-dest-tn",
                                   dest, "-attest", attest, "-x5u", env.file_x5u(), "-k",
                                   file_key});
    const std::string identity = Trim(ps.out);
    const std::string label = absl::StrCat("secsipidx #", i);
    if (ps.exit_code != 0 || identity.find(";info=") == std::string::npos) {
      Count(&to_stir, false, absl::StrCat(label, ": signing failed: ", identity));
      Count(&to_daemon, false, absl::StrCat(label, ": signing failed"));
      continue;
    }
    stir::CallInfo call;
    call.from_tn = orig;
    call.to_tns = {dest};
    absl::StatusOr<stir::VerifyResult> r = verifier.Verify({identity}, call);
    Count(&to_stir, r.ok() && r->overall.passed,
          absl::StrCat(label, ": ", r.ok() ? r->overall.detail : r.status().ToString()));
    client::VerifyParams p;
    p.identities = {identity};
    p.from_tn = orig;
    p.to_tns = {dest};
    absl::StatusOr<client::VerifyResult> d = deps.client->Verify(p, absl::Seconds(10));
    Count(&to_daemon, d.ok() && d->overall.passed,
          absl::StrCat(label, ": ", d.ok() ? d->overall.detail : d.status().ToString()));
  }

  // secsipidx -> shakend, div (RFC 8946): secsipidx's -sign-full ignores -ppt (it always makes a
  // shaken PASSporT with attest and origid), but -sign signs a given header and payload as they
  // are; it prints the bare JWS, put under Identity ppt=div here. Each div diverts a shaken
  // PASSporT of stir's; the pair goes through stir's Verifier and the daemon. The other way is
  // not possible: secsipidx -check refuses a ppt other than shaken ("invalid value for ppt").
  InteropCount div_to_stir{"secsipidx -> shakend, div (stir Verifier)",
                           "secsipidx -sign -header <ppt=div header> -payload <div claims> -k "
                           "<file key>, paired with stir's shaken PASSporT; stir Verifier links "
                           "the chain"};
  InteropCount div_to_daemon{"secsipidx -> shakend, div (daemon Verify RPC)",
                             "the same pairs through shakend's Verify RPC"};
  for (int i = 0; i < 10; ++i) {
    const std::string orig = absl::StrCat(12155591000 + i);
    const std::string dest = absl::StrCat(12155592000 + i);
    const std::string target = absl::StrCat(12155593000 + i);
    const std::string label = absl::StrCat("secsipidx div #", i);
    absl::StatusOr<stir::SignedPassport> shaken = file_passport->Sign(
        {.attest = "A", .orig_tn = orig, .dest_tns = {dest}}, absl::Now() + absl::Seconds(5));
    std::string header = stir::CanonicalHeader(stir::kPptDiv, env.file_x5u());
    std::string payload = stir::CanonicalDivPayload({target}, dest, std::nullopt,
                                                    absl::ToUnixSeconds(absl::Now()), orig);
    testing::RunResult ps = testing::RunCommand({deps.secsipidx, "-sign", "-header", header,
                                                 "-payload", payload, "-k", file_key});
    const std::string jws = Trim(ps.out);
    if (!shaken.ok() || ps.exit_code != 0 || jws.empty()) {
      Count(&div_to_stir, false, absl::StrCat(label, ": signing failed: ", jws));
      Count(&div_to_daemon, false, absl::StrCat(label, ": signing failed"));
      continue;
    }
    const std::string div = stir::BuildIdentityHeader(jws, env.file_x5u(), stir::kPptDiv);
    stir::CallInfo call;
    call.from_tn = orig;
    call.to_tns = {target};
    absl::StatusOr<stir::VerifyResult> r = verifier.Verify({shaken->identity, div}, call);
    Count(&div_to_stir,
          r.ok() && r->overall.passed && r->divs.size() == 1 && r->divs[0].passed,
          absl::StrCat(label, ": ", r.ok() ? r->headers.back().detail : r.status().ToString()));
    client::VerifyParams p;
    p.identities = {shaken->identity, div};
    p.from_tn = orig;
    p.to_tns = {target};
    absl::StatusOr<client::VerifyResult> d = deps.client->Verify(p, absl::Seconds(10));
    Count(&div_to_daemon,
          d.ok() && d->overall.passed && d->divs.size() == 1 && d->divs[0].passed,
          absl::StrCat(label, ": ", d.ok() ? d->identities.back().detail : d.status().ToString()));
  }

  // secsipidx -> shakend, rph (RFC 8443) and rcd (RFC 9795): made the same way with -sign (a
  // given header and payload), next to stir's shaken PASSporT for the same call. The other way
  // is not possible for the same reason as div.
  auto secsipidx_sign = [&](std::string_view ppt, const stir::Json& payload,
                            std::string* identity) {
    std::string text;
    if (!stir::AppendCanonicalJson(payload, &text).ok()) return std::string("bad payload");
    testing::RunResult ps = testing::RunCommand(
        {deps.secsipidx, "-sign", "-header", stir::CanonicalHeader(ppt, env.file_x5u()),
         "-payload", text, "-k", file_key});
    const std::string jws = Trim(ps.out);
    if (ps.exit_code != 0 || jws.empty()) return absl::StrCat("signing failed: ", ps.output());
    *identity = stir::BuildIdentityHeader(jws, env.file_x5u(), ppt);
    return std::string();
  };
  InteropCount ppt_to_stir{"secsipidx -> shakend, rph and rcd (stir Verifier)",
                           "secsipidx -sign -header <ppt=rph|rcd header> -payload <claims> -k "
                           "<file key>, paired with stir's shaken PASSporT: the rph header checked "
                           "against Resource-Priority, the rcd's icon fetched and its rcdi digest "
                           "matched"};
  InteropCount ppt_to_daemon{"secsipidx -> shakend, rph and rcd (daemon Verify RPC)",
                             "the same pairs through shakend's Verify RPC"};
  const std::string icon_body = "interop icon";
  env.x5u_server().SetRoute("/interop/icon.png", {.body = icon_body});
  const std::string icon = env.x5u_server().Url("/interop/icon.png");
  for (int i = 0; i < 10; ++i) {
    const bool rph = i % 2 == 0;
    const std::string orig = absl::StrCat(12155594000 + i);
    const std::string dest = absl::StrCat(12155595000 + i);
    const std::string label = absl::StrCat("secsipidx ", rph ? "rph" : "rcd", " #", i);
    absl::StatusOr<stir::SignedPassport> shaken = file_passport->Sign(
        {.attest = "A", .orig_tn = orig, .dest_tns = {dest}}, absl::Now() + absl::Seconds(5));
    stir::Json payload = {{"dest", {{"tn", {dest}}}},
                          {"iat", absl::ToUnixSeconds(absl::Now())},
                          {"orig", {{"tn", orig}}}};
    if (rph) {
      payload["rph"] = {{"auth", {"ets.0"}}};
    } else {
      payload["rcd"] = {{"nam", "Interop Inc"}, {"icn", icon}};
      payload["rcdi"] = {{"/icn", stir::RcdiDigest(icon_body)}};
    }
    std::string identity;
    const std::string failed = secsipidx_sign(rph ? stir::kPptRph : stir::kPptRcd, payload,
                                              &identity);
    if (!shaken.ok() || !failed.empty()) {
      Count(&ppt_to_stir, false, absl::StrCat(label, ": ", failed));
      Count(&ppt_to_daemon, false, absl::StrCat(label, ": ", failed));
      continue;
    }
    stir::CallInfo call{.from_tn = orig, .to_tns = {dest}};
    if (rph) call.resource_priority = {"ets.0"};
    auto good = [rph](bool overall, bool second, std::string_view priority, size_t rcds,
                      bool rcd_passed) {
      return overall && second &&
             (rph ? priority == "RPH-Validation-Passed" : rcds == 1 && rcd_passed);
    };
    absl::StatusOr<stir::VerifyResult> r = verifier.Verify({shaken->identity, identity}, call);
    Count(&ppt_to_stir,
          r.ok() && good(r->overall.passed, r->headers[1].passed,
                         stir::PriorityVerstatName(r->verstat_priority), r->rcds.size(),
                         !r->rcds.empty() && r->rcds[0].passed),
          absl::StrCat(label, ": ", r.ok() ? r->headers.back().detail : r.status().ToString()));
    client::VerifyParams p{.identities = {shaken->identity, identity}, .from_tn = orig,
                           .to_tns = {dest}, .resource_priority = call.resource_priority};
    absl::StatusOr<client::VerifyResult> d = deps.client->Verify(p, absl::Seconds(10));
    Count(&ppt_to_daemon,
          d.ok() && good(d->overall.passed, d->identities[1].passed, d->verstat_priority,
                         d->rcds.size(), !d->rcds.empty() && d->rcds[0].passed),
          absl::StrCat(label, ": ", d.ok() ? d->identities.back().detail : d.status().ToString()));
  }

  // Certificates: openssl verify agrees with shakend's trust decisions.
  InteropCount certs{"certificates: openssl verify",
                     "openssl verify -CAfile <STI root> -untrusted <intermediate> <leaf>: token "
                     "and file leaves accepted, a leaf of an untrusted PKI refused"};
  for (const Leaf* leaf : {&token_leaf, &file_leaf}) {
    testing::RunResult pv = testing::RunCommand({deps.openssl, "verify", "-CAfile", root, "-untrusted",
                                   leaf->intermediate_file, leaf->leaf_file});
    Count(&certs, pv.exit_code == 0, Trim(pv.output()));
  }
  ASSIGN_OR_RETURN(testing::TestCert rogue, deps.untrusted_pki->IssueLeaf());
  std::string rogue_leaf = dir.Write("rogue-leaf.pem", rogue.cert_pem);
  std::string rogue_inter = dir.Write("rogue-intermediate.pem",
                                      deps.untrusted_pki->intermediate().cert_pem);
  testing::RunResult pr = testing::RunCommand({deps.openssl, "verify", "-CAfile", root, "-untrusted", rogue_inter,
                                 rogue_leaf});
  Count(&certs, pr.started && pr.exit_code != 0, "untrusted leaf accepted by openssl verify");

  for (InteropCount* c : {&by_cert, &by_x5u, &by_evp, &by_cli, &to_stir, &to_daemon,
                          &div_to_stir, &div_to_daemon, &ppt_to_stir, &ppt_to_daemon, &certs}) {
    report->interop.push_back(std::move(*c));
  }
  return absl::OkStatus();
}

}  // namespace shaken::conformance
