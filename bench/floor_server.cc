// load_bench_floor: the floor of load_bench (bench/README.md): shaken.v1 served by a server that
// does nothing but the gRPC call and the cryptographic operation, with shakend's keys, pool
// options, verifier and TLS settings, read from shakend's configuration. load_bench starts it as a
// child process and runs the same phases against it as against shakend.
//
//   load_bench_floor --config shakend.yaml --port N     (serves on 127.0.0.1:N until SIGTERM)
#include <grpcpp/grpcpp.h>
#include <signal.h>
#include <unistd.h>

#include <memory>
#include <string>
#include <vector>

#include "CLI/CLI.hpp"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "bench/load_support.h"
#include "daemon/config.h"
#include "daemon/profiles.h"
#include "shaken/v1/shaken.grpc.pb.h"
#include "stir/clock.h"
#include "stir/openssl_util.h"
#include "stir/passport.h"
#include "tests/testing/subprocess.h"

namespace shaken::bench {
namespace {

// FloorService is shaken.v1 reduced to what no server can avoid: the gRPC call and the one
// cryptographic operation, with the same code and options as shakend (profile "token": the
// KeyPool on the token; profile "file": the in-memory key; Verify: stir::Verifier with a warm
// certificate cache). Sign answers with a response of a real response's size, made once. No
// request checks, PASSporT, authorization, audit record or metrics. What it reaches on this
// machine is the most any shaken.v1 server can reach here: shakend's figures are read against it.
class FloorService final : public shaken::v1::Shaken::CallbackService {
 public:
  struct Profile {
    const stir::Signer* signer;
    SignResponse canned;
  };
  FloorService(Profile token, Profile file, const stir::Verifier* verifier)
      : token_(std::move(token)),
        file_(std::move(file)),
        verifier_(verifier),
        digest_(stir::Sha256("load_bench: floor")) {}

  grpc::ServerUnaryReactor* Sign(grpc::CallbackServerContext* ctx, const SignRequest* req,
                                 SignResponse* resp) override {
    auto* reactor = ctx->DefaultReactor();
    reactor->Finish(SignOne(req->profile(), resp));
    return reactor;
  }

  grpc::ServerUnaryReactor* Verify(grpc::CallbackServerContext* ctx, const VerifyRequest* req,
                                   VerifyResponse* resp) override {
    auto* reactor = ctx->DefaultReactor();
    std::vector<std::string_view> ids(req->identity().begin(), req->identity().end());
    stir::CallInfo call;
    call.from_tn = req->from().tn();
    call.to_tns.assign(req->to().tn().begin(), req->to().tn().end());
    absl::StatusOr<stir::VerifyResult> r = verifier_->VerifyViews(ids, call);
    if (!r.ok()) {
      reactor->Finish(
          grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, std::string(r.status().message())));
      return reactor;
    }
    resp->mutable_verdict()->set_passed(r->overall.passed);
    resp->mutable_verdict()->set_reason(std::string(stir::ReasonName(r->overall.reason)));
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

  // One message in, one signature, one message out, then the next read: requests the client
  // pipelines wait in the stream's flow-control window.
  class Stream final : public grpc::ServerBidiReactor<SignRequest, SignStreamResponse> {
   public:
    explicit Stream(const FloorService* service) : service_(service) { StartRead(&req_); }
    void OnReadDone(bool ok) override {
      if (!ok) {
        Finish(grpc::Status::OK);
        return;
      }
      out_.Clear();
      grpc::Status st = service_->SignOne(req_.profile(), out_.mutable_response());
      if (!st.ok()) {
        out_.mutable_error()->set_code(st.error_code());
        out_.mutable_error()->set_message(st.error_message());
      }
      StartWrite(&out_);
    }
    void OnWriteDone(bool ok) override {
      if (ok) {
        StartRead(&req_);
      } else {
        Finish(grpc::Status::CANCELLED);
      }
    }
    void OnDone() override { delete this; }

   private:
    const FloorService* service_;
    SignRequest req_;
    SignStreamResponse out_;
  };

  grpc::ServerBidiReactor<SignRequest, SignStreamResponse>* SignStream(
      grpc::CallbackServerContext* /*ctx*/) override {
    return new Stream(this);
  }

 private:
  grpc::Status SignOne(const std::string& profile, SignResponse* resp) const {
    const Profile& p = profile == "file" ? file_ : token_;
    absl::StatusOr<stir::Es256Signature> sig = p.signer->SignDigest(digest_);
    if (!sig.ok()) {
      return grpc::Status(grpc::StatusCode::UNAVAILABLE, std::string(sig.status().message()));
    }
    *resp = p.canned;
    return grpc::Status::OK;
  }

  const Profile token_, file_;
  const stir::Verifier* verifier_;
  const stir::Sha256Digest digest_;
};

// FloorMain serves FloorService on 127.0.0.1:`port` with shakend's configuration `config_path`
// (its API TLS / mTLS settings, profiles "token" and "file", verifier settings) until SIGTERM.
int FloorMain(const std::string& config_path, int port) {
  daemon::Config config = Must(daemon::LoadConfig(config_path), "floor: configuration");
  std::vector<std::unique_ptr<daemon::SigningProfile>> profiles;
  std::vector<SignResponse> canned;
  for (const char* name : {"token", "file"}) {
    const daemon::ProfileConfig* pc = nullptr;
    for (const auto& p : config.profiles) {
      if (p.name == name) pc = &p;
    }
    if (pc == nullptr) Die(absl::StrCat("floor: no profile \"", name, "\" in ", config_path));
    profiles.push_back(Must(daemon::SigningProfile::Open(*pc, config, &stir::SystemClock::Shared()),
                            "floor: profile"));
    stir::ShakenClaims claims;
    claims.attest = pc->attest.front();
    claims.orig_tn = kOrig;
    claims.dest_tns = {kDest};
    stir::SignedPassport one =
        Must(profiles.back()->Sign(claims, absl::InfiniteFuture()), "floor: sign");
    SignResponse r;
    r.set_identity(one.identity);
    r.set_passport(one.jws);
    r.set_origid(one.origid);
    r.set_iat(one.iat);
    r.set_profile(name);
    canned.push_back(std::move(r));
  }
  std::unique_ptr<stir::VerificationStack> verifier = MakeVerifier(config.verifier);

  FloorService service({&profiles[0]->signer(), canned[0]}, {&profiles[1]->signer(), canned[1]},
                       &verifier->verifier());

  std::shared_ptr<grpc::ServerCredentials> creds = grpc::InsecureServerCredentials();
  if (config.tls.has_value()) {
    grpc::SslServerCredentialsOptions opts;
    opts.pem_key_cert_pairs.push_back({testing::ReadFileOrEmpty(config.tls->key_file),
                                       testing::ReadFileOrEmpty(config.tls->cert_file)});
    if (!config.tls->client_ca_file.empty()) {
      opts.pem_root_certs = testing::ReadFileOrEmpty(config.tls->client_ca_file);
      opts.client_certificate_request = GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY;
    }
    creds = grpc::SslServerCredentials(opts);
  }
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  grpc::ServerBuilder b;
  int bound = 0;
  b.AddListeningPort(absl::StrCat("127.0.0.1:", port), creds, &bound);
  b.RegisterService(&service);
  std::unique_ptr<grpc::Server> server = b.BuildAndStart();
  if (server == nullptr || bound == 0) Die(absl::StrCat("floor: cannot listen on port ", port));
  int sig = 0;
  sigwait(&set, &sig);
  server->Shutdown(std::chrono::system_clock::now());
  _exit(0);  // SoftHSM2 must not be finalised from exit handlers
}

}  // namespace
}  // namespace shaken::bench

int main(int argc, char** argv) {
  std::string config;
  int port = 0;
  CLI::App app{"load_bench_floor: shaken.v1 reduced to the gRPC call and the cryptography"};
  app.add_option("--config", config, "shakend's configuration (profiles token and file)")
      ->required();
  app.add_option("--port", port, "the port on 127.0.0.1")->required()->check(CLI::Range(1, 65535));
  CLI11_PARSE(app, argc, argv);
  // As shakend's main does: Debian's abseil leaves absl::Mutex deadlock detection on, a graph
  // update on every lock that shakend does not pay and the floor must not either.
  absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
  return shaken::bench::FloorMain(config, port);
}
