#include "tests/daemon_fixture.h"

#include <grpcpp/generic/generic_stub.h>
#include <grpcpp/grpcpp.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <future>
#include <initializer_list>

#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "hsm/key_manager.h"
#include "hsm/module.h"
#include "hsm/pkcs11_uri.h"
#include "hsm/secret.h"
#include "stir/openssl_util.h"
#include "stir/status_macros.h"
#include "stir/tn_auth_list.h"
#include "tests/testing/softhsm_token.h"

namespace shaken::testing {

absl::StatusOr<std::unique_ptr<DaemonEnv>> DaemonEnv::Create(DaemonEnvOptions options) {
  std::unique_ptr<DaemonEnv> env(new DaemonEnv());
  SoftHsmToken& token = SoftHsmToken::Shared();
  env->dir_ = std::make_unique<TempDir>();
  const absl::Time now = absl::Now();

  // The SP key, generated inside the token.
  ASSIGN_OR_RETURN(auto module, hsm::Module::Load(token.module_path()));
  ASSIGN_OR_RETURN(hsm::Pkcs11Uri token_uri, hsm::Pkcs11Uri::Parse(token.TokenUri()));
  ASSIGN_OR_RETURN(auto tok, module->OpenToken(token_uri, hsm::PinSource::FromFile(token.pin_file())));
  static std::atomic<int> instances{0};
  const std::string label = absl::StrCat("daemon-sp-", getpid(), "-", instances++);
  ASSIGN_OR_RETURN(hsm::KeyInfo key, hsm::GenerateP256Key(*tok, {.label = label}));
  env->token_key_uri_ = token.KeyUri(label);
  ASSIGN_OR_RETURN(hsm::Pkcs11Uri key_uri, hsm::Pkcs11Uri::Parse(env->token_key_uri_));
  ASSIGN_OR_RETURN(hsm::PublicKey pub, hsm::ExportPublicKey(*tok, key_uri));
  ASSIGN_OR_RETURN(stir::EvpPkeyPtr pub_key, stir::ReadPublicKeyPem(pub.pem));

  // The STI PKI and the x5u server.
  ASSIGN_OR_RETURN(env->pki_, TestPki::Create(now));
  LeafOptions token_leaf;
  token_leaf.subject_public_key = pub_key.get();
  ASSIGN_OR_RETURN(TestCert token_cert, env->pki_->IssueLeaf(token_leaf));
  LeafOptions file_leaf;
  file_leaf.spc = "123A";
  file_leaf.common_name = "SHAKEN 123A";
  ASSIGN_OR_RETURN(TestCert file_cert, env->pki_->IssueLeaf(file_leaf));
  ASSIGN_OR_RETURN(TlsServerPki tls, TlsServerPki::Create(now));
  ASSIGN_OR_RETURN(env->x5u_server_, HttpsServer::Start({.tls = true,
                                                         .cert_pem = tls.server.cert_pem,
                                                         .key_pem = tls.server.key_pem}));
  env->x5u_server_->SetRoute("/token.pem", {.body = env->pki_->ChainPem(token_cert)});
  env->x5u_server_->SetRoute("/file.pem", {.body = env->pki_->ChainPem(file_cert)});
  env->token_x5u_ = env->x5u_server_->Url("/token.pem");
  env->file_x5u_ = env->x5u_server_->Url("/file.pem");

  const TempDir& d = *env->dir_;
  if (options.delegate_profile) {
    using Kind = stir::TnAuthEntry::Kind;
    ASSIGN_OR_RETURN(TestCert sp_ca,
                     env->pki_->IssueSpCa("shakend test SP-CA",
                                          stir::EncodeTnAuthListUnchecked(
                                              {{Kind::kRange, "12155550100", 50},
                                               {Kind::kOne, "12155551000", 0}})));
    LeafOptions delegate_leaf;
    delegate_leaf.common_name = "shakend test enterprise";
    delegate_leaf.tn_auth_entries = {{Kind::kRange, "12155550120", 10},
                                     {Kind::kOne, "12155551000", 0}};
    delegate_leaf.issuer = &sp_ca;
    ASSIGN_OR_RETURN(TestCert delegate_cert, env->pki_->IssueLeaf(delegate_leaf));
    env->x5u_server_->SetRoute("/delegate.pem", {.body = env->pki_->ChainPem(delegate_cert)});
    env->delegate_x5u_ = env->x5u_server_->Url("/delegate.pem");
    d.Write("delegate-chain.pem", env->pki_->ChainPem(delegate_cert));
    d.Write("delegate.key", delegate_cert.key_pem);
  }
  d.Write("sti-root.pem", env->pki_->root().cert_pem);
  d.Write("token-chain.pem", env->pki_->ChainPem(token_cert));
  d.Write("file-chain.pem", env->pki_->ChainPem(file_cert));
  d.Write("file.key", file_cert.key_pem);
  d.Write("tls-ca.pem", tls.ca.cert_pem);
  d.Write("server.pem", tls.server.cert_pem);
  d.Write("server.key", tls.server.key_pem);
  for (const char* name : {"sbc1.test", "verify-only.test", "file-only.test"}) {
    ASSIGN_OR_RETURN(TestCert c, tls.IssueClient(name, now));
    d.Write(absl::StrCat(name, ".pem"), c.cert_pem);
    d.Write(absl::StrCat(name, ".key"), c.key_pem);
  }
  // Certificates that carry a ruled name where authorization must not look (authz.h).
  for (const auto& [file, cn, san] : std::initializer_list<std::array<const char*, 3>>{
           {"san-other.test", "sbc1.test", "DNS:other.host"},
           {"san-email.test", "sbc1.test", "email:sbc1.test"},
           {"san-othername.test", "sbc1.test", "otherName:1.3.6.1.4.1.311.20.2.3;UTF8:sbc1.test"},
           {"cn-only.test", "sbc1.test", ""},
           {"san-uri.test", "nobody", "URI:spiffe://shaken.test/sbc"}}) {
    ASSIGN_OR_RETURN(TestCert c, tls.IssueClientWithNames(cn, san, now));
    d.Write(absl::StrCat(file, ".pem"), c.cert_pem);
    d.Write(absl::StrCat(file, ".key"), c.key_pem);
  }
  ASSIGN_OR_RETURN(TestCert rogue_ca, MakeTestCa("rogue CA", now));
  ASSIGN_OR_RETURN(TestCert rogue, tls.IssueClient("rogue.test", now, &rogue_ca));
  d.Write("rogue.test.pem", rogue.cert_pem);
  d.Write("rogue.test.key", rogue.key_pem);

  env->options_ = options;
  env->config_yaml_ = env->ConfigYaml(options);
  env->config_path_ = d.Write("shakend.yaml", env->config_yaml_);
  ASSIGN_OR_RETURN(env->config_, daemon::ParseConfig(env->config_yaml_, env->config_path_));
  if (options.start_daemon) RETURN_IF_ERROR(env->Restart());
  return env;
}

std::string DaemonEnv::ConfigYaml(const DaemonEnvOptions& options) const {
  const SoftHsmToken& token = SoftHsmToken::Shared();
  const std::string& p = dir_->path();
  const std::string tls_and_clients =
      options.plaintext
          ? absl::StrCat("  allow_insecure: true\n",
                         options.clients_extra_yaml.empty()
                             ? ""
                             : absl::StrCat("clients:\n", options.clients_extra_yaml))
          : absl::StrCat(R"(  tls:
    cert_file: )", p, R"(/server.pem
    key_file: )", p, R"(/server.key
    client_ca_file: )", p, R"(/tls-ca.pem
clients:
  - {identity: sbc1.test, methods: ["*"], profiles: ["*"]}
  - {identity: verify-only.test, methods: [Verify]}
  - {identity: file-only.test, methods: [Sign, SignStream, ListProfiles], profiles: [file]}
  - {identity: "spiffe://shaken.test/sbc", methods: [ListProfiles]}
)", options.clients_extra_yaml);
  return absl::StrCat(R"(
listen:
  api: 127.0.0.1:)", options.api_port, "\n",
                      options.health_listener
                          ? absl::StrCat("  health: 127.0.0.1:", options.health_port, "\n")
                          : "",
                      options.metrics_listener
                          ? absl::StrCat("  metrics: 127.0.0.1:", options.metrics_port, "\n")
                          : "",
                      options.listen_extra_yaml, tls_and_clients, R"(pkcs11:
  module: )", options.pkcs11_module.empty() ? token.module_path() : options.pkcs11_module, R"(
  pin_source: file:)", token.pin_file(), R"(
  pool_size: )", options.pool_size, R"(
  open_at_start: )", options.pool_size, R"(
  backoff_initial: 20ms
  backoff_max: 200ms
)", options.pkcs11_extra_yaml, R"(
profiles:
  - name: token
    key: ")", token_key_uri_, R"("
    x5u: )", token_x5u_, R"(
    certificate: )", p, R"(/token-chain.pem
    default: true
  - name: file
    key: file:)", FileKeyPath(), R"(
    x5u: )", file_x5u_, R"(
    certificate: )", p, R"(/file-chain.pem
    attest: [C]
)", options.delegate_profile ? absl::StrCat(R"(  - name: delegate
    key: file:)", p, R"(/delegate.key
    x5u: )", delegate_x5u_, R"(
    certificate: )", p, R"(/delegate-chain.pem
)") : "", R"(verifier:
  ca_file: )", p, R"(/sti-root.pem
  tls_ca_file: )", p, R"(/tls-ca.pem
  lab: {allow_private_addresses: true, allow_any_port: true}
)", options.verifier_extra_yaml, R"(drain_grace: )", absl::FormatDuration(options.drain_grace), "\n",
                      options.extra_yaml);
}

absl::StatusOr<std::string> DaemonEnv::WriteConfig(const std::string& name,
                                                   const DaemonEnvOptions& options) const {
  const std::string yaml = ConfigYaml(options);
  const std::string path = dir_->Write(name, yaml);
  RETURN_IF_ERROR(daemon::ParseConfig(yaml, path).status());
  return path;
}

DaemonEnv::~DaemonEnv() { StopDaemon(); }

void DaemonEnv::StopDaemon() {
  if (daemon_ != nullptr) {
    daemon_->Shutdown();
    daemon_.reset();
  }
}

absl::Status DaemonEnv::Restart() {
  StopDaemon();
  ASSIGN_OR_RETURN(daemon_, daemon::Daemon::Start(config_));
  return absl::OkStatus();
}

absl::Status DaemonEnv::RestartWith(const DaemonEnvOptions& options) {
  StopDaemon();
  options_ = options;
  config_yaml_ = ConfigYaml(options);
  config_path_ = dir_->Write("shakend.yaml", config_yaml_);
  ASSIGN_OR_RETURN(config_, daemon::ParseConfig(config_yaml_, config_path_));
  return Restart();
}

std::string DaemonEnv::ApiTarget() const {
  return absl::StrCat("127.0.0.1:", daemon_ != nullptr ? daemon_->api_port() : 0);
}
std::string DaemonEnv::ClientCertFile(const std::string& name) const {
  return absl::StrCat(dir_->path(), "/", name, ".pem");
}
std::string DaemonEnv::ClientKeyFile(const std::string& name) const {
  return absl::StrCat(dir_->path(), "/", name, ".key");
}
std::string DaemonEnv::TlsCaFile() const { return absl::StrCat(dir_->path(), "/tls-ca.pem"); }

client::ClientOptions DaemonEnv::ClientOptionsFor(const std::string& name) const {
  client::ClientOptions o;
  o.target = ApiTarget();
  o.root_ca_file = TlsCaFile();
  o.server_name_override = "localhost";
  if (!name.empty()) {
    o.client_cert_file = ClientCertFile(name);
    o.client_key_file = ClientKeyFile(name);
  }
  o.default_timeout = absl::Seconds(5);
  return o;
}

absl::StatusOr<std::unique_ptr<client::Client>> DaemonEnv::NewClient(const std::string& name) const {
  return client::Client::New(ClientOptionsFor(name));
}

absl::StatusOr<int> HealthStatus(const std::string& target, const std::string& service) {
  auto channel = grpc::CreateChannel(target, grpc::InsecureChannelCredentials());
  grpc::GenericStub stub(channel);
  // HealthCheckRequest { string service = 1; }
  std::string req = std::string(1, '\x0a') + static_cast<char>(service.size()) + service;
  grpc::Slice slice(req);
  grpc::ByteBuffer request(&slice, 1);
  grpc::ByteBuffer response;
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(5));
  std::promise<grpc::Status> done;
  stub.UnaryCall(&ctx, "/grpc.health.v1.Health/Check", grpc::StubOptions(), &request, &response,
                 [&done](grpc::Status s) { done.set_value(std::move(s)); });
  grpc::Status st = done.get_future().get();
  if (!st.ok()) {
    return absl::Status(static_cast<absl::StatusCode>(st.error_code()), st.error_message());
  }
  std::vector<grpc::Slice> slices;
  if (!response.Dump(&slices).ok()) return absl::InternalError("cannot read the response");
  std::string bytes;
  for (const auto& s : slices) bytes.append(reinterpret_cast<const char*>(s.begin()), s.size());
  // HealthCheckResponse { ServingStatus status = 1; } -> 08 <varint>; empty means UNKNOWN (0).
  if (bytes.empty()) return 0;
  if (bytes.size() != 2 || bytes[0] != '\x08') return absl::InternalError("unexpected response");
  return static_cast<int>(bytes[1]);
}

}  // namespace shaken::testing
