// authz.h: client authorization. A client is named by its TLS certificate: its subjectAltName DNS
// and URI names, or its subject CN only when the certificate has no subjectAltName extension at
// all. Email and IP SANs never name a client, and a certificate with SANs is never known by its
// CN. Names match a rule's identity exactly (case-sensitive). The configuration's `clients` rules
// say which methods and profiles each name may use. With no rules at all, every client that
// passed the transport's authentication may do everything.
#ifndef SHAKEN_DAEMON_AUTHZ_H_
#define SHAKEN_DAEMON_AUTHZ_H_

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <grpcpp/security/auth_context.h>
#include <openssl/x509.h>

#include "absl/base/thread_annotations.h"
#include "absl/container/inlined_vector.h"
#include "absl/types/span.h"
#include "absl/synchronization/mutex.h"
#include "daemon/config.h"

namespace shaken::daemon {

// Caller is who made a request and what the rules grant them.
struct Caller {
  // The name a non-wildcard rule matched, else the first name, else "unnamed" (a certificate
  // without a usable name) or "anonymous" (no client certificate).
  std::string identity;
  absl::InlinedVector<const ClientRule*, 2> rules;  // rules that match the identity
  bool unrestricted = false;              // no rules are configured
  // The rule set `rules` points into: a reload never frees it under a call in progress.
  std::shared_ptr<const std::vector<ClientRule>> rule_set;
};

// Authorizer applies ClientRules. Thread-safe; Replace swaps the rules for calls identified after
// it (a call keeps what it was granted when it arrived).
class Authorizer {
 public:
  explicit Authorizer(std::vector<ClientRule> rules)
      : rules_(std::make_shared<const std::vector<ClientRule>>(std::move(rules))) {}

  // Identify reads the peer's certificate names from `ctx` (may be null: no TLS).
  Caller Identify(const grpc::AuthContext* ctx) const;
  // IdentifyCertificate names the caller by its verified TLS client certificate, with the same
  // rules as Identify, for front ends whose TLS is not gRPC's (REST, SIP over TLS). `cert` null:
  // the peer sent no certificate (anonymous).
  Caller IdentifyCertificate(X509* cert) const;
  // IdentifyAddress names a SIP client by the source address of its request: the rules whose
  // `sources` hold `addr` (identity: the first such rule's), none when outside every rule's
  // sources (identity "unknown"). Rules without sources never match an address.
  Caller IdentifyAddress(const struct sockaddr* addr) const;

  // Replace puts `rules` in force for every later Identify (configuration reload).
  void Replace(std::vector<ClientRule> rules);

  // MayCall tells whether `caller` may call `method` ("Sign", "Verify", ...).
  static bool MayCall(const Caller& caller, std::string_view method);
  // MayUse tells whether `caller` may call `method` with signing profile `profile`.
  static bool MayUse(const Caller& caller, std::string_view method, std::string_view profile);

 private:
  // Match applies the rules to the peer's names (views alive for the call).
  Caller Match(absl::Span<const std::string_view> names, bool authenticated) const;

  mutable absl::Mutex mu_;
  std::shared_ptr<const std::vector<ClientRule>> rules_ ABSL_GUARDED_BY(mu_);
};

}  // namespace shaken::daemon

#endif  // SHAKEN_DAEMON_AUTHZ_H_
