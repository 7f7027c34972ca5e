#include "conformance/recipe.h"

#include <openssl/bn.h>
#include <openssl/ecdsa.h>
#include <openssl/hmac.h>
#include <openssl/obj_mac.h>

#include <algorithm>
#include <cstring>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_replace.h"
#include "stir/absl_compat.h"
#include "stir/base64url.h"
#include "stir/status_macros.h"

namespace shaken::conformance {
namespace {

using stir::Json;

constexpr char kOrigid[] = "123e4567-e89b-12d3-a456-426655440000";
constexpr char kHmacKey[] = "conformance-hs256-key";

absl::Status Bad(std::string_view what) {
  return absl::InvalidArgumentError(absl::StrCat("recipe: ", ToAbsl(what)));
}

std::string Str(const Json& obj, const char* name, std::string fallback = "") {
  auto it = obj.find(name);
  if (it == obj.end() || !it->is_string()) return fallback;
  return it->get<std::string>();
}

int64_t Int(const Json& obj, const char* name, int64_t fallback = 0) {
  auto it = obj.find(name);
  if (it == obj.end() || !it->is_number_integer()) return fallback;
  return it->get<int64_t>();
}

std::string UpperPath(const RecipeContext& ctx) {
  size_t slash = ctx.url.find('/', 8);
  if (slash == std::string::npos) return ctx.url;
  std::string out = ctx.url.substr(0, slash);
  out += absl::AsciiStrToUpper(ctx.url.substr(slash));
  return out;
}

// ExpandUrl expands the placeholders of an x5u / info template.
std::string ExpandUrl(std::string_view tmpl, const RecipeContext& ctx, std::string_view x5u) {
  return absl::StrReplaceAll(ToAbsl(tmpl), {{"{url_upper_path}", UpperPath(ctx)},
                                            {"{http_url}", ctx.http_url},
                                            {"{url}", ctx.url},
                                            {"{port}", absl::StrCat(ctx.port)},
                                            {"{path}", ctx.path},
                                            {"{x5u}", ToAbsl(x5u)}});
}

// ExpandValue replaces whole-string "$name" placeholders inside a JSON template.
Json ExpandValue(const Json& v, const std::string& x5u, int64_t iat) {
  if (v.is_string()) {
    const std::string& s = v.get_ref<const std::string&>();
    if (s == "$x5u") return x5u;
    if (s == "$iat") return iat;
    if (s == "$iat_str") return absl::StrCat(iat);
    if (s == "$origid") return kOrigid;
    if (s == "$dest33") {
      Json tns = Json::array();
      for (int i = 0; i < 33; ++i) tns.push_back(absl::StrCat(12155550100 + i));
      return Json{{"tn", tns}};
    }
    if (s == "$deep40") {
      Json deep = Json::array();
      for (int i = 0; i < 40; ++i) deep = Json::array({deep});
      return deep;
    }
    return v;
  }
  if (v.is_object()) {
    Json out = Json::object();
    for (const auto& [k, item] : v.items()) out[k] = ExpandValue(item, x5u, iat);
    return out;
  }
  if (v.is_array()) {
    Json out = Json::array();
    for (const auto& item : v) out.push_back(ExpandValue(item, x5u, iat));
    return out;
  }
  return v;
}

// ApplyPatch sets each member of `patch` on `obj`; a null member removes it.
void ApplyPatch(Json* obj, const Json& patch) {
  for (const auto& [k, v] : patch.items()) {
    if (v.is_null()) {
      obj->erase(k);
    } else {
      (*obj)[k] = v;
    }
  }
}

absl::StatusOr<std::string> Canonical(const Json& v) {
  std::string out;
  RETURN_IF_ERROR(stir::AppendCanonicalJson(v, &out));
  return out;
}

std::string ExpandText(std::string_view tmpl, const std::string& x5u, int64_t iat) {
  std::string escaped = absl::StrReplaceAll(x5u, {{"/", "\\/"}});
  return absl::StrReplaceAll(ToAbsl(tmpl), {{"{x5u_escaped}", escaped},
                                            {"{x5u}", x5u},
                                            {"{iat}", absl::StrCat(iat)},
                                            {"{origid}", kOrigid},
                                            {"{bad_utf8}", "\xff"}});
}

// JsonText builds the header or payload JSON text: `<name>_text` verbatim, else the template
// `<name>` (or the default) with `<name>_patch` applied, serialized canonically.
absl::StatusOr<std::string> JsonText(const Json& recipe, const std::string& name,
                                     const Json& fallback, const std::string& x5u, int64_t iat,
                                     size_t pad_bytes) {
  if (auto it = recipe.find(name + "_text"); it != recipe.end()) {
    if (!it->is_string()) return Bad(absl::StrCat(name, "_text must be a string"));
    return ExpandText(it->get<std::string>(), x5u, iat);
  }
  Json value = fallback;
  if (auto it = recipe.find(name); it != recipe.end()) value = *it;
  if (auto it = recipe.find(name + "_patch"); it != recipe.end()) {
    if (!it->is_object()) return Bad(absl::StrCat(name, "_patch must be an object"));
    ApplyPatch(&value, *it);
  }
  value = ExpandValue(value, x5u, iat);
  if (pad_bytes > 0) value["pad"] = std::string(pad_bytes, 'a');
  return Canonical(value);
}

absl::StatusOr<std::string> DigestSign(const EVP_PKEY* key, const EVP_MD* md,
                                       std::string_view input) {
  stir::EvpMdCtxPtr ctx(EVP_MD_CTX_new());
  size_t len = 0;
  if (ctx == nullptr ||
      EVP_DigestSignInit(ctx.get(), nullptr, md, nullptr, const_cast<EVP_PKEY*>(key)) != 1 ||
      EVP_DigestSign(ctx.get(), nullptr, &len,
                     reinterpret_cast<const unsigned char*>(input.data()), input.size()) != 1) {
    return stir::OpenSslError(absl::StatusCode::kInternal, "EVP_DigestSign");
  }
  std::string out(len, '\0');
  if (EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(out.data()), &len,
                     reinterpret_cast<const unsigned char*>(input.data()), input.size()) != 1) {
    return stir::OpenSslError(absl::StatusCode::kInternal, "EVP_DigestSign");
  }
  out.resize(len);
  return out;
}

// DerToRaw converts a DER ECDSA-Sig-Value to r||s with `n` bytes per value.
absl::StatusOr<std::string> DerToRaw(std::string_view der, int n) {
  const unsigned char* p = reinterpret_cast<const unsigned char*>(der.data());
  stir::EcdsaSigPtr sig(d2i_ECDSA_SIG(nullptr, &p, static_cast<long>(der.size())));
  if (sig == nullptr) return absl::InternalError("d2i_ECDSA_SIG");
  std::string out(2 * n, '\0');
  const BIGNUM *r = nullptr, *s = nullptr;
  ECDSA_SIG_get0(sig.get(), &r, &s);
  BN_bn2binpad(r, reinterpret_cast<unsigned char*>(out.data()), n);
  BN_bn2binpad(s, reinterpret_cast<unsigned char*>(out.data()) + n, n);
  return out;
}

// HighS replaces s by n - s (the other valid signature of the same message).
std::string HighS(std::string raw) {
  static constexpr unsigned char kOrder[32] = {
      0xff, 0xff, 0xff, 0xff, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
      0xbc, 0xe6, 0xfa, 0xad, 0xa7, 0x17, 0x9e, 0x84, 0xf3, 0xb9, 0xca, 0xc2, 0xfc, 0x63, 0x25, 0x51};
  stir::BignumPtr n(BN_bin2bn(kOrder, 32, nullptr));
  stir::BignumPtr s(BN_bin2bn(reinterpret_cast<const unsigned char*>(raw.data()) + 32, 32, nullptr));
  stir::BignumPtr half(BN_dup(n.get()));
  BN_rshift1(half.get(), half.get());
  if (BN_cmp(s.get(), half.get()) <= 0) BN_sub(s.get(), n.get(), s.get());
  BN_bn2binpad(s.get(), reinterpret_cast<unsigned char*>(raw.data()) + 32, 32);
  return raw;
}

absl::StatusOr<std::string> Sign(const std::string& mode, const SigningKeys& keys,
                                 const std::string& input) {
  if (mode == "none") return std::string();
  if (mode == "zero") return std::string(64, '\0');
  if (mode == "hs256") {
    unsigned char mac[32];
    unsigned int len = 0;
    HMAC(EVP_sha256(), kHmacKey, sizeof(kHmacKey) - 1,
         reinterpret_cast<const unsigned char*>(input.data()), input.size(), mac, &len);
    return std::string(reinterpret_cast<char*>(mac), len);
  }
  if (mode == "rs256") return DigestSign(keys.rsa, EVP_sha256(), input);
  if (mode == "es384") {
    ASSIGN_OR_RETURN(std::string der, DigestSign(keys.p384, EVP_sha384(), input));
    return DerToRaw(der, 48);
  }
  const EVP_PKEY* key = mode == "other_p256" ? keys.other_p256 : keys.leaf;
  if (key == nullptr) return Bad("the case certificate has no P-256 key to sign with");
  if (mode == "der") return DigestSign(key, EVP_sha256(), input);
  ASSIGN_OR_RETURN(std::string raw, SignEs256Raw(key, input));
  if (mode == "leaf" || mode == "other_p256") return raw;
  if (mode == "high_s") return HighS(raw);
  if (mode == "truncate") return raw.substr(0, 63);
  if (mode == "swap_rs") return raw.substr(32) + raw.substr(0, 32);
  return Bad(absl::StrCat("unknown sign mode ", mode));
}

// Segments of a JWS, base64url text.
struct Jws {
  std::string h, p, s;
  bool has_sig = true;
  std::string extra;  // appended after the signature, e.g. a fourth segment
  std::string Join() const {
    std::string out = absl::StrCat(h, ".", p);
    if (has_sig) absl::StrAppend(&out, ".", s);
    return out + extra;
  }
};

std::string* Segment(Jws* jws, const std::string& name) {
  if (name == "header") return &jws->h;
  if (name == "payload") return &jws->p;
  return &jws->s;
}

absl::Status RepatchSegment(std::string* seg, const Json& patch) {
  ASSIGN_OR_RETURN(std::string text, stir::Base64UrlDecode(*seg));
  Json value = Json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (value.is_discarded() || !value.is_object()) return Bad("segment to patch is not JSON");
  ApplyPatch(&value, patch);
  ASSIGN_OR_RETURN(std::string canonical, Canonical(value));
  *seg = stir::Base64UrlEncode(canonical);
  return absl::OkStatus();
}

absl::Status Mutate(Jws* jws, const Json& m) {
  const std::string op = Str(m, "op");
  const std::string segment = Str(m, "segment", "sig");
  if (op == "replace_payload_patch" || op == "replace_header_patch") {
    auto patch = m.find("patch");
    if (patch == m.end() || !patch->is_object()) return Bad("mutation needs an object patch");
    return RepatchSegment(op == "replace_payload_patch" ? &jws->p : &jws->h, *patch);
  }
  if (op == "flip_sig_bit") {
    ASSIGN_OR_RETURN(std::string sig, stir::Base64UrlDecode(jws->s));
    if (sig.size() < 11) return Bad("signature too short to flip");
    sig[10] = static_cast<char>(sig[10] ^ 0x01);
    jws->s = stir::Base64UrlEncode(sig);
    return absl::OkStatus();
  }
  if (op == "append") {
    *Segment(jws, segment) += Str(m, "text");
    return absl::OkStatus();
  }
  if (op == "pad_segment") {
    std::string* seg = Segment(jws, segment);
    seg->append(std::max<size_t>(1, (4 - seg->size() % 4) % 4), '=');
    return absl::OkStatus();
  }
  if (op == "set_char") {
    std::string* seg = Segment(jws, segment);
    int64_t i = Int(m, "index");
    if (i < 0) i += static_cast<int64_t>(seg->size());
    std::string c = Str(m, "char");
    if (i < 0 || i >= static_cast<int64_t>(seg->size()) || c.size() != 1) {
      return Bad("set_char out of range");
    }
    (*seg)[static_cast<size_t>(i)] = c[0];
    return absl::OkStatus();
  }
  if (op == "trailing_bits") {
    static constexpr std::string_view kAlphabet =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    std::string* seg = Segment(jws, segment);
    if (seg->empty() || seg->size() % 4 == 0) return Bad("segment has no spare trailing bits");
    size_t v = kAlphabet.find(seg->back());
    if (v == std::string_view::npos) return Bad("segment does not end in base64url");
    seg->back() = kAlphabet[v ^ 1];
    return absl::OkStatus();
  }
  if (op == "compact") {
    jws->h.clear();
    jws->p.clear();
    return absl::OkStatus();
  }
  if (op == "drop_sig") {
    jws->has_sig = false;
    return absl::OkStatus();
  }
  if (op == "extra_segment") {
    jws->extra = ".AAAA";
    return absl::OkStatus();
  }
  if (op == "empty_sig") {
    jws->s.clear();
    return absl::OkStatus();
  }
  return Bad(absl::StrCat("unknown mutation ", op));
}

absl::StatusOr<Jws> SplitJws(std::string_view jws) {
  size_t d1 = jws.find('.');
  size_t d2 = d1 == std::string_view::npos ? d1 : jws.find('.', d1 + 1);
  if (d2 == std::string_view::npos) return Bad("vector is not a three-segment JWS");
  Jws out;
  out.h = std::string(jws.substr(0, d1));
  out.p = std::string(jws.substr(d1 + 1, d2 - d1 - 1));
  out.s = std::string(jws.substr(d2 + 1));
  return out;
}

std::string ExpandVectors(std::string text, const RecipeContext& ctx) {
  for (const auto& [name, value] : ctx.vectors) {
    text = absl::StrReplaceAll(text, {{absl::StrCat("{", name, "}"), value}});
  }
  return text;
}

absl::StatusOr<std::string> BuildOne(const Json& recipe, const RecipeContext& ctx) {
  if (!recipe.is_object()) return Bad("a recipe is a JSON object");
  const Json& mutations = recipe.contains("mutations") ? recipe["mutations"] : Json::array();

  // A literal (vector) Identity header, optionally mutated.
  if (auto raw = recipe.find("raw_identity"); raw != recipe.end()) {
    if (!raw->is_string()) return Bad("raw_identity must be a string");
    std::string identity = ExpandVectors(raw->get<std::string>(), ctx);
    if (mutations.empty()) return identity;
    size_t semi = identity.find(';');
    ASSIGN_OR_RETURN(Jws jws, SplitJws(std::string_view(identity).substr(0, semi)));
    for (const Json& m : mutations) RETURN_IF_ERROR(Mutate(&jws, m));
    return jws.Join() + (semi == std::string::npos ? "" : identity.substr(semi));
  }

  const std::string x5u = ExpandUrl(Str(recipe, "x5u", "{url}"), ctx, "");
  const std::string info = ExpandUrl(Str(recipe, "info", "{x5u}"), ctx, x5u);
  const int64_t iat = ctx.iat + Int(recipe, "iat_offset");
  const Json default_header = {
      {"alg", "ES256"}, {"ppt", "shaken"}, {"typ", "passport"}, {"x5u", "$x5u"}};
  const Json default_payload = {{"attest", "A"},
                                {"dest", {{"tn", {"12155550131"}}}},
                                {"iat", "$iat"},
                                {"orig", {{"tn", "12155550121"}}},
                                {"origid", "$origid"}};
  ASSIGN_OR_RETURN(std::string header, JsonText(recipe, "header", default_header, x5u, iat, 0));
  ASSIGN_OR_RETURN(std::string payload,
                   JsonText(recipe, "payload", default_payload, x5u, iat,
                            static_cast<size_t>(Int(recipe, "pad_payload_bytes"))));
  Jws jws;
  jws.h = stir::Base64UrlEncode(header);
  jws.p = stir::Base64UrlEncode(payload);
  ASSIGN_OR_RETURN(std::string sig,
                   Sign(Str(recipe, "sign", "leaf"), ctx.keys, absl::StrCat(jws.h, ".", jws.p)));
  jws.s = stir::Base64UrlEncode(sig);
  for (const Json& m : mutations) RETURN_IF_ERROR(Mutate(&jws, m));

  std::string identity = absl::StrReplaceAll(
      Str(recipe, "identity", "{jws};info=<{info}>;alg=ES256;ppt=shaken"),
      {{"{jws}", jws.Join()}, {"{info}", info}});
  if (int64_t pad = Int(recipe, "pad_identity_to"); pad > 0) {
    absl::StrAppend(&identity, ";pad=");
    if (static_cast<int64_t>(identity.size()) < pad) {
      identity.append(static_cast<size_t>(pad) - identity.size(), 'x');
    }
  }
  return identity;
}

}  // namespace

absl::StatusOr<std::vector<std::string>> BuildIdentities(const Json& input,
                                                         const RecipeContext& ctx) {
  std::vector<std::string> out;
  auto list = input.find("identities");
  if (list == input.end()) {
    ASSIGN_OR_RETURN(std::string one, BuildOne(input, ctx));
    out.push_back(std::move(one));
    return out;
  }
  if (list->is_string() && list->get<std::string>() == "$repeat17") {
    ASSIGN_OR_RETURN(std::string one, BuildOne(Json::object(), ctx));
    out.assign(17, one);
    return out;
  }
  if (!list->is_array()) return Bad("identities must be an array of recipes");
  for (const Json& recipe : *list) {
    ASSIGN_OR_RETURN(std::string one, BuildOne(recipe, ctx));
    out.push_back(std::move(one));
  }
  return out;
}

absl::StatusOr<std::string> SignEs256Raw(const EVP_PKEY* key, std::string_view input) {
  ASSIGN_OR_RETURN(std::string der, DigestSign(key, EVP_sha256(), input));
  return DerToRaw(der, 32);
}

absl::StatusOr<std::string> RawToDer(std::string_view raw_sig) {
  if (raw_sig.size() != 64) return absl::InvalidArgumentError("r||s must be 64 bytes");
  const auto* p = reinterpret_cast<const unsigned char*>(raw_sig.data());
  stir::EcdsaSigPtr sig(ECDSA_SIG_new());
  BIGNUM* r = BN_bin2bn(p, 32, nullptr);
  BIGNUM* s = BN_bin2bn(p + 32, 32, nullptr);
  if (sig == nullptr || r == nullptr || s == nullptr || ECDSA_SIG_set0(sig.get(), r, s) != 1) {
    BN_free(r);
    BN_free(s);
    return absl::InternalError("ECDSA_SIG_set0");
  }
  unsigned char* der = nullptr;
  int len = i2d_ECDSA_SIG(sig.get(), &der);
  if (len <= 0) return absl::InternalError("i2d_ECDSA_SIG");
  std::string out(reinterpret_cast<char*>(der), static_cast<size_t>(len));
  OPENSSL_free(der);
  return out;
}

bool VerifyEs256Independent(const EVP_PKEY* key, std::string_view input,
                            std::string_view raw_sig) {
  absl::StatusOr<std::string> der = RawToDer(raw_sig);
  if (!der.ok()) return false;
  stir::EvpMdCtxPtr ctx(EVP_MD_CTX_new());
  if (ctx == nullptr || EVP_DigestVerifyInit(ctx.get(), nullptr, EVP_sha256(), nullptr,
                                             const_cast<EVP_PKEY*>(key)) != 1) {
    return false;
  }
  return EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(der->data()),
                          der->size(), reinterpret_cast<const unsigned char*>(input.data()),
                          input.size()) == 1;
}

}  // namespace shaken::conformance
