#include "daemon/authz.h"

#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <cstring>

#include <grpc/grpc_security_constants.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "stir/openssl_util.h"

namespace shaken::daemon {
namespace {

using Names = absl::InlinedVector<std::string_view, 4>;

// CertificateHasSan tells whether the peer's leaf certificate carries a subjectAltName extension
// of any kind. gRPC reports DNS, URI, email and IP names only, so a certificate whose SANs are all
// of other kinds (otherName, directoryName) looks SAN-less in the auth context; the certificate
// decides. Unreadable: true (no CN fallback, fail closed).
bool CertificateHasSan(const grpc::AuthContext& ctx) {
  std::vector<grpc::string_ref> pem = ctx.FindPropertyValues(GRPC_X509_PEM_CERT_PROPERTY_NAME);
  if (pem.empty()) return true;
  stir::BioPtr bio(BIO_new_mem_buf(pem.front().data(), static_cast<int>(pem.front().size())));
  if (bio == nullptr) return true;
  stir::X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr));
  if (cert == nullptr) return true;
  return X509_get_ext_by_NID(cert.get(), NID_subject_alt_name, -1) >= 0;
}

// PeerNames appends the names authz.h documents a client certificate as known by: its SAN DNS and
// URI names; its subject CN only when it has no subjectAltName at all. Email and IP SANs never
// name a client (an email SAN "sbc.demo" is not the host sbc.demo), and a certificate with SANs is
// never known by its CN (a CN "sbc.demo" next to SAN DNS:other.host is not sbc.demo). Views into
// `ctx`, alive for the call.
void PeerNames(const grpc::AuthContext& ctx, Names* names) {
  for (const char* property : {GRPC_PEER_DNS_PROPERTY_NAME, GRPC_PEER_URI_PROPERTY_NAME}) {
    for (const grpc::string_ref& v : ctx.FindPropertyValues(property)) {
      names->emplace_back(v.data(), v.size());
    }
  }
  if (!names->empty() || !ctx.FindPropertyValues(GRPC_X509_SAN_PROPERTY_NAME).empty()) return;
  // Rare: a certificate without DNS, URI, email or IP names. Parse it (see CertificateHasSan).
  if (CertificateHasSan(ctx)) return;
  for (const grpc::string_ref& v : ctx.FindPropertyValues(GRPC_X509_CN_PROPERTY_NAME)) {
    names->emplace_back(v.data(), v.size());
  }
}

bool Contains(const std::vector<std::string>& list, std::string_view value) {
  return std::any_of(list.begin(), list.end(),
                     [&](const std::string& s) { return s == "*" || s == value; });
}

// InSources tells whether `addr` lies in one of `sources`; an IPv4-mapped IPv6 address (a dual-
// stack socket's view of an IPv4 peer) is compared as the IPv4 address it is.
bool InSources(const struct sockaddr* addr, const std::vector<stir::IpCidr>& sources) {
  uint8_t bytes[16];
  int family = addr->sa_family;
  if (family == AF_INET) {
    std::memcpy(bytes, &reinterpret_cast<const sockaddr_in*>(addr)->sin_addr, 4);
  } else if (family == AF_INET6) {
    const auto* a6 = &reinterpret_cast<const sockaddr_in6*>(addr)->sin6_addr;
    if (IN6_IS_ADDR_V4MAPPED(a6)) {
      family = AF_INET;
      std::memcpy(bytes, a6->s6_addr + 12, 4);
    } else {
      std::memcpy(bytes, a6->s6_addr, 16);
    }
  } else {
    return false;
  }
  return std::any_of(sources.begin(), sources.end(), [&](const stir::IpCidr& c) {
    if (c.family != family) return false;
    int bits = c.prefix_length;
    for (size_t i = 0; bits > 0; ++i, bits -= 8) {
      const uint8_t mask = bits >= 8 ? 0xFF : static_cast<uint8_t>(0xFF << (8 - bits));
      if ((bytes[i] & mask) != (c.address[i] & mask)) return false;
    }
    return true;
  });
}

}  // namespace

Caller Authorizer::IdentifyAddress(const struct sockaddr* addr) const {
  Caller caller;
  {
    absl::MutexLock lock(&mu_);
    caller.rule_set = rules_;
  }
  caller.unrestricted = caller.rule_set->empty();
  for (const ClientRule& rule : *caller.rule_set) {
    if (rule.sources.empty() || addr == nullptr || !InSources(addr, rule.sources)) continue;
    caller.rules.push_back(&rule);
    if (caller.identity.empty()) caller.identity = rule.identity;
  }
  if (caller.identity.empty()) caller.identity = caller.unrestricted ? "anonymous" : "unknown";
  return caller;
}

void Authorizer::Replace(std::vector<ClientRule> rules) {
  auto next = std::make_shared<const std::vector<ClientRule>>(std::move(rules));
  absl::MutexLock lock(&mu_);
  rules_ = std::move(next);
}

Caller Authorizer::Identify(const grpc::AuthContext* ctx) const {
  Names names;
  const bool authenticated = ctx != nullptr && ctx->IsPeerAuthenticated();
  if (authenticated) PeerNames(*ctx, &names);
  return Match(names, authenticated);
}

Caller Authorizer::IdentifyCertificate(X509* cert) const {
  if (cert == nullptr) return Match({}, /*authenticated=*/false);
  // The same names as PeerNames: SAN DNS and URI names; the subject CN only without any SAN.
  std::vector<std::string> owned;
  STACK_OF(GENERAL_NAME)* sans = static_cast<STACK_OF(GENERAL_NAME)*>(
      X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
  const bool has_san = X509_get_ext_by_NID(cert, NID_subject_alt_name, -1) >= 0;
  for (int i = 0; sans != nullptr && i < sk_GENERAL_NAME_num(sans); ++i) {
    const GENERAL_NAME* gn = sk_GENERAL_NAME_value(sans, i);
    if (gn->type != GEN_DNS && gn->type != GEN_URI) continue;
    const ASN1_IA5STRING* v = gn->type == GEN_DNS ? gn->d.dNSName : gn->d.uniformResourceIdentifier;
    owned.emplace_back(reinterpret_cast<const char*>(ASN1_STRING_get0_data(v)),
                       static_cast<size_t>(ASN1_STRING_length(v)));
  }
  GENERAL_NAMES_free(sans);
  if (!has_san) {
    const X509_NAME* subject = X509_get_subject_name(cert);
    for (int i = X509_NAME_get_index_by_NID(subject, NID_commonName, -1); i >= 0;
         i = X509_NAME_get_index_by_NID(subject, NID_commonName, i)) {
      unsigned char* utf8 = nullptr;
      const int n = ASN1_STRING_to_UTF8(
          &utf8, X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subject, i)));
      if (n >= 0) owned.emplace_back(reinterpret_cast<const char*>(utf8), static_cast<size_t>(n));
      OPENSSL_free(utf8);
    }
  }
  Names names(owned.begin(), owned.end());
  return Match(names, /*authenticated=*/true);
}

Caller Authorizer::Match(absl::Span<const std::string_view> names, bool authenticated) const {
  Caller caller;
  {
    absl::MutexLock lock(&mu_);
    caller.rule_set = rules_;
  }
  const std::vector<ClientRule>& rules = *caller.rule_set;
  caller.unrestricted = rules.empty();
  for (const ClientRule& rule : rules) {
    if (!rule.sources.empty()) continue;  // a SIP client's rule (IdentifyAddress)
    bool match = rule.identity == "*" ||
                 std::find(names.begin(), names.end(), rule.identity) != names.end();
    // A wildcard rule grants anonymous callers only on a listener without client certificates;
    // with mTLS, the transport refuses a connection without a valid client certificate before
    // we run.
    if (match) caller.rules.push_back(&rule);
    // Audit the name a rule granted rights to, not merely the certificate's first name.
    if (match && rule.identity != "*" && caller.identity.empty()) caller.identity = rule.identity;
  }
  if (caller.identity.empty()) {
    caller.identity = !names.empty()   ? std::string(names.front())
                      : authenticated ? std::string("unnamed")
                                      : std::string("anonymous");
  }
  return caller;
}

bool Authorizer::MayCall(const Caller& caller, std::string_view method) {
  if (caller.unrestricted) return true;
  return std::any_of(caller.rules.begin(), caller.rules.end(),
                     [&](const ClientRule* r) { return Contains(r->methods, method); });
}

bool Authorizer::MayUse(const Caller& caller, std::string_view method, std::string_view profile) {
  if (caller.unrestricted) return true;
  return std::any_of(caller.rules.begin(), caller.rules.end(), [&](const ClientRule* r) {
    return Contains(r->methods, method) && Contains(r->profiles, profile);
  });
}

}  // namespace shaken::daemon
