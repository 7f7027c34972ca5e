// config_listen.cc: the `listen` section of shakend's configuration (API, health, metrics, TLS,
// listen.rest, listen.sip).
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "daemon/config_node.h"
#include "stir/passport.h"
#include "stir/status_macros.h"

namespace shaken::daemon::config_internal {
namespace {

absl::Status ReadTls(Node& parent, std::optional<TlsConfig>* out) {
  if (!parent.Has("tls")) return absl::OkStatus();
  Node n(parent.Get("tls"), parent.Path("tls"));
  RETURN_IF_ERROR(n.CheckMap());
  TlsConfig tls;
  RETURN_IF_ERROR(n.String("cert_file", &tls.cert_file));
  RETURN_IF_ERROR(n.String("key_file", &tls.key_file));
  RETURN_IF_ERROR(n.String("client_ca_file", &tls.client_ca_file));
  RETURN_IF_ERROR(n.Finish());
  if (tls.cert_file.empty() || tls.key_file.empty()) {
    return Node::Error(n.Path("cert_file"), "and key_file are both required for TLS");
  }
  *out = std::move(tls);
  return absl::OkStatus();
}

absl::Status ReadRestListen(Node& listen, Config* c) {
  if (!listen.Has("rest")) return absl::OkStatus();
  Node n(listen.Get("rest"), "listen.rest");
  RETURN_IF_ERROR(n.CheckMap());
  RestListenConfig r;
  RETURN_IF_ERROR(n.String("address", &r.address));
  RETURN_IF_ERROR(n.String("base_path", &r.base_path));
  RETURN_IF_ERROR(ReadTls(n, &r.tls));
  RETURN_IF_ERROR(n.Bool("allow_insecure", &r.allow_insecure));
  RETURN_IF_ERROR(n.Number<size_t>("max_body_bytes", &r.max_body_bytes, 1024, 16 << 20));
  RETURN_IF_ERROR(n.Number("max_connections", &r.max_connections, 1, 100000));
  RETURN_IF_ERROR(n.Duration("idle_timeout", &r.idle_timeout));
  RETURN_IF_ERROR(n.Duration("request_timeout", &r.request_timeout));
  RETURN_IF_ERROR(n.Number("threads", &r.threads, 1, 64));
  RETURN_IF_ERROR(n.Finish());
  if (r.address.empty()) return Node::Error("listen.rest.address", "is required (host:port)");
  if (!r.base_path.empty() &&
      (r.base_path.front() != '/' || r.base_path.back() == '/' ||
       r.base_path.find_first_of("?#% ") != std::string::npos)) {
    return Node::Error("listen.rest.base_path",
                       "must start with / and not end with / (e.g. /StirShakenWeb/resources/v1), "
                       "or be empty");
  }
  if (r.idle_timeout < absl::Seconds(1)) {
    return Node::Error("listen.rest.idle_timeout", "must be at least 1s");
  }
  if (r.request_timeout < absl::Milliseconds(10)) {
    return Node::Error("listen.rest.request_timeout", "must be at least 10ms");
  }
  if (r.tls.has_value() && r.allow_insecure) {
    return Node::Error("listen.rest.allow_insecure", "and listen.rest.tls exclude each other");
  }
  c->rest = std::move(r);
  return absl::OkStatus();
}

// ReadSip reads listen.sip (SipConfig).
absl::Status ReadSip(Node& parent, std::optional<SipConfig>* out) {
  if (!parent.Has("sip")) return absl::OkStatus();
  Node n(parent.Get("sip"), parent.Path("sip"));
  RETURN_IF_ERROR(n.CheckMap());
  SipConfig sip;
  RETURN_IF_ERROR(n.String("udp", &sip.udp));
  RETURN_IF_ERROR(n.String("tcp", &sip.tcp));
  RETURN_IF_ERROR(ReadSipRole(n, "role", &sip.role));
  RETURN_IF_ERROR(n.Choice("dest", {{"to", false}, {"request-uri", true}},
                           &sip.dest_from_request_uri, "must be to or request-uri"));
  RETURN_IF_ERROR(n.StringList("attestation_headers", &sip.attestation_headers));
  RETURN_IF_ERROR(n.String("default_attest", &sip.default_attest));
  RETURN_IF_ERROR(n.String("profile", &sip.profile));
  RETURN_IF_ERROR(n.Choice("verify_failure", {{"forward", false}, {"decline", true}},
                           &sip.decline_failed, "must be forward (302) or decline (603)"));
  RETURN_IF_ERROR(n.Duration("timeout", &sip.timeout));
  RETURN_IF_ERROR(n.Duration("retry_after", &sip.retry_after));
  RETURN_IF_ERROR(n.Number("max_message_bytes", &sip.max_message_bytes, size_t{4096},
                           size_t{1} << 20));
  RETURN_IF_ERROR(n.Duration("timer_i", &sip.timer_i));
  RETURN_IF_ERROR(n.Number("udp_receive_buffer", &sip.udp_receive_buffer, size_t{0},
                           size_t{256} << 20));
  RETURN_IF_ERROR(n.Finish());
  if (sip.udp.empty() && sip.tcp.empty()) {
    return Node::Error(n.Path("udp"), "or tcp is required: the address to listen on");
  }
  for (const auto& [key, addr] : {std::pair{"udp", &sip.udp}, std::pair{"tcp", &sip.tcp}}) {
    const size_t colon = addr->rfind(':');
    int port = -1;
    if (!addr->empty() && (colon == std::string::npos || colon == 0 ||
                           !absl::SimpleAtoi(addr->substr(colon + 1), &port) || port < 0 ||
                           port > 65535)) {
      return Node::Error(n.Path(key), absl::StrCat("\"", *addr,
                                                   "\" must be host:port (port 0: any free one)"));
    }
  }
  if (!sip.default_attest.empty() && !stir::IsAttestLevel(sip.default_attest)) {
    return Node::Error(n.Path("default_attest"), "must be A, B or C");
  }
  for (const std::string& h : sip.attestation_headers) {
    if (h.empty() || h.find_first_of(": \t\r\n") != std::string::npos) {
      return Node::Error(n.Path("attestation_headers"),
                         absl::StrCat("has \"", h, "\", which is not a header name"));
    }
  }
  if (sip.timeout < absl::Milliseconds(10) || sip.timeout > absl::Seconds(30)) {
    return Node::Error(n.Path("timeout"), "must be from 10ms to 30s");
  }
  if (sip.timer_i < absl::Milliseconds(10) || sip.timer_i > absl::Seconds(32)) {
    return Node::Error(n.Path("timer_i"), "must be from 10ms to 32s (RFC 3261's T4 is 5s)");
  }
  if (sip.retry_after < absl::Seconds(1)) {
    return Node::Error(n.Path("retry_after"), "must be at least 1s (Retry-After counts seconds)");
  }
  *out = std::move(sip);
  return absl::OkStatus();
}

}  // namespace

absl::Status ReadSipRole(Node& n, const std::string& key, SipRole* out) {
  return n.Choice(key, {{"auto", SipRole::kAuto}, {"sign", SipRole::kSign}, {"verify", SipRole::kVerify}},
                  out, "must be auto, sign or verify");
}

absl::Status ReadListen(Node& root, Config* c) {
  if (!root.Has("listen")) return absl::OkStatus();
  Node n(root.Get("listen"), "listen");
  RETURN_IF_ERROR(n.CheckMap());
  RETURN_IF_ERROR(n.String("api", &c->api_listen));
  RETURN_IF_ERROR(n.String("health", &c->health_listen));
  RETURN_IF_ERROR(n.String("metrics", &c->metrics_listen));
  RETURN_IF_ERROR(n.Bool("allow_insecure", &c->allow_insecure));
  RETURN_IF_ERROR(n.String("reflection", &c->reflection));
  if (c->reflection != "api" && c->reflection != "off") {
    return Node::Error("listen.reflection", "must be api or off");
  }
  RETURN_IF_ERROR(n.Duration("max_connection_age", &c->max_connection_age));
  RETURN_IF_ERROR(n.Duration("max_connection_age_grace", &c->max_connection_age_grace));
  if (c->max_connection_age != absl::ZeroDuration() &&
      c->max_connection_age < absl::Seconds(10)) {
    return Node::Error("listen.max_connection_age",
                       "must be 0 (never) or at least 10s: every client reconnects that often");
  }
  RETURN_IF_ERROR(ReadTls(n, &c->tls));
  RETURN_IF_ERROR(ReadRestListen(n, c));
  RETURN_IF_ERROR(ReadSip(n, &c->sip));
  return n.Finish();
}

}  // namespace shaken::daemon::config_internal
