// reload.cc: Daemon::Reload, a running shakend re-reading its configuration (SIGHUP): what can
// change in place is applied atomically, the rest is named as needing a restart.
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "daemon/log.h"
#include "daemon/server_internal.h"
#include "stir/absl_compat.h"
#include "stir/status_macros.h"

namespace shaken::daemon {

using server_internal::BuildVerifier;
using server_internal::InForce;
using server_internal::OpenProfile;

namespace {

// RestartRequired names the sections of `next` that differ from `cur` and that a running daemon
// does not change: the listeners, the PKCS#11 module section, limits fixed at start, the log
// format and the audit destination.
std::vector<std::string> RestartRequired(const Config& cur, const Config& next) {
  std::vector<std::string> keys;
  auto check = [&](bool changed, const char* key) {
    if (changed) keys.push_back(key);
  };
  check(cur.api_listen != next.api_listen || cur.tls != next.tls ||
            cur.allow_insecure != next.allow_insecure || cur.reflection != next.reflection ||
            cur.max_connection_age != next.max_connection_age ||
            cur.max_connection_age_grace != next.max_connection_age_grace ||
            cur.health_listen != next.health_listen || cur.metrics_listen != next.metrics_listen ||
            cur.rest != next.rest || cur.sip != next.sip,
        "listen");
  check(cur.verifier.ca_list_url != next.verifier.ca_list_url ||
            cur.verifier.ca_list_refresh != next.verifier.ca_list_refresh ||
            cur.verifier.ca_list_retry != next.verifier.ca_list_retry ||
            cur.verifier.ca_list_max_bytes != next.verifier.ca_list_max_bytes ||
            cur.verifier.ca_list_cache_file != next.verifier.ca_list_cache_file,
        "verifier.ca_list_* (the CA list refresher)");
  check(cur.pkcs11 != next.pkcs11, "pkcs11");
  check(cur.max_request_bytes != next.max_request_bytes, "max_request_bytes");
  check(cur.drain_grace != next.drain_grace, "drain_grace");
  check(cur.certificate_check_interval != next.certificate_check_interval,
        "certificate_check_interval");
  check(cur.log_format != next.log_format || cur.audit_file != next.audit_file ||
            cur.audit_on_failure != next.audit_on_failure,
        "logging (format, audit_file, audit_on_failure)");
  return keys;
}

}  // namespace

absl::StatusOr<std::vector<std::string>> Daemon::ApplyConfig(const Config& file) {
  State& s = *state_;
  Config& cur = s.config;
  // What needs a restart stays as it is; profiles opened now use the pkcs11 section in force.
  Config next = file;
  next.pkcs11 = cur.pkcs11;

  // First everything that can fail, into new objects; nothing is in force yet.
  const std::shared_ptr<const ProfileSet> old_set = s.core->profiles();
  absl::flat_hash_map<std::string, std::shared_ptr<SigningProfile>> old_by_name;
  for (const auto& p : old_set->profiles) old_by_name[p->name()] = p;
  // A profile is kept (not reopened) when nothing it was opened with changed.
  const bool signing_policy_same = cur.max_iat_skew == next.max_iat_skew &&
                                   cur.verifier.x5u_policy == next.verifier.x5u_policy;
  std::vector<std::shared_ptr<SigningProfile>> profiles;
  std::vector<std::string> added, changed, removed;
  for (const ProfileConfig& p : next.profiles) {
    auto old = old_by_name.find(p.name);
    if (old != old_by_name.end() && old->second->config() == p && signing_policy_same) {
      profiles.push_back(old->second);
      continue;
    }
    ASSIGN_OR_RETURN(std::shared_ptr<SigningProfile> opened,
                     OpenProfile(p, next, s.clock, s.metrics.get()));
    profiles.push_back(std::move(opened));
    (old != old_by_name.end() ? changed : added).push_back(p.name);
  }
  for (const auto& [name, p] : old_by_name) {
    if (std::none_of(next.profiles.begin(), next.profiles.end(),
                     [&](const ProfileConfig& c) { return c.name == name; })) {
      removed.push_back(name);
    }
  }
  const bool profiles_changed = !added.empty() || !changed.empty() || !removed.empty() ||
                                cur.profiles != next.profiles;  // e.g. order or default
  const bool verifier_changed = cur.verifier != next.verifier;
  std::shared_ptr<stir::VerificationStack> stack;
  if (verifier_changed && next.verifier.enabled) {
    ASSIGN_OR_RETURN(std::unique_ptr<stir::VerificationStack> built, BuildVerifier(next, &s));
    stack = std::move(built);
  }

  // Then all of it in force at once. Calls in progress finish with what they started with.
  std::vector<std::string> applied;
  if (next.clients != cur.clients) {
    s.authorizer->Replace(next.clients);
    applied.push_back("clients");
  }
  if (next.log_level != cur.log_level) {
    SetLogLevel(next.log_level);
    applied.push_back("logging.level");
  }
  if (next.audit_tns != cur.audit_tns) {
    s.core->SetAuditTns(next.audit_tns);
    applied.push_back("logging.audit_tns");
  }
  if (profiles_changed) {
    s.core->ReplaceProfiles(ProfileSet::Make(std::move(profiles), s.metrics.get()));
    absl::MutexLock lock(&s.mu);
    s.retired_profiles.push_back(old_set);
    std::string what = "profiles";
    std::vector<std::string> parts;
    if (!added.empty()) parts.push_back(absl::StrCat("added ", absl::StrJoin(added, " ")));
    if (!changed.empty()) parts.push_back(absl::StrCat("reopened ", absl::StrJoin(changed, " ")));
    if (!removed.empty()) parts.push_back(absl::StrCat("removed ", absl::StrJoin(removed, " ")));
    if (!parts.empty()) absl::StrAppend(&what, " (", absl::StrJoin(parts, "; "), ")");
    applied.push_back(what);
  }
  if (verifier_changed) {
    s.core->ReplaceVerifier(InForce(stack, next.verifier));
    absl::MutexLock lock(&s.mu);
    if (s.verification != nullptr) s.retired_verification.push_back(std::move(s.verification));
    s.verification = std::move(stack);
    applied.push_back("verifier");
  }
  if (verifier_changed && s.ca_list != nullptr) {
    // A list put in force while the new stack was being built reaches it too.
    absl::Status listed = s.ca_list->PutInForce([&s](const std::string& pem) {
      const std::shared_ptr<stir::VerificationStack> stack = s.Verification();
      return stack != nullptr ? stack->SetListedAnchors(pem) : absl::OkStatus();
    });
    if (!listed.ok()) LogError("reload_failed", {{"what", "CA list"}, {"error", ToStd(listed.message())}});
  }
  if (next.max_iat_skew != cur.max_iat_skew) {
    if (s.sip != nullptr) s.sip->SetMaxIatSkew(next.max_iat_skew);  // its 403 Stale Date
    applied.push_back("max_iat_skew");
  }
  // The configuration in force: the file, but for what waits for a restart.
  Config in_force = next;
  in_force.api_listen = cur.api_listen;
  in_force.verifier.ca_list_url = cur.verifier.ca_list_url;
  in_force.verifier.ca_list_refresh = cur.verifier.ca_list_refresh;
  in_force.verifier.ca_list_retry = cur.verifier.ca_list_retry;
  in_force.verifier.ca_list_max_bytes = cur.verifier.ca_list_max_bytes;
  in_force.verifier.ca_list_cache_file = cur.verifier.ca_list_cache_file;
  in_force.tls = cur.tls;
  in_force.allow_insecure = cur.allow_insecure;
  in_force.reflection = cur.reflection;
  in_force.max_connection_age = cur.max_connection_age;
  in_force.max_connection_age_grace = cur.max_connection_age_grace;
  in_force.health_listen = cur.health_listen;
  in_force.metrics_listen = cur.metrics_listen;
  in_force.rest = cur.rest;
  in_force.max_request_bytes = cur.max_request_bytes;
  in_force.drain_grace = cur.drain_grace;
  in_force.certificate_check_interval = cur.certificate_check_interval;
  in_force.log_format = cur.log_format;
  in_force.audit_file = cur.audit_file;
  in_force.audit_on_failure = cur.audit_on_failure;
  cur = std::move(in_force);
  return applied;
}

absl::Status Daemon::Reload(const Config& next) {
  const std::vector<std::string> restart = RestartRequired(state_->config, next);
  absl::StatusOr<std::vector<std::string>> applied = ApplyConfig(next);
  if (!applied.ok()) {
    LogError("reload_failed",
             {{"what", "configuration"},
              {"error", ToStd(applied.status().message())},
              {"detail", "everything stays as it was (files are still reloaded)"}});
  } else {
    LogInfo("configuration_reloaded",
            {{"applied", applied->empty() ? "nothing changed" : absl::StrJoin(*applied, ", ")},
             {"unchanged_until_restart", restart.empty() ? "none" : absl::StrJoin(restart, ", ")}});
    if (!restart.empty()) {
      LogWarn("restart_required",
              {{"settings", absl::StrJoin(restart, ", ")},
               {"detail", "these settings changed in the file but stay as they were until "
                          "shakend restarts"}});
    }
  }
  absl::Status files = ReloadFiles();
  return applied.ok() ? files : applied.status();
}

absl::Status Daemon::Reload() { return ReloadFiles(); }


absl::Status Daemon::ReloadFiles() {
  absl::Status result = ReopenAuditFile();
  if (!result.ok()) {
    LogError("reload_failed", {{"what", "audit file"}, {"error", std::string(result.message())}});
  }
  if (const auto verification = state_->Verification(); verification != nullptr) {
    absl::Status s = verification->ReloadTrust();
    if (!s.ok()) {
      LogError("reload_failed", {{"what", "trust anchors"}, {"error", std::string(s.message())}});
      result = s;
    }
  }
  for (const auto& p : state_->core->profiles()->profiles) {
    absl::Status s = p->ReloadCertificate();
    if (!s.ok()) {
      LogError("reload_failed", {{"what", "certificate"}, {"error", std::string(s.message())}});
      if (result.ok()) result = s;
    }
  }
  if (result.ok()) LogInfo("reloaded");
  return result;
}

}  // namespace shaken::daemon
