#include "cli/acme/engine.h"

#include <openssl/err.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <optional>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "cli/acme/authority_token.h"
#include "cli/acme/problem.h"
#include "stir/absl_compat.h"
#include "stir/base64url.h"
#include "stir/status_macros.h"
#include "stir/tn_auth_list.h"

namespace shaken::acme {

// Auth is a request whose JWS verified: the account (empty for new-account), its JWK and key,
// and the decoded payload ("" for POST-as-GET).
struct Engine::Auth {
  std::string account_id;
  Json account;
  Json jwk;
  stir::EvpPkeyPtr key;
  std::string payload;
};

namespace {

constexpr char kJose[] = "application/jose+json";

std::string Rfc3339(absl::Time t) {
  return absl::FormatTime(absl::RFC3339_sec, t, absl::UTCTimeZone());
}

http::Response JsonResponse(int status, const Json& body) {
  http::Response r;
  r.status = status;
  r.headers.emplace_back("Content-Type", "application/json");
  r.body = body.dump();
  return r;
}

std::string Str(const Json& j, const char* name) { return StringMember(j, name); }

absl::StatusOr<Json> PayloadObject(const std::string& payload) {
  if (payload.empty()) return Problem("malformed", "this request needs a JSON object payload");
  stir::JsonLimits limits;
  limits.max_bytes = 32 * 1024;
  absl::StatusOr<Json> j = stir::ParseStrictJson(payload, limits);
  if (!j.ok()) return Problem("malformed", absl::StrCat("payload: ", j.status().message()));
  return j;
}

// Path splitting: "/acme/<what>/<id>[/<tail>]".
struct Route {
  std::string what, id, tail;
};
Route SplitPath(std::string_view path) {
  Route r;
  absl::string_view p = ToAbsl(path);
  if (!absl::ConsumePrefix(&p, "/acme/")) return r;
  size_t a = p.find('/');
  r.what = std::string(p.substr(0, a));
  if (a == absl::string_view::npos) return r;
  p.remove_prefix(a + 1);
  size_t b = p.find('/');
  r.id = std::string(p.substr(0, b));
  if (b != absl::string_view::npos) r.tail = std::string(p.substr(b + 1));
  return r;
}

}  // namespace

std::string Engine::Url(std::string_view path) const {
  return absl::StrCat(config_.base_url, ToAbsl(path));
}

http::Response Engine::Handle(const http::Request& request) {
  // Only authenticated POSTs take the state lock: the directory and nonces never wait behind
  // a slow token fetch or signature.
  absl::StatusOr<http::Response> out = Public(request);
  if (out.ok() && out->status == 0) {
    absl::MutexLock lock(&mu_);
    out = Route(request);
    if (const absl::Time now = config_.now(); now - last_prune_ > kPruneInterval) {
      last_prune_ = now;
      (void)store_->Prune(now);  // best effort: a failure only leaves rows for the next prune
    }
  }
  http::Response r;
  if (out.ok()) {
    r = *std::move(out);
  } else {
    r.status = ProblemHttpStatus(out.status());
    r.headers.emplace_back("Content-Type", "application/problem+json");
    r.body = ProblemJson(out.status());
  }
  // RFC 8555 §6.5: a fresh nonce on every response (a failed write only costs the client a
  // newNonce request).
  const std::string nonce = RandomToken(16);
  if (store_->AddNonce(nonce, config_.now() + config_.nonce_lifetime).ok()) {
    r.headers.emplace_back("Replay-Nonce", nonce);
  }
  r.headers.emplace_back("Cache-Control", "no-store");
  r.headers.emplace_back("Link", absl::StrCat("<", Url("/acme/directory"), ">;rel=\"index\""));
  return r;
}

absl::StatusOr<http::Response> Engine::Public(const http::Request& r) const {
  const ::shaken::acme::Route route = SplitPath(r.path);
  if (r.method == "GET" && route.what == "directory" && route.id.empty()) {
    Json d = {{"newNonce", Url("/acme/new-nonce")},
              {"newAccount", Url("/acme/new-account")},
              {"newOrder", Url("/acme/new-order")},
              {"meta", {{"externalAccountRequired", config_.eab_required}}}};
    return JsonResponse(200, d);
  }
  if (route.what == "new-nonce" && route.id.empty() && (r.method == "HEAD" || r.method == "GET")) {
    http::Response resp;
    resp.status = r.method == "HEAD" ? 200 : 204;  // RFC 8555 §7.2
    return resp;
  }
  if (r.method != "POST") {
    return NotFoundProblem(absl::StrCat(r.method, " ", r.path, " is not an ACME resource"));
  }
  return http::Response{.status = 0};  // for Route
}

absl::StatusOr<http::Response> Engine::Route(const http::Request& r) {
  const ::shaken::acme::Route route = SplitPath(r.path);
  const bool new_account = route.what == "new-account" && route.id.empty();
  ASSIGN_OR_RETURN(Auth a, Authenticate(r, new_account));
  if (new_account) return NewAccount(a);
  if (route.what == "new-order" && route.id.empty()) return NewOrder(a);
  if (route.what == "acct" && route.tail.empty()) return GetAccount(a, route.id);
  if (route.what == "authz" && route.tail.empty()) return GetAuthz(a, route.id);
  if (route.what == "chall" && route.tail.empty()) return Challenge(a, route.id);
  if (route.what == "order" && route.tail.empty()) return GetOrder(a, route.id);
  if (route.what == "order" && route.tail == "finalize") return Finalize(a, route.id);
  if (route.what == "cert" && route.tail.empty()) return GetCertificate(a, route.id);
  return NotFoundProblem(absl::StrCat(r.path, " is not an ACME resource"));
}

absl::StatusOr<Engine::Auth> Engine::Authenticate(const http::Request& r, bool new_account) {
  std::optional<std::string_view> ct = r.Header("Content-Type");
  if (!ct.has_value() || !absl::StartsWith(ToAbsl(*ct), kJose)) {
    return Problem("malformed", "the Content-Type must be application/jose+json (RFC 8555 §6.2)");
  }
  absl::StatusOr<ParsedJws> jws = ParseFlattenedJws(r.body);
  if (!jws.ok()) return Problem("malformed", jws.status().message());
  const Json& h = jws->header;
  auto alg = h.find("alg");
  if (alg == h.end() || !alg->is_string()) return Problem("malformed", "the JWS header has no alg");
  if (alg->get<std::string>() != "ES256") {
    return Problem("badSignatureAlgorithm",
                   absl::StrCat("alg ", alg->get<std::string>(), " is not supported; use ES256"));
  }
  const bool has_jwk = h.contains("jwk"), has_kid = h.contains("kid");
  if (has_jwk == has_kid) {
    return Problem("malformed",
                   "the JWS header must hold exactly one of jwk and kid (RFC 8555 §6.2)");
  }
  Auth a;
  if (new_account) {
    if (!has_jwk)
      return Problem("malformed", "newAccount is signed with a jwk, not a kid (RFC 8555 §7.3)");
    absl::StatusOr<stir::EvpPkeyPtr> key = KeyFromJwk(h["jwk"]);
    if (!key.ok()) return Problem("badPublicKey", key.status().message());
    a.key = *std::move(key);
    ASSIGN_OR_RETURN(a.jwk, JwkOf(a.key.get()));
  } else {
    if (!has_kid || !h["kid"].is_string()) {
      return Problem("malformed",
                     "this request is signed with the account URL in kid (RFC 8555 §6.2)");
    }
    absl::string_view kid = h["kid"].get_ref<const std::string&>();
    const std::string prefix = Url("/acme/acct/");
    if (!absl::ConsumePrefix(&kid, prefix) || kid.empty()) {
      return Problem("accountDoesNotExist", "kid is not an account URL of this server");
    }
    ASSIGN_OR_RETURN(std::optional<Json> acct, store_->Get("account", ToStd(kid)));
    if (!acct.has_value()) return Problem("accountDoesNotExist", "no account has this kid");
    if (Str(*acct, "status") != "valid") return Problem("unauthorized", "the account is not valid");
    a.account_id = std::string(kid);
    a.account = *std::move(acct);
    a.jwk = a.account["jwk"];
    ASSIGN_OR_RETURN(a.key, KeyFromJwk(a.jwk));
  }
  if (!VerifyEs256Jws(*jws, a.key.get()).ok()) {
    return Problem("malformed", "the JWS signature does not verify with the account key");
  }
  // RFC 8555 §6.4: the url header names the resource the client meant.
  if (Str(h, "url") != Url(r.path)) {
    return Problem("unauthorized", absl::StrCat("the JWS url header is not ", Url(r.path)));
  }
  const std::string nonce = Str(h, "nonce");
  if (nonce.empty()) return Problem("badNonce", "the JWS header has no nonce (RFC 8555 §6.5)");
  ASSIGN_OR_RETURN(bool fresh, store_->ConsumeNonce(nonce, config_.now()));
  if (!fresh) return Problem("badNonce", "the nonce is unknown, expired or already used");
  a.payload = std::move(jws->payload);
  return a;
}

absl::StatusOr<http::Response> Engine::NewAccount(const Auth& a) {
  ASSIGN_OR_RETURN(Json p, PayloadObject(a.payload));
  ASSIGN_OR_RETURN(std::string thumb, JwkThumbprint(a.jwk));
  ASSIGN_OR_RETURN(std::optional<Json> index, store_->Get("account-key", thumb));
  if (index.has_value()) {  // RFC 8555 §7.3.1: the existing account for this key
    const std::string id = Str(*index, "account");
    ASSIGN_OR_RETURN(std::optional<Json> acct, store_->Get("account", id));
    if (!acct.has_value()) return Problem("serverInternal", "account index is inconsistent");
    http::Response r =
        JsonResponse(200, {{"status", (*acct)["status"]},
                           {"contact", (*acct)["contact"]},
                           {"orders", Url(absl::StrCat("/acme/acct/", id, "/orders"))}});
    r.headers.emplace_back("Location", Url(absl::StrCat("/acme/acct/", id)));
    return r;
  }
  auto only = p.find("onlyReturnExisting");
  if (only != p.end() && only->is_boolean() && only->get<bool>()) {
    return Problem("accountDoesNotExist", "no account exists for this key");
  }
  Json contact = p.contains("contact") ? p["contact"] : Json::array();
  if (!contact.is_array()) return Problem("invalidContact", "contact must be an array of URLs");
  std::string eab_kid;
  if (p.contains("externalAccountBinding")) {
    const Json& eab = p["externalAccountBinding"];
    absl::StatusOr<ParsedJws> e = ParseFlattenedJws(eab.is_object() ? eab.dump() : "");
    if (!e.ok())
      return Problem("malformed", absl::StrCat("externalAccountBinding: ", e.status().message()));
    eab_kid = Str(e->header, "kid");
    auto key = config_.eab_keys.find(eab_kid);
    if (Str(e->header, "alg") != "HS256") {
      return Problem("badSignatureAlgorithm", "externalAccountBinding must use HS256");
    }
    if (key == config_.eab_keys.end()) {
      return Problem("unauthorized", "externalAccountBinding names an unknown key id");
    }
    if (Str(e->header, "url") != Url("/acme/new-account")) {
      return Problem("unauthorized", "externalAccountBinding url is not the newAccount URL");
    }
    if (HmacSha256(key->second, e->signing_input) != e->signature) {
      return Problem("unauthorized", "externalAccountBinding MAC does not verify");
    }
    absl::StatusOr<stir::Json> bound = stir::ParseStrictJson(e->payload);
    absl::StatusOr<std::string> bound_thumb =
        bound.ok() ? JwkThumbprint(*bound) : absl::StatusOr<std::string>(bound.status());
    if (!bound_thumb.ok() || *bound_thumb != thumb) {
      return Problem("unauthorized",
                     "externalAccountBinding binds another key than this account's");
    }
  } else if (config_.eab_required) {
    return Problem("externalAccountRequired", "this CA requires an External Account Binding");
  }
  const std::string id = RandomToken(12);
  Json acct = {{"status", "valid"},
               {"contact", contact},
               {"jwk", a.jwk},
               {"eab_kid", eab_kid},
               {"created", absl::ToUnixSeconds(config_.now())}};
  RETURN_IF_ERROR(
      store_->PutAll({{"account", id, acct}, {"account-key", thumb, {{"account", id}}}}));
  http::Response r =
      JsonResponse(201, {{"status", "valid"},
                         {"contact", contact},
                         {"orders", Url(absl::StrCat("/acme/acct/", id, "/orders"))}});
  r.headers.emplace_back("Location", Url(absl::StrCat("/acme/acct/", id)));
  return r;
}

absl::StatusOr<http::Response> Engine::GetAccount(const Auth& a, std::string_view id) {
  if (id != a.account_id) return Problem("unauthorized", "this is not your account");
  return JsonResponse(200, {{"status", a.account["status"]}, {"contact", a.account["contact"]}});
}

absl::StatusOr<http::Response> Engine::NewOrder(const Auth& a) {
  ASSIGN_OR_RETURN(Json p, PayloadObject(a.payload));
  auto ids = p.find("identifiers");
  if (ids == p.end() || !ids->is_array() || ids->empty()) {
    return Problem("malformed", "newOrder needs a non-empty identifiers array");
  }
  if (ids->size() != 1) {
    return Problem("rejectedIdentifier",
                   "a SHAKEN certificate holds one TNAuthList: order exactly one identifier");
  }
  const Json& ident = (*ids)[0];
  if (!ident.is_object() || Str(ident, "type") != "TNAuthList") {
    return Problem("unsupportedIdentifier",
                   "this STI-CA issues for identifiers of type \"TNAuthList\" only (RFC 9448)");
  }
  absl::StatusOr<std::string> der = DecodeTnAuthListValue(Str(ident, "value"));
  if (!der.ok()) return Problem("malformed", der.status().message());
  absl::StatusOr<std::vector<stir::TnAuthEntry>> entries = stir::ParseTnAuthList(*der);
  if (!entries.ok()) {
    return Problem("malformed", absl::StrCat("identifier value: ", entries.status().message()));
  }
  if (entries->size() != 1 || (*entries)[0].kind != stir::TnAuthEntry::Kind::kSpc ||
      !stir::ValidateSpc((*entries)[0].value).ok()) {
    return Problem("rejectedIdentifier",
                   "the TNAuthList must hold exactly one SPC of digits and upper-case letters "
                   "(ATIS-1000080 v005)");
  }
  const absl::Time now = config_.now();
  const std::string order_id = RandomToken(12), authz_id = RandomToken(12);
  Json identifier = {{"type", "TNAuthList"}, {"value", Str(ident, "value")}};
  Json authz = {
      {"account", a.account_id},
      {"order", order_id},
      {"identifier", identifier},
      {"tnauthlist_der_b64", stir::Base64UrlEncode(*der)},
      {"status", "pending"},
      {"expires", absl::ToUnixSeconds(now + config_.order_lifetime)},
      {"challenge", {{"type", "tkauth-01"}, {"status", "pending"}, {"token", RandomToken(16)}}}};
  Json order = {{"account", a.account_id},
                {"status", "pending"},
                {"expires", absl::ToUnixSeconds(now + config_.order_lifetime)},
                {"identifiers", Json::array({identifier})},
                {"authorizations", Json::array({authz_id})}};
  for (const char* k : {"notBefore", "notAfter"}) {
    if (p.contains(k)) order[k] = p[k];
  }
  RETURN_IF_ERROR(store_->PutAll({{"authz", authz_id, authz}, {"order", order_id, order}}));
  ASSIGN_OR_RETURN(Json view, OrderView(order_id, order));
  http::Response r = JsonResponse(201, view);
  r.headers.emplace_back("Location", Url(absl::StrCat("/acme/order/", order_id)));
  return r;
}

absl::StatusOr<Json> Engine::Load(std::string_view kind, std::string_view id, const Auth& a) {
  ASSIGN_OR_RETURN(std::optional<Json> obj, store_->Get(kind, id));
  if (!obj.has_value()) return NotFoundProblem(absl::StrCat("no such ", ToAbsl(kind)));
  if (Str(*obj, "account") != a.account_id) {
    return Problem("unauthorized",
                   absl::StrCat("this ", ToAbsl(kind), " belongs to another account"));
  }
  return *std::move(obj);
}

// OrderView renders an order, first bringing its status up to date (RFC 8555 §7.1.6): pending
// until every authorization is valid, then ready; invalid when one is invalid or it expired.
absl::StatusOr<Json> Engine::OrderView(const std::string& id, Json& order) {
  std::string status = Str(order, "status");
  const absl::Time now = config_.now();
  if ((status == "pending" || status == "ready") &&
      absl::FromUnixSeconds(order["expires"].get<int64_t>()) <= now) {
    status = "invalid";
  }
  if (status == "pending") {
    bool all_valid = true;
    for (const Json& az : order["authorizations"]) {
      ASSIGN_OR_RETURN(std::optional<Json> authz, store_->Get("authz", az.get<std::string>()));
      const std::string s = authz.has_value() ? Str(*authz, "status") : "invalid";
      if (s == "invalid") status = "invalid";
      if (s != "valid") all_valid = false;
    }
    if (status == "pending" && all_valid) status = "ready";
  }
  if (status != Str(order, "status")) {
    order["status"] = status;
    RETURN_IF_ERROR(store_->Put("order", id, order));
  }
  Json authz_urls = Json::array();
  for (const Json& az : order["authorizations"]) {
    authz_urls.push_back(Url(absl::StrCat("/acme/authz/", az.get<std::string>())));
  }
  Json view = {{"status", status},
               {"expires", Rfc3339(absl::FromUnixSeconds(order["expires"].get<int64_t>()))},
               {"identifiers", order["identifiers"]},
               {"authorizations", authz_urls},
               {"finalize", Url(absl::StrCat("/acme/order/", id, "/finalize"))}};
  for (const char* k : {"notBefore", "notAfter", "error"}) {
    if (order.contains(k)) view[k] = order[k];
  }
  if (order.contains("certificate")) {
    view["certificate"] = Url(absl::StrCat("/acme/cert/", Str(order, "certificate")));
  }
  return view;
}

Json Engine::AuthzView(const std::string& id, const Json& authz) const {
  const Json& c = authz["challenge"];
  Json ch = {{"type", "tkauth-01"},
             {"tkauth-type", "atc"},  // RFC 9447 §3
             {"url", Url(absl::StrCat("/acme/chall/", id))},
             {"token", c["token"]},
             {"status", c["status"]}};
  if (c.contains("validated")) ch["validated"] = c["validated"];
  if (c.contains("error")) ch["error"] = c["error"];
  return {{"identifier", authz["identifier"]},
          {"status", authz["status"]},
          {"expires", Rfc3339(absl::FromUnixSeconds(authz["expires"].get<int64_t>()))},
          {"challenges", Json::array({ch})}};
}

absl::StatusOr<http::Response> Engine::GetAuthz(const Auth& a, std::string_view id) {
  ASSIGN_OR_RETURN(Json authz, Load("authz", id, a));
  return JsonResponse(200, AuthzView(std::string(id), authz));
}

absl::StatusOr<http::Response> Engine::Challenge(const Auth& a, std::string_view id_view) {
  const std::string id(id_view);
  ASSIGN_OR_RETURN(Json authz, Load("authz", id, a));
  Json& c = authz["challenge"];
  if (Str(authz, "status") != "pending" || Str(c, "status") != "pending") {
    // RFC 8555 §7.5.1: answering a challenge that is no longer pending changes nothing.
    http::Response r = JsonResponse(200, AuthzView(id, authz)["challenges"][0]);
    r.headers.emplace_back(
        "Link", absl::StrCat("<", Url(absl::StrCat("/acme/authz/", id)), ">;rel=\"up\""));
    return r;
  }
  ASSIGN_OR_RETURN(Json p, PayloadObject(a.payload));
  const std::string token = Str(p, "atc");
  if (token.empty()) {
    return Problem("malformed",
                   "a tkauth-01 response is {\"atc\": \"<Authority Token>\"} (RFC 9447 §5)");
  }
  absl::StatusOr<std::string> der = stir::Base64UrlDecode(Str(authz, "tnauthlist_der_b64"));
  if (!der.ok()) return Problem("serverInternal", "stored identifier is damaged");
  ASSIGN_OR_RETURN(std::string fingerprint, AccountKeyFingerprint(a.key.get()));
  TokenExpectations expect{*der, fingerprint, config_.now(), config_.pa_anchors, config_.fetcher};
  absl::StatusOr<VerifiedToken> verified = VerifyAuthorityToken(token, expect);
  absl::Status failure = verified.status();
  if (verified.ok()) {
    ASSIGN_OR_RETURN(bool first_use,
                     store_->RecordJti(verified->iss, verified->jti, verified->exp));
    if (!first_use) {
      failure = Problem("unauthorized", "Authority Token: this jti was already used (replay)");
    }
  } else if (failure.code() == absl::StatusCode::kPermissionDenied) {
    failure = Problem("unauthorized", failure.message());
  } else {
    return Problem("serverInternal", failure.message());
  }
  if (!failure.ok()) {
    // The challenge failed: it, its authorization and so its order become invalid (§7.1.6).
    Json err = Json::parse(ProblemJson(failure));
    c["status"] = "invalid";
    c["error"] = err;
    authz["status"] = "invalid";
    std::vector<Store::Object> writes = {{"authz", id, authz}};
    ASSIGN_OR_RETURN(std::optional<Json> order, store_->Get("order", Str(authz, "order")));
    if (order.has_value()) {
      (*order)["status"] = "invalid";
      (*order)["error"] = err;
      writes.push_back({"order", Str(authz, "order"), *order});
    }
    RETURN_IF_ERROR(store_->PutAll(writes));
    return failure;
  }
  c["status"] = "valid";
  c["validated"] = Rfc3339(config_.now());
  authz["status"] = "valid";
  authz["ca"] = verified->ca;  // what Finalize may issue
  RETURN_IF_ERROR(store_->Put("authz", id, authz));
  http::Response r = JsonResponse(200, AuthzView(id, authz)["challenges"][0]);
  r.headers.emplace_back("Link",
                         absl::StrCat("<", Url(absl::StrCat("/acme/authz/", id)), ">;rel=\"up\""));
  return r;
}

absl::StatusOr<http::Response> Engine::GetOrder(const Auth& a, std::string_view id) {
  ASSIGN_OR_RETURN(Json order, Load("order", id, a));
  ASSIGN_OR_RETURN(Json view, OrderView(std::string(id), order));
  return JsonResponse(200, view);
}

bool CsrRequestsCa(X509_REQ* csr) {
  STACK_OF(X509_EXTENSION)* exts = X509_REQ_get_extensions(csr);
  bool ca = false;
  if (exts != nullptr) {
    auto* bc = static_cast<BASIC_CONSTRAINTS*>(
        X509V3_get_d2i(exts, NID_basic_constraints, nullptr, nullptr));
    ca = bc != nullptr && bc->ca != 0;
    BASIC_CONSTRAINTS_free(bc);
    sk_X509_EXTENSION_pop_free(exts, X509_EXTENSION_free);
  }
  ERR_clear_error();
  return ca;
}

absl::StatusOr<http::Response> Engine::Finalize(const Auth& a, std::string_view id_view) {
  const std::string id(id_view);
  ASSIGN_OR_RETURN(Json order, Load("order", id, a));
  ASSIGN_OR_RETURN(Json view, OrderView(id, order));
  if (Str(view, "status") != "ready") {
    return Problem("orderNotReady", absl::StrCat("the order is ", Str(view, "status"),
                                                 ", not ready: complete its authorizations first"));
  }
  ASSIGN_OR_RETURN(Json p, PayloadObject(a.payload));
  absl::StatusOr<std::string> csr_der = stir::Base64UrlDecode(Str(p, "csr"));
  if (!csr_der.ok() || csr_der->empty()) {
    return Problem("badCSR", "csr must be the base64url DER of a PKCS#10 request (RFC 8555 §7.4)");
  }
  const unsigned char* q = reinterpret_cast<const unsigned char*>(csr_der->data());
  stir::X509ReqPtr req(d2i_X509_REQ(nullptr, &q, static_cast<long>(csr_der->size())));
  if (!req || q != reinterpret_cast<const unsigned char*>(csr_der->data() + csr_der->size())) {
    ERR_clear_error();
    return Problem("badCSR", "csr does not decode as one DER PKCS#10 request");
  }
  ASSIGN_OR_RETURN(std::optional<Json> authz,
                   store_->Get("authz", order["authorizations"][0].get<std::string>()));
  absl::StatusOr<std::string> tn_der =
      stir::Base64UrlDecode(authz.has_value() ? Str(*authz, "tnauthlist_der_b64") : "");
  if (!tn_der.ok()) return Problem("serverInternal", "stored identifier is damaged");
  if (!config_.issue) return Problem("serverInternal", "this server has no issuing CA");
  const bool ca = CsrRequestsCa(req.get());
  if (ca && !(authz.has_value() && authz->value("ca", false))) {
    return Problem("unauthorized",
                   "the CSR asks for a CA certificate (BasicConstraints CA:TRUE), but the order's "
                   "Authority Token does not allow one: an SP-CA certificate needs a token with "
                   "atc \"ca\": true (RFC 9448 §3)");
  }
  absl::StatusOr<IssuedCertificate> issued = config_.issue(req.get(), *tn_der, ca);
  if (!issued.ok()) {
    const absl::StatusCode code = issued.status().code();
    if (code == absl::StatusCode::kInvalidArgument ||
        code == absl::StatusCode::kFailedPrecondition) {
      return Problem("badCSR", issued.status().message());
    }
    return Problem("serverInternal", absl::StrCat("issuing failed: ", issued.status().message()));
  }
  const std::string cert_id = RandomToken(12);
  ASSIGN_OR_RETURN(bool new_serial, store_->RecordSerial(issued->serial_hex, cert_id));
  if (!new_serial) {
    return Problem("serverInternal", "the CA drew a serial it already issued; finalize again");
  }
  order["status"] = "valid";
  order["certificate"] = cert_id;
  Json cert = {{"account", a.account_id},
               {"order", id},
               {"serial", issued->serial_hex},
               {"pem", issued->chain_pem}};
  RETURN_IF_ERROR(store_->PutAll({{"cert", cert_id, cert}, {"order", id, order}}));
  ASSIGN_OR_RETURN(view, OrderView(id, order));
  http::Response r = JsonResponse(200, view);
  r.headers.emplace_back("Location", Url(absl::StrCat("/acme/order/", id)));
  return r;
}

absl::StatusOr<http::Response> Engine::GetCertificate(const Auth& a, std::string_view id) {
  ASSIGN_OR_RETURN(Json cert, Load("cert", id, a));
  http::Response r;
  r.status = 200;
  r.headers.emplace_back("Content-Type", "application/pem-certificate-chain");
  r.body = Str(cert, "pem");
  return r;
}

}  // namespace shaken::acme
