#include "conformance/harness.h"


#include "absl/strings/str_cat.h"
#include "stir/status_macros.h"
#include "tests/testing/subprocess.h"

namespace shaken::conformance {
namespace {

using testing::HttpResponse;
using testing::LeafOptions;
using testing::TestCert;
using testing::TestPki;

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
  stir::FetchResult FetchContent(std::string_view url) const override {
    return inner_->FetchContent(url);
  }

 private:
  std::shared_ptr<const stir::CertificateFetcher> inner_;
  std::string from_, to_;
};

absl::StatusOr<stir::EvpPkeyPtr> GenerateKey(const char* kind) {
  EVP_PKEY* k = std::string_view(kind) == "rsa" ? EVP_RSA_gen(2048) : EVP_EC_gen(kind);
  if (k == nullptr) return stir::OpenSslError(absl::StatusCode::kInternal, "key generation");
  return stir::EvpPkeyPtr(k);
}

std::string Unhex(std::string_view hex) {
  std::string out;
  for (size_t i = 0; i + 1 < hex.size(); i += 2) {
    out.push_back(static_cast<char>(std::stoi(std::string(hex.substr(i, 2)), nullptr, 16)));
  }
  return out;
}

}  // namespace

std::string Str(const Json& obj, const char* name, std::string fallback) {
  if (!obj.is_object()) return fallback;
  auto it = obj.find(name);
  if (it == obj.end() || !it->is_string()) return fallback;
  return it->get<std::string>();
}
int64_t Int(const Json& obj, const char* name, int64_t fallback) {
  if (!obj.is_object()) return fallback;
  auto it = obj.find(name);
  if (it == obj.end() || !it->is_number_integer()) return fallback;
  return it->get<int64_t>();
}
bool Bool(const Json& obj, const char* name, bool fallback) {
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
  // "sp_ca": issued by an SP-CA under the STI-CA whose TNAuthList is the given DER (RFC 9060).
  if (auto it = spec.find("sp_ca"); it != spec.end() && it->is_object()) {
    ASSIGN_OR_RETURN(TestCert sp_ca,
                     issuer.IssueSpCa("conformance SP-CA", Unhex(Str(*it, "tn_auth_list_der_hex"))));
    o.issuer = &sp_ca;
    return issuer.IssueLeaf(o);
  }
  return issuer.IssueLeaf(o);
}

std::string ChainFor(const TestPki& pki, const TestCert& leaf, const std::string& chain) {
  if (chain == "leaf_only") return leaf.cert_pem;
  if (chain == "reversed") return pki.intermediate().cert_pem + leaf.cert_pem;
  return pki.ChainPem(leaf);
}

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

}  // namespace shaken::conformance
