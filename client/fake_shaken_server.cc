#include "client/fake_shaken_server.h"

#include <chrono>
#include <thread>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/time/clock.h"
#include "grpcpp/grpcpp.h"
#include "shaken/v1/shaken.grpc.pb.h"
#include "shaken/v1/shaken.pb.h"

namespace shaken::client::testing {
namespace {

namespace pb = ::shaken::v1;

constexpr char kX5u[] = "https://cert.example/x5u.pem";

bool ValidAttest(const std::string& a) { return a == "A" || a == "B" || a == "C"; }

// Canned signing shared by Sign and SignStream.
grpc::Status FakeSign(const pb::SignRequest& req, pb::SignResponse* resp) {
  if (!ValidAttest(req.attest())) {
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "attest must be A, B or C");
  }
  if (req.profile() == "denied") {
    return grpc::Status(grpc::StatusCode::PERMISSION_DENIED, "profile denied to this client");
  }
  std::string jws = absl::StrCat("jws.", req.orig().tn());
  resp->set_passport(jws);
  resp->set_identity(absl::StrCat(jws, ";info=<", kX5u, ">;alg=ES256;ppt=shaken"));
  resp->set_origid(req.origid().empty() ? "fake-origid" : req.origid());
  resp->set_iat(req.has_iat() ? req.iat() : 1700000000);
  resp->set_request_id(req.request_id());
  resp->set_profile("default");
  return grpc::Status::OK;
}

void FillCert(pb::Certificate* c) {
  c->set_subject("CN=SHAKEN 709J");
  c->set_spc("709J");
  c->set_serial("0A1B2C");
  c->set_not_after(1800000000);
}

void FakeVerdict(const std::string& identity, const pb::VerifyRequest& req, pb::Verdict* v) {
  bool passed = absl::StartsWith(identity, "jws.");
  v->set_passed(passed);
  v->set_verstat(passed ? "TN-Validation-Passed" : "TN-Validation-Failed");
  v->set_sip_code(passed ? 0 : 438);
  v->set_sip_reason(passed ? "" : "Invalid Identity Header");
  v->set_reason(passed ? "passed" : "signature_invalid");
  v->set_detail(passed ? "" : "the signature does not verify");
  v->set_ppt("shaken");
  v->set_attest("A");
  v->set_origid("fake-origid");
  v->mutable_orig()->set_tn(req.from().tn());
  *v->mutable_dest() = req.to();
  v->set_iat(req.has_time() ? req.time() : 1700000000);
  v->set_x5u(kX5u);
  FillCert(v->mutable_certificate());
}

}  // namespace

struct FakeShakenServer::Service final : pb::Shaken::Service {
  explicit Service(FakeShakenServer* owner) : owner(owner) {}
  FakeShakenServer* owner;

  grpc::Status Sign(grpc::ServerContext* ctx, const pb::SignRequest* req,
                    pb::SignResponse* resp) override {
    int attempt = owner->RecordCall(ctx->peer(), req->request_id());
    if (req->profile() == "slow") {
      absl::Time end = absl::Now() + absl::Seconds(5);
      while (absl::Now() < end && !ctx->IsCancelled()) absl::SleepFor(absl::Milliseconds(5));
    }
    int fail_first = 0;
    if (absl::StartsWith(req->profile(), "flaky-") &&
        absl::SimpleAtoi(req->profile().substr(6), &fail_first) && attempt <= fail_first) {
      return grpc::Status(grpc::StatusCode::UNAVAILABLE,
                          absl::StrCat("token busy (attempt ", attempt, ")"));
    }
    // What a server shutting down (or moving its clients away) does to a call it had not started.
    if (absl::StartsWith(req->profile(), "cancelled-") &&
        absl::SimpleAtoi(req->profile().substr(10), &fail_first) && attempt <= fail_first) {
      return grpc::Status(grpc::StatusCode::CANCELLED, "Server Shutdown");
    }
    return FakeSign(*req, resp);
  }

  grpc::Status SignStream(
      grpc::ServerContext* ctx,
      grpc::ServerReaderWriter<pb::SignStreamResponse, pb::SignRequest>* stream) override {
    owner->RecordCall(ctx->peer(), "");
    pb::SignRequest req;
    while (stream->Read(&req)) {
      pb::SignStreamResponse out;
      out.set_request_id(req.request_id());
      grpc::Status s = FakeSign(req, out.mutable_response());
      if (!s.ok()) {
        out.mutable_error()->set_code(static_cast<int>(s.error_code()));
        out.mutable_error()->set_message(s.error_message());
      }
      if (!stream->Write(out)) break;
    }
    return grpc::Status::OK;
  }

  grpc::Status Verify(grpc::ServerContext* ctx, const pb::VerifyRequest* req,
                      pb::VerifyResponse* resp) override {
    owner->RecordCall(ctx->peer(), req->request_id());
    if (req->identity_size() == 0) {
      return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "identity: at least one");
    }
    int overall = 0;
    for (int i = 0; i < req->identity_size(); ++i) {
      FakeVerdict(req->identity(i), *req, resp->add_identities());
      if (resp->identities(i).passed() && !resp->identities(overall).passed()) overall = i;
    }
    *resp->mutable_verdict() = resp->identities(overall);
    resp->set_request_id(req->request_id());
    return grpc::Status::OK;
  }

  grpc::Status ListProfiles(grpc::ServerContext* ctx, const pb::ListProfilesRequest*,
                            pb::ListProfilesResponse* resp) override {
    owner->RecordCall(ctx->peer(), "");
    pb::Profile* p = resp->add_profiles();
    p->set_name("default");
    p->set_key("pkcs11:token=shaken;object=sp1");
    p->set_x5u(kX5u);
    FillCert(p->mutable_certificate());
    for (const char* a : {"A", "B", "C"}) p->add_allowed_attest(a);
    p->set_health(pb::Profile::SERVING);
    p->set_is_default(true);
    p = resp->add_profiles();
    p->set_name("hsm2");
    p->set_key("file:/etc/shakend/k2.pem");
    p->add_allowed_attest("A");
    p->set_health(pb::Profile::DOWN);
    return grpc::Status::OK;
  }
};

absl::StatusOr<std::unique_ptr<FakeShakenServer>> FakeShakenServer::Start(
    const FakeServerTls* tls) {
  std::unique_ptr<FakeShakenServer> s(new FakeShakenServer());
  s->service_ = std::make_unique<Service>(s.get());
  std::shared_ptr<grpc::ServerCredentials> creds;
  if (tls == nullptr) {
    creds = grpc::InsecureServerCredentials();
  } else {
    grpc::SslServerCredentialsOptions o(
        tls->client_ca_pem.empty() ? GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE
                                   : GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
    o.pem_root_certs = tls->client_ca_pem;
    o.pem_key_cert_pairs.push_back({tls->key_pem, tls->cert_pem});
    creds = grpc::SslServerCredentials(o);
  }
  grpc::ServerBuilder builder;
  builder.AddListeningPort("127.0.0.1:0", creds, &s->port_);
  builder.RegisterService(s->service_.get());
  s->server_ = builder.BuildAndStart();
  if (s->server_ == nullptr || s->port_ == 0) {
    return absl::InternalError("fake shakend: cannot listen on 127.0.0.1");
  }
  return s;
}

FakeShakenServer::~FakeShakenServer() {
  if (server_ != nullptr) {
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
    server_->Wait();
  }
}

int FakeShakenServer::RecordCall(const std::string& peer, const std::string& request_id) {
  absl::MutexLock lock(&mu_);
  ++calls_;
  peers_.insert(peer);
  return request_id.empty() ? 0 : ++attempts_[request_id];
}

int FakeShakenServer::Attempts(const std::string& request_id) const {
  absl::MutexLock lock(&mu_);
  auto it = attempts_.find(request_id);
  return it == attempts_.end() ? 0 : it->second;
}

std::set<std::string> FakeShakenServer::Peers() const {
  absl::MutexLock lock(&mu_);
  return peers_;
}

int FakeShakenServer::Calls() const {
  absl::MutexLock lock(&mu_);
  return calls_;
}

}  // namespace shaken::client::testing
