// config.h: shakend's configuration file (YAML, read with yaml-cpp). Every key is known: an
// unknown or misspelt key is an error naming its path, so a typo never silently changes policy.
// See deploy/shakend.example.yaml for a commented example of every key.
#ifndef SHAKEN_DAEMON_CONFIG_H_
#define SHAKEN_DAEMON_CONFIG_H_

#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "daemon/log.h"
#include "hsm/key_pool.h"
#include "hsm/module.h"
#include "hsm/secret.h"
#include "stir/cert_validator.h"
#include "stir/crl_checker.h"
#include "stir/verification_stack.h"
#include "stir/x5u_fetcher.h"

namespace shaken::daemon {

struct TlsConfig {
  std::string cert_file;       // server certificate chain (PEM)
  std::string key_file;        // server private key (PEM)
  std::string client_ca_file;  // CAs for client certificates; set => mTLS

  friend bool operator==(const TlsConfig&, const TlsConfig&) = default;
};

// SipRole is what the SIP redirect server does with an INVITE (docs/sip-redirect.md): kAuto
// verifies one that carries an Identity header and signs one that carries none.
enum class SipRole { kAuto, kSign, kVerify };

struct ClientRule {
  // identity: a client certificate's subjectAltName DNS/URI name or subject CN; "*" matches
  // any authenticated client (and, on a listener without mTLS, any client). A rule with
  // `sources` names a SIP client instead: certificates never match it.
  std::string identity;
  std::vector<std::string> methods;   // "Sign", "SignStream", "Verify", "ListProfiles" or "*"
  std::vector<std::string> profiles;  // profile names or "*"
  // SIP redirect server (listen.sip): the source addresses of this client's requests; a SIP
  // request from outside every rule's sources is answered 403 (when any rule is configured).
  std::vector<stir::IpCidr> sources;
  // SIP: what this client's INVITEs get; unset: listen.sip.role.
  std::optional<SipRole> sip_role;
  // SIP: the profile this client's INVITEs are signed with, and the attestation level of one
  // that carries none (A, B or C); empty: listen.sip.profile / listen.sip.default_attest. One
  // shakend so serves SBCs of several service providers, or of different trust.
  std::string sip_profile;
  std::string sip_default_attest;

  friend bool operator==(const ClientRule&, const ClientRule&) = default;
};

// RestListenConfig is listen.rest: the ATIS-1000082 REST front end (docs/rest-api.md).
struct RestListenConfig {
  std::string address;    // host:port
  // Prefix of the paths: "" serves /stir/v1/signing; Oracle's SBC calls
  // /StirShakenWeb/resources/v1/stir/v1/signing. Starts with '/', no trailing '/'.
  std::string base_path;
  // TLS of this listener; unset: listen.tls (the same files and client CA as the API).
  std::optional<TlsConfig> tls;
  bool allow_insecure = false;  // plain HTTP: labs only, must be said explicitly
  size_t max_body_bytes = 64 * 1024;
  int max_connections = 1024;
  absl::Duration idle_timeout = absl::Seconds(60);
  // The deadline of each request in the core (signing queue, x5u fetches).
  absl::Duration request_timeout = absl::Seconds(5);
  int threads = 2;  // HTTP event threads

  // EffectiveTls: the TLS files this listener uses, or nullptr for plain HTTP.
  const TlsConfig* EffectiveTls(const std::optional<TlsConfig>& api_tls) const {
    if (tls.has_value()) return &*tls;
    if (allow_insecure || !api_tls.has_value()) return nullptr;
    return &*api_tls;
  }

  friend bool operator==(const RestListenConfig&, const RestListenConfig&) = default;
};

struct Pkcs11Config {
  std::string module;          // path of the PKCS#11 module (.so)
  // pin_source: where the user PIN is (hsm::PinSource::Parse: "file:/path", "env:NAME" or an
  // absolute path); always set once parsed.
  std::optional<hsm::PinSource> pin_source;
  // pkcs11.quirks, a list of "no-finalize", "keep-sessions-open": each turns one of
  // hsm::ModuleQuirks' defaults off. Unset (no quirks key): chosen by hsm::Module::Load from the
  // module's C_GetInfo and file name.
  std::optional<hsm::ModuleQuirks> quirks;
  int pool_size = 2;           // sessions per signing key (Little's law; hsm/README.md)
  int open_at_start = 1;
  hsm::KeyCopy key_copy = hsm::KeyCopy::kIfAllowed;  // never | if-allowed | required
  absl::Duration max_wait = absl::Seconds(2);
  // Signatures that may wait for a session worker per profile; 0: max(256, 16 x pool_size).
  int queue_limit = 0;
  absl::Duration open_interval = absl::Milliseconds(5);
  absl::Duration backoff_initial = absl::Milliseconds(100);
  absl::Duration backoff_max = absl::Seconds(10);
  // require_token_at_start: true refuses to start while a profile's token cannot be reached.
  // false (default): shakend starts NOT_SERVING (signing: UNAVAILABLE naming the profile) and
  // opens the key in the background (backoff_initial doubling up to backoff_max, at least 1 s),
  // so an HSM outage does not put every replica into a restart loop. A PIN the token refuses is
  // never retried either way.
  bool require_token_at_start = false;

  friend bool operator==(const Pkcs11Config&, const Pkcs11Config&) = default;
};

struct ProfileConfig {
  std::string name;
  std::string key;               // "pkcs11:..." (RFC 7512) or "file:/path/key.pem"
  // For an encrypted PEM key file: where its passphrase is (hsm::PinSource::Parse,
  // "file:/path" or "env:VARIABLE"); unset: the key file is not encrypted.
  std::optional<hsm::PinSource> key_passphrase_source;
  std::string x5u;               // https URL where the certificate chain is published
  std::string certificate_file;  // that chain, leaf first (PEM)
  std::vector<std::string> attest = {"A", "B", "C"};
  bool is_default = false;

  friend bool operator==(const ProfileConfig&, const ProfileConfig&) = default;
};

struct VerifierConfig {
  bool enabled = true;
  std::string ca_file;                 // STI-CA trust anchors (PEM bundle)
  std::string ca_dir;                  // or a c_rehash directory
  // An STI-PA CA list (a PEM bundle of approved STI-CA roots, stir/ca_list.h) fetched from
  // ca_list_url with the x5u fetch policy every ca_list_refresh (ca_list_retry after a failure),
  // added to ca_file / ca_dir; the last good list stays on failure and is kept in
  // ca_list_cache_file (if set) for the next start. daemon/ca_list_refresher.h.
  std::string ca_list_url;
  absl::Duration ca_list_refresh = absl::Hours(24);
  absl::Duration ca_list_retry = absl::Minutes(5);
  size_t ca_list_max_bytes = 1 << 20;
  std::string ca_list_cache_file;
  std::vector<std::string> crl_files;
  // Revocation through the signing certificate's CRL distribution point (stir::CrlChecker):
  // verifier.crl_distribution_points (on by default), verifier.crl_unavailable (soft-fail |
  // hard-fail), verifier.crl_max_bytes, verifier.crl_cache_max_entries, verifier.crl_retry_after.
  bool crl_distribution_points = true;
  stir::CrlFailureMode crl_unavailable = stir::CrlFailureMode::kSoftFail;
  size_t crl_max_bytes = 1 << 20;
  size_t crl_cache_max_entries = 1000;
  absl::Duration crl_retry_after = absl::Seconds(30);
  // verifier.policy: strict | lenient (the SHAKEN certificate profile, stir::CertValidator).
  stir::ProfileStrictness policy = stir::ProfileStrictness::kStrict;
  absl::Duration iat_window = absl::Seconds(60);
  bool require_low_s = false;
  // x5u fetch
  absl::Duration connect_timeout = absl::Seconds(2);
  absl::Duration fetch_timeout = absl::Seconds(4);
  size_t max_certificate_bytes = 16 * 1024;
  std::string tls_ca_file;             // trust for the HTTPS fetch; empty = system store
  // certificate cache
  size_t cache_max_entries = 10000;
  size_t cache_max_bytes = 64 << 20;
  absl::Duration cache_default_ttl = absl::Hours(24);
  absl::Duration cache_max_ttl = absl::Hours(24 * 7);
  absl::Duration cache_negative_ttl = absl::Seconds(30);
  // concurrency: Verify calls in progress (beyond: RESOURCE_EXHAUSTED), x5u fetches in progress
  // (all hosts, one host) and fetches waiting for one of those slots.
  int max_in_flight = 4096;
  int fetch_max_in_flight = 64;
  int fetch_max_per_host = 4;
  int fetch_max_queued = 4096;
  // The x5u policy (ATIS-1000080 CE-12): production unless verifier.lab relaxes it (never in
  // production): lab.allow_http, lab.allow_private_addresses (loopback only,
  // stir::IsAddressAllowed), lab.allow_any_port, lab.allow_cidrs (wider SSRF allowances, each
  // named). The verifier's fetcher applies it, and so does the check of every signing profile's
  // x5u, so shakend never publishes an x5u that verifiers like itself refuse to fetch.
  stir::X5uPolicy x5u_policy;

  friend bool operator==(const VerifierConfig&, const VerifierConfig&) = default;
};

// SipConfig is listen.sip, the SIP redirect server (STI-AS / STI-VS answering 302s; see
// docs/sip-redirect.md).
struct SipConfig {
  std::string udp;  // "host:port" to listen on over UDP; empty: no UDP
  std::string tcp;  // "host:port" to listen on over TCP; empty: no TCP
  SipRole role = SipRole::kAuto;
  bool dest_from_request_uri = false;  // dest: to | request-uri (the called number's header)
  // Headers that carry the attestation level, first present wins.
  std::vector<std::string> attestation_headers = {"Attestation-Info", "P-Attestation-Info",
                                                  "X-Attestation-Info", "Attestation"};
  std::string default_attest;  // when no header has one; empty: such an INVITE gets 400
  std::string profile;         // signing profile; empty: the default profile
  bool decline_failed = false;  // verify_failure: forward (302) | decline (603)
  absl::Duration timeout = absl::Seconds(2);      // a request's budget in the core
  absl::Duration retry_after = absl::Seconds(5);  // Retry-After of a 503
  size_t max_message_bytes = 64 * 1024;           // larger messages are refused by the stack
  // RFC 3261 Timer I: how long an answered INVITE's transaction stays after its ACK, to absorb
  // retransmitted ACKs (T4, 5 s, in the RFC). Memory grows with calls per second x timer_i; an
  // ACK that comes later is dropped as a stray ACK, as the transaction would have dropped it.
  absl::Duration timer_i = absl::Milliseconds(500);
  // SO_RCVBUF of the UDP socket: what absorbs a burst of INVITEs; 0: the kernel's default.
  size_t udp_receive_buffer = 4 * 1024 * 1024;

  friend bool operator==(const SipConfig&, const SipConfig&) = default;
};

struct Config {
  // Listeners. `api` serves shaken.v1 (mTLS when tls.client_ca_file is set); `health` is a
  // plaintext gRPC listener with grpc.health.v1 only (Kubernetes probes); `metrics` serves
  // Prometheus /metrics over plain HTTP. An empty address disables that listener (not `api`).
  std::string api_listen = "127.0.0.1:50051";
  std::optional<TlsConfig> tls;
  bool allow_insecure = false;  // plaintext API listener: labs only, must be said explicitly
  // Server reflection (grpc.reflection.v1alpha, for grpcurl): "api" serves it on the API listener
  // only, behind its TLS / mTLS; "off" serves it nowhere. Never on the health listener.
  std::string reflection = "api";
  std::string health_listen;
  std::string metrics_listen;
  // API connections are closed (GOAWAY, then max_connection_age_grace for the calls in flight)
  // once they are this old, so that SBCs' long-lived connections spread over the replicas that
  // were added since they connected. 0: never.
  absl::Duration max_connection_age = absl::Minutes(30);
  absl::Duration max_connection_age_grace = absl::Seconds(30);
  std::optional<RestListenConfig> rest;  // listen.rest; unset: no REST front end
  std::optional<SipConfig> sip;  // listen.sip; unset: no SIP redirect server

  std::vector<ClientRule> clients;  // empty: every client may do everything
  std::optional<Pkcs11Config> pkcs11;
  std::vector<ProfileConfig> profiles;
  VerifierConfig verifier;

  // Signing policy: refuse an iat further than this from now (RFC 8224 §4.1).
  absl::Duration max_iat_skew = absl::Seconds(60);

  // Limits and lifecycle.
  // The default admits any request within the API's documented limits: a Verify with 16 Identity
  // values of 8 KiB, 32 To numbers and a request_id is under 134 KiB.
  size_t max_request_bytes = 160 * 1024;
  absl::Duration drain_grace = absl::Seconds(10);
  // How often the profile certificate files are checked for a change (a renewal with the same
  // key): a changed file is read again as on SIGHUP. 0: only on SIGHUP.
  absl::Duration certificate_check_interval = absl::Seconds(10);

  // Logging.
  LogLevel log_level = LogLevel::kInfo;     // trace | debug | info | warn | error
  LogFormat log_format = LogFormat::kText;  // text | json
  bool audit_tns = false;           // include TNs in audit records
  std::string audit_file;           // empty: audit records go to the log stream
  // refuse | continue: signing while audit records cannot be written.
  AuditFailurePolicy audit_on_failure = AuditFailurePolicy::kRefuse;

  friend bool operator==(const Config&, const Config&) = default;
};

// LoadConfig reads and validates a configuration file. Errors are INVALID_ARGUMENT or NOT_FOUND
// with the file name and the line of the key ("shakend.yaml:31: profiles[1].x5u ..."), the key
// path and what is wrong.
absl::StatusOr<Config> LoadConfig(const std::string& path);

// ParseConfig is LoadConfig on YAML text (`origin` names it in errors).
absl::StatusOr<Config> ParseConfig(const std::string& yaml, const std::string& origin);

// VerifierSettingsFrom is what a `verifier:` section stands for in stir's terms. shakend builds
// its verification stack from it; so does load_bench's floor server, to verify exactly as
// shakend does.
stir::VerifierSettings VerifierSettingsFrom(const VerifierConfig& v);

// CheckReferencedFiles checks, as the user running it and without touching the token, that every
// file the configuration names can be used: TLS files, the PKCS#11 module, a PIN file (read, then
// wiped), key files and their passphrase files, certificates, trust anchors, CRLs, and that the
// audit file can be appended to (or created). One sentence per problem, naming the key and the
// path. (PIN sources in the environment are not read: the check may run in another shell.)
std::vector<std::string> CheckReferencedFiles(const Config& config);

// ConfigWarnings lists what is valid but probably a mistake, one sentence each naming the key:
// a client rule naming a profile that does not exist (it grants nothing; a typo there silently
// leaves a client unable to sign). shakend --check-config prints them; start-up logs them.
std::vector<std::string> ConfigWarnings(const Config& config);

// LocateInConfigFile puts "<path>:<line>: " before each message that starts with a key path of
// the configuration file `path` (CheckReferencedFiles' problems, ConfigWarnings), or "<path>: "
// when the key is not in the file.
std::vector<std::string> LocateInConfigFile(const std::string& path,
                                            const std::vector<std::string>& messages);

}  // namespace shaken::daemon

#endif  // SHAKEN_DAEMON_CONFIG_H_
