// stir_bench: the cost of a SHAKEN signature and verification in stir, against the physical floor
// (OpenSSL's ECDSA P-256 with a pre-parsed key) and an independent implementation packaged by
// Debian (libsecsipid, the library behind secsipidx and Kamailio's secsipid module). One thread.
//
//   raw_sign / raw_verify       EVP_PKEY_sign / EVP_PKEY_verify over a 32-byte digest
//   stir_sign                   claims -> canonical JSON -> base64url -> SHA-256 -> sign -> header
//   stir_verify                 Identity parse -> every check -> x5u certificate from a warm cache
//                               (fetched once over HTTPS on 127.0.0.1 and validated) -> signature
//   secsipid_sign / _verify     SecSIPIDGetIdentityPrvKey (key in memory) /
//                               SecSIPIDCheckFullPubKey (the certificate in memory)
//
// Ends with one line:
//   stir_bench: sign_ratio=X verify_ratio=Y sign_vs_secsipid=A verify_vs_secsipid=B
#include <benchmark/benchmark.h>
#include <libsecsipid.h>

#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "absl/time/clock.h"
#include "bench/rate_reporter.h"
#include "stir/memory_signer.h"
#include "stir/openssl_util.h"
#include "stir/passport.h"
#include "stir/verification_stack.h"
#include "tests/testing/https_server.h"
#include "tests/testing/lab_verifier.h"
#include "tests/testing/test_pki.h"

namespace {

using namespace shaken;  // NOLINT: a benchmark's main file

constexpr char kOrig[] = "12155550121";
constexpr char kDest[] = "12155550131";

struct World {
  std::unique_ptr<testing::TestPki> pki;
  testing::TestCert leaf;
  std::unique_ptr<testing::HttpsServer> server;
  std::unique_ptr<testing::TempDir> dir;
  std::unique_ptr<stir::MemorySigner> signer;
  std::unique_ptr<stir::FixedClock> clock;
  std::unique_ptr<stir::PassportSigner> passport_signer;
  std::unique_ptr<stir::VerificationStack> verification;
  const stir::Verifier* verifier = nullptr;
  std::string x5u;
  std::string identity;           // signed by stir
  std::string secsipid_identity;  // signed by libsecsipid
  std::string public_key_pem;
};

World* g = nullptr;

void Die(const std::string& what) {
  std::fprintf(stderr, "stir_bench: %s\n", what.c_str());
  std::exit(1);
}

template <typename T>
T Must(absl::StatusOr<T> v, const char* what) {
  if (!v.ok()) Die(std::string(what) + ": " + std::string(v.status().message()));
  return *std::move(v);
}

void Setup() {
  g = new World();
  const absl::Time now = absl::Now();
  g->pki = Must(testing::TestPki::Create(now), "test PKI");
  g->leaf = Must(g->pki->IssueLeaf(), "leaf");
  auto tls = Must(testing::TlsServerPki::Create(now), "TLS PKI");
  g->server = Must(testing::HttpsServer::Start({.tls = true,
                                                .cert_pem = tls.server.cert_pem,
                                                .key_pem = tls.server.key_pem}),
                   "HTTPS server");
  g->server->SetRoute("/sp.pem", {.body = g->pki->ChainPem(g->leaf)});
  g->x5u = g->server->Url("/sp.pem");
  g->dir = std::make_unique<testing::TempDir>();
  std::string root = g->dir->Write("root.pem", g->pki->root().cert_pem);
  std::string tls_ca = g->dir->Write("tls-ca.pem", tls.ca.cert_pem);

  g->signer = Must(stir::MemorySigner::FromPem(g->leaf.key_pem), "signer");
  g->public_key_pem = Must(stir::PublicKeyToPem(g->signer->key()), "public key");
  g->clock = std::make_unique<stir::FixedClock>(now);
  g->passport_signer = Must(stir::PassportSigner::Create(g->signer.get(), g->x5u, g->clock.get(),
                                                        stir::PassportSigner::Options{.x5u_policy = {.allow_any_port = true}}),
                            "passport signer");

  const stir::VerifierSettings vs = testing::LabVerifierSettings(root, tls_ca);
  g->verification = Must(stir::VerificationStack::New(vs, g->clock.get()), "verifier");
  g->verifier = &g->verification->verifier();

  g->identity = Must(g->passport_signer->Sign({.attest = "A", .orig_tn = kOrig,
                                               .dest_tns = {kDest}}),
                     "sign")
                    .identity;
  // Warm the cache (one HTTPS fetch and one chain validation) and prove the path passes.
  auto r = Must(g->verifier->Verify({g->identity}, {.from_tn = kOrig, .to_tns = {kDest}}), "verify");
  if (!r.overall.passed) Die("stir verify does not pass: " + r.overall.detail);

  char* out = nullptr;
  std::string key_pem = g->leaf.key_pem;
  int n = SecSIPIDGetIdentityPrvKey(const_cast<char*>(kOrig), const_cast<char*>(kDest),
                                    const_cast<char*>("A"), const_cast<char*>(""),
                                    const_cast<char*>(g->x5u.c_str()), key_pem.data(), &out);
  if (n <= 0 || out == nullptr) Die("SecSIPIDGetIdentityPrvKey failed: " + std::to_string(n));
  g->secsipid_identity.assign(out, static_cast<size_t>(n));
  std::free(out);
  std::string pub = g->public_key_pem;
  int rc = SecSIPIDCheckFullPubKey(g->secsipid_identity.data(),
                                   static_cast<int>(g->secsipid_identity.size()), 3600, pub.data(),
                                   static_cast<int>(pub.size()));
  if (rc != 0) Die("SecSIPIDCheckFullPubKey rejects its own token: " + std::to_string(rc));
  // Each verifies the other's output: the comparison is of like with like.
  rc = SecSIPIDCheckFullPubKey(g->identity.data(), static_cast<int>(g->identity.size()), 3600,
                               pub.data(), static_cast<int>(pub.size()));
  if (rc != 0) Die("SecSIPIDCheckFullPubKey rejects stir's token: " + std::to_string(rc));
  std::string cert = g->leaf.cert_pem;
  rc = SecSIPIDCheckFullPubKey(g->identity.data(), static_cast<int>(g->identity.size()), 3600,
                               cert.data(), static_cast<int>(cert.size()));
  if (rc != 0) Die("SecSIPIDCheckFullPubKey rejects stir's token with the certificate: " +
                   std::to_string(rc));
  auto rs = Must(g->verifier->Verify({g->secsipid_identity}, {.from_tn = kOrig, .to_tns = {kDest}}),
                 "verify secsipid");
  if (!rs.overall.passed) Die("stir rejects secsipid's token: " + rs.overall.detail);
}

void BM_RawSign(benchmark::State& state) {
  const stir::Sha256Digest digest = stir::Sha256("raw");
  stir::EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, const_cast<EVP_PKEY*>(g->signer->key()), nullptr));
  EVP_PKEY_sign_init(ctx.get());
  unsigned char sig[80];
  for (auto _ : state) {
    size_t len = sizeof(sig);
    if (EVP_PKEY_sign(ctx.get(), sig, &len, digest.data(), digest.size()) != 1) {
      state.SkipWithError("EVP_PKEY_sign");
      break;
    }
    benchmark::DoNotOptimize(sig);
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_RawVerify(benchmark::State& state) {
  const stir::Sha256Digest digest = stir::Sha256("raw");
  stir::EvpPkeyCtxPtr sctx(EVP_PKEY_CTX_new_from_pkey(nullptr, const_cast<EVP_PKEY*>(g->signer->key()), nullptr));
  EVP_PKEY_sign_init(sctx.get());
  unsigned char sig[80];
  size_t len = sizeof(sig);
  EVP_PKEY_sign(sctx.get(), sig, &len, digest.data(), digest.size());
  stir::EvpPkeyCtxPtr ctx(EVP_PKEY_CTX_new_from_pkey(nullptr, const_cast<EVP_PKEY*>(g->signer->key()), nullptr));
  EVP_PKEY_verify_init(ctx.get());
  for (auto _ : state) {
    if (EVP_PKEY_verify(ctx.get(), sig, len, digest.data(), digest.size()) != 1) {
      state.SkipWithError("EVP_PKEY_verify");
      break;
    }
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_StirSign(benchmark::State& state) {
  stir::ShakenClaims claims{.attest = "A", .orig_tn = kOrig, .dest_tns = {kDest}};
  for (auto _ : state) {
    auto s = g->passport_signer->Sign(claims);
    if (!s.ok()) {
      state.SkipWithError("sign");
      break;
    }
    benchmark::DoNotOptimize(s->identity.data());
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_StirVerify(benchmark::State& state) {
  const std::vector<std::string> ids = {g->identity};
  const stir::CallInfo call{.from_tn = kOrig, .to_tns = {kDest}};
  for (auto _ : state) {
    auto r = g->verifier->Verify(ids, call);
    if (!r.ok() || !r->overall.passed) {
      state.SkipWithError("verify");
      break;
    }
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_SecsipidSign(benchmark::State& state) {
  std::string key = g->leaf.key_pem;
  for (auto _ : state) {
    char* out = nullptr;
    int n = SecSIPIDGetIdentityPrvKey(const_cast<char*>(kOrig), const_cast<char*>(kDest),
                                      const_cast<char*>("A"), const_cast<char*>(""),
                                      const_cast<char*>(g->x5u.c_str()), key.data(), &out);
    if (n <= 0) {
      state.SkipWithError("SecSIPIDGetIdentityPrvKey");
      break;
    }
    std::free(out);
  }
  state.SetItemsProcessed(state.iterations());
}

void BM_SecsipidVerify(benchmark::State& state) {
  // The certificate in memory, as a verifier has it after fetching x5u (libsecsipid parses it on
  // every call; stir keeps the parsed, validated certificate in its cache).
  std::string id = g->secsipid_identity;
  std::string pub = g->leaf.cert_pem;
  for (auto _ : state) {
    if (SecSIPIDCheckFullPubKey(id.data(), static_cast<int>(id.size()), 3600, pub.data(),
                                static_cast<int>(pub.size())) != 0) {
      state.SkipWithError("SecSIPIDCheckFullPubKey");
      break;
    }
  }
  state.SetItemsProcessed(state.iterations());
}

}  // namespace

int main(int argc, char** argv) {
  Setup();
  benchmark::Initialize(&argc, argv);
  // Wall-clock rates: libsecsipid runs a Go runtime whose garbage collector works on threads of
  // its own, which CPU time of the benchmark thread would not count.
  benchmark::RegisterBenchmark("raw_sign", BM_RawSign)->UseRealTime();
  benchmark::RegisterBenchmark("stir_sign", BM_StirSign)->UseRealTime();
  benchmark::RegisterBenchmark("secsipid_sign", BM_SecsipidSign)->UseRealTime();
  benchmark::RegisterBenchmark("raw_verify", BM_RawVerify)->UseRealTime();
  benchmark::RegisterBenchmark("stir_verify", BM_StirVerify)->UseRealTime();
  benchmark::RegisterBenchmark("secsipid_verify", BM_SecsipidVerify)->UseRealTime();
  shaken::bench::RateReporter recorder;
  benchmark::RunSpecifiedBenchmarks(&recorder);
  auto rate = [&](const std::string& name) { return recorder.Rate(name + "/real_time"); };
  auto ratio = shaken::bench::RateReporter::Ratio;
  std::printf("stir_bench: sign_ratio=%.2f verify_ratio=%.2f sign_vs_secsipid=%.2f "
              "verify_vs_secsipid=%.2f\n",
              ratio(rate("stir_sign"), rate("raw_sign")),
              ratio(rate("stir_verify"), rate("raw_verify")),
              ratio(rate("stir_sign"), rate("secsipid_sign")),
              ratio(rate("stir_verify"), rate("secsipid_verify")));
  std::fflush(stdout);
  // libsecsipid is a Go runtime inside this process; leave without running its teardown.
  std::_Exit(0);
}
