#include "daemon/config.h"

#include <sys/stat.h>
#include <unistd.h>
#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "daemon/config_node.h"
#include "stir/absl_compat.h"
#include "stir/passport.h"
#include "stir/x5u_fetcher.h"
#include "stir/status_macros.h"

namespace shaken::daemon {
namespace {

using config_internal::Node;
using config_internal::ReadListen;
using config_internal::ReadSipRole;

// LineOfKeyPath is the 1-based line of the deepest part of `path` ("profiles[1].x5u",
// "listen.tls.cert_file") present in `doc`, or 0 when not even its first key is there.
int LineOfKeyPath(const YAML::Node& doc, std::string_view path) {
  // Read-only walk: YAML::Node's operator= would write through to the document, so the cursor
  // moves with reset(), and lookups go through a const node (which never inserts a key).
  YAML::Node at;
  at.reset(doc);
  int line = 0;
  for (absl::string_view abseil_segment : absl::StrSplit(ToAbsl(path), '.')) {
    const std::string_view segment = ToStd(abseil_segment);
    const size_t bracket = segment.find('[');
    const std::string_view key = segment.substr(0, bracket);
    if (!at.IsMap()) return line;
    bool found = false;
    for (const auto& item : static_cast<const YAML::Node&>(at)) {
      if (item.first.IsScalar() && item.first.Scalar() == key) {
        line = item.first.Mark().line + 1;  // the key's own line
        at.reset(item.second);
        found = true;
        break;
      }
    }
    if (!found) return line;
    for (size_t open = bracket; open != std::string_view::npos; open = segment.find('[', open + 1)) {
      size_t index = 0;
      const size_t close = segment.find(']', open);
      if (close == std::string_view::npos ||
          !absl::SimpleAtoi(ToAbsl(segment.substr(open + 1, close - open - 1)), &index) ||
          !at.IsSequence() || index >= at.size()) {
        return line;
      }
      at.reset(static_cast<const YAML::Node&>(at)[index]);
      if (!at.Mark().is_null()) line = at.Mark().line + 1;
    }
  }
  return line;
}

// WithLine prefixes `message`, which starts with a key path, with "<origin>:<line>: " (the line of
// that key in `doc`), or "<origin>: " when the path is not in the file.
std::string WithLine(const YAML::Node& doc, std::string_view origin, std::string_view message) {
  const std::string_view path = message.substr(0, message.find_first_of(" :"));
  const int line = LineOfKeyPath(doc, path);
  return line > 0 ? absl::StrCat(ToAbsl(origin), ":", line, ": ", ToAbsl(message))
                  : absl::StrCat(ToAbsl(origin), ": ", ToAbsl(message));
}

absl::Status ReadClients(Node& root, Config* c) {
  if (!root.Has("clients")) return absl::OkStatus();
  YAML::Node list = root.Get("clients");
  if (!list.IsSequence()) return Node::Error("clients", "must be a list");
  static const std::set<std::string> kMethods = {"Sign", "SignStream", "Verify", "ListProfiles",
                                                 "*"};
  for (size_t i = 0; i < list.size(); ++i) {
    Node n(list[i], absl::StrCat("clients[", i, "]"));
    RETURN_IF_ERROR(n.CheckMap());
    ClientRule rule;
    RETURN_IF_ERROR(n.String("identity", &rule.identity));
    RETURN_IF_ERROR(n.StringList("methods", &rule.methods));
    RETURN_IF_ERROR(n.StringList("profiles", &rule.profiles));
    std::vector<std::string> sources;
    RETURN_IF_ERROR(n.StringList("sources", &sources));
    for (size_t j = 0; j < sources.size(); ++j) {
      absl::StatusOr<stir::IpCidr> cidr = stir::ParseCidr(sources[j]);
      if (!cidr.ok()) {
        return Node::Error(absl::StrCat(n.Path("sources"), "[", j, "]"),
                           ToStd(cidr.status().message()));
      }
      rule.sources.push_back(*cidr);
    }
    if (n.Has("sip_role")) {
      SipRole role = SipRole::kAuto;
      RETURN_IF_ERROR(ReadSipRole(n, "sip_role", &role));
      rule.sip_role = role;
    }
    RETURN_IF_ERROR(n.String("sip_profile", &rule.sip_profile));
    RETURN_IF_ERROR(n.String("sip_default_attest", &rule.sip_default_attest));
    RETURN_IF_ERROR(n.Finish());
    for (const auto& [key, set] :
         {std::pair{"sip_role", rule.sip_role.has_value()},
          std::pair{"sip_profile", !rule.sip_profile.empty()},
          std::pair{"sip_default_attest", !rule.sip_default_attest.empty()}}) {
      if (set && rule.sources.empty()) {
        return Node::Error(n.Path(key), "applies to SIP clients only: set sources too");
      }
    }
    if (!rule.sip_default_attest.empty() && !stir::IsAttestLevel(rule.sip_default_attest)) {
      return Node::Error(n.Path("sip_default_attest"), "must be A, B or C");
    }
    if (rule.identity.empty()) return Node::Error(n.Path("identity"), "is required");
    if (rule.methods.empty()) return Node::Error(n.Path("methods"), "needs at least one method");
    for (const auto& m : rule.methods) {
      if (!kMethods.count(m)) {
        return Node::Error(n.Path("methods"),
                           absl::StrCat("has \"", m,
                                        "\"; use Sign, SignStream, Verify, ListProfiles or *"));
      }
    }
    c->clients.push_back(std::move(rule));
  }
  return absl::OkStatus();
}

absl::Status ReadPkcs11(Node& root, Config* c) {
  if (!root.Has("pkcs11")) return absl::OkStatus();
  Node n(root.Get("pkcs11"), "pkcs11");
  RETURN_IF_ERROR(n.CheckMap());
  Pkcs11Config p;
  RETURN_IF_ERROR(n.String("module", &p.module));
  std::string pin_source;
  RETURN_IF_ERROR(n.String("pin_source", &pin_source));
  std::vector<std::string> quirks;
  const bool quirks_set = n.Has("quirks");
  RETURN_IF_ERROR(n.StringList("quirks", &quirks));
  RETURN_IF_ERROR(n.Number("pool_size", &p.pool_size, 1, 1024));
  RETURN_IF_ERROR(n.Number("open_at_start", &p.open_at_start, 1, 1024));
  RETURN_IF_ERROR(n.Choice<hsm::KeyCopy>("key_copy",
                                         {{"never", hsm::KeyCopy::kNever},
                                          {"if-allowed", hsm::KeyCopy::kIfAllowed},
                                          {"required", hsm::KeyCopy::kRequired}},
                                         &p.key_copy, "must be never, if-allowed or required"));
  RETURN_IF_ERROR(n.Duration("max_wait", &p.max_wait));
  RETURN_IF_ERROR(n.Number("queue_limit", &p.queue_limit, 0, 1000000));
  RETURN_IF_ERROR(n.Duration("open_interval", &p.open_interval));
  RETURN_IF_ERROR(n.Duration("backoff_initial", &p.backoff_initial));
  RETURN_IF_ERROR(n.Duration("backoff_max", &p.backoff_max));
  RETURN_IF_ERROR(n.Bool("require_token_at_start", &p.require_token_at_start));
  RETURN_IF_ERROR(n.Finish());
  if (p.module.empty()) return Node::Error("pkcs11.module", "is required (path of the .so)");
  absl::StatusOr<hsm::PinSource> pin = hsm::PinSource::Parse(pin_source);
  if (!pin.ok()) {
    return Node::Error("pkcs11.pin_source",
                       absl::StrCat(pin.status().message(),
                                    "; a PIN is never written in the configuration"));
  }
  p.pin_source = *std::move(pin);
  if (quirks_set) {
    hsm::ModuleQuirks q;
    for (const auto& name : quirks) {
      if (name == "no-finalize") {
        q.finalize_on_unload = false;
      } else if (name == "keep-sessions-open") {
        q.close_pooled_sessions = false;
      } else {
        return Node::Error("pkcs11.quirks", absl::StrCat("has \"", name,
                                                         "\"; known: no-finalize, keep-sessions-open"));
      }
    }
    p.quirks = q;
  }
  if (p.open_at_start > p.pool_size) p.open_at_start = p.pool_size;
  c->pkcs11 = std::move(p);
  return absl::OkStatus();
}

absl::Status ReadProfiles(Node& root, Config* c) {
  if (!root.Has("profiles")) return Node::Error("profiles", "is required: at least one signing profile");
  YAML::Node list = root.Get("profiles");
  if (!list.IsSequence() || list.size() == 0) {
    return Node::Error("profiles", "must be a non-empty list");
  }
  std::set<std::string> names;
  int defaults = 0;
  for (size_t i = 0; i < list.size(); ++i) {
    Node n(list[i], absl::StrCat("profiles[", i, "]"));
    RETURN_IF_ERROR(n.CheckMap());
    ProfileConfig p;
    RETURN_IF_ERROR(n.String("name", &p.name));
    RETURN_IF_ERROR(n.String("key", &p.key));
    std::string passphrase_source;
    RETURN_IF_ERROR(n.String("key_passphrase_source", &passphrase_source));
    RETURN_IF_ERROR(n.String("x5u", &p.x5u));
    RETURN_IF_ERROR(n.String("certificate", &p.certificate_file));
    RETURN_IF_ERROR(n.StringList("attest", &p.attest));
    RETURN_IF_ERROR(n.Bool("default", &p.is_default));
    RETURN_IF_ERROR(n.Finish());
    if (p.name.empty()) return Node::Error(n.Path("name"), "is required");
    if (!names.insert(p.name).second) {
      return Node::Error(n.Path("name"), absl::StrCat("\"", p.name, "\" is used twice"));
    }
    if (!absl::StartsWith(p.key, "pkcs11:") && !absl::StartsWith(p.key, "file:")) {
      return Node::Error(n.Path("key"),
                         "must be a PKCS#11 URI (pkcs11:token=...;object=...) or file:/path.pem");
    }
    if (absl::StartsWith(p.key, "pkcs11:") && !c->pkcs11.has_value()) {
      return Node::Error(n.Path("key"), "is a PKCS#11 URI but there is no pkcs11 section");
    }
    if (absl::StrContains(p.key, "pin-value")) {
      return Node::Error(n.Path("key"),
                         "must not carry pin-value; set pkcs11.pin_source instead");
    }
    if (!passphrase_source.empty()) {
      if (!absl::StartsWith(p.key, "file:")) {
        return Node::Error(n.Path("key_passphrase_source"),
                           "is for an encrypted PEM key file (key: file:...); a token key uses "
                           "pkcs11.pin_source");
      }
      absl::StatusOr<hsm::PinSource> source = hsm::PinSource::Parse(passphrase_source);
      if (!source.ok()) {
        return Node::Error(n.Path("key_passphrase_source"),
                           absl::StrCat(source.status().message(),
                                        "; never the passphrase itself"));
      }
      p.key_passphrase_source = *std::move(source);
    }
    // The x5u is checked in ParseConfig, once verifier.lab (which may relax the policy) is read.
    if (p.certificate_file.empty()) {
      return Node::Error(n.Path("certificate"), "is required (the PEM chain published at x5u)");
    }
    if (p.attest.empty()) return Node::Error(n.Path("attest"), "needs at least one level");
    for (const auto& a : p.attest) {
      if (!stir::IsAttestLevel(a)) {
        return Node::Error(n.Path("attest"), absl::StrCat("has \"", a, "\"; levels are A, B, C"));
      }
    }
    if (p.is_default) ++defaults;
    c->profiles.push_back(std::move(p));
  }
  if (defaults > 1) return Node::Error("profiles", "may mark only one profile default: true");
  if (defaults == 0) c->profiles.front().is_default = true;
  return absl::OkStatus();
}

// ReadCidrs reads a list of CIDRs (stir::ParseCidr) under `key` of `n`.
absl::Status ReadCidrs(Node& n, const std::string& key, std::vector<stir::IpCidr>* out) {
  std::vector<std::string> texts;
  RETURN_IF_ERROR(n.StringList(key, &texts));
  for (const std::string& text : texts) {
    absl::StatusOr<stir::IpCidr> cidr = stir::ParseCidr(text);
    if (!cidr.ok()) return Node::Error("verifier.lab." + key, std::string(cidr.status().message()));
    out->push_back(*cidr);
  }
  return absl::OkStatus();
}

absl::Status CheckVerifier(const VerifierConfig& v) {
  if (v.enabled && v.ca_file.empty() && v.ca_dir.empty() && v.ca_list_url.empty()) {
    return Node::Error("verifier.ca_file",
                       "or verifier.ca_dir or verifier.ca_list_url is required: the STI-CA trust "
                       "anchors (or set verifier.enabled: false)");
  }
  if (!v.ca_list_url.empty()) {
    if (const stir::FetchResult r = stir::CheckX5uUrl(v.ca_list_url, v.x5u_policy); !r.ok()) {
      return Node::Error("verifier.ca_list_url",
                         absl::StrCat("is fetched with the x5u policy, which refuses it: ", r.detail));
    }
    if (v.ca_list_refresh < absl::Seconds(1) || v.ca_list_retry < absl::Milliseconds(100)) {
      return Node::Error("verifier.ca_list_refresh",
                         "must be at least 1s (and ca_list_retry at least 100ms)");
    }
  }
  if (v.iat_window <= absl::ZeroDuration()) {
    return Node::Error("verifier.iat_window", "must be positive");
  }
  if (v.crl_retry_after <= absl::ZeroDuration()) {
    return Node::Error("verifier.crl_retry_after",
                       "must be positive: how long an unusable CRL is remembered before the next "
                       "fetch (e.g. 30s)");
  }
  return absl::OkStatus();
}

absl::Status ReadVerifier(Node& root, Config* c) {
  if (!root.Has("verifier")) return CheckVerifier(c->verifier);
  Node n(root.Get("verifier"), "verifier");
  RETURN_IF_ERROR(n.CheckMap());
  VerifierConfig& v = c->verifier;
  RETURN_IF_ERROR(n.Bool("enabled", &v.enabled));
  RETURN_IF_ERROR(n.String("ca_file", &v.ca_file));
  RETURN_IF_ERROR(n.String("ca_dir", &v.ca_dir));
  RETURN_IF_ERROR(n.String("ca_list_url", &v.ca_list_url));
  RETURN_IF_ERROR(n.Duration("ca_list_refresh", &v.ca_list_refresh));
  RETURN_IF_ERROR(n.Duration("ca_list_retry", &v.ca_list_retry));
  RETURN_IF_ERROR(n.Number<size_t>("ca_list_max_bytes", &v.ca_list_max_bytes, 4096, 64 << 20));
  RETURN_IF_ERROR(n.String("ca_list_cache_file", &v.ca_list_cache_file));
  RETURN_IF_ERROR(n.StringList("crl_files", &v.crl_files));
  RETURN_IF_ERROR(n.Bool("crl_distribution_points", &v.crl_distribution_points));
  RETURN_IF_ERROR(n.Choice<stir::CrlFailureMode>(
      "crl_unavailable", {{"soft-fail", stir::CrlFailureMode::kSoftFail},
                          {"hard-fail", stir::CrlFailureMode::kHardFail}},
      &v.crl_unavailable, "must be soft-fail or hard-fail"));
  RETURN_IF_ERROR(n.Number<size_t>("crl_max_bytes", &v.crl_max_bytes, 4096, 64 << 20));
  RETURN_IF_ERROR(n.Number<size_t>("crl_cache_max_entries", &v.crl_cache_max_entries, 1, 100000));
  RETURN_IF_ERROR(n.Duration("crl_retry_after", &v.crl_retry_after));
  RETURN_IF_ERROR(n.Choice<stir::ProfileStrictness>(
      "policy", {{"strict", stir::ProfileStrictness::kStrict},
                 {"lenient", stir::ProfileStrictness::kLenient}},
      &v.policy, "must be strict or lenient"));
  RETURN_IF_ERROR(n.Duration("iat_window", &v.iat_window));
  RETURN_IF_ERROR(n.Bool("require_low_s", &v.require_low_s));
  RETURN_IF_ERROR(n.Duration("connect_timeout", &v.connect_timeout));
  RETURN_IF_ERROR(n.Duration("fetch_timeout", &v.fetch_timeout));
  RETURN_IF_ERROR(n.Number<size_t>("max_certificate_bytes", &v.max_certificate_bytes, 1024,
                                   1 << 20));
  RETURN_IF_ERROR(n.String("tls_ca_file", &v.tls_ca_file));
  RETURN_IF_ERROR(n.Number<size_t>("cache_max_entries", &v.cache_max_entries, 1, 10000000));
  RETURN_IF_ERROR(n.Number<size_t>("cache_max_bytes", &v.cache_max_bytes, 1 << 16,
                                   size_t{1} << 34));
  RETURN_IF_ERROR(n.Duration("cache_default_ttl", &v.cache_default_ttl));
  RETURN_IF_ERROR(n.Duration("cache_max_ttl", &v.cache_max_ttl));
  RETURN_IF_ERROR(n.Duration("cache_negative_ttl", &v.cache_negative_ttl));
  RETURN_IF_ERROR(n.Number("max_in_flight", &v.max_in_flight, 1, 1000000));
  RETURN_IF_ERROR(n.Number("fetch_max_in_flight", &v.fetch_max_in_flight, 1, 10000));
  RETURN_IF_ERROR(n.Number("fetch_max_per_host", &v.fetch_max_per_host, 1, 10000));
  RETURN_IF_ERROR(n.Number("fetch_max_queued", &v.fetch_max_queued, 0, 1000000));
  if (n.Has("lab")) {
    Node lab(n.Get("lab"), "verifier.lab");
    RETURN_IF_ERROR(lab.CheckMap());
    RETURN_IF_ERROR(lab.Bool("allow_http", &v.x5u_policy.allow_http));
    RETURN_IF_ERROR(lab.Bool("allow_private_addresses", &v.x5u_policy.allow_private_addresses));
    RETURN_IF_ERROR(lab.Bool("allow_any_port", &v.x5u_policy.allow_any_port));
    RETURN_IF_ERROR(ReadCidrs(lab, "allow_cidrs", &v.x5u_policy.allow_cidrs));
    RETURN_IF_ERROR(lab.Finish());
  }
  RETURN_IF_ERROR(n.Finish());
  return CheckVerifier(v);
}

absl::Status ReadLogging(Node& root, Config* c) {
  if (!root.Has("logging")) return absl::OkStatus();
  Node n(root.Get("logging"), "logging");
  RETURN_IF_ERROR(n.CheckMap());
  RETURN_IF_ERROR(n.Choice<LogLevel>("level",
                                     {{"trace", LogLevel::kTrace},
                                      {"debug", LogLevel::kDebug},
                                      {"info", LogLevel::kInfo},
                                      {"warn", LogLevel::kWarn},
                                      {"error", LogLevel::kError}},
                                     &c->log_level, "must be trace, debug, info, warn or error"));
  RETURN_IF_ERROR(n.Choice<LogFormat>("format",
                                      {{"text", LogFormat::kText}, {"json", LogFormat::kJson}},
                                      &c->log_format, "must be text or json"));
  RETURN_IF_ERROR(n.Bool("audit_tns", &c->audit_tns));
  RETURN_IF_ERROR(n.String("audit_file", &c->audit_file));
  RETURN_IF_ERROR(n.Choice<AuditFailurePolicy>(
      "audit_on_failure",
      {{"refuse", AuditFailurePolicy::kRefuse}, {"continue", AuditFailurePolicy::kContinue}},
      &c->audit_on_failure, "must be refuse or continue"));
  return n.Finish();
}

}  // namespace

namespace {

// CheckSipSigning refuses SIP signing choices that would refuse every INVITE they apply to: a
// SIP client's signing profile (its rule's sip_profile, else listen.sip.profile, else the default
// profile) that its rule does not allow, and a default attestation level (sip_default_attest,
// else listen.sip.default_attest) that profile may not sign. Profile names exist (checked first).
absl::Status CheckSipSigning(const Config& c) {
  if (!c.sip.has_value()) return absl::OkStatus();
  auto profile = [&](const std::string& name) -> const ProfileConfig& {
    for (const ProfileConfig& p : c.profiles) {
      if (name.empty() ? p.is_default : p.name == name) return p;
    }
    return c.profiles.front();  // unreachable: names are checked and one profile is default
  };
  auto allows = [](const std::vector<std::string>& list, const std::string& v) {
    return std::any_of(list.begin(), list.end(),
                       [&](const std::string& s) { return s == "*" || s == v; });
  };
  auto check = [&](const std::string& where, const ProfileConfig& p, const std::string& attest,
                   const std::string& attest_key) {
    if (attest.empty() || allows(p.attest, attest)) return absl::OkStatus();
    return absl::InvalidArgumentError(absl::StrCat(
        where, ": ", attest_key, " ", attest, " is not a level profile \"", p.name,
        "\" may sign (its attest: ", absl::StrJoin(p.attest, ", "),
        "): every INVITE without an attestation header would be refused"));
  };
  if (c.clients.empty()) {
    return check("listen.sip", profile(c.sip->profile), c.sip->default_attest, "default_attest");
  }
  for (size_t i = 0; i < c.clients.size(); ++i) {
    const ClientRule& r = c.clients[i];
    if (r.sources.empty() || !allows(r.methods, "Sign")) continue;  // not a SIP signer
    const std::string where = absl::StrCat("clients[", i, "]");
    const ProfileConfig& p = profile(r.sip_profile.empty() ? c.sip->profile : r.sip_profile);
    if (!allows(r.profiles, p.name)) {
      return absl::InvalidArgumentError(absl::StrCat(
          where, ": its INVITEs are signed with profile \"", p.name, "\" (",
          r.sip_profile.empty() ? "listen.sip.profile, or the default profile" : "sip_profile",
          "), which its profiles do not allow: every one would be refused 403"));
    }
    const bool own = !r.sip_default_attest.empty();
    RETURN_IF_ERROR(check(where, p, own ? r.sip_default_attest : c.sip->default_attest,
                          own ? "sip_default_attest" : "listen.sip.default_attest"));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<Config> ParseConfig(const std::string& yaml, const std::string& origin) {
  YAML::Node doc;
  try {
    doc = YAML::Load(yaml);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(absl::StrCat(origin, ": not valid YAML: line ",
                                                   e.mark.line + 1, ": ", e.msg));
  }
  Config c;
  auto with_origin = [&](absl::Status s) {
    return absl::Status(s.code(), WithLine(doc, origin, ToStd(s.message())));
  };
  try {
    Node root(doc, "");
    if (!doc.IsMap()) return with_origin(absl::InvalidArgumentError("the file must be a YAML mapping"));
    absl::Status s = ReadListen(root, &c);
    if (s.ok()) s = ReadClients(root, &c);
    if (s.ok()) s = ReadPkcs11(root, &c);
    if (s.ok()) s = ReadProfiles(root, &c);
    if (s.ok()) s = ReadVerifier(root, &c);
    // Each profile's x5u under the same policy as this daemon's own fetcher (CE-12).
    for (size_t i = 0; s.ok() && i < c.profiles.size(); ++i) {
      absl::Status x5u = stir::ValidateX5uForSigning(c.profiles[i].x5u, c.verifier.x5u_policy);
      if (!x5u.ok()) s = Node::Error(absl::StrCat("profiles[", i, "].x5u"), ToStd(x5u.message()));
    }
    if (s.ok()) s = ReadLogging(root, &c);
    if (s.ok()) s = root.Duration("max_iat_skew", &c.max_iat_skew);
    if (s.ok()) s = root.Number<size_t>("max_request_bytes", &c.max_request_bytes, 1024, 16 << 20);
    if (s.ok()) s = root.Duration("drain_grace", &c.drain_grace);
    if (s.ok()) s = root.Duration("certificate_check_interval", &c.certificate_check_interval);
    if (s.ok()) s = root.Finish();
    if (!s.ok()) return with_origin(s);
  } catch (const YAML::Exception& e) {
    return with_origin(absl::InvalidArgumentError(absl::StrCat("line ", e.mark.line + 1, ": ", e.msg)));
  }
  if (!c.tls.has_value() && !c.allow_insecure) {
    return with_origin(absl::InvalidArgumentError(
        "listen.tls is required for the API listener; for a lab without TLS say "
        "listen.allow_insecure: true"));
  }
  if (c.rest.has_value() && c.rest->EffectiveTls(c.tls) == nullptr && !c.rest->allow_insecure) {
    return with_origin(absl::InvalidArgumentError(
        "listen.rest.tls (or listen.tls) is required for the REST listener; for a lab without "
        "TLS say listen.rest.allow_insecure: true"));
  }
  if (c.rest.has_value() && !c.clients.empty()) {
    const TlsConfig* rest_tls = c.rest->EffectiveTls(c.tls);
    bool only_wildcard = true;
    for (const auto& r : c.clients) only_wildcard &= r.identity == "*";
    if (rest_tls != nullptr && rest_tls->client_ca_file.empty() && !only_wildcard) {
      return with_origin(absl::InvalidArgumentError(
          "clients name identities, which come from client certificates: set "
          "client_ca_file in the REST listener's TLS (listen.rest.tls, or listen.tls)"));
    }
  }
  if (!c.clients.empty() && c.tls.has_value() && c.tls->client_ca_file.empty()) {
    bool only_wildcard = true;
    // Rules with sources name SIP clients by address, not by certificate.
    for (const auto& r : c.clients) only_wildcard &= r.identity == "*" || !r.sources.empty();
    if (!only_wildcard) {
      return with_origin(absl::InvalidArgumentError(
          "clients name identities, which come from client certificates: set "
          "listen.tls.client_ca_file (mTLS)"));
    }
  }
  auto no_profile = [&](const std::string& name) {
    return !name.empty() && std::none_of(c.profiles.begin(), c.profiles.end(),
                                         [&](const ProfileConfig& p) { return p.name == name; });
  };
  if (c.sip.has_value() && no_profile(c.sip->profile)) {
    return with_origin(absl::InvalidArgumentError(absl::StrCat(
        "listen.sip.profile names profile \"", c.sip->profile, "\", which is not in profiles")));
  }
  for (size_t i = 0; i < c.clients.size(); ++i) {
    if (no_profile(c.clients[i].sip_profile)) {
      return with_origin(absl::InvalidArgumentError(
          absl::StrCat("clients[", i, "].sip_profile names profile \"", c.clients[i].sip_profile,
                       "\", which is not in profiles")));
    }
  }
  if (absl::Status st = CheckSipSigning(c); !st.ok()) return with_origin(st);
  return c;
}

stir::VerifierSettings VerifierSettingsFrom(const VerifierConfig& v) {
  stir::VerifierSettings s;
  s.x5u_policy = v.x5u_policy;  // the signing profiles' x5u passed the same policy
  s.validator.ca_file = v.ca_file;
  s.validator.ca_dir = v.ca_dir;
  s.validator.anchors_may_be_empty = !v.ca_list_url.empty();  // until the first list
  s.validator.crl_files = v.crl_files;
  s.follow_crl_distribution_points = v.crl_distribution_points;
  s.crl.on_unavailable = v.crl_unavailable;
  s.crl.max_entries = v.crl_cache_max_entries;
  s.crl.retry_after = v.crl_retry_after;
  s.fetcher.max_crl_bytes = v.crl_max_bytes;
  s.validator.strictness = v.policy;
  s.fetcher.connect_timeout = v.connect_timeout;
  s.fetcher.total_timeout = v.fetch_timeout;
  s.fetcher.max_body_bytes = v.max_certificate_bytes;
  s.fetcher.tls_ca_file = v.tls_ca_file;
  s.fetcher.max_in_flight = v.fetch_max_in_flight;
  s.fetcher.max_per_host = v.fetch_max_per_host;
  s.fetcher.max_queued = v.fetch_max_queued;
  s.cache.max_entries = v.cache_max_entries;
  s.cache.max_bytes = v.cache_max_bytes;
  s.cache.default_ttl = v.cache_default_ttl;
  s.cache.max_ttl = v.cache_max_ttl;
  s.cache.negative_ttl = v.cache_negative_ttl;
  s.verifier.iat_window = v.iat_window;
  s.verifier.date_window = v.iat_window;
  s.verifier.require_low_s = v.require_low_s;
  return s;
}

namespace {

// FileProblem: "" when `path` is a readable regular file (a directory when `directory`), else why.
std::string FileProblem(const std::string& path, bool directory = false) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return strerror(errno);
  if (directory ? !S_ISDIR(st.st_mode) : !S_ISREG(st.st_mode)) {
    return directory ? "not a directory" : "not a regular file";
  }
  if (::access(path.c_str(), R_OK) != 0) return strerror(errno);
  return "";
}

}  // namespace

std::vector<std::string> CheckReferencedFiles(const Config& config) {
  std::vector<std::string> problems;
  auto file = [&](const std::string& key, const std::string& path, bool directory = false) {
    if (path.empty()) return;
    if (std::string why = FileProblem(path, directory); !why.empty()) {
      problems.push_back(absl::StrCat(key, ": ", path, ": ", why));
    }
  };
  auto secret = [&](const std::string& key, const std::optional<hsm::PinSource>& source) {
    if (!source.has_value() || !absl::StartsWith(source->Describe(), "file:")) return;
    absl::StatusOr<hsm::SecretString> read = source->Read();  // wiped when it goes
    if (!read.ok()) problems.push_back(absl::StrCat(key, ": ", read.status().message()));
  };
  if (config.tls.has_value()) {
    file("listen.tls.cert_file", config.tls->cert_file);
    file("listen.tls.key_file", config.tls->key_file);
    file("listen.tls.client_ca_file", config.tls->client_ca_file);
  }
  if (config.rest.has_value() && config.rest->tls.has_value()) {
    file("listen.rest.tls.cert_file", config.rest->tls->cert_file);
    file("listen.rest.tls.key_file", config.rest->tls->key_file);
    file("listen.rest.tls.client_ca_file", config.rest->tls->client_ca_file);
  }
  if (config.pkcs11.has_value()) {
    file("pkcs11.module", config.pkcs11->module);
    secret("pkcs11.pin_source", config.pkcs11->pin_source);
  }
  for (size_t i = 0; i < config.profiles.size(); ++i) {
    const ProfileConfig& p = config.profiles[i];
    const std::string at = absl::StrCat("profiles[", i, "].");
    const std::string which = absl::StrCat(" (profile ", p.name, ")");
    if (absl::StartsWith(p.key, "file:")) file(at + "key" + which, p.key.substr(5));
    secret(at + "key_passphrase_source" + which, p.key_passphrase_source);
    file(at + "certificate" + which, p.certificate_file);
  }
  if (config.verifier.enabled) {
    file("verifier.ca_file", config.verifier.ca_file);
    file("verifier.ca_dir", config.verifier.ca_dir, /*directory=*/true);
    for (size_t i = 0; i < config.verifier.crl_files.size(); ++i) {
      file(absl::StrCat("verifier.crl_files[", i, "]"), config.verifier.crl_files[i]);
    }
    file("verifier.tls_ca_file", config.verifier.tls_ca_file);
  }
  if (const std::string& audit = config.audit_file; !audit.empty()) {
    if (::access(audit.c_str(), F_OK) == 0) {
      if (::access(audit.c_str(), W_OK) != 0) {
        problems.push_back(
            absl::StrCat("logging.audit_file: ", audit, ": cannot append: ", strerror(errno)));
      }
    } else {
      const std::string dir = std::filesystem::path(audit).parent_path().string();
      if (::access(dir.empty() ? "." : dir.c_str(), W_OK | X_OK) != 0) {
        problems.push_back(absl::StrCat("logging.audit_file: ", audit,
                                        ": cannot be created in ", dir, ": ", strerror(errno)));
      }
    }
  }
  return problems;
}

std::vector<std::string> ConfigWarnings(const Config& config) {
  std::set<std::string> profiles;
  for (const ProfileConfig& p : config.profiles) profiles.insert(p.name);
  std::vector<std::string> warnings;
  for (size_t i = 0; i < config.clients.size(); ++i) {
    for (const std::string& name : config.clients[i].profiles) {
      if (name == "*" || profiles.count(name) != 0) continue;
      warnings.push_back(absl::StrCat("clients[", i, "].profiles names profile \"", name,
                                      "\", which does not exist (profiles: ",
                                      absl::StrJoin(profiles, ", "), ")"));
    }
  }
  return warnings;
}

std::vector<std::string> LocateInConfigFile(const std::string& path,
                                            const std::vector<std::string>& messages) {
  YAML::Node doc;
  try {
    doc = YAML::LoadFile(path);
  } catch (const YAML::Exception&) {
    // Not readable as YAML now: the messages with the file name alone.
  }
  std::vector<std::string> out;
  out.reserve(messages.size());
  for (const std::string& m : messages) out.push_back(WithLine(doc, path, m));
  return out;
}

absl::StatusOr<Config> LoadConfig(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot open configuration file ", path));
  std::stringstream ss;
  ss << in.rdbuf();
  if (ss.str().size() > (1 << 20)) {
    return absl::InvalidArgumentError(absl::StrCat(path, " is larger than 1 MiB"));
  }
  return ParseConfig(ss.str(), path);
}

}  // namespace shaken::daemon
