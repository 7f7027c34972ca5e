// redirect_server.h: listen.sip, shakend as a SIP redirect server (docs/sip-redirect.md). SBCs
// send the call's INVITE; an INVITE to sign gets a 302 carrying the Identity header to add, an
// INVITE to verify a 302 carrying the verdict (verstat on P-Asserted-Identity, Reason: STIR).
// A thin front end of the service core (core.h): the same profiles, rules, limits, metrics and
// audit as gRPC.
//
// The SIP stack is sofia-sip's NTA (transports, RFC 3261 server transactions: retransmissions
// absorbed, ACK of non-2xx answers). It runs on one thread of its own, the loop. The core never
// blocks the loop: a token signature or an x5u fetch completes on another thread, which hands the
// answer back to the loop through an eventfd registered with it.
#ifndef SHAKEN_DAEMON_SIP_REDIRECT_SERVER_H_
#define SHAKEN_DAEMON_SIP_REDIRECT_SERVER_H_

#include <functional>
#include <memory>

#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "daemon/config.h"
#include "daemon/core.h"

namespace shaken::daemon::sip {

// RedirectServerDeps is what the server needs besides its configuration; each outlives it.
struct RedirectServerDeps {
  const ServiceCore* core = nullptr;
  // serving: the daemon's health (OPTIONS answers 200 while true, 503 while false). Called on
  // the loop thread; must not block.
  std::function<bool()> serving;
  // Signing refuses a Date header further than this from now (403 Stale Date, RFC 8224 §4.1);
  // SetMaxIatSkew changes it (configuration reload).
  absl::Duration max_iat_skew = absl::Seconds(60);
};

// RedirectServer serves listen.sip. Thread-safe; destroying it is Shutdown(now).
class RedirectServer {
 public:
  // Start binds the configured UDP and TCP addresses (port 0: a free one each) and starts the
  // loop. Fails naming listen.sip.udp / tcp when an address cannot be bound.
  static absl::StatusOr<std::unique_ptr<RedirectServer>> Start(const SipConfig& config,
                                                               RedirectServerDeps deps);
  ~RedirectServer();

  // Bound ports (0: that transport is not configured).
  int udp_port() const { return udp_port_; }
  int tcp_port() const { return tcp_port_; }

  // Shutdown answers new INVITEs 503 (and OPTIONS 503), lets the ones in progress be answered
  // until `deadline`, then closes the transports; answers that come later are dropped (the SBC's
  // transaction times out). Idempotent; blocks until the loop has stopped.
  void Shutdown(absl::Time deadline);

  // SetMaxIatSkew puts a new max_iat_skew in force for the INVITEs that arrive after it.
  void SetMaxIatSkew(absl::Duration skew);

  class Loop;  // implementation, on the loop thread

 private:
  RedirectServer() = default;
  std::unique_ptr<Loop> loop_;
  int udp_port_ = 0;
  int tcp_port_ = 0;
};

}  // namespace shaken::daemon::sip

#endif  // SHAKEN_DAEMON_SIP_REDIRECT_SERVER_H_
