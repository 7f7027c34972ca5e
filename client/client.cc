// client.cc: the C++ client over gRPC. The only translation unit of the library that sees gRPC
// and the generated protobuf code (c_api.cc sees only shaken/client.h).
#include "shaken/client.h"

#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <utility>

#include "absl/base/call_once.h"
#include "absl/base/thread_annotations.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/synchronization/mutex.h"
#include "client/internal.h"
#include "grpcpp/grpcpp.h"
#include "shaken/v1/shaken.grpc.pb.h"
#include "shaken/v1/shaken.pb.h"

namespace shaken::client {
namespace {

namespace pb = ::shaken::v1;

constexpr int kMaxGrpcAttempts = 5;  // gRPC clamps retryPolicy.maxAttempts to 5.
constexpr size_t kMaxPemFileBytes = 1 << 20;

absl::Status InvalidOption(const std::string& message) {
  return absl::InvalidArgumentError(absl::StrCat("shaken client options: ", message));
}

// ReadPemFile reads a PEM file named by option `what`. The error names the option and the path,
// never the contents (the file may be a private key).
absl::StatusOr<std::string> ReadPemFile(const char* what, const std::string& path,
                                        const char* pem_label) {
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) {
    return InvalidOption(absl::StrCat(what, " \"", path, "\" cannot be read: ", strerror(errno)));
  }
  std::string data;
  char buf[8192];
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      int e = errno;
      close(fd);
      return InvalidOption(absl::StrCat(what, " \"", path, "\" cannot be read: ", strerror(e)));
    }
    if (n == 0) break;
    data.append(buf, static_cast<size_t>(n));
    if (data.size() > kMaxPemFileBytes) {
      close(fd);
      explicit_bzero(data.data(), data.size());
      return InvalidOption(absl::StrCat(what, " \"", path, "\" is larger than 1 MiB"));
    }
  }
  close(fd);
  explicit_bzero(buf, sizeof buf);
  if (!absl::StrContains(data, "-----BEGIN ") || !absl::StrContains(data, pem_label)) {
    explicit_bzero(data.data(), data.size());
    return InvalidOption(
        absl::StrCat(what, " \"", path, "\" is not PEM (no \"", pem_label, "\" block)"));
  }
  return data;
}

std::chrono::system_clock::time_point DeadlineAfter(absl::Duration timeout) {
  return std::chrono::system_clock::now() + absl::ToChronoNanoseconds(timeout);
}

absl::Status CheckTimeout(absl::Duration timeout) {
  if (timeout <= absl::ZeroDuration() || timeout == absl::InfiniteDuration()) {
    return absl::InvalidArgumentError(
        absl::StrCat("call timeout must be positive and finite, got ",
                     absl::FormatDuration(timeout)));
  }
  return absl::OkStatus();
}

void ToProto(const SignParams& p, pb::SignRequest* r) {
  r->set_profile(p.profile);
  r->set_attest(p.attest);
  r->mutable_orig()->set_tn(p.orig_tn);
  for (const std::string& tn : p.dest_tns) r->mutable_dest()->add_tn(tn);
  if (p.iat.has_value()) r->set_iat(*p.iat);
  r->set_origid(p.origid);
  r->set_request_id(p.request_id);
  if (!p.div_original.empty() || !p.div_tn.empty() || !p.div_hi.empty()) {
    pb::Div* div = r->mutable_div();
    div->set_original(p.div_original);
    div->set_tn(p.div_tn);
    div->set_hi(p.div_hi);
  }
  r->set_ppt(p.ppt);
  if (!p.rph_auth.empty() || !p.rph_sph.empty()) {
    pb::Rph* rph = r->mutable_rph();
    for (const std::string& a : p.rph_auth) rph->add_auth(a);
    rph->set_sph(p.rph_sph);
  }
  const RichCallData& c = p.rcd;
  if (!c.nam.empty() || !c.apn.empty() || !c.icn.empty() || !c.jcl.empty() || !c.jcd.empty() ||
      !c.crn.empty()) {
    pb::Rcd* rcd = r->mutable_rcd();
    rcd->set_nam(c.nam);
    rcd->set_apn(c.apn);
    rcd->set_icn(c.icn);
    rcd->set_jcl(c.jcl);
    rcd->set_jcd(c.jcd);
    rcd->set_crn(c.crn);
  }
}

SignResult FromProto(pb::SignResponse&& r) {
  SignResult out;
  out.identity = std::move(*r.mutable_identity());
  out.passport = std::move(*r.mutable_passport());
  out.origid = std::move(*r.mutable_origid());
  out.iat = r.iat();
  out.profile = std::move(*r.mutable_profile());
  out.request_id = std::move(*r.mutable_request_id());
  return out;
}

CertificateInfo FromProto(const pb::Certificate& c) {
  return CertificateInfo{c.subject(), c.spc(), c.serial(), c.not_after()};
}

Verdict FromProto(const pb::Verdict& v) {
  Verdict out;
  out.passed = v.passed();
  out.verstat = v.verstat();
  out.sip_code = v.sip_code();
  out.sip_reason = v.sip_reason();
  out.reason = v.reason();
  out.detail = v.detail();
  out.ppt = v.ppt();
  out.attest = v.attest();
  out.origid = v.origid();
  out.orig_tn = v.orig().tn();
  out.dest_tns.assign(v.dest().tn().begin(), v.dest().tn().end());
  out.iat = v.iat();
  out.x5u = v.x5u();
  out.certificate = FromProto(v.certificate());
  out.div_tn = v.div_tn();
  out.div_hi = v.div_hi();
  if (v.has_diverts()) out.diverts = v.diverts();
  out.rph_auth.assign(v.rph_auth().begin(), v.rph_auth().end());
  out.sph = v.sph();
  return out;
}

RcdResult FromProto(const pb::RcdResult& r) {
  RcdResult out;
  out.identity = r.identity();
  out.passed = r.passed();
  out.reason = r.reason();
  out.detail = r.detail();
  out.rcd = {r.nam(), r.apn(), r.icn(), r.jcl(), r.jcd(), r.crn()};
  return out;
}

DivResult FromProto(const pb::DivResult& d) {
  DivResult out;
  out.identity = d.identity();
  out.tn = d.tn();
  out.passed = d.passed();
  out.verstat = d.verstat();
  out.reason = d.reason();
  out.detail = d.detail();
  if (d.has_diverts()) out.diverts = d.diverts();
  return out;
}

ProfileInfo FromProto(const pb::Profile& p) {
  ProfileInfo out;
  out.name = p.name();
  out.key = p.key();
  out.x5u = p.x5u();
  out.certificate = FromProto(p.certificate());
  out.allowed_attest.assign(p.allowed_attest().begin(), p.allowed_attest().end());
  switch (p.health()) {
    case pb::Profile::SERVING: out.health = ProfileInfo::Health::kServing; break;
    case pb::Profile::DEGRADED: out.health = ProfileInfo::Health::kDegraded; break;
    case pb::Profile::DOWN: out.health = ProfileInfo::Health::kDown; break;
    default: out.health = ProfileInfo::Health::kUnspecified; break;
  }
  out.is_default = p.is_default();
  return out;
}

const char* ConnectivityStateName(grpc_connectivity_state s) {
  switch (s) {
    case GRPC_CHANNEL_IDLE: return "IDLE";
    case GRPC_CHANNEL_CONNECTING: return "CONNECTING";
    case GRPC_CHANNEL_READY: return "READY";
    case GRPC_CHANNEL_TRANSIENT_FAILURE: return "TRANSIENT_FAILURE";
    case GRPC_CHANNEL_SHUTDOWN: return "SHUTDOWN";
  }
  return "UNKNOWN";
}

// gRPC's JSON durations are decimal seconds: "0.020s".
std::string JsonDuration(absl::Duration d) {
  return absl::StrFormat("%d.%09ds", absl::ToInt64Seconds(d),
                         absl::ToInt64Nanoseconds(d % absl::Seconds(1)));
}

}  // namespace

namespace internal {

absl::Status FromRpcCode(int code, const std::string& message) {
  if (code == 0) return absl::OkStatus();
  if (code < 0 || code > 16) {
    return absl::UnknownError(absl::StrCat("rpc code ", code, ": ", message));
  }
  return absl::Status(static_cast<absl::StatusCode>(code), message);
}

absl::Status FromGrpcStatus(const grpc::Status& status) {
  return FromRpcCode(static_cast<int>(status.error_code()), status.error_message());
}

absl::Status ValidateOptions(const ClientOptions& o) {
  if (o.target.empty()) {
    return InvalidOption("target is empty: set \"host:port\" or a gRPC target URI");
  }
  if (o.insecure_plaintext &&
      (!o.root_ca_file.empty() || !o.client_cert_file.empty() || !o.client_key_file.empty() ||
       !o.server_name_override.empty())) {
    return InvalidOption(
        "insecure_plaintext conflicts with root_ca_file, client_cert_file, client_key_file and "
        "server_name_override: choose TLS or plaintext");
  }
  if (o.client_cert_file.empty() != o.client_key_file.empty()) {
    return InvalidOption(o.client_cert_file.empty()
                             ? "client_key_file is set without client_cert_file: mutual TLS "
                               "needs both"
                             : "client_cert_file is set without client_key_file: mutual TLS "
                               "needs both");
  }
  if (o.default_timeout <= absl::ZeroDuration() || o.default_timeout == absl::InfiniteDuration()) {
    return InvalidOption(absl::StrCat("default_timeout must be positive and finite, got ",
                                      absl::FormatDuration(o.default_timeout)));
  }
  const RetryPolicy& r = o.retry;
  if (r.max_attempts < 1 || r.max_attempts > kMaxGrpcAttempts) {
    return InvalidOption(absl::StrCat("retry.max_attempts must be 1..", kMaxGrpcAttempts, ", got ",
                                      r.max_attempts));
  }
  if (r.initial_backoff <= absl::ZeroDuration() || r.max_backoff < r.initial_backoff ||
      r.max_backoff == absl::InfiniteDuration()) {
    return InvalidOption(absl::StrCat(
        "retry backoff must satisfy 0 < initial_backoff <= max_backoff < infinity, got ",
        absl::FormatDuration(r.initial_backoff), " and ", absl::FormatDuration(r.max_backoff)));
  }
  if (!(r.backoff_multiplier >= 1.0 && r.backoff_multiplier <= 100.0)) {
    return InvalidOption(
        absl::StrCat("retry.backoff_multiplier must be 1..100, got ", r.backoff_multiplier));
  }
  const KeepaliveOptions& k = o.keepalive;
  if (k.time < absl::ZeroDuration() || k.time == absl::InfiniteDuration() ||
      (k.time > absl::ZeroDuration() &&
       (k.timeout <= absl::ZeroDuration() || k.timeout == absl::InfiniteDuration()))) {
    return InvalidOption(
        "keepalive.time must be >= 0 (0 disables) and keepalive.timeout positive, both finite");
  }
  if (o.max_reconnect_backoff < absl::Milliseconds(100) ||
      o.max_reconnect_backoff > absl::Seconds(600)) {
    return InvalidOption(absl::StrCat("max_reconnect_backoff must be 100ms..600s, got ",
                                      absl::FormatDuration(o.max_reconnect_backoff)));
  }
  for (char c : o.health_check_service) {
    if (c < 0x21 || c > 0x7e || c == '"' || c == '\\') {
      return InvalidOption(
          "health_check_service must be a gRPC service name (printable ASCII, no quotes or "
          "backslashes), e.g. shaken.v1.Shaken, or empty");
    }
  }
  if (o.max_receive_message_bytes < 1024) {
    return InvalidOption(absl::StrCat("max_receive_message_bytes must be at least 1024, got ",
                                      o.max_receive_message_bytes));
  }
  return absl::OkStatus();
}

bool SeparateVerifyChannel(const ClientOptions& options) {
  return options.balancing == ClientOptions::Balancing::kRoundRobin &&
         !options.health_check_service.empty();
}

std::string ServiceConfigJson(const RetryPolicy& r, const ClientOptions& options,
                              bool health_checked) {
  // Balancing across replicas, and client-side health checking with it (round_robin only).
  std::string prefix;
  if (options.balancing == ClientOptions::Balancing::kRoundRobin) {
    prefix = R"("loadBalancingConfig":[{"round_robin":{}}],)";
    if (health_checked && !options.health_check_service.empty()) {
      prefix += absl::StrFormat(R"("healthCheckConfig":{"serviceName":"%s"},)",
                                options.health_check_service);
    }
  } else {
    prefix = R"("loadBalancingConfig":[{"pick_first":{}}],)";
  }
  // Only the unary methods: gRPC would also retry a stream that has received nothing yet, but
  // a SignStream carries many requests and the SBC decides what to resend.
  std::string names =
      R"([{"service":"shaken.v1.Shaken","method":"Sign"},)"
      R"({"service":"shaken.v1.Shaken","method":"Verify"},)"
      R"({"service":"shaken.v1.Shaken","method":"ListProfiles"}])";
  if (r.max_attempts < 2) {
    return absl::StrCat("{", prefix, R"("methodConfig":[{"name":)", names, "}]}");
  }
  return absl::StrFormat(
      R"({%s"methodConfig":[{"name":%s,"retryPolicy":{"maxAttempts":%d,)"
      R"("initialBackoff":"%s","maxBackoff":"%s","backoffMultiplier":%.6g,)"
      R"("retryableStatusCodes":["UNAVAILABLE","CANCELLED"]}}]})",
      prefix, names, r.max_attempts, JsonDuration(r.initial_backoff), JsonDuration(r.max_backoff),
      r.backoff_multiplier);
}

}  // namespace internal

// ---------------------------------------------------------------------------------------------
// Client

struct Client::Impl {
  ClientOptions options;
  // Sign and SignStream: health-checked when SeparateVerifyChannel(options).
  std::shared_ptr<grpc::Channel> channel;
  std::unique_ptr<pb::Shaken::Stub> stub;

  // Sign and SignStream go through the health-checked channel while any replica is SERVING. When
  // none is (the channel is in TRANSIENT_FAILURE), they go through the unchecked one, so that the
  // server itself answers: a profile whose token is up (another HSM, a file key) still signs, and
  // one whose token is down fails with the server's reason instead of "backend unhealthy".
  bool SignsUnchecked() {
    return internal::SeparateVerifyChannel(options) &&
           channel->GetState(false) == GRPC_CHANNEL_TRANSIENT_FAILURE;
  }
  pb::Shaken::Stub& SignStub() { return SignsUnchecked() ? UncheckedStub() : *stub; }
  std::shared_ptr<grpc::Channel> SignChannel() {
    if (!SignsUnchecked()) return channel;
    UncheckedStub();
    return verify_channel;
  }

  // Verify and ListProfiles: `stub` itself, or a stub on a channel without health checks, made
  // on first use (an SBC that only signs keeps one connection per replica). A replica whose token
  // is down answers NOT_SERVING yet verifies; with every replica's token down, verification must
  // go on.
  pb::Shaken::Stub& UncheckedStub() {
    if (!internal::SeparateVerifyChannel(options)) return *stub;
    // Made once; every later call only reads the once-flag (no lock per call).
    absl::call_once(verify_once, [this] {
      grpc::ChannelArguments args = channel_args;
      args.SetServiceConfigJSON(internal::ServiceConfigJson(options.retry, options, false));
      verify_channel = grpc::CreateCustomChannel(options.target, creds, args);
      verify_stub = pb::Shaken::NewStub(verify_channel);
    });
    return *verify_stub;
  }
  std::shared_ptr<grpc::ChannelCredentials> creds;
  grpc::ChannelArguments channel_args;  // all but the service config
  absl::once_flag verify_once;
  std::shared_ptr<grpc::Channel> verify_channel;  // set once, by verify_once
  std::unique_ptr<pb::Shaken::Stub> verify_stub;  // set once, by verify_once
};

Client::Client(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
Client::~Client() = default;

absl::StatusOr<std::unique_ptr<Client>> Client::New(ClientOptions options) {
  if (absl::Status s = internal::ValidateOptions(options); !s.ok()) return s;

  std::shared_ptr<grpc::ChannelCredentials> creds;
  if (options.insecure_plaintext) {
    creds = grpc::InsecureChannelCredentials();
  } else {
    grpc::SslCredentialsOptions ssl;
    if (!options.root_ca_file.empty()) {
      absl::StatusOr<std::string> pem =
          ReadPemFile("root_ca_file", options.root_ca_file, "CERTIFICATE-----");
      if (!pem.ok()) return pem.status();
      ssl.pem_root_certs = *std::move(pem);
    }
    if (!options.client_cert_file.empty()) {
      absl::StatusOr<std::string> cert =
          ReadPemFile("client_cert_file", options.client_cert_file, "CERTIFICATE-----");
      if (!cert.ok()) return cert.status();
      absl::StatusOr<std::string> key =
          ReadPemFile("client_key_file", options.client_key_file, "PRIVATE KEY-----");
      if (!key.ok()) return key.status();
      ssl.pem_cert_chain = *std::move(cert);
      ssl.pem_private_key = *std::move(key);
    }
    creds = grpc::SslCredentials(ssl);
    // The credentials hold their own copy of the key; wipe ours.
    explicit_bzero(ssl.pem_private_key.data(), ssl.pem_private_key.size());
  }
  if (creds == nullptr) {
    return absl::InternalError("gRPC refused to create channel credentials");
  }

  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_ENABLE_RETRIES, 1);
  // Our retry policy, not one from a DNS TXT record.
  args.SetInt(GRPC_ARG_SERVICE_CONFIG_DISABLE_RESOLUTION, 1);
  // One connection per Client: do not share subchannels with other Clients of the process, so
  // that each Client's options (keepalive, TLS) and lifetime are its own.
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  if (options.keepalive.time > absl::ZeroDuration()) {
    args.SetInt(GRPC_ARG_KEEPALIVE_TIME_MS,
                static_cast<int>(absl::ToInt64Milliseconds(options.keepalive.time)));
    args.SetInt(GRPC_ARG_KEEPALIVE_TIMEOUT_MS,
                static_cast<int>(absl::ToInt64Milliseconds(options.keepalive.timeout)));
    args.SetInt(GRPC_ARG_KEEPALIVE_PERMIT_WITHOUT_CALLS,
                options.keepalive.permit_without_calls ? 1 : 0);
    // gRPC stops pinging after 2 pings without data by default; an idle SBC link needs them all.
    args.SetInt(GRPC_ARG_HTTP2_MAX_PINGS_WITHOUT_DATA, 0);
  }
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  args.SetInt(GRPC_ARG_MAX_RECONNECT_BACKOFF_MS,
              static_cast<int>(absl::ToInt64Milliseconds(options.max_reconnect_backoff)));
  args.SetMaxReceiveMessageSize(options.max_receive_message_bytes);
  if (!options.server_name_override.empty()) {
    args.SetSslTargetNameOverride(options.server_name_override);
  }
  if (!options.user_agent.empty()) args.SetUserAgentPrefix(options.user_agent);

  auto impl = std::make_unique<Impl>();
  impl->creds = creds;
  impl->channel_args = args;
  args.SetServiceConfigJSON(internal::ServiceConfigJson(options.retry, options));
  impl->channel = grpc::CreateCustomChannel(options.target, creds, args);
  if (impl->channel == nullptr) {
    return absl::InternalError(absl::StrCat("cannot create a channel to ", options.target));
  }
  impl->stub = pb::Shaken::NewStub(impl->channel);
  impl->options = std::move(options);
  return std::unique_ptr<Client>(new Client(std::move(impl)));
}

const std::string& Client::target() const { return impl_->options.target; }

absl::StatusOr<SignResult> Client::Sign(const SignParams& params,
                                        std::optional<absl::Duration> timeout) const {
  absl::Duration t = timeout.value_or(impl_->options.default_timeout);
  if (absl::Status s = CheckTimeout(t); !s.ok()) return s;
  pb::SignRequest request;
  ToProto(params, &request);
  pb::SignResponse response;
  const auto deadline = DeadlineAfter(t);
  const bool unchecked = impl_->SignsUnchecked();
  grpc::Status status;
  {
    grpc::ClientContext ctx;
    ctx.set_deadline(deadline);
    status = (unchecked ? impl_->UncheckedStub() : *impl_->stub).Sign(&ctx, request, &response);
  }
  // The health-checked channel found no SERVING replica during this very call (its first
  // connection, or every replica just went NOT_SERVING): ask a replica itself, once, so that the
  // answer is the server's (a signature from a profile that works, or its reason) rather than
  // "backend unhealthy".
  if (status.error_code() == grpc::StatusCode::UNAVAILABLE && !unchecked &&
      impl_->SignsUnchecked() && std::chrono::system_clock::now() < deadline) {
    grpc::ClientContext ctx;
    ctx.set_deadline(deadline);
    response.Clear();
    status = impl_->UncheckedStub().Sign(&ctx, request, &response);
  }
  if (!status.ok()) return internal::FromGrpcStatus(status);
  return FromProto(std::move(response));
}

absl::StatusOr<VerifyResult> Client::Verify(const VerifyParams& params,
                                            std::optional<absl::Duration> timeout) const {
  absl::Duration t = timeout.value_or(impl_->options.default_timeout);
  if (absl::Status s = CheckTimeout(t); !s.ok()) return s;
  pb::VerifyRequest request;
  for (const std::string& identity : params.identities) request.add_identity(identity);
  request.mutable_from()->set_tn(params.from_tn);
  for (const std::string& tn : params.to_tns) request.mutable_to()->add_tn(tn);
  if (params.date.has_value()) request.set_time(*params.date);
  request.set_request_id(params.request_id);
  for (const std::string& rp : params.resource_priority) request.add_resource_priority(rp);
  pb::VerifyResponse response;
  grpc::ClientContext ctx;
  ctx.set_deadline(DeadlineAfter(t));
  grpc::Status status = impl_->UncheckedStub().Verify(&ctx, request, &response);
  if (!status.ok()) return internal::FromGrpcStatus(status);
  VerifyResult out;
  out.overall = FromProto(response.verdict());
  out.identities.reserve(response.identities_size());
  for (const pb::Verdict& v : response.identities()) out.identities.push_back(FromProto(v));
  for (const pb::DivResult& d : response.divs()) out.divs.push_back(FromProto(d));
  out.verstat_priority = response.verstat_priority();
  for (const pb::RcdResult& r : response.rcds()) out.rcds.push_back(FromProto(r));
  out.display_name = response.display_name();
  out.request_id = response.request_id();
  return out;
}

absl::StatusOr<std::vector<ProfileInfo>> Client::ListProfiles(
    std::optional<absl::Duration> timeout) const {
  absl::Duration t = timeout.value_or(impl_->options.default_timeout);
  if (absl::Status s = CheckTimeout(t); !s.ok()) return s;
  pb::ListProfilesResponse response;
  grpc::ClientContext ctx;
  ctx.set_deadline(DeadlineAfter(t));
  grpc::Status status =
      impl_->UncheckedStub().ListProfiles(&ctx, pb::ListProfilesRequest(), &response);
  if (!status.ok()) return internal::FromGrpcStatus(status);
  std::vector<ProfileInfo> out;
  out.reserve(response.profiles_size());
  for (const pb::Profile& p : response.profiles()) out.push_back(FromProto(p));
  return out;
}

absl::Status Client::WaitForReady(absl::Duration timeout) const {
  if (absl::Status s = CheckTimeout(timeout); !s.ok()) return s;
  if (impl_->channel->WaitForConnected(DeadlineAfter(timeout))) return absl::OkStatus();
  return absl::DeadlineExceededError(
      absl::StrCat("channel to ", impl_->options.target, " not ready after ",
                   absl::FormatDuration(timeout), " (state ",
                   ConnectivityStateName(impl_->channel->GetState(false)), ")"));
}

// ---------------------------------------------------------------------------------------------
// SignStreamSession: the synchronous streaming API allows one Write and one Read in flight at
// once, from different threads; write_mu and read_mu serialize each side.

struct SignStreamSession::Impl {
  std::shared_ptr<grpc::Channel> channel;  // keeps the channel alive for the call
  grpc::ClientContext ctx;                 // declared before `stream`: outlives it
  std::unique_ptr<grpc::ClientReaderWriter<pb::SignRequest, pb::SignStreamResponse>> stream;

  absl::Mutex write_mu;
  bool send_closed ABSL_GUARDED_BY(write_mu) = false;

  absl::Mutex read_mu;
  bool finished ABSL_GUARDED_BY(read_mu) = false;
  absl::Status final_status ABSL_GUARDED_BY(read_mu);

  // Set once the call's final status is known, for Send to report it.
  absl::Mutex status_mu;
  std::optional<absl::Status> known_final ABSL_GUARDED_BY(status_mu);
};

SignStreamSession::SignStreamSession(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

SignStreamSession::~SignStreamSession() {
  Impl& i = *impl_;
  absl::MutexLock lock(&i.read_mu);
  if (i.finished) return;
  // Cancel, then drain and collect the status so that gRPC releases the call.
  i.ctx.TryCancel();
  pb::SignStreamResponse ignored;
  while (i.stream->Read(&ignored)) {
  }
  i.stream->Finish().IgnoreError();
}

absl::Status SignStreamSession::Send(const SignParams& params) {
  Impl& i = *impl_;
  pb::SignRequest request;
  ToProto(params, &request);
  absl::MutexLock lock(&i.write_mu);
  if (i.send_closed) return absl::FailedPreconditionError("SignStream: Send after CloseSend");
  if (i.stream->Write(request)) return absl::OkStatus();
  absl::MutexLock status_lock(&i.status_mu);
  if (i.known_final.has_value() && !i.known_final->ok()) return *i.known_final;
  return absl::UnavailableError("SignStream: stream broken; Next() returns the call's status");
}

absl::StatusOr<StreamedSign> SignStreamSession::Next() {
  Impl& i = *impl_;
  absl::MutexLock lock(&i.read_mu);
  if (!i.finished) {
    pb::SignStreamResponse response;
    if (i.stream->Read(&response)) {
      StreamedSign out;
      out.request_id = std::move(*response.mutable_request_id());
      switch (response.result_case()) {
        case pb::SignStreamResponse::kResponse:
          out.result = FromProto(std::move(*response.mutable_response()));
          break;
        case pb::SignStreamResponse::kError: {
          absl::Status s =
              internal::FromRpcCode(response.error().code(), response.error().message());
          out.result = s.ok() ? absl::UnknownError("SignStream: error response with code 0") : s;
          break;
        }
        default:
          out.result = absl::UnknownError("SignStream: response carries neither result nor error");
          break;
      }
      return out;
    }
    i.final_status = internal::FromGrpcStatus(i.stream->Finish());
    i.finished = true;
    absl::MutexLock status_lock(&i.status_mu);
    i.known_final = i.final_status;
  }
  if (!i.final_status.ok()) return i.final_status;
  return absl::OutOfRangeError("SignStream: end of stream");
}

absl::Status SignStreamSession::CloseSend() {
  Impl& i = *impl_;
  absl::MutexLock lock(&i.write_mu);
  if (i.send_closed) return absl::OkStatus();
  i.send_closed = true;
  // WritesDone fails only when the call has already ended; Next reports how.
  i.stream->WritesDone();
  return absl::OkStatus();
}

absl::StatusOr<std::unique_ptr<SignStreamSession>> Client::OpenSignStream(
    std::optional<absl::Duration> timeout) const {
  auto impl = std::make_unique<SignStreamSession::Impl>();
  if (timeout.has_value()) {
    if (absl::Status s = CheckTimeout(*timeout); !s.ok()) return s;
    impl->ctx.set_deadline(DeadlineAfter(*timeout));
  }
  impl->channel = impl_->SignChannel();
  impl->stream = pb::Shaken::NewStub(impl->channel)->SignStream(&impl->ctx);
  if (impl->stream == nullptr) return absl::InternalError("SignStream: gRPC returned no stream");
  return std::unique_ptr<SignStreamSession>(new SignStreamSession(std::move(impl)));
}

}  // namespace shaken::client
