// fake_shaken_server.h: a real gRPC server on 127.0.0.1 (ephemeral port) implementing
// shaken.v1.Shaken with canned behaviour, for the client's unit tests. Not a signer.
//
// Sign, by SignRequest.profile:
//   "" / "default"  OK: identity "jws.<orig>;info=<https://cert.example/x5u.pem>;alg=ES256;
//                   ppt=shaken", passport "jws.<orig>", origid echoed or "fake-origid", iat
//                   echoed or 1700000000, profile "default".
//   "slow"          waits 5 s (or until the call is cancelled), then OK.
//   "flaky-N"       UNAVAILABLE for the first N attempts of each request_id, then OK.
//   "denied"        PERMISSION_DENIED.
//   attest not A/B/C: INVALID_ARGUMENT "attest must be A, B or C".
// Verify: each identity passes iff it starts with "jws."; overall = the first passing one, else
// the first. ListProfiles: "default" (A,B,C, SERVING) and "hsm2" (A, DOWN). SignStream: as Sign
// (slow/flaky excluded), responses in order, bad requests answered with `error`.
// Every call records its peer address (one address = one connection).
#ifndef SHAKEN_CLIENT_FAKE_SHAKEN_SERVER_H_
#define SHAKEN_CLIENT_FAKE_SHAKEN_SERVER_H_

#include <map>
#include <memory>
#include <set>
#include <string>

#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace grpc {
class Server;
}

namespace shaken::client::testing {

struct FakeServerTls {
  std::string cert_pem;       // server certificate (chain)
  std::string key_pem;        // its key
  std::string client_ca_pem;  // non-empty: require and verify a client certificate
};

// FakeShakenServer: thread-safe counters; Start/destruction from one thread.
class FakeShakenServer {
 public:
  // Start listens on 127.0.0.1:0; plaintext unless `tls` is given.
  static absl::StatusOr<std::unique_ptr<FakeShakenServer>> Start(
      const FakeServerTls* tls = nullptr);
  ~FakeShakenServer();

  int port() const { return port_; }
  std::string target() const { return "127.0.0.1:" + std::to_string(port_); }

  // Attempts counts Sign calls (each retry is one) that carried `request_id`.
  int Attempts(const std::string& request_id) const;
  // Peers is the set of client addresses ("ipv4:127.0.0.1:PORT") seen by any call.
  std::set<std::string> Peers() const;
  // Calls counts calls of every method.
  int Calls() const;
  // Called by the service.
  int RecordCall(const std::string& peer, const std::string& request_id);

 private:
  FakeShakenServer() = default;
  struct Service;
  std::unique_ptr<Service> service_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;

  mutable absl::Mutex mu_;
  std::map<std::string, int> attempts_ ABSL_GUARDED_BY(mu_);
  std::set<std::string> peers_ ABSL_GUARDED_BY(mu_);
  int calls_ ABSL_GUARDED_BY(mu_) = 0;
};

}  // namespace shaken::client::testing

#endif  // SHAKEN_CLIENT_FAKE_SHAKEN_SERVER_H_
