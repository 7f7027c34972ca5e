#include "daemon/authz.h"

#include <algorithm>

namespace shaken::daemon {
namespace {

bool Contains(const std::vector<std::string>& list, std::string_view value) {
  return std::any_of(list.begin(), list.end(),
                     [&](const std::string& s) { return s == "*" || s == value; });
}

}  // namespace

Caller Authorizer::Identify(const grpc::AuthContext* ctx) const {
  Caller caller;
  caller.unrestricted = rules_.empty();
  // Views into the call's auth context (alive for the call): no copy per name.
  absl::InlinedVector<std::string_view, 4> names;
  if (ctx != nullptr && ctx->IsPeerAuthenticated()) {
    for (const char* property : {"x509_subject_alternative_name", "x509_common_name"}) {
      for (const grpc::string_ref& v : ctx->FindPropertyValues(property)) {
        names.emplace_back(v.data(), v.size());
      }
    }
  }
  caller.identity = names.empty() ? std::string("anonymous") : std::string(names.front());
  for (const ClientRule& rule : rules_) {
    bool match = rule.identity == "*" ||
                 std::find(names.begin(), names.end(), rule.identity) != names.end();
    // A wildcard rule grants anonymous callers only on a listener without client certificates;
    // with mTLS, gRPC refuses a connection without a valid client certificate before we run.
    if (match) caller.rules.push_back(&rule);
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
