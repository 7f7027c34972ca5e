// daemon_fixture.h: a real shakend in process, on loopback, for integration tests and load
// generators: a SoftHSM2 token holding the SP key, a test STI PKI whose SP certificates are
// published over a real HTTPS server on 127.0.0.1, mTLS with test client certificates, the
// health and metrics listeners.
//
// Profiles: "token" (the key in SoftHSM2; default; attest A, B, C) and "file" (a PEM key;
// attest C only, SPC 123A). Clients: "sbc1.test" may do everything; "verify-only.test" may only
// Verify; "file-only.test" may Sign with profile "file" only; "rogue.test" has a certificate from
// a CA the server does not trust.
#ifndef SHAKEN_TESTS_DAEMON_FIXTURE_H_
#define SHAKEN_TESTS_DAEMON_FIXTURE_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "daemon/config.h"
#include "daemon/server.h"
#include "shaken/client.h"
#include "tests/testing/https_server.h"
#include "tests/testing/test_pki.h"

namespace shaken::testing {

struct DaemonEnvOptions {
  int pool_size = 2;
  bool health_listener = true;
  bool metrics_listener = true;
  // Listener ports on 127.0.0.1; 0: any free port (for the shakend binary, pick one:
  // FreeLoopbackPort).
  int api_port = 0;
  int health_port = 0;
  int metrics_port = 0;
  // true: the API listener without TLS (allow_insecure) and without the per-client rules, which
  // name certificate identities.
  bool plaintext = false;
  std::string extra_yaml;  // appended to the generated configuration
  std::string listen_extra_yaml;  // lines added to the listen section ("  reflection: off\n")
  std::string clients_extra_yaml;  // rules added to the clients list ("  - {identity: ...}\n")
  // The PKCS#11 module; empty: SoftHSM2's. E.g. the fault-injecting module (fault_pkcs11.h).
  std::string pkcs11_module;
  std::string pkcs11_extra_yaml;    // lines added to the pkcs11 section ("  queue_limit: 4\n")
  std::string verifier_extra_yaml;  // lines added to the verifier section
  absl::Duration drain_grace = absl::Seconds(5);
  // false: write the files and configuration but start no Daemon (e.g. to run the shakend binary).
  bool start_daemon = true;
  // true: a third profile, "delegate" (a PEM key; attest A, B, C), whose certificate is a
  // delegate certificate (TNAuthList 12155550120-12155550129, 12155551000) issued by an SP-CA
  // (scope 12155550100-12155550149, 12155551000) under the STI-CA (RFC 9060), at delegate_x5u().
  bool delegate_profile = false;
};

// DaemonEnv owns the files, servers and the Daemon. Not thread-safe to create; the Daemon and
// the clients it makes are.
class DaemonEnv {
 public:
  static absl::StatusOr<std::unique_ptr<DaemonEnv>> Create(DaemonEnvOptions options = {});
  ~DaemonEnv();

  daemon::Daemon& daemon() { return *daemon_; }
  const std::string& config_yaml() const { return config_yaml_; }
  const DaemonEnvOptions& options() const { return options_; }
  // WriteConfig writes another configuration for the same token key, file key, PKI and x5u
  // server, generated from `options` (other ports, another PKCS#11 module, ...), to dir()/`name`,
  // checks that it parses, and returns its path.
  absl::StatusOr<std::string> WriteConfig(const std::string& name,
                                          const DaemonEnvOptions& options) const;
  const std::string& config_path() const { return config_path_; }
  std::string ApiTarget() const;  // 127.0.0.1:<port>

  // ClientOptions for a client named `name` ("sbc1.test", ...), mTLS, talking to 127.0.0.1 with
  // the server name checked as "localhost". name "" gives no client certificate.
  client::ClientOptions ClientOptionsFor(const std::string& name) const;
  absl::StatusOr<std::unique_ptr<client::Client>> NewClient(const std::string& name) const;
  // File paths of a client's certificate and key.
  std::string ClientCertFile(const std::string& name) const;
  std::string ClientKeyFile(const std::string& name) const;
  std::string TlsCaFile() const;

  const std::string& token_key_uri() const { return token_key_uri_; }
  const std::string& token_x5u() const { return token_x5u_; }
  const std::string& file_x5u() const { return file_x5u_; }
  const std::string& delegate_x5u() const { return delegate_x5u_; }
  HttpsServer& x5u_server() { return *x5u_server_; }
  TestPki& pki() { return *pki_; }
  const std::string& dir() const { return dir_->path(); }
  // Files of the "file" profile: its PEM key and its certificate chain.
  std::string FileKeyPath() const { return dir_->path() + "/file.key"; }
  std::string FileChainPath() const { return dir_->path() + "/file-chain.pem"; }
  std::string StiRootPath() const { return dir_->path() + "/sti-root.pem"; }

  // Restart stops the daemon (if running) and starts a new one from the same configuration.
  absl::Status Restart();
  // RestartWith rewrites the configuration from `options` (same files, keys and servers: e.g.
  // verifier_extra_yaml naming a URL of x5u_server()) and restarts the daemon with it.
  absl::Status RestartWith(const DaemonEnvOptions& options);
  // StopDaemon shuts the daemon down and destroys it.
  void StopDaemon();

 private:
  DaemonEnv() = default;
  std::string ConfigYaml(const DaemonEnvOptions& options) const;
  std::unique_ptr<TempDir> dir_;
  std::unique_ptr<TestPki> pki_;
  std::unique_ptr<HttpsServer> x5u_server_;
  std::string token_key_uri_, token_x5u_, file_x5u_, delegate_x5u_;
  DaemonEnvOptions options_;
  std::string config_yaml_, config_path_;
  daemon::Config config_;
  std::unique_ptr<daemon::Daemon> daemon_;
};

// HealthStatus asks grpc.health.v1.Health/Check on `target` (plaintext) for `service` and returns
// the ServingStatus number (1 SERVING, 2 NOT_SERVING). The health proto is not packaged by
// Debian, so the two one-field messages are encoded by hand.
absl::StatusOr<int> HealthStatus(const std::string& target, const std::string& service);

}  // namespace shaken::testing

#endif  // SHAKEN_TESTS_DAEMON_FIXTURE_H_
