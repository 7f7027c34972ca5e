// hsm_bench: ECDSA P-256 signing on one SoftHSM2 token, four ways, at 1, 2 and 4 threads
// (targets and results: bench/README.md):
//   raw     C_SignInit + C_Sign on one session per thread, token-object handle found once;
//   pool    hsm::KeyPool::SignDigest in its best configuration for SoftHSM2 (session-object key
//           copy, 4 sessions);
//   naive   open + login + find + sign + close per signature, no other session open, so every
//           C_Login is real (1 thread only: with concurrent threads the logins would be shared);
//   libp11  OpenSSL EVP_DigestSign through libp11's engine (libengine-pkcs11-openssl), same key.
// Every variant hashes the same short message with SHA-256 in process. Ends with one line:
//   hsm_bench: pool_vs_raw=X pool_vs_naive=Y pool_vs_libp11=W scale_2t=Z
// (pool_vs_raw and pool_vs_naive at 1 thread; pool_vs_libp11 the lower of the 1- and 2-thread
// ratios; scale_2t = pool at 2 threads / pool at 1 thread).
//
// It makes its own token in a temp dir (SOFTHSM2_CONF) before loading the module. The PINs of this
// throwaway token go on softhsm2-util's argv; never do that with a real token.
#define OPENSSL_SUPPRESS_DEPRECATED  // the ENGINE API: libp11's engine is what carriers deploy
#include <benchmark/benchmark.h>
#include <openssl/engine.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "bench/rate_reporter.h"
#include "hsm/ck.h"
#include "hsm/key_manager.h"
#include "hsm/key_pool.h"
#include "hsm/module.h"
#include "stir/openssl_util.h"
#include "tests/testing/softhsm_token.h"


namespace {

using namespace shaken;  // NOLINT: a benchmark's main file

constexpr char kModule[] = "/usr/lib/softhsm/libsofthsm2.so";
constexpr char kTokenLabel[] = "shaken-bench";
constexpr char kKeyLabel[] = "bench-key";
const std::string kMessage = "shaken bench message: a PASSporT header.claims would be here";

std::string g_pin;  // the throwaway bench token's user PIN
std::shared_ptr<hsm::Module> g_module;
std::string g_key_uri;

void Die(const std::string& what) {
  std::fprintf(stderr, "hsm_bench: %s\n", what.c_str());
  std::exit(1);
}

// MakeToken creates the bench's own SoftHSM2 token (tests/testing/softhsm_token.h: a temp dir,
// its own SOFTHSM2_CONF), before the module is loaded.
std::unique_ptr<testing::SoftHsmToken> g_token;
void MakeToken() {
  auto token = testing::SoftHsmToken::Create({kTokenLabel});
  if (!token.ok()) Die(std::string(token.status().message()));
  g_token = *std::move(token);
  g_pin = g_token->pin();
}

// Loads the module and generates the key, then lets go of every session so that the token is
// logged out again for the naive variant. Sessions are closed on purpose here (not the SoftHSM2
// quirk setting): the bench closes them from one thread at a time.
void Setup() {
  auto module = hsm::Module::Load(kModule, {.finalize_on_unload = false, .close_pooled_sessions = true});
  if (!module.ok()) Die(std::string(module.status().message()));
  g_module = *module;
  auto token_uri = hsm::Pkcs11Uri::Parse(std::string("pkcs11:token=") + kTokenLabel);
  auto token = g_module->OpenToken(*token_uri, hsm::PinSource::FromValue(g_pin));
  if (!token.ok()) Die(std::string(token.status().message()));
  auto key = hsm::GenerateP256Key(**token, {.label = kKeyLabel});
  if (!key.ok()) Die(std::string(key.status().message()));
  g_key_uri = std::string("pkcs11:token=") + kTokenLabel + ";object=" + kKeyLabel + ";type=private";
}

std::shared_ptr<hsm::Token> OpenToken() {
  auto token = g_module->OpenToken(*hsm::Pkcs11Uri::Parse(g_key_uri), hsm::PinSource::FromValue(g_pin));
  if (!token.ok()) Die(std::string(token.status().message()));
  return *token;
}

CK_OBJECT_HANDLE FindKey(const CK_FUNCTION_LIST* fl, CK_SESSION_HANDLE s) {
  CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
  std::string label = kKeyLabel;
  CK_ATTRIBUTE tmpl[] = {{CKA_CLASS, &cls, sizeof(cls)}, {CKA_LABEL, label.data(), label.size()}};
  CK_OBJECT_HANDLE key = CK_INVALID_HANDLE;
  CK_ULONG n = 0;
  fl->C_FindObjectsInit(s, tmpl, 2);
  fl->C_FindObjects(s, &key, 1, &n);
  fl->C_FindObjectsFinal(s);
  if (n != 1) Die("key not found");
  return key;
}

bool RawSign(const CK_FUNCTION_LIST* fl, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key) {
  stir::Sha256Digest d = stir::Sha256(kMessage);
  CK_MECHANISM mech{CKM_ECDSA, nullptr, 0};
  unsigned char sig[64];
  CK_ULONG len = sizeof(sig);
  return fl->C_SignInit(s, &mech, key) == CKR_OK &&
         fl->C_Sign(s, d.data(), d.size(), sig, &len) == CKR_OK;
}

// (c) naive: everything per signature. With no other session open, C_CloseSession of the last
// session logs the token out (PKCS#11 v2.40 §5.6), so each C_Login does the full PIN check.
void BM_Naive(benchmark::State& state) {
  const CK_FUNCTION_LIST* fl = g_module->functions();
  CK_SLOT_ID slot = hsm::internal::FindSlot(fl, *hsm::Pkcs11Uri::Parse(g_key_uri)).value();
  std::string pin = g_pin;
  for (auto _ : state) {
    CK_SESSION_HANDLE s;
    if (fl->C_OpenSession(slot, CKF_SERIAL_SESSION, nullptr, nullptr, &s) != CKR_OK ||
        fl->C_Login(s, CKU_USER, reinterpret_cast<CK_UTF8CHAR*>(pin.data()), pin.size()) != CKR_OK) {
      state.SkipWithError("open/login failed");
      break;
    }
    bool ok = RawSign(fl, s, FindKey(fl, s));
    fl->C_CloseSession(s);
    if (!ok) {
      state.SkipWithError("sign failed");
      break;
    }
  }
  state.SetItemsProcessed(state.iterations());
}

// (a) raw: one session per thread, token-object handle found once.
void BM_Raw(benchmark::State& state) {
  static std::mutex mu;
  static std::shared_ptr<hsm::Token> token;
  {
    std::lock_guard<std::mutex> lock(mu);
    if (!token) token = OpenToken();
  }
  const CK_FUNCTION_LIST* fl = g_module->functions();
  auto s = token->OpenSession();
  if (!s.ok()) {
    state.SkipWithError("open failed");
    return;
  }
  CK_OBJECT_HANDLE key = FindKey(fl, *s);
  for (auto _ : state) {
    if (!RawSign(fl, *s, key)) {
      state.SkipWithError("sign failed");
      break;
    }
  }
  token->CloseSession(*s);
  state.SetItemsProcessed(state.iterations());
}

// (b) pool: the hsm API, best configuration for SoftHSM2.
const hsm::KeyPool& Pool() {
  static const hsm::KeyPool* pool = [] {
    auto p = hsm::KeyPool::Create(OpenToken(), *hsm::Pkcs11Uri::Parse(g_key_uri),
                                  {.size = 4, .open_at_start = 4, .key_copy = hsm::KeyCopy::kRequired});
    if (!p.ok()) Die(std::string(p.status().message()));
    return p->release();  // lives until _exit
  }();
  return *pool;
}

void BM_Pool(benchmark::State& state) {
  const hsm::KeyPool& pool = Pool();
  for (auto _ : state) {
    auto sig = pool.SignDigest(stir::Sha256(kMessage));
    if (!sig.ok()) {
      state.SkipWithError(std::string(sig.status().message()).c_str());
      break;
    }
    benchmark::DoNotOptimize(*sig);
  }
  state.SetItemsProcessed(state.iterations());
}

// (d) libp11's OpenSSL engine, as `openssl dgst -engine pkcs11 -keyform engine` would use it.
EVP_PKEY* Libp11Key() {
  static EVP_PKEY* key = [] {
    ENGINE_load_builtin_engines();
    ENGINE* e = ENGINE_by_id("pkcs11");
    if (e == nullptr) Die("libp11 engine not found (libengine-pkcs11-openssl)");
    std::string pin = g_pin;
    if (!ENGINE_ctrl_cmd_string(e, "MODULE_PATH", kModule, 0) ||
        !ENGINE_ctrl_cmd_string(e, "PIN", pin.c_str(), 0) || !ENGINE_init(e)) {
      Die("libp11 engine init failed");
    }
    EVP_PKEY* k = ENGINE_load_private_key(e, g_key_uri.c_str(), nullptr, nullptr);
    if (k == nullptr) Die("libp11 engine cannot load " + g_key_uri);
    return k;
  }();
  return key;
}

void BM_Libp11(benchmark::State& state) {
  static std::once_flag once;
  std::call_once(once, [] { Libp11Key(); });
  EVP_PKEY* key = Libp11Key();
  unsigned char sig[80];
  for (auto _ : state) {
    stir::EvpMdCtxPtr ctx(EVP_MD_CTX_new());
    size_t len = sizeof(sig);
    if (EVP_DigestSignInit(ctx.get(), nullptr, EVP_sha256(), nullptr, key) != 1 ||
        EVP_DigestSign(ctx.get(), sig, &len, reinterpret_cast<const unsigned char*>(kMessage.data()),
                       kMessage.size()) != 1) {
      state.SkipWithError("EVP_DigestSign failed");
      break;
    }
  }
  state.SetItemsProcessed(state.iterations());
}

}  // namespace

int main(int argc, char** argv) {
  MakeToken();  // before the module reads SOFTHSM2_CONF
  Setup();
  benchmark::Initialize(&argc, argv);
  // Order matters: naive first, while no session of the token is open anywhere in the process.
  benchmark::RegisterBenchmark("naive", BM_Naive)->Threads(1)->UseRealTime();
  benchmark::RegisterBenchmark("raw", BM_Raw)->Threads(1)->Threads(2)->Threads(4)->UseRealTime();
  // libp11 before the pool: libp11 finds keys without CKA_TOKEN in its template, so once the pool
  // has made its session-object copies libp11 could pick one up and measure our optimisation.
  benchmark::RegisterBenchmark("libp11", BM_Libp11)->Threads(1)->Threads(2)->Threads(4)->UseRealTime();
  benchmark::RegisterBenchmark("pool", BM_Pool)->Threads(1)->Threads(2)->Threads(4)->UseRealTime();
  shaken::bench::RateReporter recorder;
  benchmark::RunSpecifiedBenchmarks(&recorder);

  auto rate = [&](const std::string& name) { return recorder.Rate(name); };
  auto ratio = shaken::bench::RateReporter::Ratio;
  double pool1 = rate("pool/real_time/threads:1"), pool2 = rate("pool/real_time/threads:2");
  double lib1 = ratio(pool1, rate("libp11/real_time/threads:1"));
  double lib2 = ratio(pool2, rate("libp11/real_time/threads:2"));
  std::printf("hsm_bench: pool_vs_libp11 at 1 thread=%.2f, at 2 threads=%.2f\n", lib1, lib2);
  std::printf("hsm_bench: pool_vs_raw=%.2f pool_vs_naive=%.1f pool_vs_libp11=%.2f scale_2t=%.2f\n",
              ratio(pool1, rate("raw/real_time/threads:1")),
              ratio(pool1, rate("naive/real_time/threads:1")), std::min(lib1, lib2),
              ratio(pool2, pool1));
  std::fflush(stdout);
  // Remove the token directory, but without C_Finalize (below).
  std::error_code ec;
  std::filesystem::remove_all(g_token->dir(), ec);
  // SoftHSM2 crashes when de-initialised from exit handlers (and libp11's engine would
  // C_Finalize it there): leave without running them.
  _exit(0);
}
