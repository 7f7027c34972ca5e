// shaken/client.h: the C++ client of shakend (service shaken.v1.Shaken).
//
// A Client owns one gRPC channel to one target, created once and reused by every call; it is
// thread-safe, so one Client per process serves every SBC worker thread. Unary calls (Sign,
// Verify, ListProfiles) carry a deadline (ClientOptions::default_timeout unless given) and are
// retried by gRPC itself, with exponential backoff, only when the server or the transport answers
// UNAVAILABLE; the deadline bounds all attempts together.
//
// This header exposes no gRPC, protobuf, OpenSSL or PKCS#11 type: errors are absl::Status with
// the google.rpc code of the RPC, one to one (INVALID_ARGUMENT: the request is malformed and the
// message names the field; UNAVAILABLE: no server or no signing token, retry later or elsewhere;
// DEADLINE_EXCEEDED; PERMISSION_DENIED: this client certificate may not use the method or
// profile). A failed verification is NOT an error: Verify returns OK with a Verdict that did not
// pass.
//
// fork(): a Client must not be used across fork(). Create it in the process that uses it, after
// the last fork() (e.g. in a Kamailio/OpenSIPS child_init, not in mod_init).
//
// Link with the CMake package `shakenclient` (target shakenclient::shakenclient) or pkg-config
// `shakenclient++`. The C ABI is in shaken/shaken_client.h.
#ifndef SHAKEN_CLIENT_CLIENT_H_
#define SHAKEN_CLIENT_CLIENT_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/time/time.h"
#include "shaken/export.h"

namespace shaken::client {

// RetryPolicy is how unary calls are retried on UNAVAILABLE and on CANCELLED from the server (a
// shakend that drains on SIGTERM, or moves its clients away with GOAWAY when a profile goes
// down, cancels calls that reached it as it stopped taking them; Sign, Verify and ListProfiles
// change nothing on the server, so sending them again is safe). A call the client itself cancels
// or whose deadline passes is never retried, and every other code, INVALID_ARGUMENT included, is
// returned at once. Implemented by gRPC's retry
// machinery (service config "retryPolicy"); attempt n waits a random time in
// [0, min(initial_backoff * multiplier^(n-1), max_backoff)] before it starts.
struct RetryPolicy {
  // Attempts in total, 1 (no retry) to 5 (gRPC's own limit).
  int max_attempts = 3;
  absl::Duration initial_backoff = absl::Milliseconds(20);
  absl::Duration max_backoff = absl::Milliseconds(200);
  double backoff_multiplier = 2.0;
};

// KeepaliveOptions keeps a long-lived SBC connection alive through NATs and firewalls and
// detects a dead peer. shakend accepts pings this frequent; a stock gRPC server may answer pings
// more often than every 5 minutes without calls with GOAWAY ("too_many_pings").
struct KeepaliveOptions {
  // Ping after this long without activity. Zero disables keepalive.
  absl::Duration time = absl::Seconds(30);
  // Close the connection when a ping is not answered within this time.
  absl::Duration timeout = absl::Seconds(10);
  // Also ping while no call is in flight (an idle SBC keeps its connection warm).
  bool permit_without_calls = true;
};

// ClientOptions configures a Client. Client::New validates it.
struct ClientOptions {
  // "host:port" or a gRPC target URI ("dns:///sign.example.net:7443", "unix:/run/shakend.sock").
  // Required.
  std::string target;

  // TLS (the default). root_ca_file: PEM file of the CA(s) that issued the server certificate;
  // empty: gRPC's default roots. For mutual TLS give both client_cert_file (PEM, leaf first,
  // then intermediates) and client_key_file (PEM private key); the files are read once, in New.
  std::string root_ca_file;
  std::string client_cert_file;
  std::string client_key_file;
  // Name checked against the server certificate instead of the target's host (e.g. "localhost"
  // when connecting to 127.0.0.1). Tests and labs only.
  std::string server_name_override;
  // Plaintext HTTP/2, no TLS at all. Labs only; conflicts with every TLS option above.
  bool insecure_plaintext = false;

  // Deadline of a unary call when the call gives none. Positive.
  absl::Duration default_timeout = absl::Milliseconds(500);
  RetryPolicy retry;
  KeepaliveOptions keepalive;
  // Upper bound of the wait between reconnection attempts after the server went away (gRPC's
  // own default, 120 s, is too long for an SBC that falls back to unsigned calls meanwhile).
  absl::Duration max_reconnect_backoff = absl::Seconds(5);
  // Several shakend replicas behind one target (a headless Kubernetes Service
  // "dns:///shakend-headless.ns.svc:7443", a DNS name with several addresses, or
  // "ipv4:10.0.0.1:7443,10.0.0.2:7443"): kRoundRobin keeps a connection to every address and
  // spreads calls over those that are ready; a call retried on UNAVAILABLE (RetryPolicy) goes to
  // the next one. kPickFirst uses one address until it fails. DNS names are resolved again when a
  // connection fails, so replicas that come and go are followed.
  enum class Balancing { kRoundRobin, kPickFirst };
  Balancing balancing = Balancing::kRoundRobin;
  // With kRoundRobin, each address is watched with grpc.health.v1 for this service name and gets
  // Sign and SignStream calls only while SERVING: shakend answers NOT_SERVING for
  // "shaken.v1.Shaken" while a profile's token is down or while it drains, so signing moves to the
  // other replicas before any call fails (with every replica NOT_SERVING, Sign fails UNAVAILABLE at
  // once). Verify and ListProfiles do not need the token: they use a second connection per replica,
  // opened on the first Verify, that is not health-checked. "" turns client-side health checking
  // off (and with it the second connection).
  std::string health_check_service = "shaken.v1.Shaken";
  // Largest response accepted, in bytes.
  int max_receive_message_bytes = 4 * 1024 * 1024;
  // Prepended to gRPC's user agent, e.g. "kamailio-stirshaken/5.7".
  std::string user_agent;
};

// RichCallData is rich call data (RFC 9795): to sign (SignParams::rcd; empty fields are left
// out) or as verified (RcdResult). icn and jcl are URLs whose content the server fetches under
// its x5u fetch policy and covers with SHA-256 digests (the rcdi claim).
struct RichCallData {
  std::string nam;   // display name
  std::string apn;   // alternate presentation number (a TN)
  std::string icn;   // icon URL
  std::string jcl;   // jCard URL
  std::string jcd;   // inline jCard, JSON text of a jCard array
  std::string crn;   // call reason
};

// SignParams is one signing request (ATIS-1000082 signingRequest).
struct SignParams {
  // Signing profile; empty: the server's default profile.
  std::string profile;
  // Attestation level: "A", "B" or "C" (RFC 8588 §4).
  std::string attest;
  // Calling number; visual separators and a leading '+' are accepted (RFC 8224 §8.3).
  std::string orig_tn;
  // Called number(s); at least one.
  std::vector<std::string> dest_tns;
  // Issued-at, seconds since the Unix epoch (from the SIP Date header); absent: server's clock.
  std::optional<int64_t> iat;
  // Origination identifier (UUID); empty: the server makes a fresh one.
  std::string origid;
  // Opaque id echoed in the response and the server's audit log; at most 128 bytes.
  std::string request_id;
  // div_original set: sign a div PASSporT (RFC 8946, ppt=div) for a call being retargeted
  // instead of a shaken one. div_original is the Identity header value of the PASSporT being
  // diverted (refused, FAILED_PRECONDITION, when its iat is more than 60 s old); attest, orig_tn
  // and origid must then be empty (orig is copied from it) and dest_tns is the new target.
  std::string div_original;
  // The diverted number, one of the original's dest TNs; empty: its only one.
  std::string div_tn;
  // History-Info index of the diversion (RFC 7044), e.g. "1.2"; empty: none.
  std::string div_hi;
  // The PASSporT type (3GPP Ms "ppt"): empty for div with div_original, rph with rph_auth, else
  // shaken; "rcd" for a ppt=rcd PASSporT of `rcd` (attest and origid empty).
  std::string ppt;
  // rph_auth set: sign an rph PASSporT (RFC 8443, ppt=rph) for a priority call: the
  // Resource-Priority r-values (e.g. "ets.0"), with the optional sph claim ("psap-callback").
  // attest and origid must be empty.
  std::vector<std::string> rph_auth;
  std::string rph_sph;
  // Rich call data, in the shaken PASSporT (ATIS-1000094) or, with ppt "rcd", in its own.
  RichCallData rcd;
};

// SignResult is what was signed.
struct SignResult {
  // The SIP Identity header field value: <jws>;info=<x5u>;alg=ES256;ppt=shaken.
  std::string identity;
  // The PASSporT alone (JWS compact serialization).
  std::string passport;
  std::string origid;
  int64_t iat = 0;
  // The profile that signed.
  std::string profile;
  std::string request_id;
};

// CertificateInfo describes a certificate (of a signer, or of a profile).
struct CertificateInfo {
  std::string subject;
  // Service Provider Code from the TNAuthList (RFC 8226).
  std::string spc;
  // Serial number, upper-case hex.
  std::string serial;
  // notAfter, seconds since the Unix epoch.
  int64_t not_after = 0;
};

// Verdict is the outcome of verifying one Identity header, or a whole call (proto Verdict).
struct Verdict {
  bool passed = false;
  // "TN-Validation-Passed", "TN-Validation-Failed" or "No-TN-Validation" (3GPP TS 24.229).
  std::string verstat;
  // When not passed: SIP response code and reason phrase (RFC 8224 §6.2.2); 0 when passed.
  int sip_code = 0;
  std::string sip_reason;
  // Stable machine-readable reason ("passed", "signature_invalid", "iat_stale", ...).
  std::string reason;
  // A human sentence on what exactly was wrong.
  std::string detail;
  // The PASSporT's contents, as far as verification got.
  std::string ppt;
  std::string attest;
  std::string origid;
  std::string orig_tn;
  std::vector<std::string> dest_tns;
  int64_t iat = 0;
  std::string x5u;
  CertificateInfo certificate;
  // ppt=div (RFC 8946): the diverted-from number and History-Info index, and the index in
  // VerifyResult::identities of the header this one diverts, once linked.
  std::string div_tn;
  std::string div_hi;
  std::optional<int> diverts;
  // ppt=rph (RFC 8443): the rph.auth r-values and the sph claim, as signed.
  std::vector<std::string> rph_auth;
  std::string sph;
};

// RcdResult is the rich call data of one header that carries it (proto RcdResult): `rcd` is set
// only when passed (the header verified and every rcdi digest matched the fetched content);
// otherwise reason and detail say why it was dropped.
struct RcdResult {
  int identity = 0;              // index of the header in VerifyParams::identities
  bool passed = false;
  std::string reason;
  std::string detail;
  RichCallData rcd;
};

// DivResult is the verification of one diverting identity (a ppt=div header; 3GPP divResult):
// passed when its PASSporT verified and links to the PASSporT it diverts.
struct DivResult {
  int identity = 0;              // index of the ppt=div header in VerifyParams::identities
  std::string tn;                // the diverting number (div.tn)
  bool passed = false;
  std::string verstat;
  std::string reason;
  std::string detail;
  std::optional<int> diverts;    // index of the header it diverts, when linked
};

// VerifyParams is one verification request (ATIS-1000082 verificationRequest).
struct VerifyParams {
  // The Identity header field values, each as received; at least one.
  std::vector<std::string> identities;
  // Asserted calling number (P-Asserted-Identity, else From).
  std::string from_tn;
  // Called number(s) (To).
  std::vector<std::string> to_tns;
  // The SIP Date header, seconds since the Unix epoch, when present.
  std::optional<int64_t> date;
  std::string request_id;
  // The Resource-Priority header field value(s), when present (RFC 4412 r-values, "ets.0").
  std::vector<std::string> resource_priority;
};

// VerifyResult: the call's verdict and one verdict per VerifyParams::identities, in order.
struct VerifyResult {
  Verdict overall;
  std::vector<Verdict> identities;
  std::string request_id;
  // For a call with ppt=div headers: one result per diverting identity, in header order.
  std::vector<DivResult> divs;
  // "RPH-Validation-Passed" / "RPH-Validation-Failed" for a call with ppt=rph headers, else empty.
  std::string verstat_priority;
  // One result per header carrying rich call data, in header order.
  std::vector<RcdResult> rcds;
  // The nam of the first verified rich call data (3GPP displayName); empty when none.
  std::string display_name;
};

// ProfileInfo describes one signing profile the server offers this client.
struct ProfileInfo {
  enum class Health { kUnspecified = 0, kServing = 1, kDegraded = 2, kDown = 3 };
  std::string name;
  // PKCS#11 URI (never with a PIN) or "file:<path>".
  std::string key;
  std::string x5u;
  CertificateInfo certificate;
  std::vector<std::string> allowed_attest;
  Health health = Health::kUnspecified;
  bool is_default = false;
};

// StreamedSign is one response of a SignStreamSession: the request's id and its outcome (the
// SignResult, or the error of that request alone; the stream goes on).
struct StreamedSign {
  std::string request_id;
  absl::StatusOr<SignResult> result;
};

// SignStreamSession is one SignStream call, for SBCs that sign at a high rate: requests are sent
// without waiting for responses, and responses come back in request order.
//
// Thread-safety: Send may be called from several threads at once (each request is sent whole,
// in the order the calls get the stream's write lock), and Next from several threads at once
// (each response is delivered once); typically one producer sends and one consumer calls Next.
// Destroying the session cancels the call; no thread may be inside Send or Next then.
class SHAKEN_CLIENT_EXPORT SignStreamSession {
 public:
  ~SignStreamSession();
  SignStreamSession(const SignStreamSession&) = delete;
  SignStreamSession& operator=(const SignStreamSession&) = delete;

  // Send sends one request. Fails with FAILED_PRECONDITION after CloseSend, and once the call has
  // ended with its final status if Next already saw it, else with UNAVAILABLE "stream broken"
  // (Next then returns the call's status). Params are not validated locally: a malformed request
  // gets its INVALID_ARGUMENT through Next, and the stream goes on.
  absl::Status Send(const SignParams& params);

  // Next blocks until the next response, in the order of Send, and returns it. When the stream
  // has ended it returns an error instead: the call's final status if the call failed, or
  // OUT_OF_RANGE "end of stream" after CloseSend once every response was read. Blocks forever if
  // no request is outstanding and CloseSend was not called (unless the session has a deadline).
  absl::StatusOr<StreamedSign> Next();

  // CloseSend tells the server no more requests come; responses still outstanding can be read
  // with Next. Idempotent.
  absl::Status CloseSend();

 private:
  friend class Client;
  struct Impl;
  explicit SignStreamSession(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Client is a connection to one shakend target. Thread-safe: every method may be called from any
// number of threads at once.
class SHAKEN_CLIENT_EXPORT Client {
 public:
  // New validates `options`, reads the TLS files and creates the channel; it does not connect
  // (the first call, or WaitForReady, does). Fails with INVALID_ARGUMENT naming the option and
  // what to fix: empty target, unreadable or non-PEM file, a client certificate without its key
  // (or the reverse), TLS files with insecure_plaintext, a non-positive timeout, max_attempts
  // outside 1..5. The key file's contents are kept only inside gRPC's credentials.
  static absl::StatusOr<std::unique_ptr<Client>> New(ClientOptions options);

  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  // Sign signs one call. `timeout` (default: ClientOptions::default_timeout) bounds the whole
  // call, retries included. Errors: see the file comment.
  absl::StatusOr<SignResult> Sign(const SignParams& params,
                                  std::optional<absl::Duration> timeout = std::nullopt) const;

  // Verify verifies the Identity header(s) of one call. OK with a failing Verdict when
  // verification fails; an error only when the RPC fails.
  absl::StatusOr<VerifyResult> Verify(const VerifyParams& params,
                                      std::optional<absl::Duration> timeout = std::nullopt) const;

  // ListProfiles lists the signing profiles this client may use.
  absl::StatusOr<std::vector<ProfileInfo>> ListProfiles(
      std::optional<absl::Duration> timeout = std::nullopt) const;

  // OpenSignStream starts a SignStream call on this Client's channel. `timeout`, when given, is a
  // deadline for the whole stream; by default the stream has none. The session keeps the channel
  // alive, so it may outlive the Client.
  absl::StatusOr<std::unique_ptr<SignStreamSession>> OpenSignStream(
      std::optional<absl::Duration> timeout = std::nullopt) const;

  // WaitForReady connects (if not yet connected) and waits until the channel is ready, at most
  // `timeout`. DEADLINE_EXCEEDED (with the channel's last state) when it is not. For start-up
  // checks; calls do not need it.
  absl::Status WaitForReady(absl::Duration timeout) const;

  // target returns ClientOptions::target.
  const std::string& target() const;

 private:
  struct Impl;
  explicit Client(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

}  // namespace shaken::client

#endif  // SHAKEN_CLIENT_CLIENT_H_
