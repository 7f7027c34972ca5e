// shakend: the STIR/SHAKEN signing appliance.
//
//   shakend --config /etc/shakend/shakend.yaml
//   shakend --check-config /etc/shakend/shakend.yaml     (exit 0 valid, 1 not)
//
// Exit codes: 0 stopped after a drain (or --check-config: valid, --help, --version); 1 invalid
// configuration or start-up failure; 2 usage error; 3 the token refused the PIN (wrong, locked or
// expired): not retried, because HSMs lock or zeroise after a few wrong logins, and the systemd
// unit's RestartPreventExitStatus=3 keeps systemd from retrying either.
//
// Signals: SIGTERM / SIGINT drain and stop; SIGHUP reads the configuration file again (an invalid
// one changes nothing; Daemon::Reload says what changes in place and what waits for a restart),
// reopens the audit file and reloads trust anchors and certificates. Under systemd
// (Type=notify) it reports READY=1 once serving,
// RELOADING=1 / READY=1 around SIGHUP, STOPPING=1 on drain, STATUS= lines, and WATCHDOG=1 when the
// unit sets WatchdogSec=.
#include <signal.h>
#include <time.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <string>

#include <CLI/CLI.hpp>

#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/time.h"

#include "daemon/config.h"
#include "daemon/log.h"
#include "daemon/notify.h"
#include "daemon/server.h"
#include "hsm/module.h"

namespace {

constexpr int kExitPinRefused = 3;

int Run(int argc, char** argv) {
  CLI::App app{"shakend: HSM-backed STIR/SHAKEN signing and verification service (gRPC)"};
  std::string config_path;
  std::string check_path;
  app.add_option("-c,--config", config_path, "configuration file (YAML)");
  app.add_option("--check-config", check_path,
                 "validate a configuration file and exit: 0 valid, 1 not");
  bool syntax_only = false;
  app.add_flag("--syntax-only", syntax_only,
               "with --check-config: check the file alone, not the files it names (e.g. an "
               "example on another host)");
  app.set_version_flag("--version", "shakend " SHAKEN_VERSION);
  app.footer(
      "Examples:\n"
      "  shakend --config /etc/shakend/shakend.yaml\n"
      "  shakend --check-config /etc/shakend/shakend.yaml\n"
      "The PKCS#11 PIN comes from pkcs11.pin_source (a file or an environment variable),\n"
      "never from the command line.");
  try {
    app.parse(argc, argv);
  } catch (const CLI::Success& e) {  // --help, --version
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    (void)app.exit(e);  // prints what is wrong
    return 2;           // usage error, whatever CLI11's own code
  }

  if (!check_path.empty()) {
    absl::StatusOr<shaken::daemon::Config> c = shaken::daemon::LoadConfig(check_path);
    if (!c.ok()) {
      std::fprintf(stderr, "shakend: %s\n", std::string(c.status().message()).c_str());
      return 1;
    }
    if (!syntax_only) {
      const std::vector<std::string> problems = shaken::daemon::LocateInConfigFile(
          check_path, shaken::daemon::CheckReferencedFiles(*c));
      for (const std::string& p : problems) std::fprintf(stderr, "shakend: %s\n", p.c_str());
      if (!problems.empty()) return 1;
    }
    const std::vector<std::string> warnings =
        shaken::daemon::LocateInConfigFile(check_path, shaken::daemon::ConfigWarnings(*c));
    for (const std::string& w : warnings) std::fprintf(stderr, "shakend: warning: %s\n", w.c_str());
    std::printf("%s: configuration is valid (%zu profile(s), %zu warning(s))\n",
                check_path.c_str(), c->profiles.size(), warnings.size());
    return 0;
  }
  if (config_path.empty()) {
    std::fprintf(stderr, "shakend: --config FILE is required (see --help)\n");
    return 2;
  }
  absl::StatusOr<shaken::daemon::Config> config = shaken::daemon::LoadConfig(config_path);
  if (!config.ok()) {
    std::fprintf(stderr, "shakend: %s\n", std::string(config.status().message()).c_str());
    return 1;
  }
  absl::Status logging = shaken::daemon::InitLogging(
      config->log_format, config->log_level, config->audit_file, config->audit_on_failure);
  if (!logging.ok()) {
    std::fprintf(stderr, "shakend: %s\n", std::string(logging.message()).c_str());
    return 1;
  }

  shaken::daemon::RouteGrpcLogs();
  for (const std::string& w : shaken::daemon::ConfigWarnings(*config)) {
    shaken::daemon::LogWarn("config_warning", {{"warning", w}});
  }

  // Block the signals in every thread (gRPC's, the pools') and take them here with sigwait.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  // Debian's abseil is built without NDEBUG, which leaves absl::Mutex deadlock detection on: a
  // graph update on every lock, measurable on the signing path. The tests keep it on.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);

  absl::StatusOr<std::unique_ptr<shaken::daemon::Daemon>> daemon =
      shaken::daemon::Daemon::Start(*config);
  if (!daemon.ok()) {
    const bool pin_refused = shaken::hsm::IsPinRefused(daemon.status());
    shaken::daemon::LogError(pin_refused ? "pin_refused" : "start_failed",
                             {{"error", std::string(daemon.status().message())}});
    shaken::daemon::FlushLogs();
    return pin_refused ? kExitPinRefused : 1;
  }
  shaken::daemon::ServiceNotifier notifier;
  auto serving_status = [&](bool serving) {
    return serving ? absl::StrCat("serving ", config->profiles.size(), " profile(s)")
                   : std::string("NOT_SERVING: a profile cannot sign (its token is down or its "
                                 "certificate is outside its validity; see ListProfiles)");
  };
  bool serving = (*daemon)->serving();
  notifier.Ready(serving_status(serving));
  // Wake at least every second (and twice per watchdog interval) to ping the watchdog and follow
  // the serving state in STATUS=.
  const absl::Duration tick = std::min(absl::Seconds(1), notifier.watchdog_interval() / 2);
  for (;;) {
    notifier.Watchdog();
    const timespec wait = absl::ToTimespec(tick);
    const int sig = sigtimedwait(&signals, nullptr, &wait);
    if (sig < 0) {
      if (const bool now = (*daemon)->serving(); now != serving) {
        serving = now;
        notifier.Status(serving_status(serving));
      }
      continue;
    }
    if (sig == SIGHUP) {
      shaken::daemon::LogInfo("signal", {{"signal", "SIGHUP"}});
      notifier.Reloading();
      // The whole file again: an invalid one changes nothing but the audit file reopen.
      absl::StatusOr<shaken::daemon::Config> next = shaken::daemon::LoadConfig(config_path);
      absl::Status reloaded = next.status();
      if (!next.ok()) {
        shaken::daemon::LogError("reload_failed", {{"what", "configuration"},
                                                   {"error", std::string(next.status().message())},
                                                   {"detail", "everything stays as it was"}});
        // Log rotation does not wait for a valid file: a rotated audit file is reopened anyway.
        if (absl::Status a = shaken::daemon::ReopenAuditFile(); !a.ok()) {
          shaken::daemon::LogError("reload_failed",
                                   {{"what", "audit file"}, {"error", std::string(a.message())}});
        }
      } else {
        for (const std::string& w : shaken::daemon::ConfigWarnings(*next)) {
          shaken::daemon::LogWarn("config_warning", {{"warning", w}});
        }
        reloaded = (*daemon)->Reload(*next);
      }
      notifier.Ready(reloaded.ok() ? absl::StrCat("reloaded; ", serving_status(serving))
                                   : absl::StrCat("reload failed (", reloaded.message(),
                                                  "); ", serving_status(serving)));
      continue;
    }
    shaken::daemon::LogInfo("signal", {{"signal", sig == SIGTERM ? "SIGTERM" : "SIGINT"}});
    notifier.Stopping(absl::StrCat("draining (at most ", absl::FormatDuration(config->drain_grace),
                                   ")"));
    (*daemon)->Shutdown();
    break;
  }
  daemon->reset();
  shaken::daemon::FlushLogs();
  // The PKCS#11 module is not finalized at exit when its quirks say so (SoftHSM2): leave now,
  // without running static destructors that might reach into it.
  std::fflush(nullptr);
  _exit(0);
}

}  // namespace

int main(int argc, char** argv) { return Run(argc, argv); }
