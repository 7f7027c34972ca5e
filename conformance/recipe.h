// recipe.h: turns a conformance case's input recipe (conformance/README.md) into Identity header
// values. ECDSA signatures are randomized and cases are time-relative, so cases hold recipes, not
// literal headers: JOSE header and claims as JSON (or exact text), how to sign them, and what to
// break afterwards.
#ifndef SHAKEN_CONFORMANCE_RECIPE_H_
#define SHAKEN_CONFORMANCE_RECIPE_H_

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "stir/json.h"
#include "stir/openssl_util.h"

namespace shaken::conformance {

// SigningKeys are the keys a recipe may sign with. `leaf` is the case certificate's key (may be
// null when the certificate's key is not P-256); the others are fixed for the run.
struct SigningKeys {
  const EVP_PKEY* leaf = nullptr;
  const EVP_PKEY* other_p256 = nullptr;
  const EVP_PKEY* p384 = nullptr;
  const EVP_PKEY* rsa = nullptr;
};

// RecipeContext is what placeholders in a recipe expand to.
struct RecipeContext {
  std::string url;        // the case's x5u route, https://127.0.0.1:<port>/c/<id>.pem
  std::string http_url;   // the same with http://
  int port = 0;
  std::string path;       // /c/<id>.pem
  int64_t iat = 0;        // "now" of the case, before the recipe's iat_offset
  SigningKeys keys;
  // Named test vectors: "V4.identity" -> value (from conformance/vectors/rfc_vectors.json).
  std::map<std::string, std::string> vectors;
};

// BuildIdentities expands the case input (a recipe, or {"identities": [recipe, ...]}) into the
// Identity header values to verify, in order. INVALID_ARGUMENT when the recipe is malformed.
absl::StatusOr<std::vector<std::string>> BuildIdentities(const stir::Json& input,
                                                         const RecipeContext& ctx);

// SignEs256Raw signs `input` with a P-256 key and returns r||s (64 bytes), for recipes and the
// interop checks. VerifyEs256Independent checks r||s with OpenSSL alone (its own r||s -> DER
// conversion), as a cross-check that does not go through stir.
absl::StatusOr<std::string> SignEs256Raw(const EVP_PKEY* key, std::string_view input);
bool VerifyEs256Independent(const EVP_PKEY* key, std::string_view input, std::string_view raw_sig);
// RawToDer converts r||s to a DER ECDSA-Sig-Value with OpenSSL's ECDSA_SIG (not stir's helper).
absl::StatusOr<std::string> RawToDer(std::string_view raw_sig);

}  // namespace shaken::conformance

#endif  // SHAKEN_CONFORMANCE_RECIPE_H_
