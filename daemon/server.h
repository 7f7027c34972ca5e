// server.h: Daemon, one running shakend: the API listener (TLS / mTLS), the plaintext health
// listener, the metrics endpoint, the signing profiles and the verifier. main() runs one; tests
// run one in process on loopback.
#ifndef SHAKEN_DAEMON_SERVER_H_
#define SHAKEN_DAEMON_SERVER_H_

#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/synchronization/notification.h"
#include "daemon/config.h"
#include "stir/clock.h"

namespace shaken::daemon {

class Daemon {
 public:
  // Start opens every profile (self-checked), builds the verifier, binds the listeners and
  // starts serving. Fails with a message naming what to fix (a profile, a file, an address).
  // `clock` (default: the system clock) must outlive the Daemon.
  static absl::StatusOr<std::unique_ptr<Daemon>> Start(const Config& config,
                                                       const stir::Clock* clock = nullptr);
  ~Daemon();

  // Ports actually bound (useful with port 0). 0 when that listener is disabled.
  int api_port() const { return api_port_; }
  int health_port() const { return health_port_; }
  int metrics_port() const { return metrics_port_; }
  int rest_port() const { return rest_port_; }  // listen.rest
  int sip_udp_port() const { return sip_udp_port_; }  // listen.sip
  int sip_tcp_port() const { return sip_tcp_port_; }

  // Shutdown: health NOT_SERVING at once, refuse new calls, let in-flight calls finish for at
  // most drain_grace, then cancel what is left and stop. Idempotent. (SIGTERM)
  void Shutdown();
  // Reload reopens the audit file by its name (log rotation) and re-reads the trust anchors, CRLs
  // and profile certificates without dropping connections. On error what was in force stays.
  absl::Status Reload();
  // Reload(next) is SIGHUP with the configuration file read again and valid: it applies, all at
  // once, what can change in a running daemon: client rules, profiles (added, changed: reopened,
  // removed), the verifier section, max_iat_skew, logging.level and logging.audit_tns. Calls in
  // progress finish with the rules, profile and verifier they started with. A profile that cannot
  // be opened or a verifier that cannot be built fails the reload (reload_failed) and nothing
  // changes. Sections that need a restart (listen, pkcs11, max_request_bytes, drain_grace, the
  // log format and audit destination) are logged as restart_required and stay as they were.
  // Then Reload(). An invalid file never gets here: main keeps everything as it was.
  absl::Status Reload(const Config& next);
  // Wait blocks until Shutdown has completed.
  void Wait();

  bool serving() const;

  struct State;  // implementation

 private:
  Daemon() = default;
  // MonitorHealth publishes readiness on the health services and frees what Reap can; returns
  // what it published (serving()).
  bool MonitorHealth();
  // MoveClientsAway sends GOAWAY on every API connection when this replica turns NOT_SERVING
  // because a profile is down (token unreachable, certificate expired), so that clients that do not check health (pick_first behind a
  // Service, an L4 balancer) reconnect at once, and land on a ready replica, instead of sending
  // their next calls into this one. gRPC 1.51 has no call to send GOAWAY by itself; a server's
  // Shutdown sends it. So a new API server starts on the same port first (gRPC listens with
  // SO_REUSEPORT), takes over the listening socket's role, and the old one shuts down: its calls
  // in progress finish (until drain_grace), its connections get GOAWAY. Monitor thread only; at
  // most once per 10 s.
  void MoveClientsAway();
  // ApplyConfig puts in force what of `next` a running daemon can change, all at once, and
  // returns what it changed; on error (a new profile that cannot be opened, a verifier that
  // cannot be built) nothing changes.
  absl::StatusOr<std::vector<std::string>> ApplyConfig(const Config& next);
  // CheckCertificateFiles reads again the profile certificate files that changed (every
  // certificate_check_interval, on the monitor thread).
  void CheckCertificateFiles();
  // Reap frees replaced profile sets and verification stacks that no call uses any more.
  void Reap();
  // ReloadFiles: the audit file, trust anchors, CRLs and profile certificates.
  absl::Status ReloadFiles();

  std::unique_ptr<State> state_;
  int api_port_ = 0;
  int health_port_ = 0;
  int metrics_port_ = 0;
  int rest_port_ = 0;
  int sip_udp_port_ = 0;
  int sip_tcp_port_ = 0;
  std::atomic<bool> draining_{false};
  absl::Notification stop_;
  absl::Notification stopped_;
  std::thread monitor_;
};

}  // namespace shaken::daemon

#endif  // SHAKEN_DAEMON_SERVER_H_
